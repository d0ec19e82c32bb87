#!/usr/bin/env python3
"""Kafka sink benchmark: the 64-byte UDP flood of bench/capture.py captured by podtracer with a
Kafka sink versus a file sink (and tcpdump writing a file, the reference rate), same run.

Starts its own tansu broker (in memory, on a free 127.0.0.1 port; the binary from
testbed/kafka.sh's cache or $SNOOPY_TANSU), creates the topic, then for each tool: packets sent
by iperf3, captured, dropped by the kernel, delivered (written to the file / acknowledged by the
broker), dropped by the sink's buffer, CPU seconds and CPU ns per packet of the capturing
process, delivered packets per second. Needs root, iperf3, tcpdump.

usage: bench/kafka.py [--seconds 5] [--streams 2] [--podtracer target/release/podtracer]
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capture  # noqa: E402  (the flood, the namespaces, the measurement)


def tansu_path():
    if os.environ.get("SNOOPY_TANSU"):
        return os.environ["SNOOPY_TANSU"]
    cache = os.environ.get("SNOOPY_CACHE", os.path.expanduser("~/.cache/snoopy"))
    path = os.path.join(cache, "tansu-0.6.0", "bin", "tansu")
    if not os.access(path, os.X_OK):
        sys.exit(f"no tansu at {path}: run testbed/kafka.sh up first")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker():
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([tansu_path(), "broker", "--storage-engine", "memory://tansu/",
                             "--listener-url", url, "--advertised-listener-url", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                sys.exit("tansu does not answer")
            time.sleep(0.05)
    subprocess.run([tansu_path(), "topic", "create", "snoopy.packets", "--broker", url,
                    "--partitions", "3"], check=True, stdout=subprocess.DEVNULL)
    return proc, f"127.0.0.1:{port}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--podtracer", default="target/release/podtracer")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/kafka.py needs root (network namespaces, packet sockets)")
    netns = f"/var/run/netns/{capture.NS_B}"
    broker, address = start_broker()
    capture.setup()
    runs = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pcap = os.path.join(tmp, "bench.pcapng")
            base = [args.podtracer, "capture", "--netns", netns, "-i", "snpbench-b"]
            for name, argv in (
                ("tcpdump -w file.pcap",
                 ["ip", "netns", "exec", capture.NS_B, "tcpdump", "-i", "snpbench-b", "-w", pcap]),
                ("podtracer -w file.pcapng", base + ["-w", pcap]),
                ("podtracer --sink kafka", base + ["--sink", f"kafka://{address}/snoopy.packets",
                                                   "--sink-timeout", "60s"]),
            ):
                runs.append(measure(name, argv, args.seconds, args.streams))
    finally:
        capture.teardown()
        broker.send_signal(signal.SIGKILL)
        broker.wait()
    print(f"{'tool':<26}{'sent':>10}{'captured':>10}{'k-drop':>8}{'delivered':>10}{'s-drop':>8}"
          f"{'cpu s':>8}{'ns/pkt':>8}{'pkt/s':>10}")
    for r in runs:
        print(f"{r['tool']:<26}{r['sent']:>10}{r['captured']:>10}{r['dropped']:>8}{r['delivered']:>10}"
              f"{r['sink_dropped']:>8}{r['cpu']:>8.2f}{r['ns_per_packet']:>8.0f}"
              f"{r['delivered'] / args.seconds:>10.0f}")
    f, k = runs[1], runs[2]
    print(f"ratio kafka/file: delivered {k['delivered'] / max(f['delivered'], 1):.2f}x, "
          f"CPU per packet {k['ns_per_packet'] / f['ns_per_packet']:.2f}x, "
          f"kernel drops {k['dropped']} vs {f['dropped']}, sink drops {k['sink_dropped']}")


def measure(name, argv, seconds, streams):
    """Starts a capture, floods, stops it with SIGINT; its numbers, the sink's included."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        time.sleep(1.0)
        sent = capture.flood(seconds, streams)
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGINT)
        _, status, usage = os.wait4(proc.pid, 0)
        err.seek(0)
        text = err.read().decode(errors="replace")

    def grab(pattern, default=None):
        m = re.search(pattern, text, re.M)
        if not m:
            if default is not None:
                return default
            sys.exit(f"{name}: no match for {pattern!r} in:\n{text}")
        return int(m.group(1))
    captured = grab(r"(\d+) packets? captured")
    dropped = grab(r"(\d+) packets? dropped by kernel")
    delivered = grab(r": (\d+) sent in", captured)
    sink_dropped = grab(r"(\d+) dropped(?:,|$)", 0) if "kafka://" in text else 0
    cpu = usage.ru_utime + usage.ru_stime
    return {"tool": name, "sent": sent, "captured": captured, "dropped": dropped,
            "delivered": delivered, "sink_dropped": sink_dropped, "cpu": cpu,
            "ns_per_packet": cpu * 1e9 / max(captured, 1)}


if __name__ == "__main__":
    main()
