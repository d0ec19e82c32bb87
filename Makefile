# The familiar entry points. `make test` is the one command that runs every check and test
# (as root: the capture tests build real network namespaces).

CARGO ?= cargo

.PHONY: test lint unit examples build release bench bench-capture bench-filter bench-flows bench-startup testbed-up testbed-down demo demo-node

test: lint examples unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --quiet

# The tests bring up the containerd testbed themselves (testbed/containerd.sh up is
# idempotent); it is taken down again afterwards, whatever the outcome.
unit:
	$(CARGO) nextest run --workspace --no-fail-fast; status=$$?; testbed/containerd.sh down >/dev/null; exit $$status

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

# The demo: two pods on a private containerd, captured by label (see testbed/demo-node.sh).
demo: demo-node

demo-node:
	testbed/demo-node.sh

# Capture benchmark: podtracer vs tcpdump on a 64-byte UDP flood through a veth pair.
bench: bench-capture bench-startup bench-flows bench-filter

bench-capture: release
	python3 bench/capture.py --podtracer target/release/podtracer

# Start-up latency of `capture --pod` (CRI lookup + netns + ring), median of 20 runs.
bench-startup: release
	$(CARGO) build --release --quiet -p snoopy-examples --example testbed_pods
	python3 bench/startup.py --podtracer target/release/podtracer; status=$$?; testbed/containerd.sh down >/dev/null; exit $$status

# Flow benchmark: podtracer flows -r vs tshark -z conv,tcp vs tcpdump -r on a generated
# 1 M-packet pcap (no root, no network).
bench-flows: release
	python3 bench/flows.py --podtracer target/release/podtracer

# Filter benchmark: podtracer read vs tcpdump -r on a generated 1M-packet pcap, same
# expressions, CPU time ratio printed.
bench-filter: release
	python3 bench/filter_read.py --podtracer target/release/podtracer
