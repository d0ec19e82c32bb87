#!/usr/bin/env bash
# The single node of the testbed cluster: kube-scheduler + kubelet on the containerd testbed.
#
#   testbed/k8s/node.sh up       control-plane.sh up, containerd.sh up, then the scheduler and
#                                a kubelet registering node `snoopy-node`; waits until it is
#                                Ready (idempotent: a Ready node is left as it is)
#   testbed/k8s/node.sh down     stop kubelet (first) and scheduler by PID, delete the Node,
#                                take the containerd testbed down and undo everything the
#                                kubelet did outside its root dir (idempotent)
#   testbed/k8s/node.sh status   exit 0 when both run and the node is Ready
#
# The node owns the containerd testbed while it is up: `down` runs `testbed/containerd.sh down`
# (the kubelet's pods live there). See testbed/k8s/README.md and shared/TESTBED.md section 4.
set -Eeuo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=testbed/k8s/lib.sh
. "$here/lib.sh"
testbed="$(cd "$here/.." && pwd)"

# Directories the kubelet uses at fixed paths, whatever its --root-dir. `up` notes the ones
# it creates (in CREATED_FILE) and `down` removes only those.
KUBELET_FIXED_DIRS="/var/lib/kubelet/device-plugins /var/lib/kubelet /var/log/pods /var/log/containers"
CREATED_FILE="$K8S_NODE_DIR/created-dirs"
# The chains kubelet 1.20 adds when makeIPTablesUtilChains is on (it is off here; `down`
# still removes them, in case an older config or a crash left them).
KUBELET_CHAINS="KUBE-MARK-DROP KUBE-MARK-MASQ KUBE-POSTROUTING KUBE-FIREWALL KUBE-KUBELET-CANARY"

