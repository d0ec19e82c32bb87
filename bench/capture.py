#!/usr/bin/env python3
"""Capture benchmark: podtracer against tcpdump on the same 64-byte UDP flood.

Builds two network namespaces joined by a veth pair (addresses from 198.18.0.0/15 that exist
only inside them), floods 64-byte UDP datagrams from one to the other with iperf3, and
captures on the receiving veth with each tool in turn, one flood per tool. For each it prints
packets sent, captured, dropped by the kernel, CPU seconds of the capturing process
(user + sys, from wait4's rusage) and CPU nanoseconds per captured packet, then the ratio
podtracer / tcpdump. Needs root, iperf3 and tcpdump.

usage: bench/capture.py [--seconds 5] [--streams 2] [--podtracer target/release/podtracer]
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

NS_A, NS_B = f"snpbench{os.getpid()}a", f"snpbench{os.getpid()}b"
IP_A, IP_B = "198.18.0.1", "198.18.0.2"


def sh(*argv, check=True, **kw):
    return subprocess.run(argv, check=check, **kw)


def setup():
    sh("ip", "netns", "add", NS_A)
    sh("ip", "netns", "add", NS_B)
    sh("ip", "link", "add", "snpbench-a", "netns", NS_A, "type", "veth", "peer", "name", "snpbench-b", "netns", NS_B)
    for ns, dev, ip in ((NS_A, "snpbench-a", IP_A), (NS_B, "snpbench-b", IP_B)):
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", dev)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")


def teardown():
    for ns in (NS_A, NS_B):
        sh("ip", "netns", "del", ns, check=False, stderr=subprocess.DEVNULL)


def flood(seconds, streams):
    """Runs one iperf3 UDP flood A -> B; returns the number of datagrams sent."""
    server = subprocess.Popen(["ip", "netns", "exec", NS_B, "iperf3", "-s", "-1", "-B", IP_B],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        out = sh("ip", "netns", "exec", NS_A, "iperf3", "-c", IP_B, "-u", "-b", "0", "-l", "64",
                 "-t", str(seconds), "-P", str(streams), "-J", capture_output=True, text=True).stdout
        report = json.loads(out)
        return int(report["end"]["sum"]["packets"])
    finally:
        server.wait(timeout=10)


def measure(name, argv, seconds, streams):
    """Starts a capture, floods, stops it with SIGINT; returns its numbers."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
        time.sleep(1.0)  # let it open the socket before traffic starts
        sent = flood(seconds, streams)
        time.sleep(0.5)  # let the last blocks be handed over
        # Peak RSS from /proc: wait4's ru_maxrss would count the pages the child shared
        # with this Python process right after fork.
        with open(f"/proc/{proc.pid}/status") as status:
            hwm_kib = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
        os.kill(proc.pid, signal.SIGINT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = status
        err.seek(0)
        text = err.read().decode(errors="replace")
    def grab(label):
        m = re.search(r"(\d+) packets? " + label, text)
        if not m:
            sys.exit(f"{name}: no '{label}' line in its output:\n{text}")
        return int(m.group(1))
    captured, dropped = grab("captured"), grab("dropped by kernel")
    cpu = usage.ru_utime + usage.ru_stime
    return {"tool": name, "sent": sent, "captured": captured, "dropped": dropped, "cpu": cpu,
            "ns_per_packet": cpu * 1e9 / max(captured, 1), "max_rss_kib": hwm_kib}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--podtracer", default="target/release/podtracer")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/capture.py needs root (network namespaces, packet sockets)")
    netns = f"/var/run/netns/{NS_B}"
    setup()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pcap = os.path.join(tmp, "bench.pcap")
            runs = [
                measure("tcpdump -w /dev/null",
                        ["ip", "netns", "exec", NS_B, "tcpdump", "-i", "snpbench-b", "-w", "/dev/null"],
                        args.seconds, args.streams),
                measure("podtracer -w /dev/null",
                        [args.podtracer, "capture", "--netns", netns, "-i", "snpbench-b", "-w", "/dev/null"],
                        args.seconds, args.streams),
                measure("tcpdump -w file.pcap",
                        ["ip", "netns", "exec", NS_B, "tcpdump", "-i", "snpbench-b", "-w", pcap],
                        args.seconds, args.streams),
                measure("podtracer -w file.pcap",
                        [args.podtracer, "capture", "--netns", netns, "-i", "snpbench-b", "-w", pcap],
                        args.seconds, args.streams),
            ]
    finally:
        teardown()
    print(f"{'tool':<26}{'sent':>10}{'captured':>10}{'dropped':>9}{'cpu s':>8}{'ns/pkt':>8}{'rss KiB':>9}")
    for r in runs:
        print(f"{r['tool']:<26}{r['sent']:>10}{r['captured']:>10}{r['dropped']:>9}"
              f"{r['cpu']:>8.2f}{r['ns_per_packet']:>8.0f}{r['max_rss_kib']:>9}")
    for i in (0, 2):
        t, p = runs[i], runs[i + 1]
        print(f"ratio podtracer/tcpdump ({t['tool'].split(' ', 1)[1]}): "
              f"CPU per packet {p['ns_per_packet'] / t['ns_per_packet']:.2f}x, "
              f"drops {p['dropped']} vs {t['dropped']}")


if __name__ == "__main__":
    main()
