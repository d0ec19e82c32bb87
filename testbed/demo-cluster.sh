#!/usr/bin/env bash
# The demo: the seed's proof of concept, on one machine, with a real Kubernetes.
#
# Starts Kubernetes 1.20.2 (testbed/k8s: control plane + one node on the containerd testbed),
# labels the node cnf-telco=true and management=true, applies the sample Deployment (two pods
# in cnf-telco labelled networkMonitor=true, pinging each other — never an outside address),
# deploys the operator from its manifests, shows the CRD, applies the Tcpdump sample, shows the
# Jobs (one per pod) and their pods, prints the captured ICMP lines from the Job logs and the
# CR's status; then starts the testbed's Kafka broker, runs a flows SnoopyJob onto it and a
# `podtracer probe` from one pod to the other, waits until the deployed snoopy-dashboard shows
# the two pods' pairs and the probe, prints its URL, and tears everything down.
#
# KEEP=1 leaves the cluster running. A cluster that was already up is reused and left up.
# The first run builds Kubernetes from Debian's source (~25 min, cached by testbed/k8s/build.sh).
set -Eeuo pipefail
LOG_PREFIX=demo
# shellcheck source=testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
started=$(date +%s.%N)

was_up=0
if testbed/k8s/node.sh status >/dev/null 2>&1; then was_up=1; fi
# The broker is stopped at the end only if this demo started it.
kafka_started=0

cleanup() {
  local status=$?
  if [ "${KEEP:-0}" = 1 ] || [ "$was_up" = 1 ]; then
    step "leaving the cluster up (eval \"\$(testbed/k8s/control-plane.sh env)\"; make cluster-down)"
  else
    step "tearing down (testbed/k8s/control-plane.sh down)"
    testbed/k8s/control-plane.sh down >/dev/null 2>&1 || true
  fi
  if [ "$kafka_started" = 1 ] && [ "${KEEP:-0}" != 1 ]; then
    testbed/kafka.sh down >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT

step "building podtracer and snoopy-operator (release)"
cargo build --quiet --release -p podtracer -p snoopy-operator -p snoopy-dashboard

step "building Kubernetes 1.20.2 (cached after the first time)"
testbed/k8s/build.sh >/dev/null

step "starting the cluster: control plane, then the node on the containerd testbed"
testbed/k8s/control-plane.sh up >/dev/null
testbed/k8s/node.sh up >/dev/null
eval "$(testbed/k8s/control-plane.sh env)"
show kubectl get nodes -o wide

step "importing the podtracer and operator images into the node's containerd (no registry)"
testbed/images/build-snoopy.sh target/release/podtracer target/release/snoopy-operator target/release/snoopy-dashboard >/dev/null

step "labelling the node as the proof of concept's README does"
show kubectl label node snoopy-node cnf-telco=true management=true --overwrite

step "the tenant: sample-deployment.yaml (namespace cnf-telco, two pods pinging each other)"
show kubectl apply -f snoopy-operator/config/samples/sample-deployment.yaml
show kubectl rollout status -n cnf-telco deployment/cnf-example-pod --timeout=120s
show kubectl get pods -n cnf-telco -l networkMonitor=true -o wide
# The pods first look for each other on the pod network; start the capture once both ping.
for _ in $(seq 1 120); do
  pinging=0
  for pod in $(kubectl get pods -n cnf-telco -l networkMonitor=true -o name); do
    # (no `grep -q`: with pipefail, kubectl's SIGPIPE when grep exits early would read as "no")
    if [ "$(kubectl logs -n cnf-telco "$pod" 2>/dev/null | grep -c '^pinging ')" -gt 0 ]; then pinging=$((pinging + 1)); fi
  done
  [ "$pinging" -ge 2 ] && break
  sleep 0.5
done
for pod in $(kubectl get pods -n cnf-telco -l networkMonitor=true -o name); do
  printf '%s: ' "$pod"; kubectl logs -n cnf-telco "$pod" | awk 'NR == 1'
done

step "deploying the operator (make deploy, with the testbed's host-network patch)"
make --no-print-directory deploy DEPLOY_DIR=snoopy-operator/config/testbed
show kubectl rollout status -n snoopy-operator deployment/snoopy-operator --timeout=120s

step "the CRDs"
show kubectl get crd tcpdumps.pcap.fennecproject.io snoopyjobs.snoopy.fennecproject.io
# A fresh CRD reaches the published OpenAPI schema (what explain reads) a few seconds after it
# is established.
kubectl wait --for condition=established --timeout=60s \
  crd/tcpdumps.pcap.fennecproject.io crd/snoopyjobs.snoopy.fennecproject.io >/dev/null
for _ in $(seq 1 60); do
  kubectl explain tcpdump.spec >/dev/null 2>&1 && break
  sleep 0.5
done
show kubectl explain tcpdump.spec

step "the Tcpdump sample: capture 50 packets on every networkMonitor=true pod"
# A CR left by an earlier run would show its old status.
kubectl delete -f snoopy-operator/config/samples/pcap_v1alpha1_tcpdump.yaml --ignore-not-found >/dev/null
show cat snoopy-operator/config/samples/pcap_v1alpha1_tcpdump.yaml
show kubectl apply -f snoopy-operator/config/samples/pcap_v1alpha1_tcpdump.yaml

phase=""
for _ in $(seq 1 240); do
  phase=$(kubectl get tcpdump -n cnf-telco tcpdump-sample -o jsonpath='{.status.phase}' 2>/dev/null || true)
  case "$phase" in Succeeded | Failed) break ;; esac
  sleep 0.5
