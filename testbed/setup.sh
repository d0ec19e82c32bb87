#!/usr/bin/env bash
# Installs what the demo, the tests and the benchmarks need on Debian 12, and nothing twice.
#
#   testbed/setup.sh               everything (what `make setup` runs)
#   testbed/setup.sh PART...       only these parts, in this order:
#       security        the bookworm-security suite in apt's sources (Debian's LLVM 22, which
#                       bpf-linker needs, is there only): present on installed Debian 12
#                       machines, added (same mirror and key as the bookworm stanza) where not
#       packages        the Debian packages named in testbed/programs.txt (apt-get update first
#                       when one is missing)
#       deb-src         a deb-src stanza for bookworm/main, so testbed/k8s/build.sh can fetch
#                       Kubernetes' source package (same mirror and key as the existing deb lines)
#       rust            rustfmt and clippy (rustup components), cargo-nextest, cargo-fuzz
#                       (CARGO_FUZZ_VERSION: the newest that builds with stable Rust 1.95)
#       ebpf            what snoopy-ebpf's build needs for its kernel programs: the rust-src
#                       component and bpf-linker 0.13.0 built against Debian's LLVM 22 (cargo
#                       install, ~2 min once; kept while that version is installed)
#       tansu           the Kafka-protocol broker the Kafka tests and bench-kafka start (tansu
#                       0.6.0, built once with cargo install into ~/.cache/snoopy, ~10 min)
#   testbed/setup.sh --system      security + packages + deb-src (no Rust needed: what
#                                  `make check-setup` runs inside a fresh Debian root)
#
# Every part prints one line: what it found present, or what it installs. Root is needed only
# when something must be installed (run as root, with or without sudo). Overrides: SNOOPY_CACHE
# (default ~/.cache/snoopy).
set -Eeuo pipefail
LOG_PREFIX=setup
# shellcheck source=testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SNOOPY_CACHE="${SNOOPY_CACHE:-$HOME/.cache/snoopy}"
TANSU_VERSION=0.6.0
# `make fuzz` (testbed/fuzz.sh); pinned so a new release cannot need a newer compiler.
CARGO_FUZZ_VERSION=0.13.2
TANSU="$SNOOPY_CACHE/tansu-$TANSU_VERSION/bin/tansu"
SRC_LIST=/etc/apt/sources.list.d/snoopy-deb-src.sources
SECURITY_LIST=/etc/apt/sources.list.d/snoopy-security.sources
# snoopy-ebpf's linker (pinned with aya 0.14: LLVM 22 is Rust 1.95's LLVM).
BPF_LINKER_VERSION=0.13.0
LLVM_PREFIX_22=/usr/lib/llvm-22
DEBIAN_SOURCES=/etc/apt/sources.list.d/debian.sources
# The source package testbed/k8s/build.sh builds (bookworm ships upstream 1.20.2 under this version).
K8S_SRC_UPSTREAM="${SNOOPY_K8S_SRC_UPSTREAM:-1.20.5+really1.20.2}"

say() { printf 'setup: %-16s %s\n' "$1" "$2" >&2; }
need_root() {
    [ "$(id -u)" -eq 0 ] ||
        die "$1 needs root: run 'sudo make setup' (or 'make setup' as root, where there is no sudo)"
}

# apt's own output goes to a log, shown only when it fails: one line per part otherwise.
APT_LOG="${TMPDIR:-/tmp}/snoopy-setup-apt.log"
quietly() {
    if ! "$@" >"$APT_LOG" 2>&1; then
        tail -n 25 "$APT_LOG" >&2
        return 1
    fi
}
apt_install() {
    apt_update
    quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
        die "apt-get install $* failed (the end of its output is above; all of it in $APT_LOG)"
}

apt_updated=0
apt_update() {
    [ "$apt_updated" = 1 ] && return 0
    quietly apt-get update ||
        die "apt-get update failed: check the entries in /etc/apt/sources.list.d/ (the end of its output is above)"
    apt_updated=1
}

# --- packages ------------------------------------------------------------------------------
part_packages() {
    local all missing=() p
    all="$(python3_or_die "$here/programs.py" packages)"
    for p in $all; do
        # dpkg-query fails for a package it has never heard of: that is "missing", not an error.
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        say packages "$(wc -w <<<"$all") Debian packages present"
        return 0
    fi
    need_root "installing ${missing[*]}"
    say packages "installing ${missing[*]}"
    local started=$SECONDS
    apt_install "${missing[@]}"
    say packages "installed ${#missing[@]} packages in $((SECONDS - started)) s"
}

# programs.py lists the packages; python3 itself is one of them, so the very first run on a
# machine without it installs it alone first.
python3_or_die() {
    if ! command -v python3 >/dev/null; then
        need_root "installing python3"
        say packages "installing python3 (to read testbed/programs.txt)"
        apt_install python3
    fi
    python3 "$@" || die "python3 $* failed"
}

