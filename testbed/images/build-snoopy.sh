#!/usr/bin/env bash
# Builds the podtracer and snoopy-operator images from local binaries with umoci (no registry,
# no Docker) and imports them into the testbed containerd, where the kubelet finds them.
#
#   testbed/images/build-snoopy.sh PODTRACER_BIN [OPERATOR_BIN [DASHBOARD_BIN]]
#
# Images (full references: `ctr images import` renames short ones):
#   localhost/snoopy/podtracer:latest        podtracer as the entrypoint, plus the tools
#                                            `podtracer exec` runs "as the pod": iperf3, ip, ss
#                                            (iproute2) and busybox (sh, ping, nc, …)
#   localhost/snoopy/snoopy-operator:latest  the operator, user 65532 (and snoopy-dashboard, when
#                                            given: same user, same libraries, one image less)
# Override with SNOOPY_PODTRACER_IMAGE / SNOOPY_OPERATOR_IMAGE.
#
# Each binary is copied with the shared libraries `ldd` lists (the dynamic loader included), so
# a binary built on this machine runs unchanged in the image. Archives are cached under
# ~/.cache/snoopy/images/snoopy, keyed by the inputs' checksums; the testbed containerd must be
# up (testbed/containerd.sh up). Prints the imported references.
set -Eeuo pipefail
LOG_PREFIX=testbed

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=testbed/lib.sh
. "$here/../lib.sh"

PODTRACER_IMAGE="${SNOOPY_PODTRACER_IMAGE:-localhost/snoopy/podtracer:latest}"
OPERATOR_IMAGE="${SNOOPY_OPERATOR_IMAGE:-localhost/snoopy/snoopy-operator:latest}"
# Bump when the recipe changes, so cached archives are rebuilt.
RECIPE=3
# Host tools the podtracer image carries for `podtracer exec` (Debian: iperf3, iproute2).
EXEC_TOOLS="iperf3 ip ss"

usage() {
    echo "usage: $0 PODTRACER_BIN [OPERATOR_BIN [DASHBOARD_BIN]]" >&2
    exit 2
}

base_rootfs() {
    local rootfs="$1" applet
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc" \
        "$rootfs/usr/local/bin" "$rootfs/usr/sbin" "$rootfs/usr/bin"
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnonroot:x:65532:\nnobody:x:65534:\n' >"$rootfs/etc/group"
    # Service and protocol names for ss and iperf3 output.
    local f
    for f in /etc/services /etc/protocols; do
        if [ -f "$f" ]; then cp "$f" "$rootfs$f"; fi
    done
}

# Builds one image. Arguments: REF ARCHIVE ROOTFS-FILLER USER ENTRYPOINT...
build_image() {
    local ref="$1" out="$2" filler="$3" user="$4"
    shift 4
    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" RETURN
    local layout="$work/layout"
    umoci init --layout "$layout"
    umoci new --image "$layout:$ref"
    umoci unpack --image "$layout:$ref" "$work/bundle" >/dev/null
    base_rootfs "$work/bundle/rootfs"
    "$filler" "$work/bundle/rootfs"
    umoci repack --image "$layout:$ref" "$work/bundle"
    local config=(--config.env PATH=/usr/local/bin:/usr/sbin:/usr/bin:/bin --config.user "$user")
    local arg
    for arg in "$@"; do
        config+=(--config.entrypoint "$arg")
    done
    umoci config --image "$layout:$ref" "${config[@]}"
    umoci gc --layout "$layout"
    tar -C "$layout" -cf "$out.tmp" .
    mv "$out.tmp" "$out"
}

fill_podtracer() {
    local rootfs="$1" tool path
    copy_with_libs "$rootfs" "$PODTRACER_BIN" /usr/local/bin/podtracer
    for tool in $EXEC_TOOLS; do
        path="$(command -v "$tool")" || die "$tool is missing on this machine (apt-get install iperf3 iproute2)"
        # iproute2's ip/ss go to /usr/sbin, before busybox's /bin applets in PATH.
        copy_with_libs "$rootfs" "$path" "/usr/sbin/$tool"
    done
}

