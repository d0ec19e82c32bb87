//! The pcap-filter grammar (libpcap's `grammar.y`) as a backtracking recursive-descent
//! parser that calls the code generator in source order, as yacc actions do.
//!
//! Qualifier inheritance follows yacc's `$<blk>0`: an identifier after `and`/`or`, `not` or
//! `(` is read with the qualifiers of the term before it, so `host a or b` is
//! `host a or host b` and `tcp port 80 or 443` is `tcp port 80 or tcp port 443`; terms that
//! set no qualifiers (`tcp`, `ip[0] = 1`, `vlan`) leave `qerr`, so `tcp or 80` is an error,
//! exactly as in tcpdump. Arithmetic uses yacc's precedences, including that `%` and `^`
//! have none (bison then shifts, so `a % b + c` is `a % (b + c)`).

use super::bpf::*;
use super::codegen::{Addr, Arth, Dir, Gen, Proto, Qual};
use super::error::{CompileError, ErrorKind};
use super::lexer::{Kw, Tok, Token};
use super::node::Node;
use crate::MAX_NESTING_DEPTH;

type R<T> = Result<T, CompileError>;

/// How many nesting levels the parser takes on one stack before it moves to a new one (see
/// [`Parser::nest`]).
const LEVELS_PER_STACK: usize = 16;

/// The stack of each thread the parser moves to: [`LEVELS_PER_STACK`] levels of an
/// unoptimised build, with a wide margin (memory is committed only as it is touched).
const SEGMENT_STACK: usize = 1024 * 1024;

pub(crate) struct Parser<'r> {
    toks: Vec<Token>,
    pos: usize,
    /// How many nested constructs (parentheses, `not`, arithmetic operands) enclose the
    /// current position; bounded by [`MAX_NESTING_DEPTH`] so the recursion is too.
    depth: usize,
    pub(crate) generator: Gen<'r>,
}

fn pname(kw: Kw) -> Option<Proto> {
    Some(match kw {
        Kw::Link => Proto::Link,
        Kw::Ip => Proto::Ip,
        Kw::Ip6 => Proto::Ip6,
        Kw::Arp => Proto::Arp,
        Kw::Rarp => Proto::Rarp,
        Kw::Tcp => Proto::Tcp,
        Kw::Udp => Proto::Udp,
        Kw::Icmp => Proto::Icmp,
        Kw::Icmp6 => Proto::Icmp6,
        Kw::Sctp => Proto::Sctp,
        Kw::Igmp => Proto::Igmp,
        Kw::Igrp => Proto::Igrp,
        Kw::Pim => Proto::Pim,
        Kw::Vrrp => Proto::Vrrp,
        Kw::Carp => Proto::Carp,
        Kw::Ah => Proto::Ah,
        Kw::Esp => Proto::Esp,
        Kw::Atalk => Proto::Atalk,
        Kw::Aarp => Proto::Aarp,
        Kw::Decnet => Proto::Decnet,
        Kw::Lat => Proto::Lat,
        Kw::Sca => Proto::Sca,
        Kw::Moprc => Proto::Moprc,
        Kw::Mopdl => Proto::Mopdl,
        Kw::Iso => Proto::Iso,
        Kw::Esis => Proto::Esis,
        Kw::Isis => Proto::Isis,
        Kw::Clnp => Proto::Clnp,
        Kw::Stp => Proto::Stp,
        Kw::Ipx => Proto::Ipx,
        Kw::Netbeui => Proto::Netbeui,
        Kw::IsisL1 => Proto::IsisL1,
        Kw::IsisL2 => Proto::IsisL2,
        Kw::IsisIih => Proto::IsisIih,
        Kw::IsisLsp => Proto::IsisLsp,
        Kw::IsisSnp => Proto::IsisSnp,
        Kw::IsisCsnp => Proto::IsisCsnp,
        Kw::IsisPsnp => Proto::IsisPsnp,
        _ => return None,
    })
}

/// Binary arithmetic operators: (BPF ALU op, yacc precedence; `None` for `%` and `^`).
fn arith_op(t: &Tok) -> Option<(u16, Option<u8>)> {
    Some(match t {
        Tok::Sym('|') => (OR, Some(1)),
        Tok::Sym('&') => (AND, Some(2)),
        Tok::Lsh => (LSH, Some(3)),
        Tok::Rsh => (RSH, Some(3)),
        Tok::Sym('+') => (ADD, Some(4)),
        Tok::Sym('-') => (SUB, Some(4)),
        Tok::Sym('*') => (MUL, Some(5)),
        Tok::Sym('/') => (DIV, Some(5)),
        Tok::Sym('%') => (MOD, None),
        Tok::Sym('^') => (XOR, None),
        _ => return None,
    })
}