done

step "one Job per pod, each on its pod's node"
show kubectl get jobs,pods -n snoopy-operator -l app.kubernetes.io/managed-by=snoopy-operator -o wide

step "the captured packets, from the Job logs"
for job in $(kubectl get jobs -n snoopy-operator -l app.kubernetes.io/managed-by=snoopy-operator -o name); do
  printf '\n\033[1m%s\033[0m\n' "$job"
  # awk, not head: head exits early and, with pipefail, the SIGPIPE would end the demo.
  kubectl logs -n snoopy-operator "$job" | grep -E 'podtracer:|ICMP echo|packets' | awk 'NR <= 12'
  echo "…"
done

step "the Tcpdump's status"
show kubectl get tcpdump -n cnf-telco
kubectl get tcpdump -n cnf-telco tcpdump-sample \
  -o jsonpath='{range .status.targets[*]}{.pod}{"\t"}{.node}{"\t"}{.phase}{"\t"}{.packetsCaptured} captured, {.packetsDropped} dropped{"\n"}{end}'

tcpdump_phase=$phase

step "the dashboard: flows Jobs and a probe through Kafka (testbed/kafka.sh: 127.0.0.1:19092)"
if ! testbed/kafka.sh status >/dev/null 2>&1; then kafka_started=1; fi
testbed/kafka.sh up >/dev/null
# The testbed overlay's ConfigMap names this broker (dashboard_kafka_patch.yaml); the dashboard
# started before the broker and reads again every 2 s, so it needs no restart.
show kubectl rollout status -n snoopy-operator deployment/snoopy-dashboard --timeout=120s
kubectl delete -f snoopy-operator/config/samples/snoopy_v1alpha1_snoopyjob_flows_kafka.yaml --ignore-not-found >/dev/null
show kubectl apply -f snoopy-operator/config/samples/snoopy_v1alpha1_snoopyjob_flows_kafka.yaml
# The probe goes while the flows Jobs watch, so its connections show as flows too: from the
# first pod to the second's TCP 7777 (each sample pod answers there), through the node's CRI.
for _ in $(seq 1 120); do
  running=$(kubectl get pods -n snoopy-operator -l app.kubernetes.io/managed-by=snoopy-operator \
    --field-selector status.phase=Running -o name 2>/dev/null | wc -l)
  [ "$running" -ge 2 ] && break
  sleep 0.5
done
sleep 2
mapfile -t pods < <(kubectl get pods -n cnf-telco -l networkMonitor=true -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
peer_ip=$(kubectl get pod -n cnf-telco "${pods[1]}" -o jsonpath='{.status.podIP}')
eval "$(testbed/containerd.sh env)"
show target/release/podtracer probe --pod "${pods[0]}" -n cnf-telco --tcp "$peer_ip:7777" \
  --count 5 --interval 200ms --sink kafka://127.0.0.1:19092
flows_phase=""
for _ in $(seq 1 240); do
  flows_phase=$(kubectl get snoopyjob -n cnf-telco flows-to-kafka -o jsonpath='{.status.phase}' 2>/dev/null || true)
  case "$flows_phase" in Succeeded | Failed) break ;; esac
  sleep 0.5
done
show kubectl get snoopyjob -n cnf-telco flows-to-kafka

# The dashboard listens on the node's loopback (no kube-proxy here; testbed overlay).
dashboard=http://127.0.0.1:18480
# What the page shows, from its JSON: pairs of cnf-telco pods and the probe (python3: no jq here).
summary='
import json, sys
v = json.load(sys.stdin)
pod = lambda host: host.startswith("cnf-telco/")
# Both pods ping each other, yet one pair is what shows (seen here: the echo flows of both directions
# share their ICMP id, so the flow table keeps one flow, opened by the first to ping).
if not [p for p in v["pairs"] if pod(p["source"]) and pod(p["destination"])] or not v["probes"]:
    sys.exit(1)
print("\033[1mpod pairs on the dashboard\033[0m (source -> destination: attempts, success rate)")
for p in v["pairs"]:
    print("  %s -> %s: %s attempts, %s success" % (p["source"], p["destination"], p["attempts"], p["success_rate"]))
print("\033[1mprobes\033[0m")
for p in v["probes"]:
    print("  %s %s %s: %s/%s ok" % (p["source"], p["check"], p["target"], p["successes"], p["attempts"]))
'
shown=0
for _ in $(seq 1 60); do
  view=$(curl -sf "$dashboard/api/view?namespace=cnf-telco" || true)
  if [ -n "$view" ] && printf '%s' "$view" | python3 -c "$summary"; then
    shown=1
    break
  fi
  sleep 1
done
[ "$shown" = 1 ] || printf 'the dashboard did not show the pods within 60 s: %s\n' "${view:-no answer}"
printf '\n\033[1mthe dashboard: %s/?namespace=cnf-telco\033[0m' "$dashboard"
if [ "${KEEP:-0}" = 1 ] || [ "$was_up" = 1 ]; then
  printf ' (open it in a browser on this machine)\n'
else
  printf ' (KEEP=1 keeps it up to browse; it goes with the teardown now)\n'
fi

end=$(date +%s.%N)
step "done: the Tcpdump ended ${tcpdump_phase:-without a phase}, the flows SnoopyJob ${flows_phase:-without a phase}, in $(printf '%.1f' "$(echo "$end - $started" | bc)") s (before teardown)"
[ "$tcpdump_phase" = Succeeded ] && [ "$flows_phase" = Succeeded ] && [ "$shown" = 1 ]
