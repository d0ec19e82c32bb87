//! The boolean tree the code generator builds, and its flattening into jumps.
//!
//! Like libpcap's blocks, a [`Node::Test`] is straight-line statements followed by one
//! conditional jump; `and`, `or` and `not` only wire the true and false exits. Flattening
//! happens back to front, so every jump target is already placed when its jump is written,
//! and an offset that does not fit the 8-bit `jt`/`jf` fields goes through a `ja`.

use super::Instruction;
use super::bpf::*;

/// A boolean expression over packet tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node {
    /// Run `stmts`, then jump on `code` (a `BPF_JMP` opcode) against `k` or X.
    Test {
        stmts: Vec<Instruction>,
        code: u16,
        k: u32,
    },
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    /// libpcap's `gen_true`/`gen_false`: no packet access.
    Const(bool),
}

impl Node {
    pub(crate) fn test(stmts: Vec<Instruction>, op: u16, src: u16, k: u32) -> Node {
        Node::Test {
            stmts,
            code: JMP | op | src,
            k,
        }
    }

    pub(crate) fn and(a: Node, b: Node) -> Node {
        Node::And(Box::new(a), Box::new(b))
    }

    pub(crate) fn or(a: Node, b: Node) -> Node {
        Node::Or(Box::new(a), Box::new(b))
    }

    #[allow(clippy::should_implement_trait)] // mirrors libpcap's gen_not, not ops::Not
    pub(crate) fn not(a: Node) -> Node {
        Node::Not(Box::new(a))
    }

    /// Puts `prefix` before the first statement this node executes (libpcap patches the
    /// head block the same way for the VLAN offset updates).
    pub(crate) fn prepend(&mut self, prefix: Vec<Instruction>) {
        match self {
            Node::Test { stmts, .. } => {
                let mut s = prefix;
                s.append(stmts);
                *stmts = s;
            }
            Node::And(a, _) | Node::Or(a, _) => a.prepend(prefix),
            Node::Not(a) => a.prepend(prefix),
            Node::Const(v) => {
                // A constant runs no code; give it a test that always has its value.
                let value = *v;
                let mut s = prefix;
                s.push(Instruction::new(LD | IMM, 0, 0, 0));
                *self = Node::Test {
                    stmts: s,
                    code: JMP | JEQ | K,
                    k: if value { 0 } else { 1 },
                };
            }
        }
    }
}

/// Builds the instruction list in reverse; positions are counted from the end.
struct Emitter {
    rev: Vec<Instruction>,
}

impl Emitter {
    /// Places `ins` and returns its position (index from the end).
    fn push(&mut self, ins: Instruction) -> usize {
        self.rev.push(ins);
        self.rev.len() - 1
    }

    /// The forward offset from the next placed instruction to `target`.
    fn dist(&self, target: usize) -> u32 {
        (self.rev.len() - target - 1) as u32
    }

    /// Places a conditional jump to positions `t` and `f`, through `ja` trampolines when
    /// a target is more than 255 instructions away.
    fn cond(&mut self, code: u16, k: u32, mut t: usize, mut f: usize) -> usize {
        if self.dist(t) > 255 {
            let d = self.dist(t);
            t = self.push(Instruction::new(JMP | JA, 0, 0, d));
        }
        if self.dist(f) > 255 {
            let d = self.dist(f);
            f = self.push(Instruction::new(JMP | JA, 0, 0, d));
            // The true target may now be out of reach again; it cannot be, since it was at
            // most 256 back before this jump and the trampoline sits right after it... unless
            // it was the other trampoline: recheck.
            if self.dist(t) > 255 {
                let d = self.dist(t);
                t = self.push(Instruction::new(JMP | JA, 0, 0, d));
            }
        }
        let (jt, jf) = (self.dist(t) as u8, self.dist(f) as u8);
        self.push(Instruction::new(code, jt, jf, k))
    }

    /// Places `node` so that it continues at `t` when true and `f` when false; returns
    /// the position of its entry.
    fn node(&mut self, node: &Node, t: usize, f: usize) -> usize {
        match node {
            Node::Const(true) => t,
            Node::Const(false) => f,
            Node::Not(a) => self.node(a, f, t),
            Node::And(a, b) => {
                let eb = self.node(b, t, f);
                self.node(a, eb, f)
            }
            Node::Or(a, b) => {
                let eb = self.node(b, t, f);
                self.node(a, t, eb)
            }
            Node::Test { stmts, code, k } => {
                let mut entry = self.cond(*code, *k, t, f);
                for s in stmts.iter().rev() {
                    entry = self.push(*s);
                }
                entry
            }
        }
    }
}

/// Flattens `root` into a program returning `snaplen` for accepted packets and 0 for the
/// rest, with `prologue` run first.
pub(crate) fn emit(root: &Node, prologue: &[Instruction], snaplen: u32) -> Vec<Instruction> {
    let mut e = Emitter { rev: Vec::new() };
    let reject = e.push(Instruction::new(RET | K, 0, 0, 0));
    let accept = e.push(Instruction::new(RET | K, 0, 0, snaplen));
    let entry = e.node(root, accept, reject);
    // Execution starts at the first instruction: if the root's entry is not the last one
    // placed (a constant root), jump to it.
    if entry != e.rev.len() - 1 {
        let d = e.dist(entry);
        e.push(Instruction::new(JMP | JA, 0, 0, d));
    }
    for s in prologue.iter().rev() {
        e.push(*s);
    }
    e.rev.reverse();
    e.rev
}
