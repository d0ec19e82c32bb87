#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (cargo-fuzz, libFuzzer with AddressSanitizer), each for a
# bounded time, and fails on the first crash, timeout or leak: what `make fuzz` runs.
#
#   testbed/fuzz.sh [TARGET...]      all targets (filter read decode flows) by default
#
# First every committed input (fuzz/corpus, fuzz/regressions) is replayed with plain
# `cargo test` on stable Rust; then the targets are built and each runs FUZZ_SECONDS
# (default 20), one at a time (libFuzzer uses one core). libFuzzer grows its corpus in
# FUZZ_WORK (default ~/.cache/snoopy/fuzz), seeded from fuzz/corpus, so later runs start
# where earlier ones stopped; only the seeds are committed. A crash leaves its input in
# FUZZ_WORK/artifacts/TARGET/ and the script prints how to replay it; a fixed crash's input
# goes to fuzz/regressions/TARGET/ with a test in the crate that had the bug.
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer, coverage instrumentation); this
# machine has stable Rust only, so RUSTC_BOOTSTRAP=1 is set for the fuzz build alone, here.
set -Eeuo pipefail
LOG_PREFIX=fuzz
# shellcheck source=testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${FUZZ_SECONDS:-20}"
work="${FUZZ_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/snoopy/fuzz}"
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(filter read decode flows)
case "$seconds" in
'' | *[!0-9]*) die "FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" ;;
esac

cargo fuzz --version >/dev/null 2>&1 ||
    die "cargo-fuzz is missing: run 'testbed/setup.sh rust' (it installs the pinned version)"

started=$SECONDS
log "replaying the committed inputs (cargo test, stable)"
cargo test --quiet --manifest-path "$root/fuzz/Cargo.toml" >&2 ||
    die "a committed fuzz input fails its checks (the test output is above)"

log "building the targets (release, AddressSanitizer)"
build_started=$SECONDS
(cd "$root" && RUSTC_BOOTSTRAP=1 cargo fuzz build --fuzz-dir fuzz --features libfuzzer 2>&1 |
    tail -n 3 >&2) || die "cargo fuzz build failed (run it by hand for the whole output)"
log "built in $((SECONDS - build_started)) s"

for target in "${targets[@]}"; do
    [ -d "$root/fuzz/corpus/$target" ] ||
        die "the seeds fuzz/corpus/$target are missing: write them with 'python3 fuzz/seeds.py' (as root) and commit them"
    corpus="$work/corpus/$target"
    artifacts="$work/artifacts/$target/"
    mkdir -p "$corpus" "$artifacts"
    log "$target: $seconds s"
    # -timeout: one input taking 10 s is a finding (a filter compiling for seconds);
    # -rss_limit_mb: so is a run growing past 2 GB. Both fail the run like a crash.
    if ! (cd "$root" && RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz --features libfuzzer \
        "$target" "$corpus" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts" -print_final_stats=1 >"$work/$target.log" 2>&1); then
        tail -n 40 "$work/$target.log" >&2
        die "$target found a failing input (above; saved in $artifacts); replay it with: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz --features libfuzzer $target $artifacts<file>"
    fi
    log "$target: $(grep -E '^stat::number_of_executed_units' "$work/$target.log" | awk '{ print $2 }') inputs, no failure"
done
log "done in $((SECONDS - started)) s"