node_ready() {
    [ "$(kubectl_admin get node "$NODE_NAME" \
        -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

healthy() {
    [ -n "$(component_pid kubelet)" ] && [ -n "$(component_pid kube-scheduler)" ] &&
        apiserver_ready && node_ready
}

# The containerd testbed's socket, from its own `env` (`export CONTAINER_RUNTIME_ENDPOINT=unix://…`).
runtime_endpoint() {
    "$testbed/containerd.sh" env | sed -n 's/^export CONTAINER_RUNTIME_ENDPOINT=//p'
}

setup_node_link() {
    if ! ip link show "$NODE_LINK" >/dev/null 2>&1; then
        log "creating $NODE_LINK ($NODE_IP/32, host-only) for the node address"
        ip link add "$NODE_LINK" type veth peer name "$NODE_LINK_PEER"
    fi
    ip addr replace "$NODE_IP/32" dev "$NODE_LINK"
    ip link set "$NODE_LINK_PEER" up
    ip link set "$NODE_LINK" up
}

# The kubelet requires its cgroup root to exist in every hierarchy. In cpuset a new cgroup
# starts with no CPUs and no memory nodes: copy the parent's, or no container could start.
make_cgroup_root() {
    [ "$KUBELET_CGROUP_ROOT" != / ] || return 0
    local h d f
    for h in /sys/fs/cgroup/*; do
        if [ ! -f "$h/cgroup.procs" ]; then continue; fi
        d="$h$KUBELET_CGROUP_ROOT"
        mkdir -p "$d"
        for f in cpuset.cpus cpuset.mems; do
            if [ -f "$d/$f" ] && [ -z "$(cat "$d/$f")" ]; then cat "$h/$f" >"$d/$f"; fi
        done
    done
}

write_kubelet_config() {
    make_cgroup_root
    mkdir -p "$K8S_NODE_DIR" "$KUBELET_ROOT"
    local d
    touch "$CREATED_FILE"
    for d in $KUBELET_FIXED_DIRS; do
        if [ ! -e "$d" ] && ! grep -qxF "$d" "$CREATED_FILE"; then
            echo "$d" >>"$CREATED_FILE"
        fi
    done
    # - anonymous + AlwaysAllow: the apiserver reaches logs/exec/port-forward without client
    #   certificates; safe only because the kubelet listens on the host-only NODE_IP.
    # - low eviction thresholds and image GC at 100 %: on a small shared VM the kubelet must never
    #   evict the test pods or delete the local images (nothing can be pulled again).
    # - makeIPTablesUtilChains off: no kube-proxy here, nothing needs the KUBE-* chains.
    # - status every 4 s instead of 10 s: the node turns Ready sooner after registering.
    cat >"$K8S_NODE_DIR/kubelet-config.yaml" <<YAML
# Written by snoopy testbed/k8s/node.sh.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
cgroupRoot: $KUBELET_CGROUP_ROOT
failSwapOn: false
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
makeIPTablesUtilChains: false
nodeStatusUpdateFrequency: 4s
clusterDomain: cluster.local
serializeImagePulls: false
YAML
}

start_scheduler() {
    start_component kube-scheduler "$K8S_BIN/kube-scheduler" \
        --kubeconfig "$K8S_RUN/scheduler.kubeconfig" \
        --bind-address 127.0.0.1 \
        --port 0 \
        --secure-port 0 \
        --leader-elect=false \
        --profiling=false
}

start_kubelet() {
    local endpoint
    endpoint="$(runtime_endpoint)"
    [ -n "$endpoint" ] || die "testbed/containerd.sh env printed no CONTAINER_RUNTIME_ENDPOINT"
    start_component kubelet "$K8S_BIN/kubelet" \
        --config "$K8S_NODE_DIR/kubelet-config.yaml" \
        --kubeconfig "$K8S_RUN/node.kubeconfig" \
        --container-runtime remote \
        --container-runtime-endpoint "$endpoint" \
        --hostname-override "$NODE_NAME" \
        --node-ip "$NODE_IP" \
        --register-node=true \
        --root-dir "$KUBELET_ROOT" \
        --cert-dir "$KUBELET_ROOT/pki" \
        --volume-plugin-dir "$K8S_NODE_DIR/volume-plugins"
}

cmd_up() {
    local t0="$EPOCHREALTIME" t
    "$here/control-plane.sh" up
    "$testbed/containerd.sh" up >/dev/null
    mkdir -p "$(dirname "$K8S_LOCK")"
    exec 9>"$K8S_LOCK"
    flock 9
    if healthy; then
        log "node $NODE_NAME already Ready (kubelet PID $(component_pid kubelet), kube-scheduler PID $(component_pid kube-scheduler))"
        return 0
    fi
    stop_component kubelet
    stop_component kube-scheduler
    setup_node_link
    write_kubelet_config
    start_scheduler
    t="$EPOCHREALTIME"
    start_kubelet
    local i
    for ((i = 0; i < 240; i++)); do
        node_ready && break
        require_running kubelet
        require_running kube-scheduler
        sleep 0.25
    done
    node_ready || die "node $NODE_NAME not Ready 60 s after the kubelet started (log: $K8S_LOGS/kubelet.log)"
    log "node $NODE_NAME Ready $(ms_since "$t") ms after the kubelet started; up in $(ms_since "$t0") ms"
}

# Deletes the rules that jump to CHAIN, then the chain, in every table that has it.
remove_chain() {
    local chain="$1" table rule
    command -v iptables >/dev/null || return 0
    for table in filter nat mangle; do
        iptables -t "$table" -S "$chain" >/dev/null 2>&1 || continue
        # xargs, not word splitting: it keeps quoted comments ("kubernetes …") one argument.
        iptables -t "$table" -S | grep -E -- "-j $chain( |\$)" | while read -r rule; do
            printf '%s\n' "${rule#-A }" | xargs iptables -t "$table" -D || true
        done
        iptables -t "$table" -F "$chain" 2>/dev/null || true
        iptables -t "$table" -X "$chain" 2>/dev/null || true
        log "removed iptables chain $table/$chain"
    done
}

# Removes empty cgroup dirs NAME in every hierarchy, deepest first; rmdir fails on a cgroup
# that still holds processes, so nothing in use is removed.
remove_cgroups() {
    local name="$1" h
    for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [ -d "$h/$name" ] || continue
        find "$h/$name" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        [ -d "$h/$name" ] && log "warning: cgroup $h/$name still in use"
    done
    return 0
}

unmount_under() {
    local dir="$1" m
    [ -d "$dir" ] || return 0
    # Deepest first; the root dir itself last (the kubelet bind-mounts it onto itself, rshared).
    awk -v d="$dir" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
        done
    # A bind mount of the dir on itself can be stacked more than once.
    while awk -v d="$dir" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; do
        umount "$dir" 2>/dev/null || umount -l "$dir" 2>/dev/null || break
    done
}

# Called by `down`, and by control-plane.sh down with the lock already held.
cmd_down_locked() {
    require_root
    stop_component kubelet
    stop_component kube-scheduler
    if apiserver_ready; then
        kubectl_admin delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
    fi
    # The pods' containers, shims, netns, the bridge and ip_forward.
    "$testbed/containerd.sh" down
    unmount_under "$KUBELET_ROOT"
    local d
    if [ -f "$CREATED_FILE" ]; then
        while read -r d; do
            case "$d" in
            /var/lib/kubelet | /var/lib/kubelet/device-plugins | /var/log/pods | /var/log/containers)
                rm -rf "$d"
                ;;
            esac
        done <"$CREATED_FILE"
    fi
    remove_cgroups "${KUBELET_CGROUP_ROOT%/}/kubepods"
    if [ "$KUBELET_CGROUP_ROOT" != / ]; then remove_cgroups "$KUBELET_CGROUP_ROOT"; fi
    for d in $KUBELET_CHAINS; do
        remove_chain "$d"
    done
    ip link del "$NODE_LINK" 2>/dev/null || true
    if awk -v d="$K8S_NODE_DIR" 'index($5, d) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
        log "warning: mounts remain under $K8S_NODE_DIR; not deleting it"
    else
        rm -rf "$K8S_NODE_DIR"
    fi
    log "node down"
}

cmd_status() {
    local name pid ok=0
    for name in kube-scheduler kubelet; do
        pid="$(component_pid "$name")"
        if [ -n "$pid" ]; then log "$name PID $pid"; else
            log "$name not running"
            ok=1
        fi
    done
    if node_ready; then log "node $NODE_NAME Ready"; else
        log "node $NODE_NAME not Ready"
        ok=1
    fi
    return "$ok"
}

case "${1:-}" in
up)
    require_root
    cmd_up
    ;;
down)
    require_root
    mkdir -p "$(dirname "$K8S_LOCK")"
    exec 9>"$K8S_LOCK"
    flock 9
    cmd_down_locked
    ;;
down-locked) cmd_down_locked ;;
status) cmd_status ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
