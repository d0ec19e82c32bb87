#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/TARGET/) from real captures.

    sudo python3 fuzz/seeds.py

Traffic (ICMP and ICMPv6 echo, a TCP connection with data and its close, UDP) runs on the
loopback of a network namespace this script creates and deletes; tcpdump captures it as
Ethernet (lo), Linux cooked v1 and v2 (-i any -y LINUX_SLL / LINUX_SLL2); tshark rewrites one
capture as pcapng. The corpora are small on purpose (a few KB a target): libFuzzer grows
them as it runs, and only these seeds are committed.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NETNS = "snoopy-fuzz-seeds"
EXPRS = HERE.parent / "snoopy-filter" / "tests" / "exprs.txt"


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def ns(*argv: str) -> list[str]:
    return ["ip", "netns", "exec", NETNS, *argv]


TRAFFIC = r"""
import socket
srv = socket.socket(); srv.bind(("127.0.0.1", 8080)); srv.listen()
cli = socket.create_connection(("127.0.0.1", 8080)); conn, _ = srv.accept()
cli.sendall(b"GET / HTTP/1.0\r\n\r\n"); conn.recv(100); conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n")
cli.recv(100); cli.close(); conn.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"\x12\x34\x01\x00\x00\x01" + bytes(6) + b"\x03www\x00\x00\x01\x00\x01", ("127.0.0.1", 53))
"""


def capture(workdir: Path, name: str, iface: str, linktype: str | None) -> Path:
    out = workdir / f"{name}.pcap"
    argv = ["tcpdump", "-Z", "root", "-i", iface, "-s", "200", "--immediate-mode", "-U", "-w", str(out)]
    if linktype:
        argv[5:5] = ["-y", linktype]
    dump = subprocess.Popen(ns(*argv), stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    subprocess.run(ns("ping", "-c", "2", "-i", "0.2", "127.0.0.1"), check=True, stdout=subprocess.DEVNULL)
    subprocess.run(ns("ping", "-6", "-c", "1", "::1"), check=True, stdout=subprocess.DEVNULL)
    subprocess.run(ns("python3", "-c", TRAFFIC), check=True)
    time.sleep(0.5)
    dump.terminate()
    dump.wait()
    return out


def pcap_records(path: Path) -> tuple[int, list[tuple[int, int, int, bytes]]]:
    """(link type, [(seconds, nanoseconds, orig_len, data)]) of a little-endian pcap."""
    b = path.read_bytes()
    magic, _, _, _, _, _, link = struct.unpack_from("<IHHiIII", b)
    scale = 1000 if magic == 0xA1B2C3D4 else 1
    out, pos = [], 24
    while pos + 16 <= len(b):
        sec, frac, incl, orig = struct.unpack_from("<IIII", b, pos)
        out.append((sec, frac * scale, orig, b[pos + 16 : pos + 16 + incl]))
        pos += 16 + incl
    return link, out


def record(sec: int, nsec: int, orig: int, data: bytes, flags: int = 0) -> bytes:
    excess = max(-32768, min(32767, orig - len(data)))
    return struct.pack("<QIHhB", sec, nsec, len(data), excess, flags) + data


# The selector byte of fuzz/src/lib.rs's link_type().
SELECTOR = {1: 0, 101: 1, 113: 2, 276: 3}


def write(target: str, name: str, data: bytes) -> None:
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def main() -> int:
    if os.geteuid() != 0:
        sys.exit("seeds.py needs root: it creates a network namespace (sudo python3 fuzz/seeds.py)")
    for tool in ("ip", "tcpdump", "tshark", "ping"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: run testbed/setup.sh packages")
    shutil.rmtree(HERE / "corpus", ignore_errors=True)
    subprocess.run(["ip", "netns", "del", NETNS], stderr=subprocess.DEVNULL)
    run("ip", "netns", "add", NETNS)
    try:
        run(*ns("ip", "link", "set", "lo", "up"))
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            files = [
                capture(work, "ether", "lo", None),
                capture(work, "sll", "any", "LINUX_SLL"),
                capture(work, "sll2", "any", "LINUX_SLL2"),
            ]
            pcapng = work / "ether.pcapng"
            run("tshark", "-r", str(files[0]), "-F", "pcapng", "-w", str(pcapng))
            # read: the files themselves (the first 2 KB: a handful of records each).
            for f in [*files, pcapng]:
                write("read", f.name, f.read_bytes()[:2048])
            frames = []
            for f in files:
                link, recs = pcap_records(f)
                frames.append((link, recs))
                sel = SELECTOR[link]
                body = b"".join(record(*r) for r in recs)
                # decode: every link type, with a few flag sets (bytes 1-2 of the layout).
                for a, b in [(0, 0), (0x48, 0), (0x91, 2), (0xD6, 1)]:
                    write("decode", f"{f.stem}-{a:02x}{b:02x}", bytes([sel, a, b]) + body)
                # flows: small limits and timeouts, so eviction and expiry happen.
                write("flows", f.stem, bytes([sel, 4]) + struct.pack("<HHHH", 100, 50, 300, 100) + body)
            # raw IP: the Ethernet frames without their header.
            _, recs = frames[0]
            raw = b"".join(record(s, n, o - 14, d[14:]) for s, n, o, d in recs if len(d) > 14)
            write("decode", "raw-0000", bytes([1, 0, 0]) + raw)
            write("flows", "raw", bytes([1, 4]) + struct.pack("<HHHH", 100, 50, 300, 100) + raw)
            # filter: a sample of the hand-written expressions, each with a real frame.
            exprs = [l for l in EXPRS.read_text().splitlines() if l and not l.startswith("#")]
            for i, expr in enumerate(exprs[::12]):
                link, recs = frames[i % len(frames)]
                _, _, _, frame = recs[i % len(recs)]
                head = bytes([SELECTOR[link]]) + struct.pack("<I", 262144) + bytes([0, 1, 0, 0, 0])
                write("filter", f"expr-{i:03}", head + expr.encode() + b"\0" + frame)
    finally:
        subprocess.run(["ip", "netns", "del", NETNS])
    return 0


if __name__ == "__main__":
    sys.exit(main())
