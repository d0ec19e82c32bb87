#!/usr/bin/env bash
# A real Kubernetes 1.20.2 control plane on loopback: etcd, kube-apiserver, kube-controller-manager.
#
#   testbed/k8s/control-plane.sh up       build the binaries if missing (build.sh), start the
#                                         three components, wait until /readyz answers and the
#                                         `default` ServiceAccount has its token (idempotent:
#                                         a healthy control plane is left as it is)
#   testbed/k8s/control-plane.sh down     stop the node (node.sh down) and the control plane by
#                                         PID, remove all state (idempotent)
#   testbed/k8s/control-plane.sh status   exit 0 when all three run and /readyz answers
#   testbed/k8s/control-plane.sh env      print `export KUBECONFIG=…` and `export PATH=<bin>:$PATH`
#
# State (certificates, tokens, kubeconfigs, etcd data, logs, PID files) is under
# ${SNOOPY_RUN:-/run/snoopy}/k8s. See testbed/k8s/README.md and shared/TESTBED.md section 3.
set -Eeuo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=testbed/k8s/lib.sh
. "$here/lib.sh"

ensure_packages() {
    local missing=()
    command -v etcd >/dev/null || missing+=(etcd-server)
    command -v openssl >/dev/null || missing+=(openssl)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
            {
                apt-get update -qq >&2 &&
                    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
            } || die "apt-get install ${missing[*]} failed"
    fi
}

