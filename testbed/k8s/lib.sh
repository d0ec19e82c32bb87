# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared settings and helpers of the Kubernetes testbed scripts (testbed/k8s/*.sh). Sourced.
#
# Every path, port and name the cluster owns is set here once, so `up` and `down` can never
# disagree about what to create and what to remove.

LOG_PREFIX="${LOG_PREFIX:-k8s}"
ROOT_REASON="${ROOT_REASON:-apt, etcd/apiserver state under /run, kubelet}"
# log, die, require_root and the ERR trap: the testbed's one lib.
# shellcheck source=testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

K8S_VERSION=1.20.2
K8S_CACHE="${SNOOPY_CACHE:-$HOME/.cache/snoopy}/kubernetes-$K8S_VERSION"
K8S_BIN="$K8S_CACHE/bin"
K8S_BINARIES="kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl"



# --- the cluster's state, identities and addresses --------------------------------------
# Everything a running control plane owns lives under K8S_RUN (a tmpfs on these machines:
# etcd's fsyncs cost nothing and a reboot leaves nothing behind).
K8S_RUN="${SNOOPY_RUN:-/run/snoopy}/k8s"
K8S_PKI="$K8S_RUN/pki"
K8S_LOGS="$K8S_RUN/log"
K8S_TOKENS="$K8S_RUN/tokens.csv"
ADMIN_KUBECONFIG="$K8S_RUN/admin.kubeconfig"
# Beside (not in) K8S_RUN: `down` deletes K8S_RUN while holding the lock.
K8S_LOCK="$K8S_RUN.lock"

# Loopback only. Not the usual 2379/2380 so a system etcd (if any) is never touched.
ETCD_PORT="${SNOOPY_ETCD_PORT:-12379}"
ETCD_PEER_PORT="${SNOOPY_ETCD_PEER_PORT:-12380}"
APISERVER_PORT="${SNOOPY_APISERVER_PORT:-6443}"
APISERVER_URL="https://127.0.0.1:$APISERVER_PORT"
# ClusterIPs are handed out from here; nothing routes it (there is no kube-proxy), and it is
# next to, not inside, the containerd testbed's pod /24 (10.213.77.0/24).
SERVICE_CIDR="${SNOOPY_SERVICE_CIDR:-10.213.78.0/24}"
# ttlSecondsAfterFinished is alpha in 1.20: the TTL controller runs only with this gate.
FEATURE_GATES="TTLAfterFinished=true"

# The single node (node.sh).
NODE_NAME="${SNOOPY_NODE_NAME:-snoopy-node}"
K8S_NODE_DIR="${SNOOPY_K8S_NODE_DIR:-/var/lib/snoopy-k8s}"
KUBELET_ROOT="$K8S_NODE_DIR/kubelet"
# The cgroup under which the kubelet makes `kubepods` (in every hierarchy). A second testbed
# cluster on the same machine needs its own: each kubelet removes pod cgroups it does not know.
KUBELET_CGROUP_ROOT="${SNOOPY_KUBELET_CGROUP_ROOT:-/}"

# Prints the PID recorded for a component if that process still runs with our state dir on
# its command line; a stale PID file (or a recycled PID) prints nothing.
component_pid() {
    local pidfile="$K8S_RUN/$1.pid" pid cmd
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
    cmd="$( (tr '\0' ' ' <"/proc/$pid/cmdline") 2>/dev/null)" || return 0
    case "$cmd" in
    *"$K8S_RUN/"*) echo "$pid" ;;
    esac
}