const UMINUS: u8 = 6;

/// Whether bison shifts `next` when `current`'s rule could be reduced (`None` context:
/// nothing to reduce, always shift).
fn shifts(current: Option<Option<u8>>, next: Option<u8>) -> bool {
    match current {
        None => true,
        Some(cur) => match (cur, next) {
            (Some(c), Some(n)) => n > c,
            _ => true,
        },
    }
}

/// Keeps whichever failed alternative got further (ties go to the more specific error).
fn further(a: CompileError, b: CompileError) -> CompileError {
    let (ca, cb) = (a.column.unwrap_or(0), b.column.unwrap_or(0));
    if ca > cb {
        a
    } else if cb > ca {
        b
    } else if a.kind != ErrorKind::Syntax {
        a
    } else {
        b
    }
}

impl<'r> Parser<'r> {
    pub(crate) fn new(toks: Vec<Token>, generator: Gen<'r>) -> Self {
        Parser {
            toks,
            pos: 0,
            depth: 0,
            generator,
        }
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        let i = (self.pos + n).min(self.toks.len() - 1);
        &self.toks[i].tok
    }

    fn col(&self) -> usize {
        self.toks[self.pos].col
    }

    fn bump(&mut self) -> Tok {
        let t = self.toks[self.pos].tok.clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn syntax_error(&self) -> CompileError {
        match self.peek() {
            Tok::Kw(Kw::Unsupported(k)) => {
                CompileError::unsupported(format!("the `{k}` keyword")).at(self.col())
            }
            Tok::Eof => {
                CompileError::syntax(self.col(), "syntax error: unexpected end of expression")
            }
            _ => CompileError::syntax(self.col(), "syntax error"),
        }
    }

    fn expect(&mut self, t: Tok) -> R<()> {
        if *self.peek() == t {
            self.bump();
            Ok(())
        } else {
            Err(self.syntax_error())
        }
    }

    /// Runs `f`; on failure puts the position and code-generator state back.
    fn attempt<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        let (pos, generator) = (self.pos, self.generator.clone());
        let r = f(self);
        if r.is_err() {
            self.pos = pos;
            self.generator = generator;
        }
        r
    }

    /// Runs `f` one nesting level deeper; past [`MAX_NESTING_DEPTH`] levels, an error instead
    /// (every recursion of the parser goes through here, so its depth is bounded).
    ///
    /// A level takes a few KiB of stack in a debug build (about 1.5 KiB optimised), so
    /// [`MAX_NESTING_DEPTH`] levels would not fit on a small thread stack. Every
    /// [`LEVELS_PER_STACK`] levels the parse therefore goes on, on a fresh thread with a
    /// stack of its own ([`SEGMENT_STACK`]), while this one waits: the caller's stack holds
    /// at most [`LEVELS_PER_STACK`] levels, whatever the expression. Ordinary filters nest
    /// far less and never start a thread.
    fn nest<T: Send>(&mut self, f: impl FnOnce(&mut Self) -> R<T> + Send) -> R<T> {
        // Every caller has just taken the token that opens the level (`(`, `not`, ...).
        let opener = self.toks[self.pos.saturating_sub(1)].col;
        if self.depth >= MAX_NESTING_DEPTH {
            return Err(CompileError::limit(
                ErrorKind::TooDeep,
                Some(opener),
                format!(
                    "expression nested too deeply: more than {MAX_NESTING_DEPTH} levels of \
                     parentheses, `not` or arithmetic"
                ),
            ));
        }
        self.depth += 1;
        let r = if self.depth.is_multiple_of(LEVELS_PER_STACK) {
            let depth = self.depth;
            std::thread::scope(|scope| {
                let spawned = std::thread::Builder::new()
                    .name("snoopy-filter-parse".into())
                    .stack_size(SEGMENT_STACK)
                    .spawn_scoped(scope, || f(&mut *self));
                match spawned {
                    Ok(handle) => handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    Err(e) => Err(CompileError::limit(
                        ErrorKind::TooDeep,
                        Some(opener),
                        format!(
                            "expression nested too deeply: no thread to parse beyond {} levels \
                             ({e})",
                            depth
                        ),
                    )),
                }
            })
        } else {
            f(self)
        };
        self.depth -= 1;
        r
    }

