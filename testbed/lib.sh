# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared settings and helpers of the containerd testbed scripts. Sourced, not run.
#
# Every path, name and address the testbed owns is set here, once, so that `up` and `down`
# can never disagree about what to create and what to remove. Each may be overridden from the
# environment (for example to run a second testbed beside the first), but the defaults are what
# the tests and the demo use.

SNOOPY_TESTBED_DIR="${SNOOPY_TESTBED_DIR:-/var/lib/snoopy-testbed}"
SNOOPY_TESTBED_RUN="${SNOOPY_TESTBED_RUN:-/run/snoopy-testbed}"
SNOOPY_TESTBED_BRIDGE="${SNOOPY_TESTBED_BRIDGE:-snoopycri0}"
# A private /24 that exists only on the testbed bridge: pods get addresses here and have
# no route anywhere else.
SNOOPY_TESTBED_SUBNET="${SNOOPY_TESTBED_SUBNET:-10.213.77.0/24}"
SNOOPY_TESTBED_NETWORK="${SNOOPY_TESTBED_NETWORK:-snoopy-testbed}"
SNOOPY_IMAGE_CACHE="${SNOOPY_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/snoopy/images}"

CTD_ROOT="$SNOOPY_TESTBED_DIR/root"
CTD_STATE="$SNOOPY_TESTBED_RUN/state"
CTD_SOCK="$SNOOPY_TESTBED_RUN/containerd.sock"
CTD_CONFIG="$SNOOPY_TESTBED_DIR/config.toml"
CTD_CNI_DIR="$SNOOPY_TESTBED_DIR/cni"
CTD_PIDFILE="$SNOOPY_TESTBED_RUN/containerd.pid"
CTD_LOG="$SNOOPY_TESTBED_DIR/containerd.log"
IP_FORWARD_SAVED="$SNOOPY_TESTBED_DIR/ip_forward.orig"

# Full references: `ctr images import` renames short tags to `import-<date>:tag`.
PAUSE_IMAGE="localhost/snoopy/pause:1"
BUSYBOX_IMAGE="localhost/snoopy/busybox:1"
# A TLS-terminating sidecar for the tests: busybox plus Debian's socat and a self-signed
# certificate (the pod-view test puts it in front of a plain HTTP app on 127.0.0.1).
TLS_PROXY_IMAGE="localhost/snoopy/tls-proxy:1"


# --- what every testbed script shares ---------------------------------------------------
# Messages start with LOG_PREFIX (a script sets it before sourcing this; default: its name).
log() { printf '%s: %s\n' "${LOG_PREFIX:-${0##*/}}" "$*" >&2; }
die() {
    printf '%s: %s: %s\n' "${LOG_PREFIX:-${0##*/}}" "${LOG_ERROR_WORD:-error}" "$*" >&2
    exit 1
}

# Copies an executable and every shared library it loads to the same paths under ROOTFS.
# Arguments: ROOTFS SOURCE DEST (DEST: the path inside the image)
copy_with_libs() {
    local rootfs="$1" src="$2" dst="$3" lib
    mkdir -p "$rootfs$(dirname "$dst")"
    cp -L "$src" "$rootfs$dst"
    # Debug info is for the build machine, not the image (a debug operator is ~250 MB with it).
    strip --strip-debug "$rootfs$dst" 2>/dev/null || true
    chmod 755 "$rootfs$dst"
    # ldd lines: "libx.so => /path (0x…)", or "/lib64/ld-linux-x86-64.so.2 (0x…)" for the loader;
    # "statically linked" / "not a dynamic executable" yields nothing to copy.
    for lib in $( (ldd "$src" 2>/dev/null || true) | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        [ -e "$rootfs$lib" ] && continue
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
    done
}

require_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (${ROOT_REASON:-it starts containerd, creates a bridge and network namespaces})"
}

# The ERR trap of every script (they run with set -Eeuo pipefail): a command that ends a
# script names itself, no silent exit. In functions too (-E); only in the main shell, not in
# $( ), where a failure may be expected and handled; not for a deliberate `return N`/`exit N`.
report_failure() {
    local status=$1 line=$2 command=$3
    [ "$BASH_SUBSHELL" = 0 ] || return 0
    case "$command" in return* | exit*) return 0 ;; esac
    echo "${0##*/}: failed (exit status $status) at line $line: $command" >&2
}
trap 'report_failure $? $LINENO "$BASH_COMMAND"' ERR

# Installs the Debian packages the testbed needs, but only when one is missing, so that `up`
# on a prepared machine never touches apt.
ensure_packages() {
    local missing=()
    command -v containerd >/dev/null || missing+=(containerd)
    command -v runc >/dev/null || missing+=(runc)
    [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
        missing+=(containernetworking-plugins)
    [ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || missing+=(busybox-static)
    command -v umoci >/dev/null || missing+=(umoci)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
            {
                apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
            } || die "apt-get install ${missing[*]} failed"
    fi
}

# Prints the PID of our containerd if it runs, else nothing. The PID file alone is not
# trusted: the PID must still be a containerd started with our config.
containerd_pid() {
    [ -f "$CTD_PIDFILE" ] || return 0
    local pid
    pid="$(cat "$CTD_PIDFILE")"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
    local cmd
    cmd="$( (tr '\0' ' ' <"/proc/$pid/cmdline") 2>/dev/null)" || return 0
    case "$cmd" in
    *"--config $CTD_CONFIG"*) echo "$pid" ;;
    esac
}

# True when the socket answers containerd's own API.
containerd_answers() {
    [ -S "$CTD_SOCK" ] && timeout 5 ctr --address "$CTD_SOCK" version >/dev/null 2>&1
}

# PIDs of the runc shims serving our containerd: their command line names our socket.
our_shims() {
    local d cmd
    for d in /proc/[0-9]*; do
        # The process may be gone already: read errors are expected, not worth a message.
        cmd="$( (tr '\0' ' ' <"$d/cmdline") 2>/dev/null)" || continue
        case "$cmd" in
        *containerd-shim*"-address $CTD_SOCK "*) echo "${d#/proc/}" ;;
        esac
    done
}

# All descendants of a PID, from one snapshot of the process table.
descendants() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2; pids[NR] = $1 }
        END {
            for (i = 1; i <= NR; i++) {
                p = pids[i]; q = parent[p]
                while (q != "" && q != 0 && q != root) q = parent[q]
                if (q == root) print p
            }
        }'
}
