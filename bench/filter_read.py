#!/usr/bin/env python3
"""Offline filter benchmark: `podtracer read` against `tcpdump -r` on the same big file.

Writes a pcap of N (default 1,000,000) Ethernet frames built by hand (IPv4 and IPv6 TCP with
varied flags and ports, UDP, ICMP, ARP, VLAN-tagged frames), then for each filter
expression runs, in the same run and alternately,

    podtracer read big.pcap -w /dev/null EXPR
    tcpdump -r big.pcap -w /dev/null EXPR

takes the best of R rounds (default 5) for each, checks both kept the same number of
packets (by reading each tool's output file once), and prints the CPU time (user + sys,
from wait4's rusage; steadier than wall time on a shared machine), the wall time, and the
CPU ratio podtracer / tcpdump (below 1.0: podtracer is faster). Needs tcpdump; no
privileges.

usage: bench/filter_read.py [--packets 1000000] [--rounds 3] [--podtracer target/release/podtracer]
"""

import argparse
import os
import random
import struct
import subprocess
import sys
import tempfile
import time

EXPRESSIONS = [
    "tcp port 80",
    "host 10.0.0.1 and (port 22 or port 443)",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "ip6 and udp",
    "vlan 5 and tcp",
    "not arp and net 10.0.0.0/8",
]


def frames(rng):
    """A pool of distinct frames to cycle through (so the file is big but cheap to build)."""
    macs = [bytes([2, 0, 0, 0, 0, i]) for i in range(1, 5)]
    ips = [bytes([10, 0, 0, i]) for i in range(1, 6)] + [bytes([192, 168, 1, 1])]
    ip6s = [bytes(15) + bytes([i]) for i in range(1, 4)]
    ports = [22, 53, 80, 443, 8080, 1024, 40000]
    pool = []
    for _ in range(4096):
        kind = rng.random()
        eth = rng.choice(macs) + rng.choice(macs)
        sport, dport = rng.choice(ports), rng.choice(ports)
        if kind < 0.45:
            tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, rng.randrange(256), 65535, 0, 0) + b"x" * rng.randrange(0, 64)
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0) + rng.choice(ips) + rng.choice(ips)
            pool.append(eth + b"\x08\x00" + ip + tcp)
        elif kind < 0.65:
            udp = struct.pack("!HHHH", sport, dport, 8 + 32, 0) + b"u" * 32
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0) + rng.choice(ips) + rng.choice(ips)
            pool.append(eth + b"\x08\x00" + ip + udp)
        elif kind < 0.8:
            nh = rng.choice([6, 17, 58])
            l4 = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 2, 65535, 0, 0) if nh == 6 else struct.pack("!HHHH", sport, dport, 8, 0)
            ip6 = struct.pack("!IHBB", 0x60000000, len(l4), nh, 64) + rng.choice(ip6s) + rng.choice(ip6s)
            pool.append(eth + b"\x86\xdd" + ip6 + l4)
        elif kind < 0.88:
            icmp = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"p" * 48
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(icmp), 1, 0, 64, 1, 0) + rng.choice(ips) + rng.choice(ips)
            pool.append(eth + b"\x08\x00" + ip + icmp)
        elif kind < 0.93:
            arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + macs[0] + rng.choice(ips) + bytes(6) + rng.choice(ips)
            pool.append(eth + b"\x08\x06" + arp)
        else:
            tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, 2, 65535, 0, 0)
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 40, 1, 0, 64, 6, 0) + rng.choice(ips) + rng.choice(ips)
            tag = struct.pack("!HH", 0x8100, rng.choice([5, 100]))
            pool.append(eth + tag + b"\x08\x00" + ip + tcp)
    return pool


def write_pcap(path, count, rng):
    pool = frames(rng)
    with open(path, "wb", buffering=1 << 20) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i in range(count):
            fr = pool[i % len(pool)]
            f.write(struct.pack("<IIII", i // 1000, (i % 1000) * 1000, len(fr), len(fr)))
            f.write(fr)


def count_packets(path):
    n, size = 0, os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(24)
        pos = 24
        while pos + 16 <= size:
            hdr = f.read(16)
            caplen = struct.unpack("<IIII", hdr)[2]
            f.seek(caplen, 1)
            pos += 16 + caplen
            n += 1
    return n


def timed(argv):
    """(CPU seconds, wall seconds) of one run of argv."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv} failed")
    return usage.ru_utime + usage.ru_stime, wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--podtracer", default="target/release/podtracer")
    args = ap.parse_args()
    if not os.path.exists(args.podtracer):
        sys.exit(f"{args.podtracer} not found; build it with: cargo build --release -p podtracer")
    with tempfile.TemporaryDirectory() as tmp:
        big = os.path.join(tmp, "big.pcap")
        t0 = time.perf_counter()
        write_pcap(big, args.packets, random.Random(42))
        print(f"wrote {args.packets} packets ({os.path.getsize(big) >> 20} MiB) in {time.perf_counter() - t0:.1f} s")
        print(f"{'expression':48} {'kept':>8} {'podtracer cpu/wall s':>21} {'tcpdump cpu/wall s':>19} {'ratio':>6}")
        worst = 0.0
        for expr in EXPRESSIONS:
            ours_out, theirs_out = os.path.join(tmp, "ours.pcap"), os.path.join(tmp, "theirs.pcap")
            subprocess.run([args.podtracer, "read", big, "-w", ours_out, *expr.split()], check=True)
            subprocess.run(["tcpdump", "-r", big, "-w", theirs_out, expr], check=True, stderr=subprocess.DEVNULL)
            kept_ours, kept_theirs = count_packets(ours_out), count_packets(theirs_out)
            if kept_ours != kept_theirs:
                sys.exit(f"{expr!r}: podtracer kept {kept_ours}, tcpdump {kept_theirs}")
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(timed([args.podtracer, "read", big, "-w", "/dev/null", *expr.split()]))
                theirs.append(timed(["tcpdump", "-r", big, "-w", "/dev/null", expr]))
            (oc, ow), (tc, tw) = min(ours), min(theirs)
            ratio = oc / tc
            worst = max(worst, ratio)
            print(f"{expr:48} {kept_ours:>8} {oc:>10.3f}/{ow:<10.3f} {tc:>9.3f}/{tw:<9.3f} {ratio:>6.2f}")
        print(f"worst ratio podtracer/tcpdump: {worst:.2f} ({'at least as fast' if worst <= 1.0 else 'slower'})")


if __name__ == "__main__":
    main()
