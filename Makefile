# The familiar entry points. `make test` is the one command that runs every check and test
# (as root: the capture tests build real network namespaces).

CARGO ?= cargo

.PHONY: test lint unit examples build release bench bench-capture 

test: lint examples unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --quiet

unit:
	$(CARGO) nextest run --workspace --no-fail-fast

# The examples that need no privileges run; the others are built by clippy --all-targets.
examples:
	$(CARGO) run --quiet -p snoopy-examples --example pcapng_roundtrip

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release -p podtracer

# Capture benchmark: podtracer vs tcpdump on a 64-byte UDP flood through a veth pair.
bench: bench-capture

bench-capture: release
	python3 bench/capture.py --podtracer target/release/podtracer
