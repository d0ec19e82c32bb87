//! libpcap's optimizer (`optimize.c`), as far as it decides verdicts.
//!
//! tcpdump runs libpcap's optimizer, and the optimizer changes more than speed: a load
//! past the end of a short packet rejects it, and the optimizer removes loads whose tests
//! it can decide from earlier ones (`ip[40] = 1 or ip`: every IPv4 packet is accepted, even
//! one too short for byte 40), reorders chains of tests on the same value (`or_pullup`) and
//! refuses expressions that come down to "reject everything". To accept exactly the packets
//! tcpdump accepts, this module replays the same passes on the same block graph:
//!
//! 1. branch passes (`opt_loop(…, 0)`), until nothing changes: value numbering without
//!    statement rewriting, the peephole rules (`sub x`/`and #k` before `jeq`, known X or A),
//!    jump threading over dominating edges (`opt_j`/`fold_edge`), `or_pullup`/`and_pullup`;
//! 2. statement passes (`opt_loop(…, 1)`): constant folding; decided tests keep their block;
//! 3. `intern_blocks`, then `opt_root`.
//!
//! Each kept block is then regenerated from its value numbers, which drops the loads whose
//! values do not reach the comparison, as libpcap's dead-store pass does.

use std::collections::HashMap;

use super::Instruction;
use super::bpf::*;
use super::error::CompileError;
use super::node::Node;

type R<T> = Result<T, CompileError>;

const ALU_ADD_X: u16 = ALU | ADD | X;

/// Value number 0 means "unknown", as in libpcap.
type Val = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum V {
    Const(u32),
    /// libpcap's `F(code, v0, v1)`: loads carry their offset in `v0`.
    F(u16, u32, u32),
}

struct Values {
    table: HashMap<V, Val>,
    list: Vec<V>,
}

impl Values {
    fn new() -> Self {
        // Slot 0 is the unknown value.
        Values {
            table: HashMap::new(),
            list: vec![V::F(0xffff, 0, 0)],
        }
    }

    fn num(&mut self, v: V) -> Val {
        if let Some(n) = self.table.get(&v) {
            return *n;
        }
        let n = self.list.len() as Val;
        self.list.push(v);
        self.table.insert(v, n);
        n
    }

    fn k(&mut self, c: u32) -> Val {
        self.num(V::Const(c))
    }

    fn konst(&self, v: Val) -> Option<u32> {
        match self.list[v as usize] {
            V::Const(c) => Some(c),
            V::F(..) => None,
        }
    }
}

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

