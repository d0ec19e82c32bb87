#!/usr/bin/env bash
# Builds Kubernetes 1.20.2 (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kubectl) from Debian's source package, once, into a cache outside the repository.
#
#   testbed/k8s/build.sh     prints the bin directory on stdout (last line); progress on stderr
#
# Idempotent: when all five binaries are in the cache it does nothing else (no apt, no Go).
# No registry ships kube-apiserver and nothing can be pulled here, so the source package is
# the only way to a real control plane (shared/TESTBED.md section 3).
#
# Overrides: SNOOPY_CACHE (default ~/.cache/snoopy), SNOOPY_K8S_SRC_UPSTREAM (the Debian
# upstream version to fetch, default 1.20.5+really1.20.2).
set -Eeuo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=testbed/k8s/lib.sh
. "$here/lib.sh"

# Bookworm's package is upstream 1.20.2 under a "1.20.5+really1.20.2" version; the Debian
# revision changes with security updates (-1.1+deb12u1 ...), the upstream tree does not, so the
# newest revision of that upstream version is fetched and the cache stays keyed by 1.20.2.
SRC_UPSTREAM="${SNOOPY_K8S_SRC_UPSTREAM:-1.20.5+really$K8S_VERSION}"
SRC_VERSION=""
BUILD_DIR="$K8S_CACHE/build"
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kubectl"

have_all() {
    local b
    for b in $K8S_BINARIES; do
        [ -x "$K8S_BIN/$b" ] || return 1
    done
}

# The newest available Debian version of the source package with upstream SRC_UPSTREAM, or
# nothing. `apt-cache showsrc` exits 100 when there are no deb-src lines at all; that must
# read as "nothing" (under pipefail it used to end this script silently, exit status 100).
source_version() {
    { apt-cache showsrc kubernetes 2>/dev/null || true; } |
        awk -v up="$SRC_UPSTREAM" '/^Version: / && index($2, up "-") == 1 { print $2 }' |
        sort -V | tail -n 1
}

# The deb-src stanza is testbed/setup.sh's (it writes it once, with the mirror apt already uses).
ensure_deb_src() {
    SRC_VERSION="$(source_version)"
    [ -z "$SRC_VERSION" ] || return 0
    SNOOPY_K8S_SRC_UPSTREAM="$SRC_UPSTREAM" "$here/../setup.sh" deb-src ||
        die "testbed/setup.sh deb-src failed: Kubernetes' source package cannot be fetched (the reason is above)"
    SRC_VERSION="$(source_version)"
    [ -n "$SRC_VERSION" ] || die "no source package kubernetes $SRC_UPSTREAM-* after testbed/setup.sh deb-src"
}

# apt's output goes to a log, shown (its end) only when it fails.
APT_LOG="$K8S_CACHE/apt.log"
quietly() {
    mkdir -p "$K8S_CACHE"
    if ! "$@" >"$APT_LOG" 2>&1; then
        tail -n 25 "$APT_LOG" >&2
        return 1
    fi
}
apt_install() {
    quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
        die "apt-get install $* failed (the end of its output is above; all of it in $APT_LOG)"
}

# Unpacks the source once; the unpacked tree is reused by a rebuild after a failed build.
fetch_source() {
    local tree="$BUILD_DIR/kubernetes-$SRC_UPSTREAM"
    if [ -f "$tree/.snoopy-unpacked" ]; then
        echo "$tree"
        return 0
    fi
    command -v dpkg-source >/dev/null || apt_install dpkg-dev
    rm -rf "$BUILD_DIR"
    mkdir -p "$BUILD_DIR"
    log "apt-get source kubernetes=$SRC_VERSION into $BUILD_DIR"
    (cd "$BUILD_DIR" && quietly apt-get source "kubernetes=$SRC_VERSION") ||
        die "apt-get source kubernetes=$SRC_VERSION failed (the end of its output is above; all of it in $APT_LOG)"
    [ -d "$tree" ] || die "apt-get source did not unpack $tree (found: $(ls "$BUILD_DIR"))"
    touch "$tree/.snoopy-unpacked"
    echo "$tree"
}

