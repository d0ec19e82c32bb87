#!/usr/bin/env bash
# The node demo: the seed's proof of concept on one machine, without Kubernetes.
#
# Brings up the containerd testbed, starts two pods cnf-example-a and cnf-example-b in
# namespace cnf-telco labelled networkMonitor=true (a pings b: pod to pod, never an outside
# address), captures 50 packets of both with
#     podtracer capture -l networkMonitor=true -n cnf-telco -c 50 icmp
# printing the tcpdump-style lines per pod and the final counts, leaves demo.pcapng, and
# tears everything down. KEEP=1 leaves the testbed and the pods running.
set -Eeuo pipefail
LOG_PREFIX=demo
# shellcheck source=testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
started=$(date +%s.%N)

step "building podtracer and the pod helper"
# Two builds: with `--example`, cargo builds only that example, not podtracer's binary.
cargo build --quiet -p podtracer
cargo build --quiet -p snoopy-examples --example testbed_pods
podtracer=target/debug/podtracer
pods=target/debug/examples/testbed_pods

step "starting the containerd testbed (testbed/containerd.sh up)"
testbed/containerd.sh up >/dev/null
eval "$(testbed/containerd.sh env)"
export CONTAINER_RUNTIME_ENDPOINT

cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    step "tearing down"
    "$pods" delete cnf-telco cnf-example-a >/dev/null 2>&1 || true
    "$pods" delete cnf-telco cnf-example-b >/dev/null 2>&1 || true
    testbed/containerd.sh down >/dev/null
  fi
}
trap cleanup EXIT

step "creating pods cnf-telco/cnf-example-b and cnf-telco/cnf-example-a (a pings b)"
ip_b=$("$pods" create cnf-telco cnf-example-b --label networkMonitor=true --label app=cnf-example)
ip_a=$("$pods" create cnf-telco cnf-example-a --label networkMonitor=true --label app=cnf-example -- /bin/ping -i 0.2 "$ip_b")
echo "cnf-example-a: $ip_a   cnf-example-b: $ip_b"

step "podtracer pods -n cnf-telco -o wide"
"$podtracer" pods -n cnf-telco -o wide

step "podtracer capture -l networkMonitor=true -n cnf-telco -c 50 -w demo.pcapng --print icmp"
"$podtracer" capture -l networkMonitor=true -n cnf-telco -c 50 -w demo.pcapng --print icmp

step "demo.pcapng, as tshark sees it (packets per pod interface)"
tshark -r demo.pcapng -T fields -e frame.interface_name 2>/dev/null | sort | uniq -c

printf '\ndemo finished in %.1f s; the capture is in demo.pcapng\n' "$(echo "$(date +%s.%N) - $started" | bc)"