# A CA, the apiserver's serving certificate (signed by it, valid for loopback and the in-cluster
# names), and the key pair that signs ServiceAccount tokens. The CA is what kubeconfigs and the
# ServiceAccount secrets' ca.crt carry, so in-cluster clients (the operator) verify the server.
make_pki() {
    mkdir -p "$K8S_PKI"
    chmod 700 "$K8S_PKI"
    local first_service_ip
    # The first address of SERVICE_CIDR is the `kubernetes` Service's ClusterIP.
    first_service_ip="$(echo "${SERVICE_CIDR%/*}" | awk -F. '{ printf "%d.%d.%d.%d", $1, $2, $3, $4 + 1 }')"
    (
        cd "$K8S_PKI"
        umask 077
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
        openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=snoopy-testbed-ca" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt 2>/dev/null
        openssl ecparam -name prime256v1 -genkey -noout -out apiserver.key 2>/dev/null
        openssl req -new -key apiserver.key -subj "/CN=kube-apiserver" -out apiserver.csr 2>/dev/null
        cat >apiserver.ext <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$first_service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EXT
        openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
            -extfile apiserver.ext -out apiserver.crt 2>/dev/null
        openssl ecparam -name prime256v1 -genkey -noout -out sa.key 2>/dev/null
        openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
        chmod 644 ca.crt
    ) || die "openssl failed to make the testbed certificates in $K8S_PKI"
}

# Static bearer tokens (random per `up`): the admin (system:masters), the controller-manager,
# the scheduler and the node, each with the identity the default RBAC/Node authorizers expect.
make_identities() {
    local admin cm sched node
    admin="$(openssl rand -hex 16)"
    cm="$(openssl rand -hex 16)"
    sched="$(openssl rand -hex 16)"
    node="$(openssl rand -hex 16)"
    (
        umask 077
        cat >"$K8S_TOKENS" <<TOKENS
$admin,snoopy-admin,snoopy-admin,"system:masters"
$cm,system:kube-controller-manager,system:kube-controller-manager
$sched,system:kube-scheduler,system:kube-scheduler
$node,system:node:$NODE_NAME,system:node:$NODE_NAME,"system:nodes"
TOKENS
    )
    write_kubeconfig "$ADMIN_KUBECONFIG" snoopy-admin "$admin"
    write_kubeconfig "$K8S_RUN/controller-manager.kubeconfig" system:kube-controller-manager "$cm"
    write_kubeconfig "$K8S_RUN/scheduler.kubeconfig" system:kube-scheduler "$sched"
    write_kubeconfig "$K8S_RUN/node.kubeconfig" "system:node:$NODE_NAME" "$node"
}

# etcd answers GET /health on its client URL; bash's /dev/tcp avoids needing etcdctl or curl.
etcd_healthy() {
    local reply
    reply="$(
        exec 2>/dev/null
        exec 3<>"/dev/tcp/127.0.0.1/$ETCD_PORT" || exit 1
        printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
        timeout 2 cat <&3
    )" 2>/dev/null || return 1
    case "$reply" in *'"health":"true"'*) return 0 ;; esac
    return 1
}

# Fails when one of our ports is taken by someone else: starting would only produce a
# confusing bind error in a log.
check_ports_free() {
    local port
    for port in "$ETCD_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT"; do
        if ss -Hltn "sport = :$port" | grep -q .; then
            die "port $port on this machine is in use by another program; set SNOOPY_ETCD_PORT / SNOOPY_ETCD_PEER_PORT / SNOOPY_APISERVER_PORT to free ports"
        fi
    done
}

start_etcd() {
    mkdir -p "$K8S_RUN/etcd"
    chmod 700 "$K8S_RUN/etcd"
    start_component etcd etcd \
        --name snoopy \
        --data-dir "$K8S_RUN/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "snoopy=http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster-state new \
        --logger zap --log-level warn
    local i
    for ((i = 0; i < 200; i++)); do
        etcd_healthy && return 0
        require_running etcd
        sleep 0.05
    done
    die "etcd did not report healthy on 127.0.0.1:$ETCD_PORT within 10 s (log: $K8S_LOGS/etcd.log)"
}

start_apiserver() {
    start_component kube-apiserver "$K8S_BIN/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 \
        --advertise-address 127.0.0.1 \
        --secure-port "$APISERVER_PORT" \
        --insecure-port 0 \
        --endpoint-reconciler-type none \
        --cert-dir "$K8S_PKI" \
        --tls-cert-file "$K8S_PKI/apiserver.crt" \
        --tls-private-key-file "$K8S_PKI/apiserver.key" \
        --token-auth-file "$K8S_TOKENS" \
        --authorization-mode Node,RBAC \
        --enable-admission-plugins NodeRestriction \
        --allow-privileged=true \
        --kubelet-preferred-address-types InternalIP,Hostname \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$K8S_PKI/sa.pub" \
        --service-account-signing-key-file "$K8S_PKI/sa.key" \
        --service-cluster-ip-range "$SERVICE_CIDR" \
        --feature-gates "$FEATURE_GATES" \
        --profiling=false
    local i
    for ((i = 0; i < 120; i++)); do
        apiserver_ready && return 0
        require_running kube-apiserver
        sleep 0.25
    done
    die "kube-apiserver did not answer /readyz on $APISERVER_URL within 30 s (log: $K8S_LOGS/kube-apiserver.log)"
}

# Each controller runs under its own ServiceAccount (as kubeadm does), so the controller-
# manager's own identity needs only its default ClusterRole. --port/--secure-port 0: it serves
# nothing, so it needs no port and no serving certificate.
start_controller_manager() {
    start_component kube-controller-manager "$K8S_BIN/kube-controller-manager" \
        --kubeconfig "$K8S_RUN/controller-manager.kubeconfig" \
        --leader-elect=false \
        --port 0 \
        --secure-port 0 \
        --use-service-account-credentials=true \
        --service-account-private-key-file "$K8S_PKI/sa.key" \
        --root-ca-file "$K8S_PKI/ca.crt" \
        --feature-gates "$FEATURE_GATES" \
        --profiling=false
    # Pods are only admitted once their ServiceAccount has its token secret: wait for the
    # `default` one, which also proves the controllers run and can write.
    local i secret
    for ((i = 0; i < 120; i++)); do
        secret="$(kubectl_admin -n default get serviceaccount default -o 'jsonpath={.secrets[0].name}' 2>/dev/null || true)"
        [ -n "$secret" ] && return 0
        require_running kube-controller-manager
        sleep 0.25
    done
    die "the controller-manager did not create the default ServiceAccount's token within 30 s (log: $K8S_LOGS/kube-controller-manager.log)"
}

healthy() {
    [ -n "$(component_pid etcd)" ] && [ -n "$(component_pid kube-apiserver)" ] &&
        [ -n "$(component_pid kube-controller-manager)" ] && apiserver_ready
}

cmd_up() {
    require_root
    local t0="$EPOCHREALTIME" bin
    bin="$("$here/build.sh" | tail -n 1)"
    [ "$bin" = "$K8S_BIN" ] || die "build.sh printed '$bin', expected $K8S_BIN"
    ensure_packages
    if healthy; then
        log "control plane already running: $APISERVER_URL (etcd PID $(component_pid etcd), kube-apiserver PID $(component_pid kube-apiserver), kube-controller-manager PID $(component_pid kube-controller-manager))"
        return 0
    fi
    # Half-started or crashed: clear it, so `up` always starts from a known state.
    cmd_down
    check_ports_free
    mkdir -p "$K8S_RUN"
    chmod 700 "$K8S_RUN"
    make_pki
    make_identities
    local t
    t="$EPOCHREALTIME"
    start_etcd
    log "etcd healthy after $(ms_since "$t") ms"
    t="$EPOCHREALTIME"
    start_apiserver
    log "kube-apiserver ready after $(ms_since "$t") ms"
    t="$EPOCHREALTIME"
    start_controller_manager
    log "controller-manager up, default ServiceAccount ready after $(ms_since "$t") ms"
    log "control plane up in $(ms_since "$t0") ms: $APISERVER_URL; use: eval \"\$($0 env)\""
}

cmd_down() {
    require_root
    # The kubelet talks to this apiserver: stop the node first, or it would run on alone.
    if [ -f "$K8S_RUN/kubelet.pid" ] || [ -f "$K8S_RUN/kube-scheduler.pid" ] || [ -d "$KUBELET_ROOT" ]; then
        "$here/node.sh" down-locked
    fi
    stop_component kube-controller-manager
    stop_component kube-apiserver
    stop_component etcd
    rm -rf "$K8S_RUN"
    log "control plane down"
}

cmd_status() {
    local name pid ok=0
    for name in etcd kube-apiserver kube-controller-manager; do
        pid="$(component_pid "$name")"
        if [ -n "$pid" ]; then
            log "$name PID $pid"
        else
            log "$name not running"
            ok=1
        fi
    done
    if apiserver_ready; then
        log "kube-apiserver /readyz ok at $APISERVER_URL"
    else
        log "kube-apiserver not ready"
        ok=1
    fi
    return "$ok"
}

cmd_env() {
    echo "export KUBECONFIG=$ADMIN_KUBECONFIG"
    # Single quotes: the shell that evals this expands its own PATH.
    # shellcheck disable=SC2016
    echo 'export PATH='"$K8S_BIN"':$PATH'
}

# up and down hold a lock: two test binaries starting the cluster at once start it once.
with_lock() {
    require_root
    mkdir -p "$(dirname "$K8S_LOCK")"
    exec 9>"$K8S_LOCK"
    flock 9
    "$@"
}

case "${1:-}" in
up) with_lock cmd_up ;;
down) with_lock cmd_down ;;
status) cmd_status ;;
env) cmd_env ;;
*)
    echo "usage: $0 up|down|status|env" >&2
    exit 2
    ;;
esac
