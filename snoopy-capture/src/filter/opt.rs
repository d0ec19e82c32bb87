//! The part of libpcap's optimizer (`optimize.c`) that decides verdicts.
//!
//! tcpdump runs libpcap's optimizer, and the optimizer changes more than speed: a load
//! past the end of a short packet rejects it, and the optimizer removes loads whose tests
//! it can decide from earlier ones (`ip[40] = 1 or ip`: every IPv4 packet is accepted, even
//! one too short for byte 40). To accept exactly the packets tcpdump accepts, we run the same
//! decisions on libpcap's block graph:
//!
//! - value numbering of each block's comparison, with libpcap's constant folding and its
//!   peephole rewrites (`sub x` / `sub #k` / `and #k` before `jeq`), so that equal tests are
//!   recognised as equal;
//! - a test on a known constant is decided;
//! - `opt_j`: an edge into a test whose outcome follows from a dominating edge (`fold_edge`)
//!   jumps straight to the outcome; a test whose two exits meet is skipped;
//! - identical blocks are merged (interning), which can make two exits meet.
//!
//! Every kept block is then regenerated from its value numbers, so loads whose values do
//! not reach the comparison disappear, as they do in libpcap's dead-code pass. If the whole
//! program comes down to "reject", libpcap refuses the expression, and so do we.

use std::collections::HashMap;

use super::Instruction;
use super::bpf::*;
use super::error::CompileError;
use super::node::Node;

/// A jump target: a block, or one of the two returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Tgt {
    Accept,
    Reject,
    B(usize),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Block {
    stmts: Vec<Instruction>,
    code: u16,
    k: u32,
    jt: Tgt,
    jf: Tgt,
}

/// A symbolic value (libpcap's value numbers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum V {
    Const(u32),
    /// A packet load: opcode (ABS, IND, MSH, LEN), offset, index value for IND.
    Load(u16, u32, Option<usize>),
    Alu(u16, usize, usize),
    Neg(usize),
    /// A scratch word as it was when the block started.
    Mem(u32),
    /// Anything else (A or X before they are set).
    Fresh(usize),
}

/// What a block's comparison means, in canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Canon {
    a: usize,
    /// `BPF_JMP | op | src` after the peephole rewrites.
    code: u16,
    /// Value number of the operand (the constant `k` or X).
    o: usize,
    k: u32,
    /// The canonical test is the negation of the block's own.
    swapped: bool,
    /// The outcome, when the test is decided (in the block's own sense).
    decided: Option<bool>,
}

struct Values {
    table: HashMap<V, usize>,
    list: Vec<V>,
    fresh: usize,
}

impl Values {
    fn num(&mut self, v: V) -> usize {
        if let Some(n) = self.table.get(&v) {
            return *n;
        }
        let n = self.list.len();
        self.list.push(v.clone());
        self.table.insert(v, n);
        n
    }

    fn konst(&mut self, c: u32) -> usize {
        self.num(V::Const(c))
    }

    fn as_const(&self, n: usize) -> Option<u32> {
        match self.list[n] {
            V::Const(c) => Some(c),
            _ => None,
        }
    }

    fn fresh(&mut self) -> usize {
        self.fresh += 1;
        let f = self.fresh;
        self.num(V::Fresh(f))
    }
}

type R<T> = Result<T, CompileError>;

fn fold(op: u16, a: u32, b: u32) -> R<u32> {
    Ok(match op {
        ADD => a.wrapping_add(b),
        SUB => a.wrapping_sub(b),
        MUL => a.wrapping_mul(b),
        DIV => a
            .checked_div(b)
            .ok_or_else(|| CompileError::invalid("division by zero"))?,
        MOD => a
            .checked_rem(b)
            .ok_or_else(|| CompileError::invalid("modulus by zero"))?,
        AND => a & b,
        OR => a | b,
        XOR => a ^ b,
        LSH => a.checked_shl(b).unwrap_or(0),
        RSH => a.checked_shr(b).unwrap_or(0),
        _ => a,
    })
}

