//! Pathological expressions get a clear error, fast, and never overflow the stack. Each
//! case compiles on a thread with a 256 KiB stack (a tokio worker has 2 MiB; before the
//! limits, 1,500 nested parentheses overflowed that and 20,000 `not ` aborted podtracer).
//! A stack overflow aborts this whole test binary, so a regression cannot pass silently.

use std::time::{Duration, Instant};

use snoopy_filter::{
    BPF_MAXINSNS, CompileError, ErrorKind, LinkType, MAX_EXPRESSION_LEN, MAX_NESTING_DEPTH,
    MAX_UNOPTIMIZED_INSNS, Mode, Program, compile,
};

const SMALL_STACK: usize = 256 * 1024;

/// Generous for a debug build on a busy 2-core machine; the rejections take milliseconds.
const FAST: Duration = Duration::from_secs(5);

/// Compiles `expr` (both dialects) on a thread with a 256 KiB stack; the file-mode result
/// and the longer of the two times.
fn on_small_stack(expr: String) -> (Result<Program, CompileError>, Duration) {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let start = Instant::now();
            let live = compile(&expr, LinkType::Ethernet, Mode::Live, 262_144);
            let file = compile(&expr, LinkType::Ethernet, Mode::File, 262_144);
            assert_eq!(
                live.as_ref().err().map(|e| e.kind),
                file.as_ref().err().map(|e| e.kind),
                "both dialects meet the same limits"
            );
            (file, start.elapsed())
        })
        .expect("spawn")
        .join()
        .expect("compile panicked")
}

fn refused(expr: String, kind: ErrorKind, names: &str) -> CompileError {
    let len = expr.len();
    let (r, took) = on_small_stack(expr);
    let e = r.expect_err("must be refused");
    assert_eq!(e.kind, kind, "{len}-byte expression: {e}");
    assert!(
        e.message.contains(names),
        "the message names the limit: {e}"
    );
    assert!(took < FAST, "refused in {took:?}");
    e
}

fn tcp() -> Program {
    compile("tcp", LinkType::Ethernet, Mode::File, 262_144).unwrap()
}

#[test]
fn twenty_thousand_nots_are_too_long_and_fifteen_thousand_too_deep() {
    // 80 KB: over the length limit before anything is parsed.
    let e = refused(
        format!("{}tcp", "not ".repeat(20_000)),
        ErrorKind::TooLong,
        "65536",
    );
    assert!(e.message.contains("80003 bytes"), "{e}");
    // 60 KB: within the length limit, over the depth limit at the 201st `not`.
    let e = refused(
        format!("{}tcp", "not ".repeat(15_000)),
        ErrorKind::TooDeep,
        &MAX_NESTING_DEPTH.to_string(),
    );
    assert_eq!(e.column, Some(4 * MAX_NESTING_DEPTH + 1), "{e}");
}

#[test]
fn five_thousand_nested_parentheses_are_too_deep() {
    let n = 5_000;
    let e = refused(
        format!("{}tcp{}", "(".repeat(n), ")".repeat(n)),
        ErrorKind::TooDeep,
        "200 levels",
    );
    // The caret points at the first parenthesis past the limit.
    assert_eq!(e.column, Some(MAX_NESTING_DEPTH + 1), "{e}");
    // Deep arithmetic and address lists meet the same limit.
    refused(
        format!("{}1{} = 1", "(".repeat(n), ")".repeat(n)),
        ErrorKind::TooDeep,
        "200 levels",
    );
    refused(
        format!("ip[0] = {}1", "-".repeat(n)),
        ErrorKind::TooDeep,
        "200 levels",
    );
    refused(
        format!("host {}10.0.0.1{}", "(".repeat(n), ")".repeat(n)),
        ErrorKind::TooDeep,
        "200 levels",
    );
}

#[test]
fn nesting_up_to_the_limit_compiles_on_a_small_stack() {
    let d = MAX_NESTING_DEPTH;
    let (r, _) = on_small_stack(format!("{}tcp{}", "(".repeat(d), ")".repeat(d)));
    assert_eq!(r.unwrap(), tcp());
    // An even number of `not`s is the expression itself.
    let (r, _) = on_small_stack(format!("{}tcp", "not ".repeat(d)));
    assert_eq!(r.unwrap(), tcp());
    let (r, _) = on_small_stack(format!("{}tcp{}", "(".repeat(d + 1), ")".repeat(d + 1)));
    assert_eq!(r.unwrap_err().kind, ErrorKind::TooDeep);
}

#[test]
fn a_hundred_kilobyte_expression_is_too_long() {
    let mut expr = String::from("tcp");
    while expr.len() < 100_000 {
        expr.push_str(" or tcp");
    }
    refused(expr, ErrorKind::TooLong, "64 KiB");
    // The limit itself is allowed: 64 KiB of blanks around `tcp` compiles.
    let padded = format!("tcp{}", " ".repeat(MAX_EXPRESSION_LEN - 3));
    let (r, took) = on_small_stack(padded);
    assert_eq!(r.unwrap(), tcp());
    assert!(took < FAST, "{took:?}");
}

#[test]
fn an_or_of_two_thousand_ports_is_refused_before_the_optimiser() {
    // 12 s in a release build before this limit, for a program the kernel would refuse.
    let expr = (1..=2_000)
        .map(|p| format!("tcp port {p}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let e = refused(
        expr,
        ErrorKind::TooComplex,
        &MAX_UNOPTIMIZED_INSNS.to_string(),
    );
    assert!(e.message.contains("before optimisation"), "{e}");
}

#[test]
fn a_program_over_the_kernels_limit_is_refused() {
    // Arithmetic the optimiser cannot shrink: ~9,000 instructions before and after.
    let sum = (0..1_000)
        .map(|i| format!("ether[{i}]"))
        .collect::<Vec<_>>()
        .join(" + ");
    let e = refused(
        format!("{sum} = 1"),
        ErrorKind::TooManyInstructions,
        "BPF_MAXINSNS",
    );
    assert!(e.message.contains(&BPF_MAXINSNS.to_string()), "{e}");
    // A long program within the limit still compiles (and keeps its length).
    let sum = (0..400)
        .map(|i| format!("ether[{i}]"))
        .collect::<Vec<_>>()
        .join(" + ");
    let (r, _) = on_small_stack(format!("{sum} = 1"));
    let p = r.unwrap();
    assert!(p.instructions.len() > 1_000 && p.instructions.len() <= BPF_MAXINSNS);
}

#[test]
fn long_flat_expressions_do_not_recurse_per_term() {
    // 7,000 terms in one `or` chain: a tree as deep as it is long, built, counted, turned
    // into blocks and dropped without recursion along the chain.
    let expr = (0..7_000)
        .map(|i| format!("len={}", i % 7))
        .collect::<Vec<_>>()
        .join(" or ");
    assert!(expr.len() <= MAX_EXPRESSION_LEN);
    let (r, took) = on_small_stack(expr);
    let e = r.unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooComplex, "{e}");
    assert!(took < FAST, "{took:?}");
    // A shorter chain compiles (the optimiser merges the repeated tests).
    let expr = (0..1_500)
        .map(|i| format!("len={}", i % 7))
        .collect::<Vec<_>>()
        .join(" or ");
    let (r, _) = on_small_stack(expr);
    assert!(r.unwrap().instructions.len() < 20);
}