/// `opt_stmt` over a block: the values of A and X at its end. With `alter`, the
/// simplifications libpcap makes while rewriting statements (constant folding, indexed
/// loads with a known index made absolute, operations with a known X or with 0).
fn execute(vals: &mut Values, stmts: &[Instruction], alter: bool) -> R<(Val, Val)> {
    let (mut a, mut x): (Val, Val) = (0, 0);
    let mut mem: HashMap<u32, Val> = HashMap::new();
    // Values this pass made constant by simplifying an `op x` with a known X (`mul x`, X = 0
    // → 0). libpcap only rewrites such an `op x` to `op #c` in this pass and simplifies it in
    // the next, so for its shift check below A is still unknown.
    let mut known_only_later: std::collections::HashSet<Val> = std::collections::HashSet::new();
    for s in stmts {
        let k = s.k;
        let code = s.code;
        match code & 0x07 {
            LD | LDX => {
                let v = match code & 0xe0 {
                    IMM => vals.k(k),
                    MEM => *mem.get(&k).unwrap_or(&0),
                    LEN => vals.num(V::F(LD | W | LEN, 0, 0)),
                    ABS => vals.num(V::F(code, k, 0)),
                    IND => match (vals.konst(x), vals.list[x as usize]) {
                        (Some(c), _) if alter => {
                            vals.num(V::F(LD | ABS | (code & 0x18), k.wrapping_add(c), 0))
                        }
                        // opt_peep's "tcp[k]" rewrite: `ld #c; add x; tax; ld [x+k]` becomes
                        // `ld [x+(k+c)]`, which also changes what a wrapping index loads.
                        (None, V::F(ALU_ADD_X, p, q)) if alter && vals.konst(p).is_some() => {
                            let c = vals.konst(p).unwrap_or(0);
                            vals.num(V::F(code, k.wrapping_add(c), q))
                        }
                        _ => vals.num(V::F(code, k, x)),
                    },
                    MSH => vals.num(V::F(code, k, 0)),
                    _ => 0,
                };
                if code & 0x07 == LD {
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
                let op = code & 0xf0;
                if op == NEG {
                    a = match vals.konst(a) {
                        Some(c) if alter => vals.k(c.wrapping_neg()),
                        _ => vals.num(V::F(code, a, 0)),
                    };
                    continue;
                }
                // An operation on X with a known X is one on a constant.
                let (kform, operand) = if code & X != 0 {
                    match vals.konst(x) {
                        // An X that libpcap only learns is constant in its next pass (`and x`
                        // with X = 0 above) is still unknown to it here: `0 % (y & 0)` takes
                        // the zero-accumulator rule below, not a modulus by zero.
                        Some(_) if known_only_later.contains(&x) => (false, 0),
                        Some(c) if alter => {
                            // libpcap rewrites `op x` to `op #c` and checks the shift then.
                            let a_unknown_to_libpcap =
                                vals.konst(a).is_none() || known_only_later.contains(&a);
                            if matches!(op, LSH | RSH) && c > 31 && a_unknown_to_libpcap {
                                return Err(CompileError::invalid("shift by more than 31 bits"));
                            }
                            (true, c)
                        }
                        _ => (false, 0),
                    }
                } else {
                    (true, k)
                };
                if kform {
                    if alter {
                        if operand == 0 {
                            match op {
                                ADD | LSH | RSH | OR | XOR => continue,
                                MUL | AND => {
                                    let x_form = code & X != 0;
                                    a = vals.k(0);
                                    if x_form {
                                        known_only_later.insert(a);
                                    }
                                    continue;
                                }
                                DIV => return Err(CompileError::invalid("division by zero")),
                                MOD => return Err(CompileError::invalid("modulus by zero")),
                                _ => {}
                            }
                        }
                        if let Some(c) = vals.konst(a) {
                            a = vals.k(fold(op, c, operand)?);
                            continue;
                        }
                    }
                    let kv = vals.k(operand);
                    a = vals.num(V::F(ALU | op | K, a, kv));
                } else {
                    if alter && vals.konst(a) == Some(0) {
                        match op {
                            ADD | OR | XOR => {
                                a = x;
                                continue;
                            }
                            MUL | DIV | MOD | AND | LSH | RSH => {
                                a = vals.k(0);
                                continue;
                            }
                            _ => {}
                        }
                    }
                    a = vals.num(V::F(code, a, x));
                }
            }
            MISC => {
                if code & 0xf8 == TAX {
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

/// A block of the graph; returns are blocks too (`jt`/`jf` unused), as in libpcap.
#[derive(Debug, Clone)]
struct Block {
    stmts: Vec<Instruction>,
    code: u16,
    k: u32,
    jt: usize,
    jf: usize,
    // Per-pass analysis.
    aval: Val,
    xval: Val,
    oval: Val,
    level: usize,
}

impl Block {
    fn is_ret(&self) -> bool {
        self.code & 0x07 == RET
    }
}

struct Graph {
    blocks: Vec<Block>,
    root: usize,
    /// Scratch words carrying state between blocks (live-mode VLAN offsets): a block that
    /// writes one is never skipped (libpcap's `use_conflict`).
    protected: Vec<u32>,
}

const ACCEPT: usize = 0;
const REJECT: usize = 1;

impl Graph {
    /// The protected scratch words block `b` writes, as a bit mask.
    fn protected_writes(&self, b: usize) -> u16 {
        let mut m = 0u16;
        for s in &self.blocks[b].stmts {
            if (s.code == ST || s.code == STX) && self.protected.contains(&s.k) {
                m |= 1 << s.k;
            }
        }
        m
    }

    /// The protected scratch words block `b` reads before writing them, as a bit mask.
    fn protected_reads(&self, b: usize) -> u16 {
        let (mut reads, mut written) = (0u16, 0u16);
        for s in &self.blocks[b].stmts {
            let bit = 1u16.checked_shl(s.k).unwrap_or(0);
            if (s.code == LD | MEM || s.code == LDX | MEM) && self.protected.contains(&s.k) {
                reads |= bit & !written;
            }
            if (s.code == ST || s.code == STX) && self.protected.contains(&s.k) {
                written |= bit;
            }
        }
        reads
    }

    fn writes_protected(&self, b: usize) -> bool {
        self.blocks[b]
            .stmts
            .iter()
            .any(|s| (s.code == ST || s.code == STX) && self.protected.contains(&s.k))
    }

    fn add(&mut self, stmts: Vec<Instruction>, code: u16, k: u32, jt: usize, jf: usize) -> usize {
        self.blocks.push(Block {
            stmts,
            code,
            k,
            jt,
            jf,
            aval: 0,
            xval: 0,
            oval: 0,
            level: 0,
        });
        self.blocks.len() - 1
    }

    /// gencode's blocks: one per test, wired by `and`/`or`/`not` (no sharing, no merging).
    ///
    /// Recurses only into right operands (whose depth the parser bounds); the left spine of
    /// `a or b or c ...`, as long as the expression has terms, is walked in a loop.
    fn build(&mut self, mut node: &Node, mut t: usize, mut f: usize) -> usize {
        loop {
            match node {
                Node::Const(true) => return t,
                Node::Const(false) => return f,
                Node::Not(a) => {
                    std::mem::swap(&mut t, &mut f);
                    node = a;
                }
                Node::And(a, b) => {
                    t = self.build(b, t, f);
                    node = a;
                }
                Node::Or(a, b) => {
                    f = self.build(b, t, f);
                    node = a;
                }
                Node::Test { stmts, code, k } => {
                    return self.add(stmts.clone(), *code, *k, t, f);
                }
            }
        }
    }

    /// `number_blks_r`: ids in depth-first order from the root (true branch first).
    fn numbering(&self) -> Vec<usize> {
        let mut order = Vec::new();
        let mut seen = vec![false; self.blocks.len()];
        let mut stack = vec![self.root];
        while let Some(b) = stack.pop() {
            if seen[b] {
                continue;
            }
            seen[b] = true;
            order.push(b);
            if !self.blocks[b].is_ret() {
                stack.push(self.blocks[b].jf);
                stack.push(self.blocks[b].jt);
            }
        }
        order
    }

    /// `find_levels`: reachable blocks by level, each level's list in libpcap's order.
    fn levels(&mut self) -> Vec<Vec<usize>> {
        let mut levels: Vec<Vec<usize>> = Vec::new();
        let mut seen = vec![false; self.blocks.len()];
        // Iterative post-order: (block, children done).
        let mut stack = vec![(self.root, false)];
        while let Some((b, done)) = stack.pop() {
            if done {
                let level = if self.blocks[b].is_ret() {
                    0
                } else {
                    let (jt, jf) = (self.blocks[b].jt, self.blocks[b].jf);
                    self.blocks[jt].level.max(self.blocks[jf].level) + 1
                };
                self.blocks[b].level = level;
                if levels.len() <= level {
                    levels.resize(level + 1, Vec::new());
                }
                // Prepended to the level's list.
                levels[level].insert(0, b);
                continue;
            }
            if seen[b] {
                continue;
            }
            seen[b] = true;
            stack.push((b, true));
            if !self.blocks[b].is_ret() {
                let (jt, jf) = (self.blocks[b].jt, self.blocks[b].jf);
                if !seen[jf] {
                    stack.push((jf, false));
                }
                if !seen[jt] {
                    stack.push((jt, false));
                }
            }
        }
        levels
    }
}

struct Bits {
    words: usize,
    data: Vec<u64>,
}

impl Bits {
    fn new(rows: usize, cols: usize, fill: bool) -> Self {
        let words = cols.div_ceil(64).max(1);
        Bits {
            words,
            data: vec![if fill { u64::MAX } else { 0 }; rows * words],
        }
    }
    fn row(&self, r: usize) -> &[u64] {
        &self.data[r * self.words..(r + 1) * self.words]
    }
    fn clear_row(&mut self, r: usize) {
        let w = self.words;
        self.data[r * w..(r + 1) * w].fill(0);
    }
    fn set(&mut self, r: usize, c: usize) {
        self.data[r * self.words + c / 64] |= 1 << (c % 64);
    }
    fn get(&self, r: usize, c: usize) -> bool {
        self.data[r * self.words + c / 64] & (1 << (c % 64)) != 0
    }
    fn intersect_into(&mut self, dst: usize, src_row: &[u64]) {
        let w = self.words;
        for (d, s) in self.data[dst * w..(dst + 1) * w].iter_mut().zip(src_row) {
            *d &= s;
        }
    }
}

/// State of one optimisation pass.
struct Pass<'a> {
    g: &'a mut Graph,
    vals: Values,
    /// Block index -> libpcap block id.
    id: Vec<usize>,
    /// libpcap block id -> block index.
    by_id: Vec<usize>,
    /// Per block: protected words some successor reads before writing (`out_use`).
    out_use: Vec<u16>,
    changed: bool,
}

impl Pass<'_> {
    /// `opt_blk` + `opt_peep` for one block.
    fn opt_blk(&mut self, b: usize, alter: bool) -> R<()> {
        if self.g.blocks[b].is_ret() {
            return Ok(());
        }
        let (aval, xval) = execute(&mut self.vals, &self.g.blocks[b].stmts, alter)?;
        let vals = &mut self.vals;
        let blk = &mut self.g.blocks[b];
        blk.aval = aval;
        blk.xval = xval;
        let mut changed = false;
        if blk.code == JMP | JEQ | K
            && let Some(last) = blk.stmts.last().copied()
        {
            if last.code == ALU | SUB | X {
                if let Some(c) = vals.konst(xval) {
                    blk.k = blk.k.wrapping_add(c);
                    blk.stmts.pop();
                    changed = true;
                } else if blk.k == 0 {
                    blk.stmts.pop();
                    blk.code = JMP | JEQ | X;
                    changed = true;
                }
            } else if last.code == ALU | SUB | K {
                blk.stmts.pop();
                blk.k = blk.k.wrapping_add(last.k);
                changed = true;
            } else if last.code == ALU | AND | K && blk.k == 0 {
                blk.k = last.k;
                blk.code = JMP | JSET | K;
                blk.stmts.pop();
                std::mem::swap(&mut blk.jt, &mut blk.jf);
                changed = true;
            }
        }
        if blk.code == JMP | JSET | K {
            if blk.k == 0 && blk.jt != blk.jf {
                blk.jt = blk.jf;
                changed = true;
            }
            if blk.k == u32::MAX && blk.jf != blk.jt {
                blk.jf = blk.jt;
                changed = true;
            }
        }
        if blk.code & X != 0
            && let Some(c) = vals.konst(xval)
        {
            blk.code &= !X;
            blk.k = c;
        }
        if blk.code & X == 0
            && let Some(v) = vals.konst(aval)
        {
            let r = match blk.code & 0xf0 {
                JEQ => v == blk.k,
                JGT => v > blk.k,
                JGE => v >= blk.k,
                JSET => v & blk.k != 0,
                _ => false,
            };
            if blk.jt != blk.jf {
                changed = true;
            }
            if r {
                blk.jf = blk.jt;
            } else {
                blk.jt = blk.jf;
            }
        }
        blk.oval = if blk.code & X == 0 {
            vals.k(blk.k)
        } else {
            xval
        };
        self.changed |= changed;
        Ok(())
    }

    /// `fold_edge`: what `child` does when reached over the edge leaving `pred` with `sense`.
    fn fold_edge(&self, child: usize, pred: usize, sense: bool) -> Option<usize> {
        let c = &self.g.blocks[child];
        let p = &self.g.blocks[pred];
        if c.code != p.code || c.aval != p.aval {
            return None;
        }
        if c.oval == p.oval {
            return Some(if sense { c.jt } else { c.jf });
        }
        if sense && p.code == JMP | JEQ | K {
            return Some(c.jf);
        }
        None
    }

    /// libpcap's `use_conflict` for moving an edge past blocks that wrote `skipped`: the
    /// new target's successors must not read a word those blocks changed.
    fn use_conflict(&self, skipped: u16, target: usize) -> bool {
        skipped & self.out_use[target] != 0
    }

    /// `opt_j` for the edge leaving block `b` on `sense`.
    fn opt_j(&mut self, b: usize, sense: bool, edom: &Bits, n: usize) {
        let edge_id = if sense { self.id[b] } else { n + self.id[b] };
        let mut succ = if sense {
            self.g.blocks[b].jt
        } else {
            self.g.blocks[b].jf
        };
        if self.g.blocks[succ].is_ret() {
            return;
        }
        if self.g.blocks[succ].jt == self.g.blocks[succ].jf {
            let target = self.g.blocks[succ].jt;
            if !self.use_conflict(self.g.protected_writes(succ), target) {
                succ = target;
                self.changed = true;
            }
        }
        let mut guard = 0;
        'top: loop {
            guard += 1;
            if guard > 100_000 || self.g.blocks[succ].is_ret() {
                break;
            }
            // The dominating edges in ascending order, a word at a time: they are few (one
            // path's), so skipping empty words makes this loop cheap on big programs.
            let dominators = edom.row(edge_id).iter().enumerate().flat_map(|(w, &word)| {
                std::iter::successors((word != 0).then_some(word), |x| {
                    let rest = x & (x - 1);
                    (rest != 0).then_some(rest)
                })
                .map(move |x| w * 64 + x.trailing_zeros() as usize)
            });
            for d in dominators.take_while(|&d| d < 2 * n) {
                let (pred, dsense) = if d < n {
                    (self.by_id[d], true)
                } else {
                    (self.by_id[d - n], false)
                };
                if self.g.blocks[pred].is_ret() {
                    continue;
                }
                if let Some(target) = self.fold_edge(succ, pred, dsense)
                    && !self.use_conflict(self.g.protected_writes(succ), target)
                {
                    self.changed = true;
                    succ = target;
                    if !self.g.blocks[target].is_ret() {
                        continue 'top;
                    }
                    break 'top;
                }
            }
            break;
        }
        let blk = &mut self.g.blocks[b];
        if sense {
            blk.jt = succ;
        } else {
            blk.jf = succ;
        }
    }

    /// In-edges of every block, in libpcap's list order: `(pred, sense)`.
    fn in_edges(&self, levels: &[Vec<usize>]) -> Vec<Vec<(usize, bool)>> {
        let mut ins: Vec<Vec<(usize, bool)>> = vec![Vec::new(); self.g.blocks.len()];
        for level in levels.iter().skip(1).rev() {
            for &b in level {
                let (jt, jf) = (self.g.blocks[b].jt, self.g.blocks[b].jf);
                ins[jt].insert(0, (b, true));
                ins[jf].insert(0, (b, false));
            }
        }
        ins
    }

    /// `or_pullup` (`and_pullup` with `and` set): moves a test on the value the
    /// predecessors tested up the chain of alternatives.
    fn pullup(&mut self, b: usize, ins: &[(usize, bool)], dom: &Bits, and: bool) {
        let Some(&(first_pred, first_sense)) = ins.first() else {
            return;
        };
        let val = self.g.blocks[first_pred].aval;
        if ins.iter().any(|(p, _)| self.g.blocks[*p].aval != val) {
            return;
        }
        // The exit that stays fixed along the chain, and the one the chain follows.
        let fixed = |g: &Graph, x: usize| if and { g.blocks[x].jf } else { g.blocks[x].jt };
        let next = |g: &Graph, x: usize| if and { g.blocks[x].jt } else { g.blocks[x].jf };
        // A slot is (block, follows-the-chain exit?) or the first in-edge at the top.
        #[derive(Clone, Copy)]
        enum Slot {
            Top,
            In(usize),
        }
        let get = |g: &Graph, s: Slot| match s {
            Slot::Top => b,
            Slot::In(x) => next(g, x),
        };
        let _ = (first_sense,);
        let mut diffp = Slot::Top;
        let mut at_top = true;
        loop {
            let d = get(self.g, diffp);
            if self.g.blocks[d].is_ret() {
                return;
            }
            if fixed(self.g, d) != fixed(self.g, b) {
                return;
            }
            if !dom.get(self.id[d], self.id[b]) {
                return;
            }
            if self.g.blocks[d].aval != val {
                break;
            }
            diffp = Slot::In(d);
            at_top = false;
        }
        let diff = get(self.g, diffp);
        let mut samep = diff;
        let pull = loop {
            let s = next(self.g, samep);
            if self.g.blocks[s].is_ret() {
                return;
            }
            if fixed(self.g, s) != fixed(self.g, b) {
                return;
            }
            if !dom.get(self.id[s], self.id[b]) {
                return;
            }
            if self.g.blocks[s].aval == val {
                break s;
            }
            samep = s;
        };
        // Unlink `pull` from after `samep`, put it in front of `diff`.
        let after = next(self.g, pull);
        let set_next = |g: &mut Graph, x: usize, to: usize| {
            if and {
                g.blocks[x].jt = to;
            } else {
                g.blocks[x].jf = to;
            }
        };
        set_next(self.g, samep, after);
        set_next(self.g, pull, diff);
        if at_top {
            for &(p, sense) in ins {
                if sense {
                    if self.g.blocks[p].jt == b {
                        self.g.blocks[p].jt = pull;
                    }
                } else if self.g.blocks[p].jf == b {
                    self.g.blocks[p].jf = pull;
                }
            }
        } else if let Slot::In(x) = diffp {
            set_next(self.g, x, pull);
        }
        self.changed = true;
    }
}

/// One `opt_loop` pass; returns whether anything changed.
fn pass(g: &mut Graph, alter: bool, ids: &[usize]) -> R<bool> {
    let levels = g.levels();
    let nb = g.blocks.len();
    let mut id = vec![usize::MAX; nb];
    for (i, &b) in ids.iter().enumerate() {
        id[b] = i;
    }
    let n = ids.len();
    // out_use of the protected words, leaves first.
    let mut use_in = vec![0u16; nb];
    let mut out_use = vec![0u16; nb];
    for level in &levels {
        for &b in level {
            if g.blocks[b].is_ret() {
                continue;
            }
            let (jt, jf) = (g.blocks[b].jt, g.blocks[b].jf);
            out_use[b] = use_in[jt] | use_in[jf];
            use_in[b] = g.protected_reads(b) | (out_use[b] & !g.protected_writes(b));
        }
    }
    let mut p = Pass {
        g,
        vals: Values::new(),
        id,
        by_id: ids.to_vec(),
        out_use,
        changed: false,
    };
    // Dominators (find_dom) and edge dominators (find_edom), on the graph as it is now.
    let mut dom = Bits::new(n, n, true);
    let mut edom = Bits::new(2 * n, 2 * n, true);
    let root = p.g.root;
    dom.clear_row(p.id[root]);
    edom.clear_row(p.id[root]);
    edom.clear_row(n + p.id[root]);
    for level in levels.iter().rev() {
        for &b in level {
            let bid = p.id[b];
            dom.set(bid, bid);
            if p.g.blocks[b].is_ret() {
                continue;
            }
            let row = dom.row(bid).to_vec();
            let (jt, jf) = (p.g.blocks[b].jt, p.g.blocks[b].jf);
            dom.intersect_into(p.id[jt], &row);
            dom.intersect_into(p.id[jf], &row);
        }
    }
    for level in levels.iter().rev() {
        for &b in level {
            let bid = p.id[b];
            for (e, succ) in [(bid, p.g.blocks[b].jt), (n + bid, p.g.blocks[b].jf)] {
                edom.set(e, e);
                if p.g.blocks[b].is_ret() {
                    continue;
                }
                let row = edom.row(e).to_vec();
                let sid = p.id[succ];
                edom.intersect_into(sid, &row);
                edom.intersect_into(n + sid, &row);
            }
        }
    }
    for level in levels.iter().rev() {
        for &b in level {
            p.opt_blk(b, alter)?;
        }
    }
    if alter {
        return Ok(p.changed);
    }
    for level in levels.iter().skip(1) {
        for &b in level {
            p.opt_j(b, true, &edom, n);
            p.opt_j(b, false, &edom, n);
        }
    }
    let ins = p.in_edges(&levels);
    for level in levels.iter().skip(1) {
        for &b in level {
            p.pullup(b, &ins[b], &dom, false);
            p.pullup(b, &ins[b], &dom, true);
        }
    }
    Ok(p.changed)
}

/// Regenerates code leaving value `v` in A, with scratch words from `temps`.
fn gen_value(
    vals: &Values,
    v: Val,
    temps: &mut Vec<u32>,
    out: &mut Vec<Instruction>,
) -> Option<()> {
    let s = |code, k| Instruction::new(code, 0, 0, k);
    match vals.list[v as usize] {
        V::Const(c) => out.push(s(LD | IMM, c)),
        V::F(code, k, x) => match code & 0x07 {
            LD | LDX => match code & 0xe0 {
                ABS | LEN => out.push(s(code, k)),
                MSH => {
                    out.push(s(code, k));
                    out.push(s(MISC | TXA, 0));
                }
                IND => {
                    match vals.list[x as usize] {
                        V::F(c, kk, 0) if c == LDX | MSH | B => out.push(s(c, kk)),
                        V::Const(c) => out.push(s(LDX | IMM, c)),
                        _ => {
                            if x == 0 {
                                return None;
                            }
                            gen_value(vals, x, temps, out)?;
                            out.push(s(MISC | TAX, 0));
                        }
                    }
                    out.push(s(code, k));
                }
                _ => return None,
            },
            ALU if code & 0xf0 == NEG => {
                gen_value(vals, k, temps, out)?;
                out.push(s(code, 0));
            }
            ALU => {
                if k == 0 || x == 0 {
                    return None;
                }
                match vals.list[x as usize] {
                    V::Const(c) => {
                        gen_value(vals, k, temps, out)?;
                        out.push(s(ALU | (code & 0xf0) | K, c));
                    }
                    _ => {
                        let t = temps.pop()?;
                        gen_value(vals, x, temps, out)?;
                        out.push(s(ST, t));
                        gen_value(vals, k, temps, out)?;
                        out.push(s(LDX | MEM, t));
                        out.push(s(ALU | (code & 0xf0) | X, 0));
                        temps.push(t);
                    }
                }
            }
            _ => return None,
        },
    }
    Some(())
}

/// A block's code for the final program: regenerated from its values (dropping dead
/// loads, as libpcap's dead-store pass does), or as it is when it has side effects.
fn lower(g: &Graph, vals: &mut Values, b: usize) -> R<(Vec<Instruction>, u16, u32)> {
    let blk = &g.blocks[b];
    if g.writes_protected(b) {
        return Ok((blk.stmts.clone(), blk.code, blk.k));
    }
    let (a, x) = execute(vals, &blk.stmts, true)?;
    let mut temps: Vec<u32> = (0..MEMWORDS as u32)
        .filter(|r| !g.protected.contains(r))
        .collect();
    let mut out = Vec::new();
    let (mut code, mut k) = (blk.code, blk.k);
    if code & X != 0
        && let Some(c) = vals.konst(x)
    {
        code &= !X;
        k = c;
    }
    let ok = if code & X != 0 {
        temps.pop().and_then(|t| {
            if x == 0 {
                return None;
            }
            gen_value(vals, x, &mut temps, &mut out)?;
            out.push(Instruction::new(ST, 0, 0, t));
            gen_value(vals, a, &mut temps, &mut out)?;
            out.push(Instruction::new(LDX | MEM, 0, 0, t));
            Some(())
        })
    } else if a == 0 {
        None
    } else {
        gen_value(vals, a, &mut temps, &mut out)
    };
    Ok(match ok {
        Some(()) => (out, code, k),
        None => (blk.stmts.clone(), blk.code, blk.k),
    })
}

/// The blocks reachable from the root, each after all its successors (a post-order). The
/// false side is placed first from the end, so the true side follows its test directly, as
/// in libpcap's listings.
fn postorder(g: &Graph) -> Vec<usize> {
    let mut post: Vec<usize> = Vec::new();
    let mut seen = vec![false; g.blocks.len()];
    let mut stack = vec![(g.root, false)];
    while let Some((b, done)) = stack.pop() {
        if done {
            post.push(b);
            continue;
        }
        if seen[b] {
            continue;
        }
        seen[b] = true;
        stack.push((b, true));
        if !g.blocks[b].is_ret() {
            stack.push((g.blocks[b].jt, false));
            stack.push((g.blocks[b].jf, false));
        }
    }
    post
}

/// The program of the block graph as built, without any pass (libpcap's `icode_to_fcode`
/// when it does not optimise): every block's statements as generated, laid out as the
/// optimised program is.
fn emit_unoptimized(g: &Graph, prologue: &[Instruction]) -> Result<Vec<Instruction>, CompileError> {
    lay_out(g, &postorder(g), prologue, |b| {
        let blk = &g.blocks[b];
        Ok((blk.stmts.clone(), blk.code, blk.k))
    })
}

/// Flattens the blocks of `post` (a post-order: each block after all its successors) back
/// to front into a program: a return is its instruction; any other block is the
/// statements, test code and constant `block(b)` gives, with long jumps (over 255
/// instructions) routed through `ja`; then a jump to the root if it is not first, and the
/// prologue.
fn lay_out<E>(
    g: &Graph,
    post: &[usize],
    prologue: &[Instruction],
    mut block: impl FnMut(usize) -> Result<(Vec<Instruction>, u16, u32), E>,
) -> Result<Vec<Instruction>, E> {
    let mut rev: Vec<Instruction> = Vec::new();
    let mut at: HashMap<usize, usize> = HashMap::new();
    let push = |rev: &mut Vec<Instruction>, i: Instruction| {
        rev.push(i);
        rev.len() - 1
    };
    let dist = |rev: &Vec<Instruction>, target: usize| (rev.len() - target - 1) as u32;
    for &b in post {
        let blk = &g.blocks[b];
        if blk.is_ret() {
            let p = push(&mut rev, Instruction::new(blk.code, 0, 0, blk.k));
            at.insert(b, p);
            continue;
        }
        let (stmts, code, k) = block(b)?;
        let (mut t, mut f) = (at[&blk.jt], at[&blk.jf]);
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
        for st in stmts.iter().rev() {
            entry = push(&mut rev, *st);
        }
        at.insert(b, entry);
    }
    let entry = at[&g.root];
    if entry != rev.len() - 1 {
        let d = (rev.len() - entry - 1) as u32;
        push(&mut rev, Instruction::new(JMP | JA, 0, 0, d));
    }
    for st in prologue.iter().rev() {
        push(&mut rev, *st);
    }
    rev.reverse();
    Ok(rev)
}

/// Optimises the tree as libpcap would and flattens it into a program.
pub(crate) fn compile_tree(
    root: &Node,
    prologue: &[Instruction],
    protected: Vec<u32>,
    snaplen: u32,
    optimize: bool,
) -> R<Vec<Instruction>> {
    let mut g = Graph {
        blocks: Vec::new(),
        root: 0,
        protected,
    };
    g.add(Vec::new(), RET | K, snaplen, 0, 0);
    g.add(Vec::new(), RET | K, 0, 0, 0);
    g.root = g.build(root, ACCEPT, REJECT);
    if !optimize {
        return emit_unoptimized(&g, prologue);
    }
    if g.blocks[g.root].is_ret() {
        // A constant expression: nothing to optimise.
        if g.root == REJECT {
            return Err(CompileError::invalid("expression rejects all packets"));
        }
    } else {
        let ids = g.numbering();
        let mut guard = 0;
        while pass(&mut g, false, &ids)? {
            guard += 1;
            if guard > 200 {
                break;
            }
        }
        guard = 0;
        while pass(&mut g, true, &ids)? {
            guard += 1;
            if guard > 200 {
                break;
            }
        }
    }
    // intern_blocks: merge blocks that would emit the same code with the same exits.
    let mut vals = Values::new();
    let mut lowered: HashMap<usize, (Vec<Instruction>, u16, u32)> = HashMap::new();
    loop {
        let order = g.numbering();
        let mut seen: HashMap<(Vec<Instruction>, u16, u32, usize, usize), usize> = HashMap::new();
        let mut link: HashMap<usize, usize> = HashMap::new();
        for &b in order.iter().rev() {
            if g.blocks[b].is_ret() {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = lowered.entry(b) {
                e.insert(lower(&g, &mut vals, b)?);
            }
            let (s, c, k) = lowered[&b].clone();
            let key = (s, c, k, g.blocks[b].jt, g.blocks[b].jf);
            match seen.get(&key) {
                Some(&other) => {
                    link.insert(b, other);
                }
                None => {
                    seen.insert(key, b);
                }
            }
        }
        if link.is_empty() {
            break;
        }
        for b in 0..g.blocks.len() {
            if let Some(&t) = link.get(&g.blocks[b].jt) {
                g.blocks[b].jt = t;
            }
            if let Some(&t) = link.get(&g.blocks[b].jf) {
                g.blocks[b].jf = t;
            }
        }
        if let Some(&t) = link.get(&g.root) {
            g.root = t;
        }
    }
    // opt_root: skip a root whose exits meet, keeping its statements in front.
    let mut root_stmts = match lowered.get(&g.root) {
        Some(l) => l.0.clone(),
        None => Vec::new(),
    };
    let mut root = g.root;
    while !g.blocks[root].is_ret() && g.blocks[root].jt == g.blocks[root].jf {
        root = g.blocks[root].jt;
    }
    if root == REJECT {
        return Err(CompileError::invalid("expression rejects all packets"));
    }
    // A return runs no statements; an unskipped root already has its own.
    if g.blocks[root].is_ret() || root == g.root {
        root_stmts.clear();
    }
    g.root = root;
    // Flatten back to front: returns, then every block after all its successors.
    let post = postorder(&g);
    // Redundant loads (libpcap's opt_blk special case): a block whose code only computes
    // the value every predecessor already left in A needs no code. The loads it would
    // repeat succeeded on every path to it, so no verdict changes.
    let mut a_out: HashMap<usize, Val> = HashMap::new();
    let mut preds: HashMap<usize, Vec<usize>> = HashMap::new();
    for &b in &post {
        if g.blocks[b].is_ret() {
            continue;
        }
        let stmts = match lowered.get(&b) {
            Some(l) => l.0.clone(),
            None => lower(&g, &mut vals, b)?.0,
        };
        let (a, _) = execute(&mut vals, &stmts, true)?;
        a_out.insert(b, a);
        for t in [g.blocks[b].jt, g.blocks[b].jf] {
            let list = preds.entry(t).or_default();
            if !list.contains(&b) {
                list.push(b);
            }
        }
    }
    let redundant = |b: usize, code: u16| -> bool {
        if b == g.root || code & X != 0 || g.writes_protected(b) {
            return false;
        }
        let mine = a_out.get(&b).copied().unwrap_or(0);
        mine != 0
            && preds
                .get(&b)
                .is_some_and(|ps| ps.iter().all(|p| a_out.get(p) == Some(&mine)))
    };
    lay_out(&g, &post, prologue, |b| {
        let (mut stmts, code, k) = match lowered.get(&b) {
            Some(l) => l.clone(),
            None => lower(&g, &mut vals, b)?,
        };
        if redundant(b, code) {
            stmts.clear();
        }
        if b == g.root && !root_stmts.is_empty() {
            let mut s = root_stmts.clone();
            s.append(&mut stmts);
            stmts = s;
        }
        Ok((stmts, code, k))
    })
}