    /// `prog`: an empty expression accepts everything.
    pub(crate) fn program(&mut self) -> R<Node> {
        if *self.peek() == Tok::Eof {
            return Ok(Node::Const(true));
        }
        let (b, _) = self.expr(Qual::ERR)?;
        if *self.peek() != Tok::Eof {
            return Err(self.syntax_error());
        }
        Ok(b)
    }

    fn at_id_follow(&self) -> bool {
        matches!(self.peek(), Tok::And | Tok::Or | Tok::Sym(')') | Tok::Eof)
    }

    /// `expr`: terms joined by `and`/`or`, left to right with equal precedence.
    fn expr(&mut self, q0: Qual) -> R<(Node, Qual)> {
        let (mut b, mut q) = self.term(q0)?;
        loop {
            let is_and = match self.peek() {
                Tok::And => true,
                Tok::Or => false,
                _ => break,
            };
            self.bump();
            let (b2, q2) = self.id_or_term(q)?;
            b = if is_and {
                Node::and(b, b2)
            } else {
                Node::or(b, b2)
            };
            q = q2;
        }
        Ok((b, q))
    }

    /// After `and`/`or`: an identifier inheriting `q` (`expr and id`), else a term.
    fn id_or_term(&mut self, q: Qual) -> R<(Node, Qual)> {
        let id = self.attempt(|p| {
            let r = p.id(q)?;
            if p.at_id_follow() {
                Ok(r)
            } else {
                Err(p.syntax_error())
            }
        });
        let id_err = match id {
            Ok(r) => return Ok(r),
            Err(e) if e.kind == ErrorKind::TooDeep => return Err(e),
            Err(e) => e,
        };
        match self.attempt(|p| p.term(q)) {
            Ok(r) => Ok(r),
            Err(term_err) => Err(further(id_err, term_err)),
        }
    }

    /// `term`: `not term` or `rterm`.
    fn term(&mut self, q0: Qual) -> R<(Node, Qual)> {
        if *self.peek() == Tok::Not {
            self.bump();
            let (b, q) = self.nest(|p| p.term(q0))?;
            return Ok((Node::not(b), q));
        }
        self.rterm(q0)
    }

    /// Whether an arithmetic expression can start here: after any number of `(`, a number,
    /// `len`, `-` or `proto[`. (Looking past the parentheses spares a doomed attempt at a
    /// relation in `((tcp))` at every level, which made deep nesting quadratic.)
    fn starts_arth(&self) -> bool {
        let mut n = 0;
        while *self.peek_at(n) == Tok::Sym('(') {
            n += 1;
        }
        match self.peek_at(n) {
            Tok::Num(_) | Tok::Kw(Kw::Len) | Tok::Sym('-') => true,
            Tok::Kw(k) => pname(*k).is_some() && *self.peek_at(n + 1) == Tok::Sym('['),
            _ => false,
        }
    }

    fn rterm(&mut self, q0: Qual) -> R<(Node, Qual)> {
        let mut rel_err = None;
        if self.starts_arth() {
            match self.attempt(|p| p.relation()) {
                Ok(b) => return Ok((b, Qual::ERR)),
                Err(e) => rel_err = Some(e),
            }
        }
        if let Some(e) = rel_err.as_ref().filter(|e| e.kind == ErrorKind::TooDeep) {
            // The other reading goes through the same parentheses: it would hit the limit
            // too, after as much work again.
            return Err(e.clone());
        }
        let r = self.attempt(|p| p.rterm_not_relation(q0));
        match (r, rel_err) {
            (Ok(r), _) => Ok(r),
            (Err(e), None) => Err(e),
            (Err(e), Some(re)) => Err(further(re, e)),
        }
    }