# --- deb-src ---------------------------------------------------------------------------------
# The newest Debian version of the kubernetes source package with upstream K8S_SRC_UPSTREAM, or
# nothing. `apt-cache showsrc` exits 100 when there are no deb-src lines at all: that is
# "nothing", not a reason to stop (under pipefail it would end the script silently).
kubernetes_source_version() {
    { apt-cache showsrc kubernetes 2>/dev/null || true; } |
        awk -v up="$K8S_SRC_UPSTREAM" '/^Version: / && index($2, up "-") == 1 { print $2 }' |
        sort -V | tail -n 1
}

part_deb_src() {
    local version
    version="$(kubernetes_source_version)"
    if [ -n "$version" ]; then
        say deb-src "kubernetes $version source package available"
        return 0
    fi
    need_root "writing $SRC_LIST"
    [ -f "$DEBIAN_SOURCES" ] ||
        die "$DEBIAN_SOURCES not found: cannot tell which mirror serves Debian's source packages; add a deb-src line for bookworm main yourself"
    local uri signed
    # The first stanza whose Suites include plain "bookworm" (not -security/-updates).
    uri="$(bookworm_uri)"
    [ -n "$uri" ] || die "no bookworm stanza with URIs in $DEBIAN_SOURCES; add a deb-src line for bookworm main yourself"
    signed="$(awk '/^Signed-By:/ { print $2; exit }' "$DEBIAN_SOURCES")"
    {
        echo "# Written by snoopy testbed/setup.sh: testbed/k8s/build.sh builds Kubernetes from Debian's source package."
        echo "Types: deb-src"
        echo "URIs: $uri"
        echo "Suites: bookworm"
        echo "Components: main"
        if [ -n "$signed" ]; then echo "Signed-By: $signed"; fi
    } >"$SRC_LIST"
    apt_updated=0
    apt_update
    version="$(kubernetes_source_version)"
    [ -n "$version" ] ||
        die "wrote $SRC_LIST, but no source package kubernetes $K8S_SRC_UPSTREAM-* is offered ('apt-cache showsrc kubernetes' lists: $({ apt-cache showsrc kubernetes 2>/dev/null || true; } | awk '/^Version:/ { printf "%s ", $2 }'))"
    say deb-src "added $SRC_LIST (kubernetes $version source package)"
}

# --- security --------------------------------------------------------------------------------
# Whether any apt source (one-line or deb822) names the bookworm-security suite.
has_security_suite() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        grep -Eq '^[^#]*[[:space:]]bookworm-security([[:space:]]|$)' "$f" && return 0
    done
    return 1
}

part_security() {
    if has_security_suite; then
        say security "bookworm-security suite present in apt's sources"
        return 0
    fi
    need_root "writing $SECURITY_LIST"
    [ -f "$DEBIAN_SOURCES" ] ||
        die "$DEBIAN_SOURCES not found and no bookworm-security suite in apt's sources: add it yourself (Debian's LLVM 22 comes from it)"
    local uri signed
    uri="$(bookworm_uri)"
    [ -n "$uri" ] || die "no bookworm stanza with URIs in $DEBIAN_SOURCES; add the bookworm-security suite yourself"
    # Debian's mirrors keep the security archive beside the main one: …/debian -> …/debian-security.
    case "${uri%/}" in
    */debian) uri="${uri%/}-security" ;;
    *) die "cannot tell the security mirror from $uri (not …/debian): add the bookworm-security suite to apt's sources yourself" ;;
    esac
    signed="$(awk '/^Signed-By:/ { print $2; exit }' "$DEBIAN_SOURCES")"
    {
        echo "# Written by snoopy testbed/setup.sh: Debian's LLVM 22 (bpf-linker, snoopy-ebpf) is in bookworm-security."
        echo "Types: deb"
        echo "URIs: $uri"
        echo "Suites: bookworm-security"
        echo "Components: main"
        if [ -n "$signed" ]; then echo "Signed-By: $signed"; fi
    } >"$SECURITY_LIST"
    apt_updated=0
    apt_update
    say security "added $SECURITY_LIST ($uri bookworm-security)"
}

# The URI of the first stanza of debian.sources whose Suites include plain "bookworm".
bookworm_uri() {
    awk '
        BEGIN { RS = ""; FS = "\n" }
        {
            u = ""; ok = 0
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
                if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) ok = 1
            }
            if (ok && u != "") { print u; exit }
        }' "$DEBIAN_SOURCES"
}

