#!/usr/bin/python3
"""ab_server: two fastformerd binaries (A, B) side by side on the server
section's workload (single-text classify of 64 tokens, wrk), interleaved
A B B A ... per connection count, with the engine's forward measured
between the slices, as section_server does. Not part of `make bench`: a tool
to decide whether a change to the daemon's request path wins, on a shared
machine where one wall-clock figure means little.

  tests/bench/ab_server.py --a BUILD_A --b BUILD_B --model MODEL_DIR \
      [--conns 1,32] [--rounds 6] [--slice 2] [--a-server '{"parse_threads": 0}']

BUILD_x is a build directory holding fastformerd (B's also bench_engine).
Prints, per binary and connection count, the medians over the rounds of
p50, req/s, daemon CPU ms per request, the p50 over the engine's 1x64
forward (1 connection) and server_efficiency (req/s over the engine's docs/s
at the batch size formed), and B/A of each."""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_models  # noqa: E402
from bench_daemon import Daemon, metric_sum, wrk, write_bodies  # noqa: E402
from bench_lib import engine_proc, median, reps_for  # noqa: E402
from section_server import ENGINE_THREADS, engine_docs_at  # noqa: E402


def one_slice(d, path, bodies, conns, slice_s):
    before, cpu0 = d.metrics(), d.cpu_seconds()
    r = wrk(d.port, path, bodies, conns, slice_s)
    after, cpu1 = d.metrics(), d.cpu_seconds()
    n = metric_sum(after, "fastformerd_batch_size_count", "cls") - metric_sum(
        before, "fastformerd_batch_size_count", "cls")
    s = metric_sum(after, "fastformerd_batch_size_sum", "cls") - metric_sum(
        before, "fastformerd_batch_size_sum", "cls")
    def per_batch_ms(name):
        d_sum = metric_sum(after, name + "_sum", "cls") - metric_sum(before, name + "_sum", "cls")
        d_n = metric_sum(after, name + "_count", "cls") - metric_sum(before, name + "_count", "cls")
        return 1e3 * d_sum / d_n if d_n else float("nan")

    return {"p50_ms": r["p50_us"] / 1e3, "req_s": r["req_s"], "errors": r["errors"],
            "infer_ms": per_batch_ms("fastformerd_inference_duration_seconds"),
            "queue_ms": per_batch_ms("fastformerd_queue_duration_seconds"),
            "cpu_ms_per_req": 1e3 * (cpu1 - cpu0) / max(r["requests"], 1),
            "batch": s / n if n else 1.0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--conns", default="1,32")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--slice", type=float, default=2)
    ap.add_argument("--tmp", default="/tmp/ab_server")
    ap.add_argument("--a-server", default="{}", help="JSON: more server keys for A's config")
    ap.add_argument("--b-server", default="{}", help="JSON: more server keys for B's config")
    args = ap.parse_args()
    os.makedirs(args.tmp, exist_ok=True)
    conns = [int(c) for c in args.conns.split(",")]
    texts = bench_models.texts(os.path.join(args.model, "vocab.txt"), 64, 64)
    bodies = write_bodies(os.path.join(args.tmp, "classify.jsonl"),
                          [{"inputs": [t]} for t in texts])
    path = "/v1/models/cls/classify"
    builds = {"A": os.path.abspath(args.a), "B": os.path.abspath(args.b)}
    extra = {"A": json.loads(args.a_server), "B": json.loads(args.b_server)}
    daemons = {k: Daemon(b, args.tmp, f"ab_{k}", models=[{"name": "cls", "path": args.model}],
                         server=extra[k])
               for k, b in builds.items()}
    e = engine_proc(builds["B"], args.model, ENGINE_THREADS)
    res = {(k, c): [] for k in daemons for c in conns}
    fwd = []
    try:
        for d in daemons.values():
            status, body = d.post(path, json.dumps({"inputs": [texts[0]]}))
            assert status == 200, body
            wrk(d.port, path, bodies, 8, 2)
        reps = reps_for(e, "fwd 1 64 {n}", 0.2)
        for rnd in range(args.rounds):
            order = ["A", "B"] if rnd % 2 == 0 else ["B", "A"]
            for c in conns:
                for k in order:
                    x = one_slice(daemons[k], path, bodies, c, args.slice)
                    b = max(1, round(x["batch"]))
                    x["engine_docs_s"], _ = engine_docs_at(e, b, 64, False)
                    x["efficiency"] = x["req_s"] / x["engine_docs_s"]
                    res[(k, c)].append(x)
                    if c == 1:
                        fwd.append(e.seconds(f"fwd 1 64 {reps}") / reps * 1e3)
            print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        e.close()
        for d in daemons.values():
            d.stop()
    fwd_ms = median(fwd)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"engine 1x64 forward (2 engine threads): {fwd_ms:.3f} ms; load average now {load}")
    print("| binary | conns | p50 ms | p50/forward | req/s | efficiency | daemon CPU ms/req | "
          "mean batch | batch forward ms | queue ms | errors |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    keys = ["p50_ms", "req_s", "efficiency", "cpu_ms_per_req", "batch", "infer_ms", "queue_ms"]
    med = {}
    for c in conns:
        for k in ("A", "B"):
            m = {x: median([r[x] for r in res[(k, c)]]) for x in keys}
            med[(k, c)] = m
            print(f"| {k} | {c} | {m['p50_ms']:.3f} | {m['p50_ms'] / fwd_ms:.2f} | "
                  f"{m['req_s']:.0f} | {m['efficiency']:.3f} | {m['cpu_ms_per_req']:.3f} | "
                  f"{m['batch']:.1f} | {m['infer_ms']:.3f} | {m['queue_ms']:.3f} | "
                  f"{sum(r['errors'] for r in res[(k, c)])} |")
    for c in conns:
        a, b = med[("A", c)], med[("B", c)]
        print(f"B/A at {c} conns: p50 {b['p50_ms'] / a['p50_ms']:.3f}, req/s "
              f"{b['req_s'] / a['req_s']:.3f}, CPU/req "
              f"{b['cpu_ms_per_req'] / a['cpu_ms_per_req']:.3f}")
    # Paired per-round ratios: the same round's A and B ran back to back.
    for c in conns:
        pr = [rb["p50_ms"] / ra["p50_ms"] for ra, rb in zip(res[("A", c)], res[("B", c)])]
        cr = [rb["cpu_ms_per_req"] / ra["cpu_ms_per_req"]
              for ra, rb in zip(res[("A", c)], res[("B", c)])]
        print(f"paired B/A at {c} conns, per round: p50 " + " ".join(f"{x:.2f}" for x in pr)
              + "; CPU/req " + " ".join(f"{x:.2f}" for x in cr))


if __name__ == "__main__":
    main()
