"""ort: the engine vs ONNX Runtime (issue 11): docs/s at 1x32, 32x128 and
64x256 with 1 and 2 threads, at three widths (the default review-sentiment
model, D=256, and random D=384 and D=768 models), the engine's gain from 1
to 2 threads, and the latency at 1x32.

Fair by construction: the same weights (ONNX Runtime runs the engine's model
directory exported by ort_export.py), the same ids (bench_id), the same
batch x length, the same thread count (engine --threads T; ONNX Runtime
intraOpNumThreads T, interOpNumThreads 1, every graph optimisation), each
timed per forward of a whole batch after a warm-up, in long-lived processes,
round-robin, medians. Without ONNX Runtime the engine rows still run."""
import bench_models
import bench_ort
from bench_lib import (Measurers, Unavailable, engine_proc, fmt, interleaved, log, median,
                       ort_proc, read_config, reps_for, verdict)

NAME = "ort"
TITLE = "Engine vs ONNX Runtime (same weights, same ids, same threads)"
SHAPES = [(1, 32), (32, 128), (64, 256)]
SCALING_SHAPES = [(32, 128), (64, 256)]
MODELS = ["review-sentiment", "mid", "large"]
THREADS = (1, 2)
RATIO_MIN = 1.3    # engine docs/s / ONNX Runtime docs/s
SCALING_MIN = 1.8  # engine docs/s on 2 threads / on 1 thread
LATENCY_MAX = 0.75  # engine 1x32 latency / ONNX Runtime's
PAIR = "engine par2"  # two independent 1-thread forwards at once (measure_shape)


def processes(ctx, name, model_dir, sec):
    """Engine 1t and 2t, and ONNX Runtime 1t and 2t unless sec says it is
    unavailable (an export failure makes it so)."""
    procs = {f"engine {t}t": engine_proc(ctx.build, model_dir, t) for t in THREADS}
    if "unavailable" in sec:
        return procs
    try:
        onnx = bench_ort.onnx_for(ctx.out_dir, model_dir, name)
    except Unavailable as e:
        sec["unavailable"] = str(e)
        return procs
    vocab = read_config(model_dir)["vocab_size"]
    procs.update({f"ort {t}t": ort_proc(ctx.ort_dir, onnx, vocab, t) for t in THREADS})
    return procs


def measure_shape(procs, b, n, quick):
    """Median wall and CPU seconds per forward of each process at b x n. At
    the scaling shapes, also the machine's ceiling for 2 threads: "engine
    par2" is two 1-lane forwards at once on two threads of the engine 1t
    process (no work shared, nothing to wait for), seconds per pair."""
    cmd = f"fwd {b} {n} {{n}}"
    block = 0.1 if quick else 0.25
    jobs = {k: (p, cmd, reps_for(p, cmd, block)) for k, p in procs.items()}
    if (b, n) in SCALING_SHAPES and "engine 1t" in procs:
        par = f"par 2 {b} {n} {{n}}"
        jobs[PAIR] = (procs["engine 1t"], par, reps_for(procs["engine 1t"], par, block))
    long_forwards = all(reps == 1 for _, _, reps in jobs.values())
    rounds = (2 if long_forwards else 3) if quick else (3 if long_forwards else 5)
    wall, cpu = interleaved(jobs, rounds)
    return {"batch": b, "length": n, "wall": wall, "cpu": cpu, "rounds": rounds}


def probe_us(ctx):
    """ONNX Runtime's cost of one run outside the model: the probe graph at
    1x32, 1 thread (median of 5 blocks), in microseconds."""
    p = ort_proc(ctx.ort_dir, bench_ort.onnx_for(ctx.out_dir, None, "probe"), 2, 1)
    try:
        reps = reps_for(p, "fwd 1 32 {n}", 0.1)
        return 1e6 * median([p.seconds(f"fwd 1 32 {reps}") / reps for _ in range(5)])
    finally:
        p.close()


def measure_model(ctx, name, sec):
    model_dir = ctx.model(name)
    sec["models"][name] = bench_models.describe(name)
    with Measurers(**processes(ctx, name, model_dir, sec)) as procs:
        if "ort 1t" in procs:
            sec["version"] = procs["ort 1t"].ask("info")[1]
            vocab = read_config(model_dir)["vocab_size"]
            sec["checks"][name] = bench_ort.check(ctx.build, model_dir, procs["engine 1t"],
                                                  procs["ort 1t"], vocab)
        for b, n in SHAPES:
            if ctx.quick and name != MODELS[0] and (b, n) != (1, 32):
                continue  # quick: the wider models at 1x32 only
            row = {"model": name, **measure_shape(procs, b, n, ctx.quick)}
            sec["rows"].append(row)
            log(f"ort {name} {b}x{n}: " + ", ".join(
                f"{k} {b * (2 if k == PAIR else 1) / s:.1f} docs/s"
                for k, s in row["wall"].items()))


