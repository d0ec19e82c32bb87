#!/usr/bin/env bash
# A Kafka-protocol broker for the tests and the demo: tansu 0.6.0 (a Kafka-compatible broker
# written in Rust; no Apache Kafka is obtainable here), in memory, on loopback only.
#
#   testbed/kafka.sh up       build the binary once (cached), start the broker, wait until it answers,
#                             create the topics snoopy.packets, snoopy.flows, snoopy.probes,
#                             snoopy.throughput
#   testbed/kafka.sh down     stop the broker this script started (by its PID file, nothing else)
#   testbed/kafka.sh status   running or not
#   testbed/kafka.sh env      print `export SNOOPY_KAFKA=127.0.0.1:PORT`
#
# Idempotent. Settings: SNOOPY_KAFKA_PORT (default 19092), SNOOPY_CACHE (default
# ~/.cache/snoopy: the binary goes to $SNOOPY_CACHE/tansu-0.6.0/bin/tansu), SNOOPY_RUN (default
# /run/snoopy: PID file and log under $SNOOPY_RUN/kafka/).
set -Eeuo pipefail
LOG_PREFIX=kafka
# shellcheck source=testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TANSU_VERSION=0.6.0
SNOOPY_CACHE="${SNOOPY_CACHE:-$HOME/.cache/snoopy}"
SNOOPY_RUN="${SNOOPY_RUN:-/run/snoopy}"
PORT="${SNOOPY_KAFKA_PORT:-19092}"
TANSU_ROOT="$SNOOPY_CACHE/tansu-$TANSU_VERSION"
TANSU="$TANSU_ROOT/bin/tansu"
RUN_DIR="$SNOOPY_RUN/kafka"
PIDFILE="$RUN_DIR/tansu.pid"
LOGFILE="$RUN_DIR/tansu.log"
TOPICS=(snoopy.packets snoopy.flows snoopy.probes snoopy.throughput)


build() {
    [ -x "$TANSU" ] && return 0
    SNOOPY_CACHE="$SNOOPY_CACHE" "$(dirname "${BASH_SOURCE[0]}")/setup.sh" tansu || die "building tansu failed (the reason is above)"
}

pid() {
    local p
    [ -f "$PIDFILE" ] || return 0
    p="$(cat "$PIDFILE")"
    # Only a live process that is our tansu: a stale PID file may name a recycled PID.
    if [ -n "$p" ] && [ -r "/proc/$p/cmdline" ] && tr '\0' ' ' <"/proc/$p/cmdline" | grep -q "tansu broker"; then
        echo "$p"
    fi
}

answers() {
    # A TCP connect to the listener (bash's /dev/tcp, loopback only).
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

up() {
    build
    mkdir -p "$RUN_DIR"
    if [ -n "$(pid)" ] && answers; then
        log "tansu already running (PID $(pid)) on 127.0.0.1:$PORT"
    else
        answers && die "127.0.0.1:$PORT is taken by another program; set SNOOPY_KAFKA_PORT"
        "$TANSU" broker --storage-engine memory://tansu/ \
            --listener-url "tcp://127.0.0.1:$PORT" \
            --advertised-listener-url "tcp://127.0.0.1:$PORT" \
            >"$LOGFILE" 2>&1 &
        local p=$!
        echo "$p" >"$PIDFILE"
        for _ in $(seq 1 200); do
            answers && break
            kill -0 "$p" 2>/dev/null || die "tansu exited at start; see $LOGFILE"
            sleep 0.05
        done
        answers || die "tansu (PID $p) does not answer on 127.0.0.1:$PORT after 10 s; see $LOGFILE"
        log "tansu PID $p answering on 127.0.0.1:$PORT"
    fi
    local topic existing
    existing="$("$TANSU" topic list --broker "tcp://127.0.0.1:$PORT" 2>/dev/null || true)"
    for topic in "${TOPICS[@]}"; do
        if ! grep -q "\"$topic\"\|^$topic\$" <<<"$existing"; then
            "$TANSU" topic create "$topic" --broker "tcp://127.0.0.1:$PORT" --partitions 3 >/dev/null ||
                die "creating topic $topic failed"
        fi
    done
}

down() {
    local p
    p="$(pid)"
    if [ -z "$p" ]; then
        log "tansu not running"
    else
        kill -TERM "$p" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.05
        done
        if kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null || true
        fi
        log "stopped tansu PID $p"
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
up) up ;;
down) down ;;
status)
    if [ -n "$(pid)" ] && answers; then
        echo "tansu running (PID $(pid)) on 127.0.0.1:$PORT"
    else
        echo "tansu not running"
        exit 1
    fi
    ;;
env) echo "export SNOOPY_KAFKA=127.0.0.1:$PORT" ;;
*) die "usage: $0 up|down|status|env" ;;
esac