/// An ALU operation on value `a` with operand value `b`, simplified as `opt_stmt` does.
fn alu(vals: &mut Values, op: u16, a: usize, b: usize) -> R<usize> {
    if op == NEG {
        return Ok(match vals.as_const(a) {
            Some(c) => vals.konst(c.wrapping_neg()),
            None => vals.num(V::Neg(a)),
        });
    }
    match (vals.as_const(a), vals.as_const(b)) {
        (Some(x), Some(y)) => {
            if matches!(op, LSH | RSH) && y > 31 {
                return Err(CompileError::invalid("shift by more than 31 bits"));
            }
            let c = fold(op, x, y)?;
            Ok(vals.konst(c))
        }
        (_, Some(0)) => match op {
            ADD | LSH | RSH | OR | XOR => Ok(a),
            MUL | AND => Ok(vals.konst(0)),
            DIV => Err(CompileError::invalid("division by zero")),
            MOD => Err(CompileError::invalid("modulus by zero")),
            _ => Ok(vals.num(V::Alu(op, a, b))),
        },
        (_, Some(k)) if matches!(op, LSH | RSH) && k > 31 => {
            Err(CompileError::invalid("shift by more than 31 bits"))
        }
        (Some(0), None) => match op {
            ADD | OR | XOR => Ok(b),
            MUL | DIV | MOD | AND | LSH | RSH => Ok(vals.konst(0)),
            _ => Ok(vals.num(V::Alu(op, a, b))),
        },
        _ => Ok(vals.num(V::Alu(op, a, b))),
    }
}

/// Symbolic execution of a block: the values of A and X at its jump.
fn execute(vals: &mut Values, stmts: &[Instruction]) -> R<(usize, usize)> {
    let mut a = vals.fresh();
    let mut x = vals.fresh();
    let mut mem: HashMap<u32, usize> = HashMap::new();
    for s in stmts {
        let k = s.k;
        match s.code & 0x07 {
            LD | LDX => {
                let mode = s.code & 0xe0;
                let size = s.code & 0x18;
                let v = match mode {
                    IMM => vals.konst(k),
                    MEM => match mem.get(&k) {
                        Some(v) => *v,
                        None => vals.num(V::Mem(k)),
                    },
                    LEN => vals.num(V::Load(LD | W | LEN, 0, None)),
                    ABS => vals.num(V::Load(LD | ABS | size, k, None)),
                    IND => match vals.as_const(x) {
                        // libpcap turns an indexed load with a known index into an absolute one.
                        Some(c) => vals.num(V::Load(LD | ABS | size, k.wrapping_add(c), None)),
                        None => vals.num(V::Load(LD | IND | size, k, Some(x))),
                    },
                    MSH => vals.num(V::Load(LDX | MSH | B, k, None)),
                    _ => vals.fresh(),
                };
                if s.code & 0x07 == LD {
                    a = v;
                } else {
                    x = v;
                }
            }
            ST => {
                mem.insert(k, a);
            }
            STX => {
                mem.insert(k, x);
            }
            ALU => {
                let op = s.code & 0xf0;
                let b = if s.code & X != 0 { x } else { vals.konst(k) };
                a = alu(vals, op, a, b)?;
            }
            MISC => {
                if s.code & 0xf8 == TAX {
                    x = a;
                } else {
                    a = x;
                }
            }
            _ => {}
        }
    }
    Ok((a, x))
}

/// The canonical comparison of a block (`opt_peep`), and whether it is decided.
fn canon(vals: &mut Values, b: &Block) -> R<Canon> {
    let (mut a, x) = execute(vals, &b.stmts)?;
    let mut code = b.code;
    let mut k = b.k;
    let mut o = if code & X != 0 { x } else { vals.konst(k) };
    let mut swapped = false;
    // A comparison with a known X is one with a constant.
    if code & X != 0
        && let Some(c) = vals.as_const(x)
    {
        code &= !X;
        k = c;
        o = vals.konst(c);
    }
    // sub #c; jeq #k -> jeq #(k+c); sub x; jeq #0 -> jeq x; and #m; jeq #0 -> jset #m (negated).
    while code == JMP | JEQ | K {
        match vals.list[a].clone() {
            V::Alu(SUB, inner, rhs) => match vals.as_const(rhs) {
                Some(c) => {
                    k = k.wrapping_add(c);
                    o = vals.konst(k);
                    a = inner;
                }
                None if k == 0 => {
                    code = JMP | JEQ | X;
                    o = rhs;
                    a = inner;
                    break;
                }
                None => break,
            },
            V::Alu(AND, inner, rhs) if k == 0 => match vals.as_const(rhs) {
                Some(m) => {
                    code = JMP | JSET | K;
                    k = m;
                    o = vals.konst(m);
                    a = inner;
                    swapped = !swapped;
                    break;
                }
                None => break,
            },
            _ => break,
        }
    }
    let mut decided = None;
    if code == JMP | JSET | K && k == 0 {
        decided = Some(false);
    } else if code == JMP | JSET | K && k == u32::MAX {
        decided = Some(true);
    } else if code & X == 0
        && let Some(v) = vals.as_const(a)
    {
        decided = Some(match code & 0xf0 {
            JEQ => v == k,
            JGT => v > k,
            JGE => v >= k,
            JSET => v & k != 0,
            _ => false,
        });
    }
    // `decided` is in the canonical sense; give it in the block's own.
    let decided = decided.map(|d| d != swapped);
    Ok(Canon {
        a,
        code,
        o,
        k,
        swapped,
        decided,
    })
}