    fn rterm_not_relation(&mut self, q0: Qual) -> R<(Node, Qual)> {
        let col = self.col();
        match self.peek().clone() {
            Tok::Sym('(') => {
                self.bump();
                let (b, _) = self.nest(|p| p.expr(q0))?;
                self.expect(Tok::Sym(')'))?;
                // `paren expr ')'` passes on the qualifiers from before the parenthesis.
                Ok((b, q0))
            }
            Tok::Kw(Kw::Less) | Tok::Kw(Kw::Greater) => {
                let less = *self.peek() == Tok::Kw(Kw::Less);
                self.bump();
                let Tok::Num(n) = self.peek().clone() else {
                    return Err(self.syntax_error());
                };
                self.bump();
                let b = if less {
                    self.generator.less(n)
                } else {
                    self.generator.greater(n)
                };
                Ok((b, Qual::ERR))
            }
            Tok::Kw(Kw::Vlan) => {
                self.bump();
                let vid = self.attempt(|p| p.pnum()).ok();
                let b = self.generator.vlan(vid).map_err(|e| e.at(col))?;
                Ok((b, Qual::ERR))
            }
            Tok::Kw(k @ (Kw::Mpls | Kw::Pppoes | Kw::Geneve)) => {
                self.bump();
                let n = self.attempt(|p| p.pnum()).ok();
                let b = match k {
                    Kw::Mpls => self.generator.mpls(n),
                    Kw::Pppoes => self.generator.pppoes(n),
                    _ => self.generator.geneve(n),
                };
                Ok((b.map_err(|e| e.at(col))?, Qual::ERR))
            }
            Tok::Kw(k @ (Kw::Inbound | Kw::Outbound)) => {
                self.bump();
                let b = self.generator.inbound(k == Kw::Outbound);
                Ok((b.map_err(|e| e.at(col))?, Qual::ERR))
            }
            Tok::Kw(Kw::Ifindex) => {
                // `IFINDEX NUM` in libpcap's grammar: a bare number, no parentheses.
                self.bump();
                let Tok::Num(index) = self.peek().clone() else {
                    return Err(self.syntax_error());
                };
                self.bump();
                let b = self.generator.ifindex(index).map_err(|e| e.at(col))?;
                Ok((b, Qual::ERR))
            }
            Tok::Kw(Kw::Pppoed) => {
                self.bump();
                let b = self.generator.pppoed().map_err(|e| e.at(col))?;
                Ok((b, Qual::ERR))
            }
            Tok::Kw(Kw::Llc) => {
                self.bump();
                let b = match self.peek().clone() {
                    Tok::Id(name) => {
                        self.bump();
                        self.generator.llc_kind(&name)
                    }
                    Tok::Kw(Kw::Rnr) => {
                        self.bump();
                        self.generator.llc_kind("rnr")
                    }
                    _ => self.generator.llc(),
                };
                Ok((b.map_err(|e| e.at(col))?, Qual::ERR))
            }
            Tok::Kw(Kw::Byte) => {
                // `byte NUM byteop NUM`, byteop one of `& | < > =`.
                self.bump();
                let Tok::Num(idx) = self.bump() else {
                    return Err(self.syntax_error());
                };
                let op = match self.peek() {
                    Tok::Sym(c @ ('&' | '|' | '<' | '>' | '=')) => *c,
                    _ => return Err(self.syntax_error()),
                };
                self.bump();
                let Tok::Num(val) = self.peek().clone() else {
                    return Err(self.syntax_error());
                };
                self.bump();
                let b = self.generator.byteop(op, idx, val).map_err(|e| e.at(col))?;
                Ok((b, Qual::ERR))
            }
            Tok::Kw(Kw::Broadcast) | Tok::Kw(Kw::Multicast) => self.cast(Proto::Default, col),
            Tok::Kw(k) => {
                if let Kw::Unsupported(_) = k {
                    return Err(self.syntax_error());
                }
                let proto = pname(k);
                if proto.is_some() {
                    self.bump();
                }
                let pq = proto.unwrap_or(Proto::Default);
                match self.peek() {
                    Tok::Kw(Kw::Broadcast) | Tok::Kw(Kw::Multicast) => self.cast(pq, col),
                    Tok::Kw(
                        Kw::Src
                        | Kw::Dst
                        | Kw::Host
                        | Kw::Net
                        | Kw::Port
                        | Kw::Portrange
                        | Kw::Proto
                        | Kw::Protochain
                        | Kw::Gateway,
                    ) => {
                        let q = self.head(pq)?;
                        let (b, _) = self.id(q)?;
                        Ok((b, q))
                    }
                    _ => match proto {
                        Some(p) => {
                            let b = self.generator.proto_abbrev(p).map_err(|e| e.at(col))?;
                            Ok((b, Qual::ERR))
                        }
                        None => Err(self.syntax_error()),
                    },
                }
            }
            _ => Err(self.syntax_error()),
        }
    }

