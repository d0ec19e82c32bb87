#!/usr/bin/env python3
"""Compile-time benchmark: `podtracer read -d` against `tcpdump -d` on large expressions.

For each expression, in the same run and alternately, compiles and prints the program with

    podtracer read tiny.pcap -d EXPR
    tcpdump -r tiny.pcap -d EXPR

(tiny.pcap: an empty Ethernet pcap, so both compile for the same link type and read no
packet). Takes the best of R rounds (default 3) of CPU time (user + sys, from wait4's
rusage) and the peak RSS, checks both accepted or both refused the expression (podtracer
also refuses what is over its documented bounds: 32,768 instructions before optimisation,
4,096 after; such a row says "bounded"), compares program lengths where both accepted,
and prints the CPU ratio podtracer / tcpdump (below 1.0: podtracer is faster). The
largest expressions take libpcap minutes: `--max-terms` caps them. Needs tcpdump; no
privileges, no network.

usage: bench/filter_compile.py [--rounds 3] [--max-terms 1000] [--podtracer target/release/podtracer]
"""

import argparse
import os
import struct
import subprocess
import sys
import tempfile


def expressions(max_terms):
    """(label, expression) pairs, growing in size."""
    out = []
    for n in (10, 100, 500, 1000, 2000):
        if n > max_terms:
            break
        out.append((f"OR of {n} tcp port N", " or ".join(f"tcp port {1000 + i}" for i in range(n))))
        out.append((f"OR of {n} host A", " or ".join(f"host 10.{i >> 8}.{i & 255}.1" for i in range(n))))
        out.append((f"OR of {n} net A/24", " or ".join(f"net 10.{i >> 8}.{i & 255}.0/24" for i in range(n))))
    for depth in (50, 150):
        out.append((f"{depth} nested ( )", "(" * depth + "tcp port 80" + ")" * depth))
        out.append((f"{depth} x (a and (b or", "(tcp and (port 1 or " * depth + "udp" + "))" * depth))
    out.append(("20,000 not", "not " * 20_000 + "tcp"))
    return out


def write_empty_pcap(path):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))


def timed(argv):
    """(accepted, CPU seconds, peak RSS MiB, stdout lines) of one run of argv."""
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        out.seek(0)
        lines = sum(1 for _ in out)
    ok = os.waitstatus_to_exitcode(status) == 0
    return ok, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-terms", type=int, default=1000)
    ap.add_argument("--podtracer", default="target/release/podtracer")
    args = ap.parse_args()
    if not os.path.exists(args.podtracer):
        sys.exit(f"{args.podtracer} not found; build it with: cargo build --release -p podtracer")
    with tempfile.TemporaryDirectory() as tmp:
        tiny = os.path.join(tmp, "tiny.pcap")
        write_empty_pcap(tiny)
        print(f"{'expression':28} {'bytes':>7} {'podtracer s / MiB / insns':>27} {'tcpdump s / MiB / insns':>25} {'cpu ratio':>9}")
        ratios = []
        for label, expr in expressions(args.max_terms):
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(timed([args.podtracer, "read", tiny, "-d", expr]))
                theirs.append(timed(["tcpdump", "-r", tiny, "-d", expr]))
            o_ok, o_cpu, o_rss, o_lines = min(ours, key=lambda r: r[1])
            t_ok, t_cpu, t_rss, t_lines = min(theirs, key=lambda r: r[1])
            ours_s = f"{o_cpu:.3f} / {o_rss:.0f} / {o_lines if o_ok else 'refused'}"
            theirs_s = f"{t_cpu:.3f} / {t_rss:.0f} / {t_lines if t_ok else 'refused'}"
            if o_ok and t_ok:
                ratio = o_cpu / max(t_cpu, 1e-3)
                ratios.append(ratio)
                note = f"{ratio:>9.2f}"
            elif not o_ok and t_ok:
                note = "  bounded"
            elif o_ok and not t_ok:
                sys.exit(f"{label}: podtracer accepts what tcpdump refuses")
            else:
                note = " both say no"
            print(f"{label:28} {len(expr):>7} {ours_s:>27} {theirs_s:>25} {note}")
        if ratios:
            print(f"worst cpu ratio podtracer/tcpdump where both compile: {max(ratios):.2f}")


if __name__ == "__main__":
    main()
