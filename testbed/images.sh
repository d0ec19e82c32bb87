#!/usr/bin/env bash
# Local busybox-based images for the testbed; nothing is ever pulled.
#
#   testbed/images.sh build    build the OCI archives (cached under ~/.cache/snoopy/images,
#                              keyed by the busybox version and this script's recipe version)
#   testbed/images.sh import   build if needed, then import them into the testbed containerd
#   testbed/images.sh paths    print the archive paths
#
# Images (full references, see lib.sh):
#   localhost/snoopy/pause:1    the sandbox ("pause") image: busybox `sleep` for ~68 years
#   localhost/snoopy/busybox:1  a pod image with every busybox applet (sh, ping, nc, ip, sleep…);
#                               its default command sleeps, so a pod just stays up.
#   localhost/snoopy/tls-proxy:1  busybox plus Debian's socat (with its libraries) and a
#                               self-signed certificate in /etc/tls/proxy.pem: a TLS sidecar.
set -Eeuo pipefail
LOG_PREFIX=testbed

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=testbed/lib.sh
. "$here/lib.sh"

# Bump when the recipe below changes, so cached archives are rebuilt.
RECIPE=1

busybox_version() {
    /bin/busybox 2>&1 | head -n1 | sed -n 's/^BusyBox v\([^ ]*\).*/\1/p'
}

cache_dir() {
    echo "$SNOOPY_IMAGE_CACHE/busybox-$(busybox_version)-r$RECIPE"
}

# build_one REF ARCHIVE EXTRA CMD...: an OCI layout holding one image whose only layer is
# /bin/busybox plus a symlink per applet (and whatever the function EXTRA adds to the root
# file system it is given; `-` for nothing), archived as a tar that `ctr images import` reads.
build_one() {
    local ref="$1" out="$2" extra="$3"
    shift 3
    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" RETURN
    local layout="$work/layout"
    umoci init --layout "$layout"
    umoci new --image "$layout:$ref"
    umoci unpack --image "$layout:$ref" "$work/bundle" >/dev/null
    local rootfs="$work/bundle/rootfs"
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/etc"
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnobody:x:65534:\n' >"$rootfs/etc/group"
    [ "$extra" = - ] || "$extra" "$rootfs"
    umoci repack --image "$layout:$ref" "$work/bundle"
    local config=(--config.env PATH=/bin)
    local arg
    for arg in "$@"; do
        config+=(--config.cmd "$arg")
    done
    umoci config --image "$layout:$ref" "${config[@]}"
    umoci gc --layout "$layout"
    tar -C "$layout" -cf "$out.tmp" .
    mv "$out.tmp" "$out"
}

# The TLS sidecar's additions: socat and a certificate made for this image (a test key: it
# guards nothing).
tls_proxy_files() {
    local rootfs="$1"
    copy_with_libs "$rootfs" "$(command -v socat)" /usr/bin/socat
    mkdir -p "$rootfs/etc/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 36500 -subj /CN=snoopy-tls-proxy \
        -keyout "$rootfs/etc/tls/key.pem" -out "$rootfs/etc/tls/cert.pem" 2>/dev/null ||
        die "openssl req (the TLS sidecar's certificate) failed"
    cat "$rootfs/etc/tls/key.pem" "$rootfs/etc/tls/cert.pem" >"$rootfs/etc/tls/proxy.pem"
    rm "$rootfs/etc/tls/key.pem"
}

# The TLS sidecar's archive name carries socat's version: a new socat means a new image.
tls_proxy_archive() {
    echo "$(cache_dir)/tls-proxy-socat-$(dpkg-query -W -f '${Version}' socat 2>/dev/null || echo none).tar"
}

cmd_build() {
    command -v umoci >/dev/null || die "umoci is missing: apt-get install umoci (or run testbed/containerd.sh up)"
    [ -x /bin/busybox ] || die "/bin/busybox is missing: apt-get install busybox-static"
    local dir
    dir="$(cache_dir)"
    mkdir -p "$dir"
    if [ ! -s "$dir/pause.tar" ]; then
        log "building $PAUSE_IMAGE"
        build_one "$PAUSE_IMAGE" "$dir/pause.tar" - /bin/sleep 2147483647
    fi
    if [ ! -s "$dir/busybox.tar" ]; then
        log "building $BUSYBOX_IMAGE"
        build_one "$BUSYBOX_IMAGE" "$dir/busybox.tar" - /bin/sleep 2147483647
    fi
    command -v socat >/dev/null || die "socat is missing: apt-get install socat (or run testbed/setup.sh)"
    if [ ! -s "$(tls_proxy_archive)" ]; then
        log "building $TLS_PROXY_IMAGE"
        build_one "$TLS_PROXY_IMAGE" "$(tls_proxy_archive)" tls_proxy_files /bin/sleep 2147483647
    fi
}

cmd_import() {
    cmd_build
    containerd_answers || die "the testbed containerd does not answer on $CTD_SOCK: run testbed/containerd.sh up"
    local dir tar
    dir="$(cache_dir)"
    for tar in "$dir/pause.tar" "$dir/busybox.tar" "$(tls_proxy_archive)"; do
        ctr --address "$CTD_SOCK" --namespace k8s.io images import "$tar" >/dev/null ||
            die "ctr images import $tar failed"
    done
    local ref refs
    refs="$(ctr --address "$CTD_SOCK" --namespace k8s.io images list -q)"
    for ref in "$PAUSE_IMAGE" "$BUSYBOX_IMAGE" "$TLS_PROXY_IMAGE"; do
        grep -qxF "$ref" <<<"$refs" ||
            die "image $ref is not in containerd after import"
    done
    log "images imported: $PAUSE_IMAGE $BUSYBOX_IMAGE $TLS_PROXY_IMAGE"
}

case "${1:-}" in
build) cmd_build ;;
import) cmd_import ;;
paths) echo "$(cache_dir)/pause.tar $(cache_dir)/busybox.tar $(tls_proxy_archive)" ;;
*)
    echo "usage: $0 build|import|paths" >&2
    exit 2
    ;;
esac
