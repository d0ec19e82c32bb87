//! The boolean tree the code generator builds.
//!
//! Like libpcap's blocks, a [`Node::Test`] is straight-line statements followed by one
//! conditional jump; `and`, `or` and `not` only wire the true and false exits (see
//! [`super::opt`] for how the tree becomes a block graph and then a program).

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
        // The first test is at the end of the left spine, which is as long as the chain of
        // `and`/`or` before it: walked in a loop, not by recursion.
        let mut node = self;
        while let Node::And(a, _) | Node::Or(a, _) | Node::Not(a) = node {
            node = a;
        }
        match node {
            Node::Test { stmts, .. } => {
                let mut s = prefix;
                s.append(stmts);
                *stmts = s;
            }
            Node::And(..) | Node::Or(..) | Node::Not(..) => unreachable!("walked past above"),
            Node::Const(v) => {
                // A constant runs no code; give it a test that always has its value.
                let value = *v;
                let mut s = prefix;
                s.push(Instruction::new(LD | IMM, 0, 0, 0));
                *node = Node::Test {
                    stmts: s,
                    code: JMP | JEQ | K,
                    k: if value { 0 } else { 1 },
                };
            }
        }
    }
}

impl Node {
    /// How many instructions the tree holds before optimisation: each test's statements
    /// and its jump. Counted with an explicit stack (a chain of `or`s is a tree as deep as
    /// it is long).
    pub(crate) fn instruction_count(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            match node {
                Node::Test { stmts, .. } => count += stmts.len() + 1,
                Node::And(a, b) | Node::Or(a, b) => {
                    stack.push(a);
                    stack.push(b);
                }
                Node::Not(a) => stack.push(a),
                Node::Const(_) => {}
            }
        }
        count
    }
}

/// Dropped with an explicit stack: the derived drop recurses once per level, and the left
/// spine of `a or b or c ...` is as deep as the expression has terms (thousands in a 64 KiB
/// expression), which would overflow a small thread stack.
impl Drop for Node {
    fn drop(&mut self) {
        let mut stack = Vec::new();
        take_children(self, &mut stack);
        while let Some(mut node) = stack.pop() {
            take_children(&mut node, &mut stack);
            // `node` now has no children and drops without recursing.
        }
    }
}

/// Moves a node's children onto `stack`, leaving constants in their place.
fn take_children(node: &mut Node, stack: &mut Vec<Node>) {
    match node {
        Node::And(a, b) | Node::Or(a, b) => {
            stack.push(std::mem::replace(&mut **a, Node::Const(true)));
            stack.push(std::mem::replace(&mut **b, Node::Const(true)));
        }
        Node::Not(a) => stack.push(std::mem::replace(&mut **a, Node::Const(true))),
        Node::Test { .. } | Node::Const(_) => {}
    }
}
