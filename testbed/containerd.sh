#!/usr/bin/env bash
# A private containerd with the CRI plugin: pods without Kubernetes, for snoopy's tests and demo.
#
#   testbed/containerd.sh up       install what is missing, start containerd, import images,
#                                  print the socket path (idempotent: a running testbed is kept)
#   testbed/containerd.sh down     stop everything by PID and remove every trace (idempotent)
#   testbed/containerd.sh status   exit 0 and print the socket when the testbed answers
#   testbed/containerd.sh env      print `export CONTAINER_RUNTIME_ENDPOINT=unix://…`
#
# It owns: its root/state dirs and socket, a CNI bridge on a private /24 with no route
# outside that /24, the pods' network namespaces and cgroups, and restores net.ipv4.ip_forward.
# See shared/TESTBED.md section 2 for why each setting is what it is.
set -Eeuo pipefail
LOG_PREFIX=testbed

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=testbed/lib.sh
. "$here/lib.sh"

write_config() {
    mkdir -p "$SNOOPY_TESTBED_DIR" "$CTD_ROOT" "$CTD_CNI_DIR" "$SNOOPY_TESTBED_RUN" "$CTD_STATE"
    cat >"$CTD_CONFIG" <<EOF
# Written by testbed/containerd.sh; rewritten on every start.
version = 2
root = "$CTD_ROOT"
state = "$CTD_STATE"

[grpc]
  address = "$CTD_SOCK"

[ttrpc]
  address = "$CTD_SOCK.ttrpc"

[debug]
  address = "$SNOOPY_TESTBED_RUN/debug.sock"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Required on these machines: without CAP_SYS_RESOURCE every sandbox start fails with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # Loopback only, any free port: two containerds must not fight over the streaming port.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CTD_CNI_DIR"
    max_conf_num = 1
EOF
    # No "routes" in the IPAM block: the /24's connected route is the only one a pod gets,
    # so an outside address is "network unreachable" and nothing leaves the machine.
    cat >"$CTD_CNI_DIR/10-snoopy-testbed.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$SNOOPY_TESTBED_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$SNOOPY_TESTBED_BRIDGE",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$SNOOPY_TESTBED_SUBNET" }]]
      }
    }
  ]
}
EOF
}

# Refuses to start when the subnet is already routed through another device: the testbed
# would then shadow (or be shadowed by) a network it does not own.
check_subnet_free() {
    local dev
    dev="$(ip -4 route show exact "$SNOOPY_TESTBED_SUBNET" | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n1)"
    if [ -n "$dev" ] && [ "$dev" != "$SNOOPY_TESTBED_BRIDGE" ]; then
        die "subnet $SNOOPY_TESTBED_SUBNET is already routed via $dev; set SNOOPY_TESTBED_SUBNET to a free private /24"
    fi
}

cmd_up() {
    require_root
    ensure_packages
    if [ -n "$(containerd_pid)" ] && containerd_answers; then
        log "containerd already running (PID $(containerd_pid))"
        "$here/images.sh" import
        echo "$CTD_SOCK"
        return 0
    fi
    # A half-started or crashed testbed: clear it first, so `up` always starts from clean.
    cmd_down >/dev/null
    check_subnet_free
    write_config
    [ -f "$IP_FORWARD_SAVED" ] || cat /proc/sys/net/ipv4/ip_forward >"$IP_FORWARD_SAVED"

    # Its own session, so it survives the shell that started it and is stopped only by PID.
    # 9>&-: containerd must not inherit (and so hold forever) the testbed lock.
    setsid containerd --config "$CTD_CONFIG" >"$CTD_LOG" 2>&1 </dev/null 9>&- &
    local pid=$!
    echo "$pid" >"$CTD_PIDFILE"
    local i
    for i in $(seq 1 200); do
        if [ -S "$CTD_SOCK" ] && containerd_answers; then
            break
        fi
        kill -0 "$pid" 2>/dev/null || {
            tail -n 20 "$CTD_LOG" >&2
            die "containerd exited during start (log: $CTD_LOG)"
        }
        sleep 0.05
    done
    containerd_answers || die "containerd did not answer on $CTD_SOCK within 10 s (log: $CTD_LOG)"
    log "containerd PID $pid answering on $CTD_SOCK after ~$((i * 50)) ms"
    "$here/images.sh" import
    echo "$CTD_SOCK"
}

# Stops a PID: TERM, wait up to the given seconds, then KILL and wait again.
stop_pid() {
    local pid="$1" secs="${2:-10}" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 $((secs * 20))); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    log "warning: PID $pid did not exit"
}