struct Graph {
    blocks: Vec<Block>,
    index: HashMap<Block, usize>,
    /// Scratch words that carry state between blocks (live-mode VLAN offsets): a block that
    /// writes one cannot be skipped.
    protected: Vec<u32>,
}

impl Graph {
    fn writes_protected(&self, stmts: &[Instruction]) -> bool {
        stmts.iter().any(|s| {
            (s.code == ST || s.code == STX) && self.protected.contains(&s.k)
        })
    }

    fn intern(&mut self, b: Block) -> Tgt {
        if b.jt == b.jf && !self.writes_protected(&b.stmts) {
            return b.jt;
        }
        if let Some(i) = self.index.get(&b) {
            return Tgt::B(*i);
        }
        let i = self.blocks.len();
        self.blocks.push(b.clone());
        self.index.insert(b, i);
        Tgt::B(i)
    }

    fn build(&mut self, node: &Node, t: Tgt, f: Tgt) -> Tgt {
        match node {
            Node::Const(true) => t,
            Node::Const(false) => f,
            Node::Not(a) => self.build(a, f, t),
            Node::And(a, b) => {
                let eb = self.build(b, t, f);
                self.build(a, eb, f)
            }
            Node::Or(a, b) => {
                let eb = self.build(b, t, f);
                self.build(a, t, eb)
            }
            Node::Test { stmts, code, k } => self.intern(Block {
                stmts: stmts.clone(),
                code: *code,
                k: *k,
                jt: t,
                jf: f,
            }),
        }
    }

    /// Rebuilds the graph reachable from `root` with every block interned anew.
    fn rebuild(&mut self, root: Tgt) -> Tgt {
        let old = std::mem::take(&mut self.blocks);
        self.index.clear();
        let mut memo: HashMap<usize, Tgt> = HashMap::new();
        fn go(g: &mut Graph, old: &[Block], memo: &mut HashMap<usize, Tgt>, t: Tgt) -> Tgt {
            let Tgt::B(i) = t else { return t };
            if let Some(m) = memo.get(&i) {
                return *m;
            }
            let b = &old[i];
            let jt = go(g, old, memo, b.jt);
            let jf = go(g, old, memo, b.jf);
            let r = g.intern(Block {
                stmts: b.stmts.clone(),
                code: b.code,
                k: b.k,
                jt,
                jf,
            });
            memo.insert(i, r);
            r
        }
        go(self, &old, &mut memo, root)
    }

    /// Blocks reachable from `root`, each after all its predecessors.
    fn topo(&self, root: Tgt) -> Vec<usize> {
        let mut post = Vec::new();
        let mut seen = vec![false; self.blocks.len()];
        let mut stack: Vec<(usize, bool)> = Vec::new();
        if let Tgt::B(r) = root {
            stack.push((r, false));
        }
        while let Some((i, done)) = stack.pop() {
            if done {
                post.push(i);
                continue;
            }
            if seen[i] {
                continue;
            }
            seen[i] = true;
            stack.push((i, true));
            for t in [self.blocks[i].jf, self.blocks[i].jt] {
                if let Tgt::B(j) = t
                    && !seen[j]
                {
                    stack.push((j, false));
                }
            }
        }
        post.reverse();
        post
    }
}

