#!/usr/bin/env python3
"""Synthetic flow records and probe reports for the dashboard's benchmark and screenshots.

    bench/dashboard/records.py --demo > demo.jsonl        a small shop: web, db, cache, payments
    bench/dashboard/records.py --hosts 1000 --pairs 10000 --records 1000000 > big.jsonl

Every record has the schema podtracer writes (snoopy-capture's FlowRecord); outcomes are
drawn per pair with a fixed seed, so runs are comparable.
"""
import argparse
import json
import random
import sys

BASE_NS = 1_796_000_000_000_000_000


def flow(src, src_ip, dst, dst_ip, port, outcome, t, rtt, nbytes, retrans=0):
    ok = outcome == "closed"
    answered = outcome != "unanswered"
    handshake = None
    if ok:
        handshake = {"syn_to_synack_ns": rtt * 4 // 5, "synack_to_ack_ns": rtt // 5, "rtt_ns": rtt}
    rev_bytes = nbytes * 3 if ok else (54 if outcome == "refused" else 0)
    record = {
        "type": "flow", "reason": "idle", "protocol": "tcp",
        "initiator": {"ip": src_ip, "port": random.randint(30000, 60999)},
        "responder": {"ip": dst_ip, "port": port},
        "first_ns": t, "last_ns": t + 5_000_000,
        "fwd": {"packets": 5, "bytes": nbytes, "first_ns": t, "last_ns": t + 5_000_000},
        "rev": {"packets": 4 if ok else int(answered), "bytes": rev_bytes,
                "first_ns": t if answered else 0, "last_ns": t + 4_000_000 if answered else 0},
        "continued": False, "answered": answered,
        "tcp": {"outcome": outcome, "syns": 1 if answered else 3, "handshake": handshake,
                "fwd": {"retransmissions": retrans, "out_of_order": 0, "zero_window": 0},
                "rev": {"retransmissions": 0, "out_of_order": 0, "zero_window": 0}},
    }
    if src:
        record["initiator"]["name"] = src
    if dst:
        record["responder"]["name"] = dst
    return record


def demo(out):
    pods = {"shop/web-0": "10.244.0.5", "shop/web-1": "10.244.0.6", "shop/db-0": "10.244.0.9",
            "shop/cache-0": "10.244.0.11", "payments/api-0": "10.244.1.4"}
    for i in range(600):
        t = BASE_NS + i * 1_000_000_000
        src = random.choice(["shop/web-0", "shop/web-1"])
        out.append(flow(src, pods[src], "shop/db-0", pods["shop/db-0"], 5432, "closed", t,
                        random.randint(200_000, 900_000), random.randint(500, 9000)))
        cache = "closed" if random.random() > 0.04 else "refused"
        out.append(flow(src, pods[src], "shop/cache-0", pods["shop/cache-0"], 6379, cache, t + 1000,
                        random.randint(100_000, 300_000), random.randint(100, 900)))
        if i % 3 == 0:
            api = "closed" if random.random() > 0.25 else "unanswered"
            out.append(flow(src, pods[src], "payments/api-0", pods["payments/api-0"], 8443, api,
                            t + 2000, random.randint(2_000_000, 9_000_000), 4000, random.randint(0, 2)))
        if i % 10 == 0:
            out.append(flow("payments/api-0", pods["payments/api-0"], None, "10.96.0.10", 53,
                            "refused", t + 3000, 0, 80))
    probes = [
        {"type": "probe", "check": "tcp", "target": "db.shop:5432",
         "results": [{"ok": True, "latency_ns": 400_000 + 50_000 * i, "address": "10.244.0.9:5432"} for i in range(5)]},
        {"type": "probe", "check": "tcp", "target": "api.payments:8443",
         "results": [{"ok": True, "latency_ns": 4_000_000, "address": "10.244.1.4:8443"},
                     {"ok": False, "reason": "timeout", "address": "10.244.1.4:8443"},
                     {"ok": True, "latency_ns": 5_200_000, "address": "10.244.1.4:8443"}]},
    ]
    return out + probes + throughput_mesh(pods)


def throughput_mesh(pods):
    """`podtracer throughput --mesh` among the shop's pods: fast on one node, slower across,
    and the cache's iperf3 port blocked."""
    results = []
    names = ["shop/web-0", "shop/web-1", "shop/db-0", "shop/cache-0"]
    for i, client in enumerate(names):
        for server in names:
            if client == server:
                continue
            result = {"type": "throughput", "client": client, "server": server,
                      "server_address": pods[server], "port": 5201,
                      "settings": {"protocol": "tcp", "direction": "forward", "streams": 1,
                                   "seconds": 5, "round_trips": 20},
                      "started_ms": BASE_NS // 1_000_000 + i, "ended_ms": BASE_NS // 1_000_000 + i + 5000}
            if server == "shop/cache-0":
                result.update(reason="timeout", error="iperf3: unable to connect to server: Connection timed out")
            else:
                gbps = random.uniform(8.5, 9.6) if client.startswith("shop/web") == server.startswith("shop/web") else random.uniform(2.1, 4.8)
                result["forward"] = {"sent_bits_per_second": gbps * 1.001e9, "received_bits_per_second": gbps * 1e9,
                                     "retransmits": random.randint(0, 40)}
                rr = random.uniform(30, 90)
                result["latency"] = {"connect_us": {"min": rr, "mid": rr * 1.2, "max": rr * 3},
                                     "round_trip_us": {"min": rr * 0.8, "mid": rr, "max": rr * 4},
                                     "round_trips": 20}
            results.append(result)
    return results


def big(out, hosts, pairs, records):
    names = [f"ns{h % 20}/pod-{h}" for h in range(hosts)]
    ips = [f"10.{h // 65536 % 256}.{h // 256 % 256}.{h % 256}" for h in range(hosts)]
    chosen = set()
    while len(chosen) < pairs:
        a, b = random.randrange(hosts), random.randrange(hosts)
        if a != b:
            chosen.add((a, b))
    chosen = sorted(chosen)
    fail = {p: random.random() * 0.2 for p in chosen}
    for i in range(records):
        a, b = chosen[i % len(chosen)]
        t = BASE_NS + i * 1_000_000
        outcome = "closed" if random.random() > fail[(a, b)] else random.choice(("refused", "unanswered"))
        out.append(flow(names[a], ips[a], names[b], ips[b], 8080, outcome, t,
                        random.randint(100_000, 5_000_000), 1500))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="the small shop of the screenshots")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=10000)
    parser.add_argument("--records", type=int, default=100000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    random.seed(args.seed)
    records = demo([]) if args.demo else big([], args.hosts, args.pairs, args.records)
    write = sys.stdout.write
    for r in records:
        write(json.dumps(r, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