fill_operator() {
    copy_with_libs "$1" "$OPERATOR_BIN" /usr/local/bin/snoopy-operator
    if [ -n "$DASHBOARD_BIN" ]; then
        copy_with_libs "$1" "$DASHBOARD_BIN" /usr/local/bin/snoopy-dashboard
    fi
    # The in-cluster client trusts the ServiceAccount's ca.crt; a CA bundle is there for
    # clusters reached through a public endpoint.
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        mkdir -p "$1/etc/ssl/certs"
        cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/"
    fi
}

# The cache key: the recipe, the reference and the checksums of everything copied in.
inputs_key() {
    local f
    {
        echo "recipe $RECIPE $*"
        for f in "$@"; do
            sha256sum "$(readlink -f "$f")"
        done
    } | sha256sum | cut -c1-16
}

import() {
    local tar="$1" ref="$2"
    ctr --address "$CTD_SOCK" --namespace k8s.io images import "$tar" >/dev/null ||
        die "ctr images import $tar failed"
    local refs
    # Into a variable, not piped to grep -q: grep exiting early would fail the pipeline (pipefail).
    refs="$(ctr --address "$CTD_SOCK" --namespace k8s.io images list -q)"
    grep -qxF "$ref" <<<"$refs" || die "image $ref is not in containerd after importing $tar"
    log "imported $ref"
    echo "$ref"
}

main() {
    if [ "$#" -lt 1 ] || [ "$#" -gt 3 ]; then usage; fi
    require_root
    PODTRACER_BIN="$(readlink -f "$1")"
    [ -x "$PODTRACER_BIN" ] || die "$1 is not an executable (build it: cargo build --release -p podtracer)"
    OPERATOR_BIN=""
    if [ "$#" -ge 2 ]; then
        OPERATOR_BIN="$(readlink -f "$2")"
        [ -x "$OPERATOR_BIN" ] || die "$2 is not an executable (build it: cargo build --release -p snoopy-operator)"
    fi
    DASHBOARD_BIN=""
    if [ "$#" -eq 3 ]; then
        DASHBOARD_BIN="$(readlink -f "$3")"
        [ -x "$DASHBOARD_BIN" ] || die "$3 is not an executable (build it: cargo build --release -p snoopy-dashboard)"
    fi
    command -v umoci >/dev/null || die "umoci is missing: apt-get install umoci (or run testbed/containerd.sh up)"
    [ -x /bin/busybox ] || die "/bin/busybox is missing: apt-get install busybox-static"
    containerd_answers || die "the testbed containerd does not answer on $CTD_SOCK: run testbed/containerd.sh up"
    local dir="$SNOOPY_IMAGE_CACHE/snoopy" key tools=() tool t
    mkdir -p "$dir"
    for tool in $EXEC_TOOLS; do
        t="$(command -v "$tool")" || die "$tool is missing on this machine (apt-get install iperf3 iproute2)"
        tools+=("$t")
    done

    key="$(inputs_key "$PODTRACER_BIN" /bin/busybox "${tools[@]}")"
    local tar="$dir/podtracer-$key.tar"
    if [ ! -s "$tar" ]; then
        log "building $PODTRACER_IMAGE from $PODTRACER_BIN"
        build_image "$PODTRACER_IMAGE" "$tar" fill_podtracer 0:0 /usr/local/bin/podtracer
    fi
    import "$tar" "$PODTRACER_IMAGE"

    if [ -n "$OPERATOR_BIN" ]; then
        key="$(inputs_key "$OPERATOR_BIN" /bin/busybox ${DASHBOARD_BIN:+"$DASHBOARD_BIN"})"
        tar="$dir/operator-$key.tar"
        if [ ! -s "$tar" ]; then
            log "building $OPERATOR_IMAGE from $OPERATOR_BIN"
            build_image "$OPERATOR_IMAGE" "$tar" fill_operator 65532:65532 /usr/local/bin/snoopy-operator
        fi
        import "$tar" "$OPERATOR_IMAGE"
    fi
}

main "$@"