def run(ctx):
    sec = {"rows": [], "checks": {}, "models": {}}
    try:
        bench_ort.ort_ready(ctx.ort_dir)
    except Unavailable as e:
        sec["unavailable"] = str(e)
        log(f"ort: ONNX Runtime not measured: {e}")
    ctx.res[NAME] = sec
    for name in MODELS:
        measure_model(ctx, name, sec)
    if "unavailable" not in sec:
        sec["probe_us"] = probe_us(ctx)


# ---- targets and report --------------------------------------------------------------

def ratio(row, num, den):
    """row's wall seconds of den / of num: num's speed over den's (None if either is missing)."""
    w = row["wall"]
    return w[den] / w[num] if num in w and den in w else None


def cpu_ratio(row, num, den):
    c = row["cpu"]
    return c[den] / c[num] if num in c and den in c else None


def cells(sec, name, shapes, value):
    """[(label, value(row))] for the measured shapes of model name."""
    rows = {(r["batch"], r["length"]): r for r in sec["rows"] if r["model"] == name}
    return [(f"{b}x{n}", value(rows[(b, n)])) for b, n in shapes if (b, n) in rows]


def holds(values, ok):
    vals = [v for _, v in values if v is not None]
    return verdict(all(ok(v) for v in vals) if vals else None)


def listed(values, spec=".2f"):
    return ", ".join(f"{label} {fmt(v, spec)}" for label, v in values) or "n/a"


def threads_label(t):
    return f"{t} thread{'s' * (t > 1)}"


def ceiling(row):
    """The machine's 2-thread ceiling in this run: docs/s of two independent
    1-thread forwards at once over one alone (2 x b per pair vs b per forward).
    An engine that splits one forward over two lanes gains at most about this
    (it is measured too, so noise can put the engine a little above it)."""
    w = row["wall"]
    return 2 * w["engine 1t"] / w[PAIR] if PAIR in w and "engine 1t" in w else None


def scaling_target(sec, name, desc):
    """Engine docs/s on 2 threads / on 1 thread (ONNX Runtime's and the
    machine's ceiling beside it)."""
    vals = cells(sec, name, SCALING_SHAPES, lambda r: ratio(r, "engine 2t", "engine 1t"))
    theirs = cells(sec, name, SCALING_SHAPES, lambda r: ratio(r, "ort 2t", "ort 1t"))
    roof = cells(sec, name, SCALING_SHAPES, ceiling)
    beside = [f"ONNX Runtime: {listed(theirs)}"] if any(v is not None for _, v in theirs) else []
    beside += [f"machine ceiling, two 1-thread forwards at once: {listed(roof)}"] \
        if any(v is not None for _, v in roof) else []
    return (f"engine docs/s 2 threads >= {SCALING_MIN}x 1 thread, {desc}",
            listed(vals) + (f" ({'; '.join(beside)})" if beside else ""),
            holds(vals, lambda v: v >= SCALING_MIN))


def ort_targets(sec, name, desc):
    """Engine vs ONNX Runtime docs/s per thread count, and the 1x32 latency."""
    out = []
    for t in THREADS:
        vals = cells(sec, name, SHAPES, lambda r: ratio(r, f"engine {t}t", f"ort {t}t"))
        measured, verdict_ = listed(vals), holds(vals, lambda v: v >= RATIO_MIN)
        if t == 1:
            # CPU time is comparable on 1 thread only: ONNX Runtime's pool
            # spins while it waits, which counts as CPU time on 2.
            cpu = cells(sec, name, SHAPES, lambda r: cpu_ratio(r, "engine 1t", "ort 1t"))
            measured += f" (CPU time: {listed(cpu)})"
            verdict_ += f" (CPU time: {holds(cpu, lambda v: v >= RATIO_MIN)})"
        out.append((f"engine docs/s >= {RATIO_MIN}x ONNX Runtime, {threads_label(t)}, {desc}",
                    measured, verdict_))
    # Latency: engine seconds per 1x32 forward / ONNX Runtime's.
    vals = [(threads_label(t), v) for t in THREADS
            for _, v in cells(sec, name, [(1, 32)], lambda r, t=t: ratio(r, f"ort {t}t",
                                                                         f"engine {t}t"))]
    out.append((f"latency 1x32 <= {LATENCY_MAX}x ONNX Runtime's, {desc}", listed(vals),
                holds(vals, lambda v: v <= LATENCY_MAX)))
    return out


