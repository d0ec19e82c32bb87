#!/usr/bin/env bash
# Checks that the testbed cluster does what the operator and the demo rely on. Fails loudly.
#
#   testbed/k8s/check.sh control-plane   needs control-plane.sh up (no node): namespaces, a CRD
#                                        and a custom resource (the reflect2 crash), RBAC, a Job
#                                        whose Pod is created and stays Pending (no node)
#   testbed/k8s/check.sh node            needs node.sh up: node Ready, a 2-pod busybox Deployment
#                                        Running on bridge IPs that ping each other, no default
#                                        route in pods, kubectl logs/exec, a Job that completes
#
# Works in namespace snoopy-check, deleted at the end (and at the start, after an aborted run).
set -Eeuo pipefail
LOG_PREFIX=check
LOG_ERROR_WORD=FAIL

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=testbed/k8s/lib.sh
. "$here/lib.sh"
# shellcheck source=testbed/lib.sh
. "$here/../lib.sh"
# containerd's lib.sh has its own log/die; ours name the check.

NS=snoopy-check
k() { kubectl_admin "$@"; }
pass() { printf 'check: ok   %s\n' "$*" >&2; }

# Waits up to SECS for CMD... to succeed.
wait_for() {
    local secs="$1" i
    shift
    for ((i = 0; i < secs * 4; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    return 1
}

fresh_namespace() {
    if k get namespace "$NS" >/dev/null 2>&1; then
        log "deleting namespace $NS left by an earlier run"
        k delete namespace "$NS" --timeout=90s >/dev/null
    fi
    k create namespace "$NS" >/dev/null
    # Pods are admitted only once the namespace's default ServiceAccount has its token.
    wait_for 30 sh_sa_ready || die "namespace $NS: default ServiceAccount token not created within 30 s"
}
sh_sa_ready() { [ -n "$(k -n "$NS" get sa default -o 'jsonpath={.secrets[0].name}')" ]; }

check_control_plane() {
    apiserver_ready || die "apiserver not ready: run testbed/k8s/control-plane.sh up"
    k get namespace default kube-system kube-public >/dev/null || die "kubectl get ns"
    pass "kubectl get ns (default, kube-system, kube-public)"
    [ "$(k version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -n1)" = "v$K8S_VERSION" ] ||
        die "server version is not v$K8S_VERSION: $(k version --short 2>&1 | tail -n1)"
    pass "server version v$K8S_VERSION"
    fresh_namespace

    k apply -f - >/dev/null <<'YAML'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: checks.testbed.snoopy.example
spec:
  group: testbed.snoopy.example
  scope: Namespaced
  names: { plural: checks, singular: check, kind: Check }
  versions:
  - name: v1
    served: true
    storage: true
    subresources: { status: {} }
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              packetCount: { type: integer, minimum: 1 }
              podLabel: { type: object, additionalProperties: { type: string } }
          status:
            type: object
            properties:
              phase: { type: string }
YAML
    k wait --for condition=Established --timeout=30s crd/checks.testbed.snoopy.example >/dev/null ||
        die "CRD not Established"
    k -n "$NS" apply -f - >/dev/null <<'YAML'
apiVersion: testbed.snoopy.example/v1
kind: Check
metadata: { name: one }
spec: { packetCount: 50, podLabel: { networkMonitor: "true" } }
YAML
    [ "$(k -n "$NS" get check one -o 'jsonpath={.spec.podLabel.networkMonitor}')" = true ] ||
        die "custom resource not read back"
    # Schema validation: packetCount 0 must be refused.
    if k -n "$NS" apply -f - >/dev/null 2>&1 <<'YAML'; then
apiVersion: testbed.snoopy.example/v1
kind: Check
metadata: { name: invalid }
spec: { packetCount: 0 }
YAML
        die "an invalid custom resource was accepted"
    fi
    apiserver_ready || die "the apiserver died after a custom resource was created (the reflect2 patch missing?)"
    pass "CRD Established, custom resource created and read back, schema validation, apiserver alive"

    # RBAC is enforced: a ServiceAccount without bindings is refused.
    k -n "$NS" create serviceaccount nobody >/dev/null
    [ "$(k auth can-i list pods -n "$NS" --as "system:serviceaccount:$NS:nobody")" = no ] ||
        die "RBAC: an unbound ServiceAccount may list pods"
    pass "RBAC denies an unbound ServiceAccount"

    k -n "$NS" create job pending --image "$BUSYBOX_IMAGE" -- true >/dev/null
    wait_for 30 job_has_pod pending || die "the Job's Pod was not created within 30 s (controller-manager log: $K8S_LOGS/kube-controller-manager.log)"
    local phase
    phase="$(k -n "$NS" get pods -l job-name=pending -o 'jsonpath={.items[0].status.phase}')"
    if k get node "$NODE_NAME" >/dev/null 2>&1; then
        pass "Job created its Pod (phase $phase; a node is registered)"
    else
        [ "$phase" = Pending ] || die "the Job's Pod is $phase, expected Pending without a node"
        pass "Job created its Pod, Pending (no node)"
    fi
    cleanup
}
job_has_pod() { [ -n "$(k -n "$NS" get pods -l "job-name=$1" -o 'jsonpath={.items[*].metadata.name}')" ]; }

check_node() {
    apiserver_ready || die "apiserver not ready: run testbed/k8s/node.sh up"
    [ "$(k get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ] ||
        die "node $NODE_NAME not Ready: run testbed/k8s/node.sh up"
    pass "node $NODE_NAME Ready"
    fresh_namespace
    local t="$EPOCHREALTIME"
    k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: { name: pingers }
spec:
  replicas: 2
  selector: { matchLabels: { app: pingers } }
  template:
    metadata: { labels: { app: pingers } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: $BUSYBOX_IMAGE
        imagePullPolicy: Never
        command: [sh, -c, "echo snoopy-check-started; exec sleep 1000000"]
YAML
    k -n "$NS" rollout status deployment/pingers --timeout=90s >/dev/null ||
        die "Deployment not available within 90 s: $(k -n "$NS" get pods -o wide 2>&1)"
    pass "Deployment with 2 pods available in $(ms_since "$t") ms"

    local pods ips p0 p1 ip0 ip1
    pods="$(k -n "$NS" get pods -l app=pingers -o 'jsonpath={.items[*].metadata.name}')"
    ips="$(k -n "$NS" get pods -l app=pingers -o 'jsonpath={.items[*].status.podIP}')"
    read -r p0 p1 <<<"$pods"
    read -r ip0 ip1 <<<"$ips"
    [ -n "$ip1" ] || die "pods without IPs: $pods / $ips"
    local prefix="${SNOOPY_TESTBED_SUBNET%.*/*}."
    case "$ip0$ip1" in
    "$prefix"*"$prefix"*) ;;
    *) die "pod IPs $ip0 $ip1 not in the testbed bridge subnet $SNOOPY_TESTBED_SUBNET" ;;
    esac
    pass "pods $p0 ($ip0) and $p1 ($ip1) on the bridge subnet"

    k -n "$NS" exec "$p0" -- ping -c 3 -W 2 "$ip1" >/dev/null || die "$p0 cannot ping $ip1"
    k -n "$NS" exec "$p1" -- ping -c 3 -W 2 "$ip0" >/dev/null || die "$p1 cannot ping $ip0"
    pass "kubectl exec: the pods ping each other"
    local out
    out="$(k -n "$NS" exec "$p0" -- ip route)" || die "kubectl exec $p0 -- ip route"
    if grep -q '^default' <<<"$out"; then
        die "pod $p0 has a default route: traffic could leave the machine"
    fi
    pass "pods have no default route (only their /24)"
    out="$(k -n "$NS" logs "$p0")" || die "kubectl logs $p0"
    grep -qx snoopy-check-started <<<"$out" || die "kubectl logs $p0 lacks the start line"
    pass "kubectl logs"

    check_in_cluster

    t="$EPOCHREALTIME"
    # A tag other than :latest defaults to imagePullPolicy IfNotPresent: the local image is used.
    k -n "$NS" create job finisher --image "$BUSYBOX_IMAGE" -- true >/dev/null
    k -n "$NS" wait --for condition=Complete --timeout=60s job/finisher >/dev/null ||
        die "Job not Complete within 60 s: $(k -n "$NS" get pods -l job-name=finisher -o wide 2>&1)"
    pass "Job Complete in $(ms_since "$t") ms"
    cleanup
}

# The path the operator takes in the testbed: a hostNetwork pod with KUBERNETES_SERVICE_HOST=
# 127.0.0.1 reaches the apiserver with its ServiceAccount token and verifies the server with the
# ServiceAccount's ca.crt. kubectl (static) is mounted from the host as the in-cluster client.
check_in_cluster() {
    k -n "$NS" create serviceaccount reader >/dev/null
    k -n "$NS" create role pod-reader --verb get,list --resource pods >/dev/null
    k -n "$NS" create rolebinding reader --role pod-reader --serviceaccount "$NS:reader" >/dev/null
    wait_for 30 sa_has_token reader || die "ServiceAccount reader got no token"
    k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: { name: in-cluster }
spec:
  serviceAccountName: reader
  hostNetwork: true
  restartPolicy: Never
  containers:
  - name: main
    image: $BUSYBOX_IMAGE
    imagePullPolicy: Never
    env:
    - { name: KUBERNETES_SERVICE_HOST, value: "127.0.0.1" }
    - { name: KUBERNETES_SERVICE_PORT, value: "$APISERVER_PORT" }
    command:
    - sh
    - -c
    - |
      /kubectl get pods -n $NS -o name || exit 1
      if /kubectl get pods -n default -o name 2>/dev/null; then echo "RBAC-NOT-ENFORCED"; exit 1; fi
      echo in-cluster-ok
    volumeMounts: [{ name: kubectl, mountPath: /kubectl, readOnly: true }]
  volumes: [{ name: kubectl, hostPath: { path: $K8S_BIN/kubectl, type: File } }]
YAML
    wait_for 60 pod_finished in-cluster || die "pod in-cluster did not finish within 60 s"
    local phase logs
    phase="$(k -n "$NS" get pod in-cluster -o 'jsonpath={.status.phase}')"
    logs="$(k -n "$NS" logs in-cluster 2>&1)"
    if [ "$phase" != Succeeded ] || ! grep -qx in-cluster-ok <<<"$logs" || ! grep -q '^pod/in-cluster$' <<<"$logs"; then
        die "in-cluster API access failed (phase $phase): $logs"
    fi
    pass "in-cluster client (hostNetwork, 127.0.0.1:$APISERVER_PORT, ServiceAccount token + ca.crt): allowed in $NS, forbidden elsewhere"
}
sa_has_token() { [ -n "$(k -n "$NS" get sa "$1" -o 'jsonpath={.secrets[0].name}')" ]; }
pod_finished() {
    case "$(k -n "$NS" get pod "$1" -o 'jsonpath={.status.phase}')" in Succeeded | Failed) return 0 ;; esac
    return 1
}

cleanup() {
    k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true
    k delete crd checks.testbed.snoopy.example --ignore-not-found --wait=false >/dev/null 2>&1 || true
}

case "${1:-}" in
control-plane) check_control_plane ;;
node) check_node ;;
*)
    echo "usage: $0 control-plane|node" >&2
    exit 2
    ;;
esac
log "all checks passed"