# The vendored reflect2 1.0.1 crashes the apiserver under Go >= 1.18 ("fatal error: fault" in
# mapiterinit) the first time a custom resource is created; Debian's 1.0.2 is the fix.
patch_reflect2() {
    local tree="$1" dst="$1/vendor/github.com/modern-go/reflect2" f n=0
    [ -d "$REFLECT2_SRC" ] || apt_install golang-github-modern-go-reflect2-dev
    [ -d "$dst" ] || die "$dst missing: is $tree a kubernetes 1.20 tree?"
    # Replace, not overlay: 1.0.1 has files 1.0.2 dropped (go_above_17.go, go_below_19.go…)
    # that would redeclare functions next to 1.0.2's.
    find "$dst" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
    for f in "$REFLECT2_SRC"/*.go "$REFLECT2_SRC"/*.s; do
        [ -e "$f" ] || continue
        case "$f" in *_test.go) continue ;; esac
        cp "$f" "$dst/"
        n=$((n + 1))
    done
    [ "$n" -gt 0 ] || die "no reflect2 sources in $REFLECT2_SRC"
    log "patched vendored reflect2 with $n files from golang-github-modern-go-reflect2-dev"
}

build() {
    local tree="$1" out
    mkdir -p "$tree/.go/src/k8s.io"
    ln -sfn "$tree" "$tree/.go/src/k8s.io/kubernetes"
    log "building $WHAT (several minutes on 2 cores; log: $BUILD_DIR/make.log)"
    local start=$SECONDS
    # As debian/rules does: a private GOPATH with the tree linked in, no cgo, and the version
    # stamped in (else the binaries report v0.0.0 and kubectl/kubelet warn about skew).
    if ! (
        cd "$tree/.go/src/k8s.io/kubernetes" &&
            env GOPATH="$tree/.go" CGO_ENABLED=0 GO111MODULE=off GOFLAGS= \
                KUBE_GIT_VERSION="v$K8S_VERSION" KUBE_GIT_TREE_STATE=clean \
                nice make WHAT="$WHAT"
    ) >"$BUILD_DIR/make.log" 2>&1; then
        tail -n 30 "$BUILD_DIR/make.log" >&2
        die "make WHAT=\"$WHAT\" failed (full log: $BUILD_DIR/make.log)"
    fi
    log "built in $((SECONDS - start)) s"
    out="$tree/_output/bin"
    [ -d "$out" ] || out="$tree/_output/local/bin/linux/$(go env GOARCH)"
    # Into a temporary dir, then renamed: a half-copied cache never passes have_all.
    local tmp="$K8S_CACHE/bin.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    local b
    for b in $K8S_BINARIES; do
        [ -x "$out/$b" ] || die "make finished but $out/$b is missing"
        cp "$out/$b" "$tmp/$b"
    done
    rm -rf "$K8S_BIN"
    mv "$tmp" "$K8S_BIN"
}

main() {
    if have_all; then
        log "Kubernetes $K8S_VERSION binaries cached in $K8S_BIN"
        echo "$K8S_BIN"
        return 0
    fi
    require_root
    mkdir -p "$K8S_CACHE"
    # Two builds at once would double the 1.4 GB peak and race on the tree.
    exec 8>"$K8S_CACHE/.build.lock"
    flock 8
    if have_all; then
        echo "$K8S_BIN"
        return 0
    fi
    ensure_deb_src
    log "apt-get build-dep kubernetes=$SRC_VERSION"
    quietly env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q "kubernetes=$SRC_VERSION" ||
        die "apt-get build-dep kubernetes=$SRC_VERSION failed (the end of its output is above; all of it in $APT_LOG)"
    local tree
    tree="$(fetch_source)"
    patch_reflect2 "$tree"
    build "$tree"
    log "Kubernetes $K8S_VERSION binaries in $K8S_BIN (the build tree $BUILD_DIR can be deleted; it speeds up a rebuild)"
    echo "$K8S_BIN"
}

main "$@"