/// One optimisation round; returns the new root and whether anything changed.
fn round(g: &mut Graph, vals: &mut Values, root: Tgt) -> R<(Tgt, bool)> {
    let order = g.topo(root);
    let mut changed = false;
    // 1. Decide constant tests.
    let mut canons: HashMap<usize, Canon> = HashMap::new();
    for &i in &order {
        let c = canon(vals, &g.blocks[i])?;
        if let Some(d) = c.decided
            && !g.writes_protected(&g.blocks[i].stmts)
        {
            let b = &mut g.blocks[i];
            let to = if d { b.jt } else { b.jf };
            if b.jt != to || b.jf != to {
                b.jt = to;
                b.jf = to;
                changed = true;
            }
        }
        canons.insert(i, c);
    }
    // 2. Edge dominators: edge 2p is block p's true exit, 2p+1 its false exit.
    let pos: HashMap<usize, usize> = order.iter().enumerate().map(|(p, &i)| (i, p)).collect();
    let n_edges = 2 * order.len();
    let words = n_edges.div_ceil(64);
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); order.len()];
    for (p, &i) in order.iter().enumerate() {
        for (e, t) in [(2 * p, g.blocks[i].jt), (2 * p + 1, g.blocks[i].jf)] {
            if let Tgt::B(j) = t {
                preds[pos[&j]].push(e);
            }
        }
    }
    let mut edom: Vec<Vec<u64>> = vec![vec![0; words]; n_edges];
    for p in 0..order.len() {
        let mut into: Option<Vec<u64>> = None;
        for &e in &preds[p] {
            into = Some(match into {
                None => edom[e].clone(),
                Some(mut acc) => {
                    for (w, v) in acc.iter_mut().zip(&edom[e]) {
                        *w &= v;
                    }
                    acc
                }
            });
        }
        let base = into.unwrap_or_else(|| vec![0; words]);
        for e in [2 * p, 2 * p + 1] {
            let mut s = base.clone();
            s[e / 64] |= 1 << (e % 64);
            edom[e] = s;
        }
    }
    // 3. opt_j on every edge.
    let canon_succ = |g: &Graph, i: usize, c: &Canon, sense: bool| -> Tgt {
        // The block's exit taken when its canonical test has outcome `sense`.
        let b = &g.blocks[i];
        if sense != c.swapped { b.jt } else { b.jf }
    };
    for (p, &i) in order.iter().enumerate() {
        for sense in [true, false] {
            let e = if sense { 2 * p } else { 2 * p + 1 };
            let mut succ = if sense { g.blocks[i].jt } else { g.blocks[i].jf };
            let mut guard = 0;
            'top: while let Tgt::B(s) = succ {
                guard += 1;
                if guard > 10_000 {
                    break;
                }
                let sb = &g.blocks[s];
                if g.writes_protected(&sb.stmts) {
                    break;
                }
                if sb.jt == sb.jf {
                    succ = sb.jt;
                    continue;
                }
                let Some(cs) = canons.get(&s).copied() else { break };
                for d in 0..n_edges {
                    if edom[e][d / 64] & (1 << (d % 64)) == 0 {
                        continue;
                    }
                    let dp = order[d / 2];
                    let own_sense = d % 2 == 0;
                    let cd = canons[&dp];
                    let d_sense = own_sense != cd.swapped;
                    if cs.code != cd.code || cs.a != cd.a {
                        continue;
                    }
                    let target = if cs.o == cd.o {
                        Some(canon_succ(g, s, &cs, d_sense))
                    } else if d_sense && cd.code == JMP | JEQ | K {
                        Some(canon_succ(g, s, &cs, false))
                    } else {
                        None
                    };
                    if let Some(t) = target {
                        succ = t;
                        continue 'top;
                    }
                }
                break;
            }
            let b = &mut g.blocks[i];
            let slot = if sense { &mut b.jt } else { &mut b.jf };
            if *slot != succ {
                *slot = succ;
                changed = true;
            }
        }
    }
    // 4. Intern again (merging blocks that became identical).
    let new_root = g.rebuild(root);
    Ok((new_root, changed || new_root != root))
}

/// Regenerates code leaving value `v` in A, using scratch words from `temps`.
fn gen_value(vals: &Values, v: usize, temps: &mut Vec<u32>, out: &mut Vec<Instruction>) -> Option<()> {
    let s = |code, k| Instruction::new(code, 0, 0, k);
    match vals.list[v] {
        V::Const(c) => out.push(s(LD | IMM, c)),
        V::Load(code, k, None) if code == LDX | MSH | B => {
            out.push(s(code, k));
            out.push(s(MISC | TXA, 0));
        }
        V::Load(code, k, None) => out.push(s(code, k)),
        V::Load(code, k, Some(x)) => {
            match vals.list[x] {
                V::Load(c, kk, None) if c == LDX | MSH | B => out.push(s(c, kk)),
                _ => {
                    gen_value(vals, x, temps, out)?;
                    out.push(s(MISC | TAX, 0));
                }
            }
            out.push(s(code, k));
        }
        V::Alu(op, a, b) => match vals.list[b] {
            V::Const(c) => {
                gen_value(vals, a, temps, out)?;
                out.push(s(ALU | op | K, c));
            }
            _ => {
                let t = temps.pop()?;
                gen_value(vals, b, temps, out)?;
                out.push(s(ST, t));
                gen_value(vals, a, temps, out)?;
                out.push(s(LDX | MEM, t));
                out.push(s(ALU | op | X, 0));
                temps.push(t);
            }
        },
        V::Neg(a) => {
            gen_value(vals, a, temps, out)?;
            out.push(s(ALU | NEG, 0));
        }
        V::Mem(r) => out.push(s(LD | MEM, r)),
        V::Fresh(_) => return None,
    }
    Some(())
}

