# The familiar entry points. `make test` is the one command that runs every check and test
# (as root: the capture tests build real network namespaces).

CARGO ?= cargo

.PHONY: fuzz setup check-setup bench-kafka kafka-up kafka-down test lint unit examples build release bench bench-capture bench-filter bench-flows bench-startup bench-dashboard testbed-up testbed-down demo demo-node test-cluster k8s-build control-plane-up cluster-up cluster-down cluster-selftest images deploy undeploy crdgen bench-operator bench-operator-scale

test: setup lint examples unit fuzz test-cluster

# What every entry point runs first (testbed/setup.sh: the bookworm-security suite, Debian
# packages, the deb-src stanza for Kubernetes' source, rustfmt/clippy/cargo-nextest, rust-src and
# bpf-linker for snoopy-ebpf's kernel programs, the tansu broker): idempotent, one line per part,
# root only when something must be installed. SETUP_PARTS narrows it per entry point (`ebpf`
# wherever podtracer is built: it links snoopy-ebpf's programs).
setup:
	testbed/setup.sh $(SETUP_PARTS)

# The setup's system part in a fresh Debian 12 root (debootstrap), then every deb: program of
# testbed/programs.txt must be there: proof that setup.sh does not lean on this machine's history.
check-setup:
	testbed/check-setup.sh

lint:
	python3 testbed/programs_test.py
	python3 testbed/programs.py check
	shellcheck -x testbed/*.sh testbed/*/*.sh .ci/run
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path snoopy-ebpf/ebpf/Cargo.toml -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --quiet

# The tests bring up the containerd testbed themselves (testbed/containerd.sh up is
# idempotent); it is taken down again afterwards, whatever the outcome.
# The operator's tests against a real kube-apiserver run in `make test-cluster` (they need
# Kubernetes built from source: testbed/k8s/build.sh).
CLUSTER_TESTS = package(snoopy-operator) and (test(/^cluster::/) or test(/^rbac::/) or test(/^webhook::/))
NODE_TESTS = package(snoopy-operator) and test(/^node::/)

unit:
	$(CARGO) nextest run --workspace --no-fail-fast -E 'not ($(CLUSTER_TESTS)) and not ($(NODE_TESTS))'; status=$$?; testbed/containerd.sh down >/dev/null; exit $$status

# The fuzz targets (fuzz/README.md): the committed inputs replayed, then each target run
# FUZZ_SECONDS (default 20) under libFuzzer; any crash, timeout or leak fails. About 5 min
# in all on 2 cores with a warm build cache (the first build of the targets takes ~4 min).
FUZZ_SECONDS ?= 20
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) testbed/fuzz.sh

# The operator against a real Kubernetes 1.20.2 (built once and cached by
# testbed/k8s/build.sh): first the reconciler in-process against the control plane alone
# (etcd, apiserver, controller-manager on loopback), then end to end with the node (scheduler,
# kubelet on the containerd testbed), the operator deployed from its manifests and real
# podtracer Jobs. Everything is torn down afterwards, whatever the outcome.
test-cluster:
	testbed/k8s/build.sh >/dev/null
	testbed/k8s/control-plane.sh up >/dev/null
	eval "$$(testbed/k8s/control-plane.sh env)" \
	  && $(CARGO) nextest run --no-fail-fast -E '$(CLUSTER_TESTS)' \
	  && testbed/k8s/node.sh up >/dev/null \
	  && $(MAKE) --no-print-directory images PROFILE=debug >/dev/null \
	  && $(CARGO) nextest run --no-fail-fast -E '$(NODE_TESTS)'; \
	  status=$$?; testbed/k8s/control-plane.sh down >/dev/null; exit $$status

# Kubernetes on this machine (see testbed/k8s/README.md).
k8s-build:
	testbed/k8s/build.sh
control-plane-up:
	testbed/k8s/control-plane.sh up
cluster-up:
	testbed/k8s/control-plane.sh up
	testbed/k8s/node.sh up
cluster-down:
	testbed/k8s/control-plane.sh down
cluster-selftest:
	testbed/k8s/selftest.sh

# Images for the testbed's containerd (umoci, no registry).
# PROFILE=debug reuses the binaries the tests built (test-cluster does: no second build).
PROFILE ?= release
images:
	$(CARGO) build $(if $(filter release,$(PROFILE)),--release) -p podtracer -p snoopy-operator -p snoopy-dashboard
	testbed/images/build-snoopy.sh target/$(PROFILE)/podtracer target/$(PROFILE)/snoopy-operator target/$(PROFILE)/snoopy-dashboard