def targets(res):
    sec = res.get(NAME)
    if not sec:
        return []
    out = []
    if "unavailable" in sec:
        out.append((f"engine docs/s >= {RATIO_MIN}x ONNX Runtime and 1x32 latency <= "
                    f"{LATENCY_MAX}x, every width and thread count",
                    f"not measured: {sec['unavailable']}", verdict(None)))
    for name in sec["models"]:
        desc = f"{name} ({sec['models'][name]})"
        if "unavailable" not in sec:
            out += ort_targets(sec, name, desc)
        out.append(scaling_target(sec, name, desc))
    chk = sec["checks"]
    if chk:
        out.append((f"ONNX Runtime probabilities = the engine's within "
                    f"{bench_ort.CHECK_TOLERANCE:g}",
                    ", ".join(f"{k} {v['probabilities']:.1e}" for k, v in chk.items()),
                    verdict(all(v["ok"] for v in chk.values()))))
    return out


def report(res):
    sec = res.get(NAME)
    if not sec or not sec["rows"]:
        return []
    out = ["Same weights (ONNX Runtime runs the model directory exported by "
           "tests/bench/ort_export.py: tools/fastformer.py, torch.onnx.export, opset 14, dynamic "
           "batch and length), same ids, same batch x length, same threads (engine: bench_engine "
           "--threads T, T engine threads x 1 OpenBLAS thread; ONNX Runtime "
           f"{sec.get('version', '(not installed)')} through onnxruntime-node: intraOpNumThreads "
           "T, interOpNumThreads 1, graphOptimizationLevel all). Each figure is the median time "
           "per forward of the whole batch, warm, the four processes round-robin.\n"]
    if "unavailable" in sec:
        out.append(f"**ONNX Runtime not measured**: {sec['unavailable']}.\n")
    if sec["checks"]:
        out.append("Checked before timing, max |engine - ONNX Runtime|: probabilities of 4 "
                   "padded rows (fastformer-cli predict) / pooled vectors of 2x16 (bench_engine): "
                   + ", ".join(f"{k} {v['probabilities']:.1e} / {v['pooled']:.1e}"
                               for k, v in sec["checks"].items()) + ".\n")
    if "probe_us" in sec:
        out.append(f"ONNX Runtime's cost per run outside the model (a two-op graph, 1x32, 1 "
                   f"thread, through onnxruntime-node): {sec['probe_us']:.0f} us; it is part of "
                   "its figures below, as it is for a node user.\n")
    out += ["| model | batch x len | engine 1t docs/s | ORT 1t docs/s | engine / ORT 1t | same "
            "in CPU time | engine 2t docs/s | ORT 2t docs/s | engine / ORT 2t | engine 2t / 1t "
            "| ORT 2t / 1t | machine ceiling 2t / 1t |",
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in sec["rows"]:
        b = r["batch"]
        docs = {k: b / s for k, s in r["wall"].items()}
        out.append(f"| {r['model']} | {b}x{r['length']} | {fmt(docs.get('engine 1t'), '.1f')} | "
                   f"{fmt(docs.get('ort 1t'), '.1f')} | {fmt(ratio(r, 'engine 1t', 'ort 1t'))} | "
                   f"{fmt(cpu_ratio(r, 'engine 1t', 'ort 1t'))} | "
                   f"{fmt(docs.get('engine 2t'), '.1f')} | {fmt(docs.get('ort 2t'), '.1f')} | "
                   f"{fmt(ratio(r, 'engine 2t', 'ort 2t'))} | "
                   f"{fmt(ratio(r, 'engine 2t', 'engine 1t'))} | "
                   f"{fmt(ratio(r, 'ort 2t', 'ort 1t'))} | {fmt(ceiling(r))} |")
    out.append("\nMachine ceiling: two 1-thread engine forwards at once, on two threads that "
               "share nothing (bench_engine `par 2`), over one alone, in the same round-robin: "
               "what a program without any synchronisation gains from the second thread at that "
               "moment (a shared VM's second vCPU is often less than a core; it is measured, "
               "like every figure here, with noise).\n")
    out.append("\nModels: " + "; ".join(f"{k} {v}" for k, v in sec["models"].items())
               + " (review-sentiment: the trained default model; the others random N(0, 0.02), "
               "vocab 30000).\n")
    return out