# Starts a component in its own session (it outlives this shell and is stopped only by its
# PID), with its output in K8S_LOGS/NAME.log. Arguments: NAME PROGRAM ARGS...
start_component() {
    local name="$1"
    shift
    mkdir -p "$K8S_LOGS"
    # 9>&-: fd 9 holds the up/down lock (flock); a daemon inheriting it would keep the lock
    # for its whole life and every later `up` or `down` would wait forever.
    setsid "$@" >"$K8S_LOGS/$name.log" 2>&1 </dev/null 9>&- &
    local pid=$! t="$EPOCHREALTIME"
    echo "$pid" >"$K8S_RUN/$name.pid"
    # Until the forked shell has exec'd the program, its command line is still this script's
    # and component_pid would call it gone: wait for the exec (or the exit), however long it
    # takes. (A 2 s limit here is the likeliest reason CI once said "etcd exited" with an
    # empty log right after a clean build, when the disk was busy writing the build back.)
    # `alive`, not `kill -0`: a child that exited is our zombie until reaped.
    while [ -z "$(component_pid "$name")" ] && alive "$pid"; do
        [ "$(ms_since "$t")" -lt 60000 ] || die "$name did not start within 60 s (PID $pid never ran $1)"
        sleep 0.02
    done
    log "started $name (PID $pid, log $K8S_LOGS/$name.log)"
}

# True while PID runs. A zombie has exited: our daemons are reparented to PID 1, which on
# these machines reaps only every second or two, and waiting for that would slow every `down`.
alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ]
}

# Stops a PID: TERM, wait up to SECS, then KILL and wait again.
stop_pid() {
    local pid="$1" secs="${2:-10}" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 20; i++)); do
        alive "$pid" || return 0
        sleep 0.05
    done
    log "PID $pid ignored TERM for ${secs} s: KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || return 0
        sleep 0.05
    done
    log "warning: PID $pid did not exit"
}

stop_component() {
    local name="$1" pid
    pid="$(component_pid "$name")"
    if [ -n "$pid" ]; then
        local t="$EPOCHREALTIME"
        stop_pid "$pid" "${2:-10}"
        log "stopped $name (PID $pid) in $(ms_since "$t") ms"
    fi
    rm -f "$K8S_RUN/$name.pid"
}

# Fails with the component's last log lines when it is not running.
require_running() {
    local name="$1"
    if [ -z "$(component_pid "$name")" ]; then
        tail -n 25 "$K8S_LOGS/$name.log" >&2 2>/dev/null || true
        # Started by this shell: its exit status (128+N for signal N) says how it ended.
        local pid status=""
        pid="$(cat "$K8S_RUN/$name.pid" 2>/dev/null)"
        if [ -n "$pid" ]; then
            wait "$pid" 2>/dev/null
            status=", exit status $?"
        fi
        die "$name exited$status (log: $K8S_LOGS/$name.log)"
    fi
}

kubectl_admin() {
    "$K8S_BIN/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"
}

apiserver_ready() {
    [ -f "$ADMIN_KUBECONFIG" ] && kubectl_admin get --raw /readyz --request-timeout=3s >/dev/null 2>&1
}

# Writes a kubeconfig for a token identity. Arguments: FILE USER TOKEN
write_kubeconfig() {
    local file="$1" user="$2" token="$3" ca
    ca="$(base64 -w0 <"$K8S_PKI/ca.crt")"
    (
        umask 077
        cat >"$file" <<KUBECONFIG
# Written by snoopy testbed/k8s/control-plane.sh for $user.
apiVersion: v1
kind: Config
clusters:
- name: snoopy
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: snoopy
  context:
    cluster: snoopy
    user: $user
current-context: snoopy
KUBECONFIG
    )
}

# Elapsed wall time since $1 (an EPOCHREALTIME value), in milliseconds.
ms_since() {
    local now="${EPOCHREALTIME/./}" then="${1/./}"
    echo $(((now - then) / 1000))
}

# The node's own address: a veth pair that never leaves the host (this kernel has no dummy
# driver). The kubelet refuses a loopback node IP, and binding its anonymous, AlwaysAllow API to
# the machine's real interface would expose exec-into-pods to the network: this address is
# reachable only from this machine.
NODE_LINK="${SNOOPY_NODE_LINK:-snoopyk8s0}"
NODE_LINK_PEER="${NODE_LINK}p"
NODE_IP="${SNOOPY_NODE_IP:-10.213.79.1}"
KUBELET_PORT="${SNOOPY_KUBELET_PORT:-10250}"
KUBELET_HEALTHZ_PORT="${SNOOPY_KUBELET_HEALTHZ_PORT:-10248}"
