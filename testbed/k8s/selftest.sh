#!/usr/bin/env bash
# The testbed cluster's own end-to-end test: up (cold, then warm: idempotent), the checks,
# down, and a search for anything left behind. Needs root; takes ~1 min (plus the build once).
#
#   testbed/k8s/selftest.sh           control plane and node
#   testbed/k8s/selftest.sh --no-node control plane only
#
# Refuses to run when a control plane or node is already up (it would tear it down).
set -Eeuo pipefail
LOG_PREFIX=selftest
LOG_ERROR_WORD=FAIL

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=testbed/k8s/lib.sh
. "$here/lib.sh"
# shellcheck source=testbed/lib.sh
. "$here/../lib.sh"

with_node=1
[ "${1:-}" = --no-node ] && with_node=0
require_root
"$here/build.sh" >/dev/null

if [ -e "$K8S_RUN" ] || [ -e "$K8S_NODE_DIR" ]; then
    die "a testbed cluster is already up ($K8S_RUN or $K8S_NODE_DIR exists): run testbed/k8s/control-plane.sh down first"
fi
if [ "$with_node" = 1 ] && [ -e "$CTD_PIDFILE" ]; then
    die "the containerd testbed is up; the node takes it down at the end: run testbed/containerd.sh down first"
fi

# What the machine looked like before, to compare after `down`.
fwd_before="$(cat /proc/sys/net/ipv4/ip_forward)"
# Another containerd (a second testbed) may own pod netns of its own: only new ones count.
netns_before="$(echo /var/run/netns/cni-*)"
existed=""
for d in /var/lib/kubelet /var/log/pods /var/log/containers; do
    if [ -e "$d" ]; then existed="$existed $d"; fi
done

timed() {
    local what="$1" t="$EPOCHREALTIME"
    shift
    "$@" || die "$what failed"
    log "$what: $(ms_since "$t") ms"
}

timed "control-plane.sh up (cold)" "$here/control-plane.sh" up
timed "control-plane.sh up (warm, already up)" "$here/control-plane.sh" up
"$here/control-plane.sh" status || die "status after up"
"$here/check.sh" control-plane
if [ "$with_node" = 1 ]; then
    timed "node.sh up (cold)" "$here/node.sh" up
    timed "node.sh up (warm, already up)" "$here/node.sh" up
    "$here/node.sh" status || die "node status after up"
    "$here/check.sh" node
    # Leave pods running: down must clean up a node that is in use.
    kubectl_admin -n default create deployment leftover --image "$BUSYBOX_IMAGE" -- sleep 1000000 >/dev/null
    kubectl_admin -n default rollout status deployment/leftover --timeout=60s >/dev/null || die "leftover deployment"
    for name in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet; do
        pid="$(component_pid "$name")"
        [ -n "$pid" ] || die "$name not running"
        log "RSS $name: $(($(ps -o rss= -p "$pid") / 1024)) MB"
    done
    pid="$(containerd_pid)"
    log "RSS containerd: $(($(ps -o rss= -p "$pid") / 1024)) MB"
    timed "node.sh down" "$here/node.sh" down
fi
timed "control-plane.sh down" "$here/control-plane.sh" down
timed "control-plane.sh down (again, nothing to do)" "$here/control-plane.sh" down

# --- leftovers ---------------------------------------------------------------------------
left=()
for d in /proc/[0-9]*; do
    cmd="$( (tr '\0' ' ' <"$d/cmdline") 2>/dev/null)" || continue
    case "$cmd" in
    *"$K8S_RUN"* | *"$K8S_NODE_DIR"* | *"$CTD_CONFIG"* | *"containerd-shim"*"$CTD_SOCK"*) left+=("process ${d#/proc/}: $cmd") ;;
    esac
done
while read -r m; do
    left+=("mount $m")
done < <(awk -v a="$K8S_NODE_DIR" -v b="$K8S_RUN" -v c="$SNOOPY_TESTBED_DIR" -v e="$SNOOPY_TESTBED_RUN" \
    'index($5, a) == 1 || index($5, b) == 1 || index($5, c) == 1 || index($5, e) == 1 || index($5, "/var/lib/kubelet") == 1 { print $5 }' \
    /proc/self/mountinfo)
for d in "$K8S_RUN" "$K8S_NODE_DIR" "$SNOOPY_TESTBED_DIR" "$SNOOPY_TESTBED_RUN" /var/lib/kubelet /var/log/pods /var/log/containers; do
    case " $existed " in *" $d "*) continue ;; esac
    if [ -e "$d" ]; then left+=("path $d"); fi
done
for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
    if [ -d "$h${KUBELET_CGROUP_ROOT%/}/kubepods" ]; then left+=("cgroup $h${KUBELET_CGROUP_ROOT%/}/kubepods"); fi
done
if command -v iptables >/dev/null; then
    for t in filter nat mangle; do
        while read -r c; do left+=("iptables $t chain $c"); done < <(iptables -t "$t" -S | awk '$1 == "-N" && $2 ~ /^KUBE-/ { print $2 }')
    done
fi
for l in "$SNOOPY_TESTBED_BRIDGE" "$NODE_LINK"; do
    if ip link show "$l" >/dev/null 2>&1; then left+=("link $l"); fi
done
for n in /var/run/netns/cni-*; do
    [ -e "$n" ] || continue
    case " $netns_before " in *" $n "*) continue ;; esac
    left+=("netns $n")
done
[ "$(cat /proc/sys/net/ipv4/ip_forward)" = "$fwd_before" ] || left+=("net.ipv4.ip_forward changed from $fwd_before")
for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT"; do
    if ss -Hltn "sport = :$port" | grep -q .; then left+=("port $port still listening"); fi
done
if [ "${#left[@]}" -gt 0 ]; then
    printf 'selftest: left behind: %s\n' "${left[@]}" >&2
    die "teardown incomplete"
fi
log "teardown complete: no process, mount, path, cgroup, iptables chain, link or port left; ip_forward restored"
log "PASS"
