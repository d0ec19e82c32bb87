#!/usr/bin/env python3
"""Start-up latency of `podtracer capture --pod`: process start -> ready to receive packets.

"Ready" is the moment podtracer prints its "listening on" line, which it does right after the
socket is bound (CRI lookup + namespace entry + ring set-up + filter attach + bind). Brings up
the containerd testbed and one pod, runs the capture N times, prints the median and p90.
Needs root.

usage: bench/startup.py [--runs 20] [--podtracer target/release/podtracer]
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--podtracer", default="target/release/podtracer")
    ap.add_argument("--pods", default="target/release/examples/testbed_pods")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/startup.py needs root")
    socket = subprocess.run(["testbed/containerd.sh", "up"], check=True, capture_output=True,
                            text=True).stdout.strip().splitlines()[-1]
    env = dict(os.environ, CONTAINER_RUNTIME_ENDPOINT=f"unix://{socket}")
    ns, name = "bench-startup", f"target-{os.getpid()}"
    subprocess.run([args.pods, "create", ns, name], check=True, env=env, stdout=subprocess.DEVNULL)
    samples = []
    try:
        for _ in range(args.runs):
            t0 = time.perf_counter()
            proc = subprocess.Popen([args.podtracer, "capture", "--pod", name, "-n", ns, "-w", "/dev/null"],
                                    env=env, stderr=subprocess.PIPE, text=True)
            line = proc.stderr.readline()
            t1 = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=10)
            if "listening on" not in line:
                sys.exit(f"podtracer did not start: {line}")
            samples.append((t1 - t0) * 1000)
    finally:
        subprocess.run([args.pods, "delete", ns, name], env=env)
    samples.sort()
    p90 = samples[max(0, int(len(samples) * 0.9) - 1)]
    print(f"podtracer capture --pod start-up over {len(samples)} runs: "
          f"median {statistics.median(samples):.1f} ms, p90 {p90:.1f} ms, "
          f"min {samples[0]:.1f} ms, max {samples[-1]:.1f} ms (target <= 50 ms)")


if __name__ == "__main__":
    main()
