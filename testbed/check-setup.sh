#!/usr/bin/env bash
# Proves that testbed/setup.sh installs everything on a machine with no history: builds a clean
# Debian 12 root with debootstrap (minbase: the essential packages and apt, nothing else, no
# deb-src lines, no bookworm-security suite), runs `setup.sh --system` inside it (chroot), then checks that every deb:
# program of testbed/programs.txt exists there. The list itself is checked against the code by
# `testbed/programs.py check` (make lint), so a new program call cannot slip past both.
#
#   testbed/check-setup.sh        (root) ~5 min with a warm apt cache; the root is removed after
#
# KEEP=1 keeps the root (SNOOPY_CHECK_ROOT, default /var/tmp/snoopy-check-setup) for a look.
set -Eeuo pipefail
LOG_PREFIX=check-setup
# shellcheck source=testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/.."

ROOT="${SNOOPY_CHECK_ROOT:-/var/tmp/snoopy-check-setup}"
SOURCES=/etc/apt/sources.list.d/debian.sources


[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mounts): sudo make check-setup"
command -v debootstrap >/dev/null || testbed/setup.sh security packages
command -v debootstrap >/dev/null || die "debootstrap is missing after testbed/setup.sh security packages"
[ -f "$SOURCES" ] || die "$SOURCES not found: the chroot uses the same mirror as this machine"

# The mirror (no host name is written here: it is read from this machine's apt sources).
mirror="$(awk '/^URIs:/ { print $2; exit }' "$SOURCES")"
[ -n "$mirror" ] || die "no URIs: line in $SOURCES"

mounted=()
cleanup() {
    local m
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        m="${mounted[$i]}"
        umount -l "$m" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" != 1 ]; then
        rm -rf --one-file-system "$ROOT"
        rm -f "$ROOT.debootstrap.log"
    fi
}
trap cleanup EXIT
# A signal ends the script through `exit`, so the EXIT trap still unmounts (bash skips it otherwise).
trap 'exit 143' TERM
trap 'exit 130' INT

# A root left by an interrupted run may hold mounts: undo them before deleting it.
if [ -d "$ROOT" ]; then
    for m in "$ROOT/var/cache/apt/archives" "$ROOT/work" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"; do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$ROOT"
fi
mkdir -p "$ROOT"
started=$SECONDS

# Packages downloaded once are kept beside the root's parent, so a rerun is quick (apt's own
# archive cache of this machine is not reused: the root must not see this machine's state).
archives="${ROOT}.debs"
mkdir -p "$archives"
log "debootstrap --variant=minbase bookworm $ROOT"
debootstrap --variant=minbase --cache-dir="$archives" bookworm "$ROOT" "$mirror" >"$ROOT.debootstrap.log" 2>&1 ||
    {
        tail -n 20 "$ROOT.debootstrap.log" >&2
        die "debootstrap failed (log: $ROOT.debootstrap.log)"
    }

# Same apt sources as this machine (deb lines only: the root has no deb-src until setup.sh adds
# it), less any bookworm-security stanza: a machine set up from debootstrap lacks that suite, and
# setup.sh must add it itself (Debian's LLVM 22 for bpf-linker is only there).
rm -f "$ROOT/etc/apt/sources.list"
awk 'BEGIN { RS = ""; ORS = "\n\n" } !/(^|\n)Suites:[^\n]*[ \t]bookworm-security([ \t\n]|$)/' "$SOURCES" \
    >"$ROOT/etc/apt/sources.list.d/debian.sources"
! grep -q bookworm-security "$ROOT/etc/apt/sources.list.d/debian.sources" ||
    die "could not leave bookworm-security out of the fresh root's sources"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The root's apt keeps its downloads in the shared archive dir too.
mkdir -p "$ROOT/var/cache/apt/archives"
for d in proc sys dev; do
    mount --bind "/$d" "$ROOT/$d"
    mounted+=("$ROOT/$d")
done
# The repository, read-only, at /work.
mkdir -p "$ROOT/work"
mount --bind "$PWD" "$ROOT/work"
mount -o remount,bind,ro "$ROOT/work"
mounted+=("$ROOT/work")
mount --bind "$archives" "$ROOT/var/cache/apt/archives"
mounted+=("$ROOT/var/cache/apt/archives")

[ ! -e "$ROOT/etc/apt/sources.list.d/snoopy-deb-src.sources" ] || die "the fresh root already has a deb-src file"
[ ! -e "$ROOT/etc/apt/sources.list.d/snoopy-security.sources" ] || die "the fresh root already has a security file"
log "running testbed/setup.sh --system in the fresh root"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /bin/bash /work/testbed/setup.sh --system ||
    die "testbed/setup.sh --system failed in a fresh Debian 12 root (its output is above)"

# Every deb: program must now be there. (Programs built from Kubernetes' source, and the Rust
# toolchain, are the README's prerequisite and testbed/k8s/build.sh's output: not checked here.)
missing=()
checked=0
while read -r program source; do
    checked=$((checked + 1))
    # argv, no interpolation: the name is passed to `command -v` as $1 (of the inner shell).
    # shellcheck disable=SC2016
    chroot "$ROOT" /bin/sh -c 'command -v "$1" >/dev/null' sh "$program" || missing+=("$program ($source)")
done < <(python3 testbed/programs.py list deb)
[ "${#missing[@]}" -eq 0 ] || die "after setup.sh --system, missing in the fresh root: ${missing[*]}"

# A second run must find everything present and install nothing.
second="$(chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /bin/bash /work/testbed/setup.sh --system 2>&1)" ||
    die "a second testbed/setup.sh --system failed: $second"
grep -q "installing\|added" <<<"$second" && die "a second setup.sh --system installed again (not idempotent): $second"

log "ok: in a fresh Debian 12 root, setup.sh --system installed every one of the $checked Debian programs the demo, the tests and the benchmarks call, and a second run changed nothing ($((SECONDS - started)) s)"