# --- eBPF build tools ----------------------------------------------------------------------
bpf_linker_ok() {
    local bin
    bin="$(command -v bpf-linker 2>/dev/null)" || return 1
    [ "$(bpf-linker --version 2>/dev/null)" = "bpf-linker $BPF_LINKER_VERSION" ] || return 1
    # Built against LLVM 22 (Rust 1.95's): another LLVM links programs the toolchain cannot read.
    ldd "$bin" 2>/dev/null | grep -q 'libLLVM\.so\.22'
}

part_ebpf() {
    if ! command -v rustup >/dev/null || ! command -v cargo >/dev/null; then
        die "Rust is missing: install it with rustup (the README's prerequisite), then run this again"
    fi
    local added=() installed
    installed="$(rustup component list --installed 2>/dev/null || true)"
    if ! grep -q '^rust-src' <<<"$installed"; then
        rustup component add rust-src >&2 || die "rustup component add rust-src failed"
        added+=(rust-src)
    fi
    if ! bpf_linker_ok; then
        if [ ! -x "$LLVM_PREFIX_22/bin/llvm-config" ]; then
            need_root "installing llvm-22-dev"
            say ebpf "installing llvm-22-dev (bpf-linker links against it)"
            apt_install llvm-22-dev
        fi
        say ebpf "building bpf-linker $BPF_LINKER_VERSION against LLVM 22 (cargo install --locked, ~2 min once)"
        PATH="$LLVM_PREFIX_22/bin:$PATH" LLVM_PREFIX="$LLVM_PREFIX_22" \
            cargo install bpf-linker --locked --version "$BPF_LINKER_VERSION" --no-default-features --features llvm-22 >&2 ||
            die "cargo install bpf-linker --version $BPF_LINKER_VERSION --features llvm-22 failed (the error is above; it needs llvm-22-dev)"
        bpf_linker_ok || die "bpf-linker $BPF_LINKER_VERSION was installed but '$(command -v bpf-linker || echo bpf-linker)' is not it (another one earlier on the PATH?)"
        added+=("bpf-linker $BPF_LINKER_VERSION")
    fi
    if [ "${#added[@]}" -gt 0 ]; then
        say ebpf "added ${added[*]}"
    else
        say ebpf "rust-src, bpf-linker $BPF_LINKER_VERSION (LLVM 22) present"
    fi
}

# --- Rust ----------------------------------------------------------------------------------
part_rust() {
    if ! command -v rustup >/dev/null || ! command -v cargo >/dev/null; then
        die "Rust is missing: install it with rustup (the README's prerequisite), then run this again"
    fi
    local installed added=() c
    installed="$(rustup component list --installed 2>/dev/null || true)"
    for c in rustfmt clippy; do
        grep -q "^$c" <<<"$installed" && continue
        rustup component add "$c" >&2 || die "rustup component add $c failed"
        added+=("$c")
    done
    if ! cargo nextest --version >/dev/null 2>&1; then
        say rust "installing cargo-nextest (cargo install --locked)"
        cargo install cargo-nextest --locked >&2 || die "cargo install cargo-nextest --locked failed"
        added+=(cargo-nextest)
    fi
    if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
        say rust "installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install --locked, ~3 min)"
        cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" >&2 ||
            die "cargo install cargo-fuzz --locked --version $CARGO_FUZZ_VERSION failed (the error is above)"
        added+=("cargo-fuzz $CARGO_FUZZ_VERSION")
    fi
    if [ "${#added[@]}" -gt 0 ]; then
        say rust "added ${added[*]}"
    else
        say rust "rustfmt, clippy, cargo-nextest, cargo-fuzz $CARGO_FUZZ_VERSION present"
    fi
}

part_tansu() {
    if [ -x "$TANSU" ]; then
        say tansu "tansu $TANSU_VERSION present ($TANSU)"
        return 0
    fi
    command -v cargo >/dev/null || die "cargo is needed to build tansu: install Rust first"
    say tansu "building tansu $TANSU_VERSION into $(dirname "$(dirname "$TANSU")") (about 10 minutes on 2 cores, once)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore --root "$(dirname "$(dirname "$TANSU")")" >&2 ||
        die "cargo install tansu --version $TANSU_VERSION failed (the error is above)"
}

main() {
    local parts=("$@")
    if [ "${#parts[@]}" -eq 0 ]; then
        parts=(security packages deb-src rust ebpf tansu)
    elif [ "${parts[0]}" = --system ]; then
        parts=(security packages deb-src)
    fi
    local part
    for part in "${parts[@]}"; do
        case "$part" in
        security) part_security ;;
        packages) part_packages ;;
        deb-src) part_deb_src ;;
        rust) part_rust ;;
        ebpf) part_ebpf ;;
        tansu) part_tansu ;;
        *) die "unknown part '$part' (parts: security packages deb-src rust ebpf tansu, or --system)" ;;
        esac
    done
}

main "$@"
