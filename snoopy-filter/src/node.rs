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
