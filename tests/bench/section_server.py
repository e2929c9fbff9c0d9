"""server: fastformerd end to end with wrk: 1/8/32/128 connections,
server_efficiency vs the engine at the batch size the server formed, dynamic
batching vs max_batch_size 1, and the daemon's p50 at 1 connection vs the
engine's forward (issues 6 and 11: the daemon keeps the engine's gain)."""
import json
import os

import bench_models
from bench_daemon import Daemon, sliced, wrk, write_bodies
from bench_lib import engine_proc, fmt, log, median, reps_for, verdict

NAME = "server"
TITLE = "Server end to end (wrk, single-text classify of 64 tokens, official shape)"
# Issue 11's thresholds (issue 6 had 1.3 and 0.85).
P50_OVER_FORWARD_MAX = 1.2
EFFICIENCY_MIN = 0.90


# The daemon's default pool: 1 worker whose forwards run on 2 engine threads.
ENGINE_THREADS = 2


def engine_docs_at(e, batch, length, quick):
    """Docs/s of forwards at batch x length on ENGINE_THREADS engine threads,
    like the daemon's default worker (one block of ~0.3 s), and the CPU
    seconds per doc."""
    cmd = f"fwd {batch} {length} {{n}}"
    t1 = e.seconds(cmd.format(n=1))
    reps = max(1, min(10_000, int((0.15 if quick else 0.3) / max(t1, 1e-5))))
    wall = e.seconds(cmd.format(n=reps))
    return batch * reps / wall, float(e.last["fwd"][2]) / (batch * reps)


def engine_between(e, quick, reps_1x64):
    """The measurement after each wrk slice: after a 1-connection slice the
    engine's 1x64 forward (on ENGINE_THREADS threads, as the worker runs it); otherwise
    engine docs/s at the batch size the server formed so far."""
    def between(job, acc):
        mb = acc["batch_sum"] / acc["batch_count"] if acc["batch_count"] else 1.0
        b = max(1, round(mb))
        docs_s, cpu_per_doc = engine_docs_at(e, b, 64, quick)
        out = {"batch": b, "docs_s": docs_s, "cpu_per_doc": cpu_per_doc}
        if job["conns"] == 1:
            out["fwd_1x64_s"] = e.seconds(f"fwd 1 64 {reps_1x64}") / reps_1x64
            out["cpu_1x64_s"] = float(e.last["fwd"][2]) / reps_1x64
        return out
    return between


def summarise(accs, sec):
    """Rows of the table from sliced()'s accumulators; the 1-connection
    engine forward goes to sec."""
    rows = []
    for (model, conns), a in accs.items():
        a.update(model=model, conns=conns,
                 engine_batch=a["between"][-1]["batch"],
                 engine_docs_s=median([x["docs_s"] for x in a["between"]]))
        a["server_efficiency"] = a["req_s"] / a["engine_docs_s"]
        a["engine_cpu_ms_per_doc"] = median([x["cpu_per_doc"] for x in a["between"]]) * 1e3
        # The same ratio in CPU time: engine CPU per doc / daemon CPU per request.
        a["cpu_efficiency"] = a["engine_cpu_ms_per_doc"] / a["cpu_ms_per_req"]
        if conns == 1:
            sec["engine_fwd_1x64_ms"] = median([x["fwd_1x64_s"] for x in a["between"]]) * 1e3
            sec["engine_cpu_1x64_ms"] = median([x["cpu_1x64_s"] for x in a["between"]]) * 1e3
        rows.append(a)
        log(f"server {model} c={conns}: {a['req_s']:.0f} req/s, p50 {a['p50_us'] / 1e3:.2f} ms,"
            f" p99 {a['p99_us'] / 1e3:.2f} ms, mean batch {a['mean_batch']:.2f}, "
            f"efficiency {a['server_efficiency']:.2f} (CPU time {a['cpu_efficiency']:.2f}), "
            f"errors {a['errors']}")
    return rows


def run(ctx):
    model_dir = ctx.model("official")
    slices, slice_s = (2, 2) if ctx.quick else (4, 2)
    texts = bench_models.texts(os.path.join(model_dir, "vocab.txt"), 64, 64)
    bodies = write_bodies(os.path.join(ctx.tmp, "classify.jsonl"),
                          [{"inputs": [t]} for t in texts])
    d = Daemon(ctx.build, ctx.tmp, "server", models=[{"name": "cls", "path": model_dir},
                                                     {"name": "cls-b1", "path": model_dir,
                                                      "max_batch_size": 1}])
    e = engine_proc(ctx.build, model_dir, ENGINE_THREADS)
    try:
        ctx.res.setdefault("corename", e.ask("info")[6])
        status, body = d.post("/v1/models/cls/classify", json.dumps({"inputs": [texts[0]]}))
        assert status == 200, body
        wrk(d.port, "/v1/models/cls/classify", bodies, 8, 2)  # warm-up
        reps_1x64 = reps_for(e, "fwd 1 64 {n}", 0.2)
        jobs = [{"key": (m, c), "model": m, "conns": c, "bodies": bodies,
                 "route": f"/v1/models/{m}/classify"}
                for m, c in [("cls", 1), ("cls", 8), ("cls", 32), ("cls-b1", 32), ("cls", 128)]]
        accs = sliced(d, jobs, slices, slice_s, engine_between(e, ctx.quick, reps_1x64))
        sec = {}
        sec["rows"] = summarise(accs, sec)
        sec["daemon_hwm_mib"] = d.status("VmHWM")
        ctx.res[NAME] = sec
    finally:
        e.close()
        d.stop()