/// The statements and jump to emit for block `b`: regenerated from its canonical test
/// when possible (dropping dead loads), else as generated.
fn lower(vals: &Values, g: &Graph, b: &Block, c: &Canon) -> (Vec<Instruction>, u16, u32, Tgt, Tgt) {
    let original = (b.stmts.clone(), b.code, b.k, b.jt, b.jf);
    if g.writes_protected(&b.stmts) {
        return original;
    }
    let mut temps: Vec<u32> = (0..MEMWORDS as u32).filter(|r| !g.protected.contains(r)).collect();
    let mut out = Vec::new();
    let ok = if c.code & X != 0 {
        temps.pop().and_then(|t| {
            gen_value(vals, c.o, &mut temps, &mut out)?;
            out.push(Instruction::new(ST, 0, 0, t));
            gen_value(vals, c.a, &mut temps, &mut out)?;
            out.push(Instruction::new(LDX | MEM, 0, 0, t));
            Some(())
        })
    } else {
        gen_value(vals, c.a, &mut temps, &mut out)
    };
    if ok.is_none() {
        return original;
    }
    let (jt, jf) = if c.swapped { (b.jf, b.jt) } else { (b.jt, b.jf) };
    (out, c.code, c.k, jt, jf)
}

/// Optimises the tree as libpcap would and flattens it into a program.
pub(crate) fn compile_tree(
    root: &Node,
    prologue: &[Instruction],
    protected: Vec<u32>,
    snaplen: u32,
) -> R<Vec<Instruction>> {
    let mut g = Graph {
        blocks: Vec::new(),
        index: HashMap::new(),
        protected,
    };
    let mut vals = Values {
        table: HashMap::new(),
        list: Vec::new(),
        fresh: 0,
    };
    let mut r = g.build(root, Tgt::Accept, Tgt::Reject);
    for _ in 0..64 {
        let (nr, changed) = round(&mut g, &mut vals, r)?;
        r = nr;
        if !changed {
            break;
        }
    }
    if r == Tgt::Reject {
        return Err(CompileError::invalid("expression rejects all packets"));
    }
    // Flatten back to front: returns, then blocks after all their successors.
    let order = g.topo(r);
    let mut rev: Vec<Instruction> = Vec::new();
    let push = |rev: &mut Vec<Instruction>, i: Instruction| {
        rev.push(i);
        rev.len() - 1
    };
    let reject = push(&mut rev, Instruction::new(RET | K, 0, 0, 0));
    let accept = push(&mut rev, Instruction::new(RET | K, 0, 0, snaplen));
    let mut at: HashMap<usize, usize> = HashMap::new();
    let place = |t: Tgt, at: &HashMap<usize, usize>| match t {
        Tgt::Accept => accept,
        Tgt::Reject => reject,
        Tgt::B(i) => at[&i],
    };
    for &i in order.iter().rev() {
        let b = g.blocks[i].clone();
        let c = canon(&mut vals, &b)?;
        let (stmts, code, k, jt, jf) = lower(&vals, &g, &b, &c);
        let (mut t, mut f) = (place(jt, &at), place(jf, &at));
        let dist = |rev: &Vec<Instruction>, target: usize| (rev.len() - target - 1) as u32;
        if dist(&rev, t) > 255 {
            let d = dist(&rev, t);
            t = push(&mut rev, Instruction::new(JMP | JA, 0, 0, d));
        }
        if dist(&rev, f) > 255 {
            let d = dist(&rev, f);
            f = push(&mut rev, Instruction::new(JMP | JA, 0, 0, d));
            if dist(&rev, t) > 255 {
                let d = dist(&rev, t);
                t = push(&mut rev, Instruction::new(JMP | JA, 0, 0, d));
            }
        }
        let (jt8, jf8) = (dist(&rev, t) as u8, dist(&rev, f) as u8);
        let mut entry = push(&mut rev, Instruction::new(code, jt8, jf8, k));
        for s in stmts.iter().rev() {
            entry = push(&mut rev, *s);
        }
        at.insert(i, entry);
    }
    let entry = place(r, &at);
    if entry != rev.len() - 1 {
        let d = (rev.len() - entry - 1) as u32;
        push(&mut rev, Instruction::new(JMP | JA, 0, 0, d));
    }
    for s in prologue.iter().rev() {
        push(&mut rev, *s);
    }
    rev.reverse();
    Ok(rev)
}
