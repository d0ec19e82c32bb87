//! Every committed input — the seed corpora (`fuzz/corpus/TARGET/`) and the inputs that
//! once crashed (`fuzz/regressions/TARGET/`) — through its target's checks, with plain
//! `cargo test` on stable Rust: a fixed bug that comes back fails here, fuzzer or not.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for dir in ["corpus", "regressions"] {
        let dir = root.join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            eprintln!("{}", path.display());
            check(&data);
            seen += 1;
        }
    }
    assert!(
        seen > 0,
        "no committed inputs for {target}: the seed corpus is missing"
    );
}

#[test]
fn filter() {
    replay("filter", snoopy_fuzz::filter);
}

#[test]
fn read() {
    replay("read", snoopy_fuzz::read);
}

#[test]
fn decode() {
    replay("decode", snoopy_fuzz::decode);
}

#[test]
fn flows() {
    replay("flows", snoopy_fuzz::flows);
}
