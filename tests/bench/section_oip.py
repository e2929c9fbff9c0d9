"""oip: the Open Inference Protocol's infer route with 32x128 INT64
input_ids per request, the ids and the probabilities in JSON against the
same request as binary tensor data (issue 18): req/s, latency, the daemon's
CPU per request and the bytes on the wire."""
import json
import os
import random
import struct

from bench_daemon import Daemon, sliced, wrk, write_bodies
from bench_lib import fmt, log, read_config, verdict

NAME = "oip"
TITLE = "Open Inference Protocol: binary tensor data vs JSON (32x128 INT64 input_ids per request)"
BATCH, LENGTH, CONNS = 32, 128, 8


def requests(vocab_size, n=8, seed=18):
    """n requests of BATCH x LENGTH ids: (JSON body, binary body, JSON length)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ids = [rng.randrange(1, vocab_size) for _ in range(BATCH * LENGTH)]
        tensor = {"name": "input_ids", "datatype": "INT64", "shape": [BATCH, LENGTH]}
        as_json = {"inputs": [{**tensor, "data": ids}], "outputs": [{"name": "probabilities"}]}
        head = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": 8 * len(ids)}}],
                           "outputs": [{"name": "probabilities",
                                        "parameters": {"binary_data": True}}]},
                          separators=(",", ":")).encode()
        out.append((as_json, head + struct.pack("<%dq" % len(ids), *ids), len(head)))
    return out


def run(ctx):
    model_dir = ctx.model("official")
    slices, slice_s = (2, 2) if ctx.quick else (4, 3)
    reqs = requests(read_config(model_dir)["vocab_size"])
    json_bodies = write_bodies(os.path.join(ctx.tmp, "oip_json.jsonl"), [j for j, _, _ in reqs])
    binary_bodies = os.path.join(ctx.tmp, "oip_binary.lines")
    with open(binary_bodies, "w") as f:
        for _, body, n in reqs:
            f.write(f"OIP {n} {body.hex()}\n")
    d = Daemon(ctx.build, ctx.tmp, "oip", models=[{"name": "cls", "path": model_dir}])
    route = "/v2/models/cls/infer"
    try:
        status, body = d.post(route, json.dumps(reqs[0][0]))
        assert status == 200, body
        wrk(d.port, route, binary_bodies, CONNS, 2)  # warm-up; also checks binary answers 200
        jobs = [{"key": key, "model": "cls", "conns": CONNS, "bodies": bodies, "route": route}
                for key, bodies in [("JSON", json_bodies), ("binary", binary_bodies)]]
        accs = sliced(d, jobs, slices, slice_s)
        rows = []
        for key, a in accs.items():
            a["label"] = key
            a["request_bytes"] = (len(json.dumps(reqs[0][0], separators=(",", ":")))
                                  if key == "JSON" else len(reqs[0][1]))
            rows.append(a)
            log(f"oip {key}: {a['req_s']:.1f} req/s, p50 {a['p50_us'] / 1e3:.1f} ms, "
                f"CPU {a['cpu_ms_per_req']:.2f} ms/req, errors {a['errors']}")
        ctx.res[NAME] = {"rows": rows, "ratio": rows[1]["req_s"] / rows[0]["req_s"],
                         "cpu_saved_ms": rows[0]["cpu_ms_per_req"] - rows[1]["cpu_ms_per_req"]}
    finally:
        d.stop()


def targets(res):
    sec = res.get(NAME, {})
    r = sec.get("ratio")
    return [("OIP binary req/s >= JSON req/s (32x128 input_ids)",
             f"{fmt(r)}x; daemon CPU {fmt(sec.get('cpu_saved_ms'))} ms/req less",
             verdict(r and r >= 1.0))]


def report(res):
    sec = res.get(NAME)
    if not sec:
        return []
    out = ["Short wrk runs alternating JSON and binary, 8 connections, POST "
           "/v2/models/cls/infer on the official-shape classifier, every request 32 x 128 "
           "random INT64 ids (8 different requests); JSON asks for probabilities in JSON, binary "
           "sends the ids as binary tensor data and asks for probabilities in binary. p50/p99 are "
           "medians of the runs'.\n",
           "| request | bytes sent | req/s | p50 ms | p99 ms | daemon CPU ms/req | errors |",
           "|---|--:|--:|--:|--:|--:|--:|"]
    for r in sec["rows"]:
        out.append(f"| {r['label']} | {r['request_bytes']} | {r['req_s']:.1f} | "
                   f"{r['p50_us'] / 1e3:.1f} | {r['p99_us'] / 1e3:.1f} | "
                   f"{r['cpu_ms_per_req']:.2f} | {r['errors']} |")
    out.append(f"\nbinary / JSON req/s: {fmt(sec['ratio'])}x; the daemon spends "
               f"{fmt(sec['cpu_saved_ms'])} ms less CPU per request.")
    return out
