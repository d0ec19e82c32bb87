# syntax=docker/dockerfile:1
# Images for users of Snoopy: podtracer (the capture/exec tool the operator's Jobs run) and the
# operator. Build from the repository root:
#
#   docker build --target podtracer -t <your-registry>/snoopy/podtracer:<tag> .
#   docker build --target operator  -t <your-registry>/snoopy/snoopy-operator:<tag> .
#
# Then point the operator at the podtracer image (its Deployment's settings) and push both.
# The testbed does not use this file (there is no Docker engine and no registry there): it
# builds the same two images from local binaries with umoci, testbed/images/build-snoopy.sh.

# ---- build: one cargo build for both binaries ----------------------------------------------
# Rust 1.95: its LLVM (22) is the one bpf-linker is built against below, and aya 0.14's pins
# need no newer compiler.
FROM rust:1.95-bookworm AS build
# protoc: the CRI client's gRPC stubs are generated at build time. llvm-22-dev (bookworm-security)
# and bpf-linker: snoopy-ebpf links its kernel programs with it; rust-src: `core` for the BPF
# target. The same tools testbed/setup.sh installs (parts security, packages, ebpf).
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler llvm-22-dev \
    && rm -rf /var/lib/apt/lists/*
RUN rustup component add rust-src \
    && PATH=/usr/lib/llvm-22/bin:$PATH LLVM_PREFIX=/usr/lib/llvm-22 \
       cargo install bpf-linker --locked --version 0.13.0 --no-default-features --features llvm-22
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=snoopy-target \
    cargo build --release --locked -p podtracer -p snoopy-operator \
    && install -D -m 755 target/release/podtracer /out/podtracer \
    && install -D -m 755 target/release/snoopy-operator /out/snoopy-operator

# ---- podtracer: runs in the target pod's namespaces; carries the tools `exec` runs ----------
FROM debian:bookworm-slim AS podtracer
RUN apt-get update \
    && apt-get install -y --no-install-recommends iperf3 iproute2 iputils-ping \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/podtracer /usr/local/bin/podtracer
ENTRYPOINT ["/usr/local/bin/podtracer"]

# ---- operator: talks to the API server only; never root --------------------------------------
FROM debian:bookworm-slim AS operator
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/snoopy-operator /usr/local/bin/snoopy-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/snoopy-operator"]