# Network namespaces of our pods: the netns files under /var/run/netns that containerd
# recorded in its metadata database, plus those whose inode is the netns of a process under
# one of our shims. Both, because after a crash only one of the two may still be there.
our_netns() {
    local db="$CTD_ROOT/io.containerd.metadata.v1.bolt/meta.db"
    {
        if [ -f "$db" ]; then
            grep -ao '/var/run/netns/cni-[0-9a-f-]*' "$db" 2>/dev/null || true
        fi
        local shim p ino f
        for shim in $(our_shims); do
            for p in $(descendants "$shim"); do
                ino="$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" || continue
                for f in /var/run/netns/cni-*; do
                    [ -e "$f" ] || continue
                    if [ "$(stat -L -c %i "$f" 2>/dev/null)" = "$ino" ]; then
                        echo "$f"
                    fi
                done
            done
        done
    } | sort -u
}

# Removes empty cgroup dirs below NAME in every hierarchy, deepest first. rmdir fails on a
# cgroup that still has processes or children, so nothing in use is ever removed.
remove_cgroups() {
    local name="$1" h
    for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [ -d "$h/$name" ] || continue
        find "$h/$name" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
}

cmd_down() {
    require_root
    local netns shim p pid
    netns="$(our_netns)"

    # Containers first: the shims are built to outlive containerd, and killing a shim alone
    # would orphan its containers. Kill the container processes, then the shims (a shim
    # whose containers are dead has nothing left to save: KILL, not TERM and a wait).
    for shim in $(our_shims); do
        for p in $(descendants "$shim"); do
            kill -KILL "$p" 2>/dev/null || true
        done
        kill -KILL "$shim" 2>/dev/null || true
    done
    for shim in $(our_shims); do
        stop_pid "$shim" 2
    done

    pid="$(containerd_pid)"
    if [ -n "$pid" ]; then
        log "stopping containerd PID $pid"
        stop_pid "$pid" 10
    fi
    rm -f "$CTD_PIDFILE"

    for p in $netns; do
        umount "$p" 2>/dev/null || true
        rm -f "$p"
    done

    # Mounts under our dirs (overlay snapshots, shm, rootfs), deepest first.
    local mounts m
    mounts="$(awk -v a="$CTD_ROOT" -v b="$SNOOPY_TESTBED_RUN" \
        'index($5, a "/") == 1 || index($5, b "/") == 1 || $5 == a || $5 == b { print $5 }' \
        /proc/self/mountinfo | sort -r)"
    for m in $mounts; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "warning: cannot unmount $m"
    done

    ip link del "$SNOOPY_TESTBED_BRIDGE" 2>/dev/null || true
    rm -rf "/var/lib/cni/networks/$SNOOPY_TESTBED_NETWORK" "/var/lib/cni/results/$SNOOPY_TESTBED_NETWORK-"* 2>/dev/null || true
    remove_cgroups k8s.io
    remove_cgroups snoopy-testbed

    if [ -f "$IP_FORWARD_SAVED" ]; then
        cat "$IP_FORWARD_SAVED" >/proc/sys/net/ipv4/ip_forward
        rm -f "$IP_FORWARD_SAVED"
    fi

    if awk -v a="$CTD_ROOT" -v b="$SNOOPY_TESTBED_RUN" \
        'index($5, a) == 1 || index($5, b) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
        log "warning: mounts remain under $CTD_ROOT or $SNOOPY_TESTBED_RUN; not deleting them"
    else
        rm -rf "$SNOOPY_TESTBED_DIR" "$SNOOPY_TESTBED_RUN"
    fi
    log "down"
}

cmd_status() {
    local pid
    pid="$(containerd_pid)"
    if [ -n "$pid" ] && containerd_answers; then
        log "containerd PID $pid answering"
        echo "$CTD_SOCK"
    else
        log "not running"
        return 1
    fi
}

# up and down hold a lock, so two test binaries (or a test and a person) starting the
# testbed at once do not start two containerds on one socket.
with_lock() {
    require_root
    exec 9>"/run/snoopy-testbed.lock"
    flock 9
    "$@"
}

case "${1:-}" in
up) with_lock cmd_up ;;
down) with_lock cmd_down ;;
status) cmd_status ;;
env) echo "export CONTAINER_RUNTIME_ENDPOINT=unix://$CTD_SOCK" ;;
*)
    echo "usage: $0 up|down|status|env" >&2
    exit 2
    ;;
esac
