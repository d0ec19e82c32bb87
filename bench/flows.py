#!/usr/bin/env python3
"""Flow benchmark: `podtracer flows -r` against `tshark -q -z conv,tcp -r` and
`tcpdump -nr FILE -w /dev/null` on one generated pcap of at least 1 M packets.

The pcap is generated here (deterministic, no network): tens of thousands of TCP
connections to a few servers, interleaved in time — handshake, a request, a response of
data segments with ACKs, a FIN exchange; one in ten is refused (SYN, RST). Packets are
stored as headers only (snaplen 54, as `tcpdump -s 54` would), the original lengths
reflecting the full payloads, so the file stays small while every tool sees the same
conversations and byte counts.

Each tool runs once on the same file; the script prints wall time, CPU time (user + sys,
from wait4's rusage) and peak RSS of each, and the ratios. It also checks that podtracer
and tshark found the same number of TCP conversations. Then it runs podtracer once more
with a flow table of 1000 entries to show memory stays bounded when flows are evicted.

usage: bench/flows.py [--packets 1000000] [--podtracer target/release/podtracer] [--keep FILE]
"""

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time

ETH = bytes.fromhex("020000000000" "020000000001" "0800")
SNAPLEN = 54  # Ethernet + IPv4 + TCP headers, no options


def ip_checksum(header):
    s = sum(struct.unpack("!10H", header))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def frame(src, dst, sport, dport, seq, ack, flags, payload_len):
    """Header bytes (54) and original length of one TCP/IPv4 packet."""
    total = 40 + payload_len
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      5 << 4, flags, 502, 0, 0)
    return ETH + ip + tcp, 14 + total


SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08


def connection(rng, i, start_us):
    """Packets of one connection: (time_us, header bytes, original length)."""
    client = struct.pack("!BBBB", 10, 1, (i >> 8) & 0xFF, i & 0xFF)
    server = struct.pack("!BBBB", 10, 2, 0, 1 + i % 8)
    cport, sport = 10000 + i % 50000, 80 + i % 4
    c0, s0 = rng.getrandbits(32), rng.getrandbits(32)
    t = start_us
    out = []

    def c2s(seq, ack, flags, n=0):
        out.append((t, *frame(client, server, cport, sport, seq, ack, flags, n)))

    def s2c(seq, ack, flags, n=0):
        out.append((t, *frame(server, client, sport, cport, seq, ack, flags, n)))

    c2s(c0, 0, SYN)
    t += 50 + rng.randrange(200)
    if i % 10 == 9:
        s2c(0, c0 + 1, RST | ACK)
        return out
    s2c(s0, c0 + 1, SYN | ACK)
    t += 10 + rng.randrange(50)
    c2s(c0 + 1, s0 + 1, ACK)
    t += 20
    req = 100 + rng.randrange(300)
    c2s(c0 + 1, s0 + 1, PSH | ACK, req)
    cn = c0 + 1 + req
    seq = s0 + 1
    for j in range(14):
        t += 5 + rng.randrange(20)
        s2c(seq, cn, ACK, 1448)
        seq += 1448
        if j % 2 == 1:
            t += 3
            c2s(cn, seq, ACK)
    t += 100
    c2s(cn, seq, FIN | ACK)
    t += 30
    s2c(seq, cn + 1, FIN | ACK)
    t += 10
    c2s(cn + 1, seq + 1, ACK)
    return out