    fn cast(&mut self, proto: Proto, col: usize) -> R<(Node, Qual)> {
        let b = if self.bump() == Tok::Kw(Kw::Broadcast) {
            self.generator.broadcast(proto)
        } else {
            self.generator.multicast(proto)
        };
        Ok((b.map_err(|e| e.at(col))?, Qual::ERR))
    }

    /// `head` after the optional protocol: `dqual aqual`, `dqual`, `aqual` or `proto`.
    fn head(&mut self, proto: Proto) -> R<Qual> {
        let mut dir = Dir::Default;
        if let Tok::Kw(k @ (Kw::Src | Kw::Dst)) = self.peek().clone() {
            self.bump();
            dir = if k == Kw::Src { Dir::Src } else { Dir::Dst };
            let other = if k == Kw::Src { Kw::Dst } else { Kw::Src };
            if matches!(self.peek(), Tok::Or | Tok::And) && *self.peek_at(1) == Tok::Kw(other) {
                dir = if self.bump() == Tok::Or {
                    Dir::Or
                } else {
                    Dir::And
                };
                self.bump();
            }
        }
        let addr = match self.peek() {
            Tok::Kw(Kw::Host) => Addr::Host,
            Tok::Kw(Kw::Net) => Addr::Net,
            Tok::Kw(Kw::Port) => Addr::Port,
            Tok::Kw(Kw::Portrange) => Addr::Portrange,
            Tok::Kw(Kw::Proto) if dir == Dir::Default => Addr::Proto,
            Tok::Kw(Kw::Protochain) if dir == Dir::Default => Addr::Protochain,
            // `ndaqual`: only after a protocol, never after a direction.
            Tok::Kw(Kw::Gateway) if dir == Dir::Default => Addr::Gateway,
            _ if dir != Dir::Default => {
                return Ok(Qual {
                    proto,
                    dir,
                    addr: Addr::Default,
                });
            }
            _ => return Err(self.syntax_error()),
        };
        self.bump();
        Ok(Qual { proto, dir, addr })
    }

    /// `pnum`: a number, possibly in parentheses.
    fn pnum(&mut self) -> R<u32> {
        match self.peek().clone() {
            Tok::Num(n) => {
                self.bump();
                Ok(n)
            }
            Tok::Sym('(') => {
                self.bump();
                let n = self.nest(|p| p.pnum())?;
                self.expect(Tok::Sym(')'))?;
                Ok(n)
            }
            _ => Err(self.syntax_error()),
        }
    }

    /// `id`: an identifier read with the inherited qualifiers `q`.
    fn id(&mut self, q: Qual) -> R<(Node, Qual)> {
        if *self.peek() == Tok::Sym('(') {
            // `paren pnum ')'` or `paren pid ')'`.
            if let Ok(v) = self.attempt(|p| p.pnum()) {
                let b = self.generator.ncode(None, v, q)?;
                return Ok((b, q));
            }
            self.bump();
            let b = self.nest(|p| p.pid(q))?;
            self.expect(Tok::Sym(')'))?;
            return Ok((b, q));
        }
        let col = self.col();
        let b = match self.peek().clone() {
            Tok::Not => {
                self.bump();
                let (b, q) = self.nest(|p| p.id(q))?;
                return Ok((Node::not(b), q));
            }
            Tok::Num(v) => {
                self.bump();
                self.generator.ncode(None, v, q)
            }
            Tok::Id(name) => {
                self.bump();
                self.generator.scode(&name, q)
            }
            Tok::Hid(s) => {
                self.bump();
                match self.peek().clone() {
                    Tok::Sym('/') => {
                        self.bump();
                        let Tok::Num(len) = self.bump() else {
                            return Err(self.syntax_error());
                        };
                        check_addr_qual(q, "IP address and prefix length")
                            .and_then(|_| self.generator.mcode(&s, None, len, q))
                    }
                    Tok::Kw(Kw::Mask) => {
                        self.bump();
                        let Tok::Hid(m) = self.bump() else {
                            return Err(self.syntax_error());
                        };
                        check_addr_qual(q, "IP address and netmask")
                            .and_then(|_| self.generator.mcode(&s, Some(&m), 0, q))
                    }
                    _ => check_addr_qual(q, "ip host")
                        .and_then(|_| self.generator.ncode(Some(&s), 0, q)),
                }
            }
            Tok::Hid6(a) => {
                self.bump();
                if *self.peek() == Tok::Sym('/') {
                    self.bump();
                    let Tok::Num(len) = self.bump() else {
                        return Err(self.syntax_error());
                    };
                    check_addr_qual(q, "IP address and prefix length")
                        .and_then(|_| self.generator.mcode6(a, len, q))
                } else {
                    check_addr_qual(q, "IP address").and_then(|_| self.generator.mcode6(a, 128, q))
                }
            }
            Tok::Eid(mac) => {
                self.bump();
                self.generator.ecode(&mac, q)
            }
            _ => return Err(self.syntax_error()),
        };
        Ok((b.map_err(|e| e.at(col))?, q))
    }