def targets(res):
    sec = res.get(NAME, {})
    srv = {(r["model"], r["conns"]): r for r in sec.get("rows", [])}
    s32, s1, b1 = srv.get(("cls", 32)), srv.get(("cls", 1)), srv.get(("cls-b1", 32))
    out = [(f"server_efficiency >= {EFFICIENCY_MIN:.2f} at 32 connections",
            f"{fmt(s32 and s32['server_efficiency'])} (CPU time "
            f"{fmt(s32 and s32['cpu_efficiency'])})",
            verdict(s32 and s32["server_efficiency"] >= EFFICIENCY_MIN,
                    s32 and s32["cpu_efficiency"] >= EFFICIENCY_MIN))]
    fwd = sec.get("engine_fwd_1x64_ms")
    p50r = s1["p50_us"] / 1e3 / fwd if s1 and fwd else None
    out.append((f"p50 at 1 connection <= {P50_OVER_FORWARD_MAX}x engine 1x64 forward",
                f"{fmt(s1 and s1['p50_us'] / 1e3)} ms vs {fmt(fwd, '.3f')} ms wall "
                f"({fmt(sec.get('engine_cpu_1x64_ms'), '.3f')} ms CPU) = {fmt(p50r)}x",
                verdict(p50r and p50r <= P50_OVER_FORWARD_MAX)))
    br = s32["req_s"] / b1["req_s"] if s32 and b1 else None
    # What batching can give at most here: the engine's own docs/s at the
    # batch the server formed over its docs/s at batch 1 (both on the
    # daemon's 2 engine threads, measured between the same slices).
    ceiling = s32["engine_docs_s"] / b1["engine_docs_s"] if s32 and b1 else None
    out.append(("batching req/s >= 2x max_batch_size 1 (32 conns)",
                f"{fmt(br)}x (engine ceiling: docs/s at batch {s32 and s32['engine_batch']} / "
                f"at batch 1 = {fmt(ceiling)}x)", verdict(br and br >= 2)))
    tail = s32["p99_us"] / s32["p50_us"] if s32 and s32["p50_us"] else None
    out.append(("p99 <= 3x p50 with batching (32 conns)", fmt(tail) + "x",
                verdict(tail and tail <= 3)))
    return out


def report(res):
    sec = res.get(NAME)
    if not sec:
        return []
    out = ["Each row is several short wrk runs, round-robin with the other rows; p50/p99 are the "
           "medians of the runs' percentiles. fastformerd runs its default pool, 1 worker x 2 "
           "engine threads. After each run, the engine measures docs/s running forwards on 2 "
           "engine threads at the server's mean batch size (rounded) x 64, like the daemon's "
           "worker (median reported); server_efficiency = req/s / that. Engine 1x64 forward (2 "
           "engine threads, measured after each 1-connection run): "
           f"{fmt(sec.get('engine_fwd_1x64_ms'), '.3f')} ms.\n",
           "| model | conns | req/s | p50 ms | p99 ms | mean batch | mean batch tokens | "
           "engine docs/s | server_efficiency | daemon CPU ms/req | engine CPU ms/doc | "
           "efficiency in CPU time | errors |",
           "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in sec["rows"]:
        out.append(f"| {r['model']} | {r['conns']} | {r['req_s']:.0f} | {r['p50_us'] / 1e3:.2f} | "
                   f"{r['p99_us'] / 1e3:.2f} | {fmt(r['mean_batch'])} | "
                   f"{fmt(r['mean_batch_tokens'], '.0f')} | {r['engine_docs_s']:.0f} | "
                   f"{r['server_efficiency']:.3f} | {fmt(r['cpu_ms_per_req'], '.3f')} | "
                   f"{fmt(r['engine_cpu_ms_per_doc'], '.3f')} | {fmt(r['cpu_efficiency'], '.3f')} | "
                   f"{r['errors']} |")
    out.append("\ncls-b1 is the same model with max_batch_size: 1.\n")
    return out