def generate(path, packets_wanted):
    rng = random.Random(20241126)
    packets = []
    i = 0
    while len(packets) < packets_wanted:
        # A new connection every 20 µs on average: thousands overlap at any time.
        packets.extend(connection(rng, i, 1_000_000 + i * 20 + rng.randrange(20)))
        i += 1
    packets.sort(key=lambda p: p[0])
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, 1))
        base = 1_700_000_000
        write = f.write
        pack = struct.Struct("<IIII").pack
        for t, data, orig in packets:
            write(pack(base + t // 1_000_000, t % 1_000_000, len(data), orig))
            write(data)
    return len(packets), i


def measure(name, argv, out_path):
    """Runs one tool; its stdout goes to a file (read later, so that this process stays
    small: a child forked from a big parent reports the parent's memory as its peak RSS)."""
    start = time.monotonic()
    with open(out_path, "wb") as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        err.seek(0)
        errors = err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{name} failed ({status}): {errors}")
    return {"tool": name, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss_kib": usage.ru_maxrss, "out": out_path}


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--podtracer", default="target/release/podtracer")
    ap.add_argument("--keep", help="write the generated pcap here and keep it")
    ap.add_argument("--generate-only", metavar="FILE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate_only:
        n, conns = generate(args.generate_only, args.packets)
        print(json.dumps([n, conns]))
        return
    for tool in ("tshark", "tcpdump"):
        if subprocess.run(["which", tool], stdout=subprocess.DEVNULL).returncode != 0:
            sys.exit(f"bench/flows.py needs {tool}")
    with tempfile.TemporaryDirectory() as tmp:
        pcap = args.keep or os.path.join(tmp, "flows-bench.pcap")
        t0 = time.monotonic()
        # In a separate process: a child forked from a big parent would report the
        # parent's memory as its own peak RSS.
        n, conns = json.loads(subprocess.run(
            [sys.executable, __file__, "--packets", str(args.packets), "--generate-only", pcap],
            check=True, capture_output=True, text=True).stdout)
        print(f"generated {pcap}: {n} packets, {conns} TCP connections, "
              f"{os.path.getsize(pcap) / 1e6:.0f} MB in {time.monotonic() - t0:.1f} s")
        out = lambda name: os.path.join(tmp, name)
        runs = [
            measure("podtracer flows -r", [args.podtracer, "flows", "-r", pcap, "-o", "json"],
                    out("podtracer.json")),
            measure("tshark -q -z conv,tcp -r", ["tshark", "-n", "-q", "-z", "conv,tcp", "-r", pcap],
                    out("tshark.txt")),
            measure("tcpdump -nr -w /dev/null", ["tcpdump", "-n", "-r", pcap, "-w", "/dev/null"],
                    out("tcpdump.txt")),
            measure("podtracer flows -r --max-flows 1000",
                    [args.podtracer, "flows", "-r", pcap, "-o", "json", "--max-flows", "1000"],
                    out("bounded.json")),
        ]
        tcp_flows = sum(1 for l in lines(runs[0]["out"])
                        if '"type":"flow"' in l and '"protocol":"tcp"' in l)
        tshark_convs = sum(1 for l in lines(runs[1]["out"]) if "<->" in l)
        summary = next(json.loads(l) for l in lines(runs[3]["out"]) if '"type":"summary"' in l)
    print(f"TCP conversations: podtracer {tcp_flows}, tshark {tshark_convs}"
          f"{'' if tcp_flows == tshark_convs else '  <-- MISMATCH'}")
    print(f"{'tool':<40}{'wall s':>9}{'cpu s':>9}{'pkts/s (cpu)':>14}{'peak RSS MiB':>14}")
    for r in runs:
        print(f"{r['tool']:<40}{r['wall']:>9.2f}{r['cpu']:>9.2f}{n / max(r['cpu'], 1e-9):>14,.0f}"
              f"{r['rss_kib'] / 1024:>14.1f}")
    p, t, d, b = runs
    print(f"tshark / podtracer: {t['wall'] / p['wall']:.1f}x wall, {t['cpu'] / p['cpu']:.1f}x CPU "
          f"(target: >= 10x)")
    print(f"podtracer / tcpdump (read + discard): {p['wall'] / d['wall']:.1f}x wall, "
          f"{p['cpu'] / d['cpu']:.1f}x CPU")
    print(f"bounded run: {summary['table']['evicted']} of {summary['table']['flows']} flows evicted, "
          f"peak RSS {b['rss_kib'] / 1024:.1f} MiB vs {p['rss_kib'] / 1024:.1f} MiB unbounded")
    if tcp_flows != tshark_convs:
        sys.exit(1)


if __name__ == "__main__":
    main()