    /// `pid`: identifiers joined by `and`/`or` inside `( )`, read with the qualifiers `q`.
    fn pid(&mut self, q: Qual) -> R<Node> {
        // The first element is a `nid` or a `pnum`, never a parenthesised list.
        let (mut b, _) = if *self.peek() == Tok::Sym('(') {
            let v = self.pnum()?;
            (self.generator.ncode(None, v, q)?, q)
        } else {
            self.id(q)?
        };
        while matches!(self.peek(), Tok::And | Tok::Or) {
            let is_and = self.bump() == Tok::And;
            let (b2, _) = self.id(q)?;
            b = if is_and {
                Node::and(b, b2)
            } else {
                Node::or(b, b2)
            };
        }
        Ok(b)
    }

    // ---- arithmetic ----------------------------------------------------------------------

    /// `arth relop arth`.
    fn relation(&mut self) -> R<Node> {
        let a0 = self.arth(None)?;
        let (op, reversed) = match self.peek() {
            Tok::Sym('>') => (JGT, false),
            Tok::Geq => (JGE, false),
            Tok::Sym('=') => (JEQ, false),
            Tok::Leq => (JGT, true),
            Tok::Sym('<') => (JGE, true),
            Tok::Neq => (JEQ, true),
            _ => return Err(self.syntax_error()),
        };
        self.bump();
        let a1 = self.arth(None)?;
        Ok(self.generator.relation(op, a0, a1, reversed))
    }

    /// An arithmetic expression; `ctx` is the precedence of the operator whose right
    /// operand this is (`None`: none, take every operator).
    fn arth(&mut self, ctx: Option<Option<u8>>) -> R<Arth> {
        let mut lhs = self.arth_primary()?;
        while let Some((op, prec)) = arith_op(self.peek()) {
            if !shifts(ctx, prec) {
                break;
            }
            let col = self.col();
            self.bump();
            let rhs = self.nest(|p| p.arth(Some(prec)))?;
            lhs = self.generator.arth(op, lhs, rhs).map_err(|e| e.at(col))?;
        }
        Ok(lhs)
    }

    fn arth_primary(&mut self) -> R<Arth> {
        let col = self.col();
        match self.peek().clone() {
            Tok::Num(v) => {
                self.bump();
                self.generator.loadi(v).map_err(|e| e.at(col))
            }
            Tok::Kw(Kw::Len) => {
                self.bump();
                self.generator.loadlen().map_err(|e| e.at(col))
            }
            Tok::Sym('-') => {
                self.bump();
                let a = self.nest(|p| p.arth(Some(Some(UMINUS))))?;
                Ok(self.generator.neg(a))
            }
            Tok::Sym('(') => {
                self.bump();
                let a = self.nest(|p| p.arth(None))?;
                self.expect(Tok::Sym(')'))?;
                Ok(a)
            }
            Tok::Kw(k) if pname(k).is_some() => {
                self.bump();
                self.expect(Tok::Sym('['))?;
                let index = self.nest(|p| p.arth(None))?;
                let mut size = 1;
                if *self.peek() == Tok::Sym(':') {
                    self.bump();
                    let Tok::Num(n) = self.bump() else {
                        return Err(self.syntax_error());
                    };
                    size = n;
                }
                self.expect(Tok::Sym(']'))?;
                let proto = pname(k).expect("checked");
                self.generator
                    .load(proto, index, size)
                    .map_err(|e| e.at(col))
            }
            _ => Err(self.syntax_error()),
        }
    }
}

/// The checks grammar.y makes before using an IP address with `port`, `portrange`, `proto`.
fn check_addr_qual(q: Qual, what: &str) -> R<()> {
    let m = match q.addr {
        Addr::Port => "port",
        Addr::Portrange => "portrange",
        Addr::Proto => "proto",
        Addr::Protochain => "protochain",
        _ => return Ok(()),
    };
    Err(CompileError::invalid(format!(
        "'{m}' modifier applied to {what}"
    )))
}