# The operator's manifests (kubectl's built-in kustomize) and generated CRDs.
# DEPLOY_DIR=snoopy-operator/config/testbed on this machine's testbed cluster (no kube-proxy).
DEPLOY_DIR ?= snoopy-operator/config/default
deploy:
	kubectl apply -k $(DEPLOY_DIR)
undeploy:
	kubectl delete -k $(DEPLOY_DIR) --ignore-not-found
crdgen:
	$(CARGO) run -q -p snoopy-operator -- crdgen --out snoopy-operator/config/crd

# 50/200-target operator benchmark against the real apiserver.
bench-operator: SETUP_PARTS = security packages deb-src
bench-operator: setup
	testbed/k8s/control-plane.sh up >/dev/null
	eval "$$(testbed/k8s/control-plane.sh env)" && $(CARGO) bench -p snoopy-operator --bench targets; status=$$?; testbed/k8s/control-plane.sh down >/dev/null; exit $$status

# At scale: 100 kubelet-less Nodes, 5,000 pods, a SnoopyJob selecting 2,000; churn of 500
# unrelated pods; operator and apiserver request counts, operator memory.
bench-operator-scale: SETUP_PARTS = security packages deb-src
bench-operator-scale: setup
	testbed/k8s/control-plane.sh up >/dev/null
	eval "$$(testbed/k8s/control-plane.sh env)" && $(CARGO) bench -p snoopy-operator --bench scale; status=$$?; testbed/k8s/control-plane.sh down >/dev/null; exit $$status

# Packets -> Kafka (tansu on loopback) vs file sink vs tcpdump, same flood, same run.
bench-kafka: SETUP_PARTS = security packages ebpf tansu
bench-kafka: setup release
	testbed/kafka.sh up >/dev/null
	python3 bench/kafka.py; status=$$?; testbed/kafka.sh down >/dev/null; exit $$status

# The testbed's Kafka-protocol broker (tansu, memory storage, 127.0.0.1:19092).
kafka-up:
	testbed/kafka.sh up
kafka-down:
	testbed/kafka.sh down

testbed-up:
	testbed/containerd.sh up

testbed-down:
	testbed/containerd.sh down

# The examples that need no privileges run; the others are built by clippy --all-targets.
examples:
	$(CARGO) run --quiet -p snoopy-examples --example pcapng_roundtrip

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p podtracer

# The demo: the proof of concept on a real single-node Kubernetes (testbed/demo-cluster.sh).
demo: SETUP_PARTS = security packages deb-src ebpf
demo: setup
	testbed/demo-cluster.sh

# Without Kubernetes: two pods on a private containerd, captured by label (testbed/demo-node.sh).
demo-node: SETUP_PARTS = security packages ebpf
demo-node: setup
	testbed/demo-node.sh

# Capture benchmark: podtracer vs tcpdump on a 64-byte UDP flood through a veth pair.
bench: bench-capture bench-startup bench-flows bench-filter bench-dashboard

bench-capture bench-startup bench-flows bench-filter: SETUP_PARTS = security packages ebpf
bench-capture: setup release
	python3 bench/capture.py --podtracer target/release/podtracer

# Start-up latency of `capture --pod` (CRI lookup + netns + ring), median of 20 runs.
bench-startup: setup release
	$(CARGO) build --release --quiet -p snoopy-examples --example testbed_pods
	python3 bench/startup.py --podtracer target/release/podtracer; status=$$?; testbed/containerd.sh down >/dev/null; exit $$status

# Flow benchmark: podtracer flows -r vs tshark -z conv,tcp vs tcpdump -r on a generated
# 1 M-packet pcap (no root, no network).
bench-flows: setup release
	python3 bench/flows.py --podtracer target/release/podtracer

# Dashboard benchmark: flow records ingested per second on one core (target 200,000), memory
# per 1,000 pod pairs with an hour of windows, and page render time for 1,000 hosts and
# 10,000 edges in headless Chromium (target 1 s).
bench-dashboard: SETUP_PARTS = security packages
bench-dashboard: setup
	$(CARGO) bench -p snoopy-dashboard --bench dashboard

# Filter benchmark: podtracer read vs tcpdump -r on a generated 1M-packet pcap, same
# expressions, CPU time ratio printed.
bench-filter: setup release
	python3 bench/filter_read.py --podtracer target/release/podtracer
	python3 bench/filter_compile.py --podtracer target/release/podtracer
