"""length: the paper's claim as a picture. Tokens/s from length 64 to 4096
at a fixed number of tokens per batch, 1 thread, for three systems on the
same width, heads, FFN and depth (official shape with 4096 positions):
fastformerd's engine, ONNX Runtime running the same Fastformer, and a
standard softmax-attention Transformer encoder in PyTorch
(nn.TransformerEncoder), what a BERT-style server runs. Writes
build/bench/length.csv and, with gnuplot, build/bench/length.svg (issue 11);
the engine's 4096 vs 64 ratio is issue 6's target."""
import csv
import os
import shutil
import subprocess

import bench_ort
from bench_lib import (HERE, ROOT, Unavailable, engine_proc, fmt, interleaved, log, ort_proc,
                       read_config, reps_for, torch_proc, verdict)

NAME = "length"
TITLE = "Length scaling: the paper's claim (4096 tokens per batch, 1 thread)"
LENGTHS = [64, 128, 256, 512, 1024, 2048, 4096]
QUICK_LENGTHS = [64, 512, 4096]
# The Transformer's attention at 4096 tokens holds batch x heads x 4096^2
# floats (1 GiB at batch 1): 4096 tokens per batch keeps it at batch 1.
TOKENS_PER_BATCH = 4096
MODEL = "official-p4096"
SYSTEMS = {"fastformerd": "fastformerd (C engine)",
           "onnxruntime": "ONNX Runtime, same Fastformer",
           "transformer": "PyTorch nn.TransformerEncoder (softmax attention)"}


def processes(ctx, model_dir, sec):
    """The three systems' measuring processes, 1 thread each; ONNX Runtime
    only when it is available (else sec says why)."""
    procs = {"fastformerd": engine_proc(ctx.build, model_dir, 1),
             "transformer": torch_proc(model_dir, 1, transformer=True)}
    try:
        bench_ort.ort_ready(ctx.ort_dir)
        onnx = bench_ort.onnx_for(ctx.out_dir, model_dir, MODEL)
        procs["onnxruntime"] = ort_proc(ctx.ort_dir, onnx, read_config(model_dir)["vocab_size"], 1)
    except Unavailable as e:
        sec["ort_unavailable"] = str(e)
    return procs


def measure(procs, lengths, quick):
    """{(system, length): (wall s, CPU s)} per batch, every job round-robin."""
    jobs = {}
    for n in lengths:
        cmd = f"fwd {max(1, TOKENS_PER_BATCH // n)} {n} {{n}}"
        for system, p in procs.items():
            jobs[(system, n)] = (p, cmd, reps_for(p, cmd, 0.1 if quick else 0.3))
    # Quick: one round after the warm-up (the Transformer's forward at 4096
    # takes over 10 s of CPU).
    wall, cpu = interleaved(jobs, 1 if quick else 3)
    return {k: (wall[k], cpu[k]) for k in jobs}


def run(ctx):
    sec = {}
    ctx.res[NAME] = sec
    model_dir = ctx.model(MODEL)
    lengths = QUICK_LENGTHS if ctx.quick else LENGTHS
    procs = processes(ctx, model_dir, sec)
    try:
        times = measure(procs, lengths, ctx.quick)
    finally:
        for p in procs.values():
            p.close()
    rows = []
    for n in lengths:
        b = max(1, TOKENS_PER_BATCH // n)
        row = {"length": n, "batch": b}
        for system in SYSTEMS:
            if (system, n) in times:
                wall, cpu = times[(system, n)]
                row[system] = b * n / wall
                row[system + "_cpu"] = b * n / cpu
        rows.append(row)
        log(f"length {n}: " + ", ".join(f"{s} {row[s]:.0f} tokens/s" for s in SYSTEMS if s in row))
    sec["rows"] = rows
    sec["csv"] = write_csv(os.path.join(ctx.out_dir, "length.csv"), rows)
    sec["svg"] = plot(sec["csv"], os.path.join(ctx.out_dir, "length.svg"), sec)


def write_csv(path, rows):
    """length,batch, then tokens/s of each system (wall), then per CPU second."""
    cols = ["length", "batch", *SYSTEMS, *(s + "_cpu" for s in SYSTEMS)]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, restval="")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.1f}" if isinstance(v, float) else v) for k, v in r.items()})
    return path


def plot(csv_path, svg_path, sec):
    """length.svg with gnuplot (tests/bench/length.gp); None (and the reason
    in sec) when gnuplot is missing or fails."""
    if not shutil.which("gnuplot"):
        sec["plot_error"] = "gnuplot is not installed (make bench installs gnuplot-nox)"
        return None
    args = f"csv='{csv_path}'; svg='{svg_path}'"
    r = subprocess.run(["gnuplot", "-e", args, os.path.join(HERE, "length.gp")],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        sec["plot_error"] = f"gnuplot failed: {r.stderr.strip()[:300]}"
        return None
    return svg_path


def at(sec, system, n, suffix=""):
    row = next((r for r in sec.get("rows", []) if r["length"] == n), None)
    return row.get(system + suffix) if row else None


def targets(res):
    sec = res.get(NAME)
    if not sec or not sec.get("rows"):
        return []
    lo, hi = sec["rows"][0]["length"], sec["rows"][-1]["length"]
    r = at(sec, "fastformerd", hi) / at(sec, "fastformerd", lo)
    rc = at(sec, "fastformerd", hi, "_cpu") / at(sec, "fastformerd", lo, "_cpu")
    return [(f"engine tokens/s at {hi} >= 0.8x at {lo}", f"{fmt(r)} (CPU time {fmt(rc)})",
             verdict(r >= 0.8, rc >= 0.8))]


def ratios_at(sec, n):
    """fastformerd's tokens/s at length n over the Transformer's and ONNX Runtime's."""
    ff = at(sec, "fastformerd", n)
    return {s: (ff / at(sec, s, n) if ff and at(sec, s, n) else None)
            for s in ("transformer", "onnxruntime")}


def report(res):
    sec = res.get(NAME)
    if not sec or not sec.get("rows"):
        return []
    hi = sec["rows"][-1]["length"]
    rat = ratios_at(sec, hi)
    out = [f"Batch = {TOKENS_PER_BATCH} tokens / length; 1 thread each (OPENBLAS_NUM_THREADS=1, "
           "ONNX Runtime intraOpNumThreads 1, torch.set_num_threads(1)); same ids; official "
           "shape D=256 H=16 I=256 L=2 with 4096 positions, random weights. The Transformer is "
           "nn.TransformerEncoder (post-LN, GELU, batch_first, eval, inference_mode: PyTorch's "
           "fused fast path) with the same embeddings, width, heads, FFN and depth.\n",
           f"**At length {hi}, fastformerd's tokens/s is {fmt(rat['transformer'])}x the "
           "Transformer's" + (f" and {fmt(rat['onnxruntime'])}x ONNX Runtime's"
                               if rat["onnxruntime"] else "") + ".** Plot: "
           + (f"`{os.path.relpath(sec['svg'], ROOT)}`"
              if sec.get("svg") else f"not drawn ({sec.get('plot_error')})") + ".\n"]
    if "ort_unavailable" in sec:
        out.append(f"**ONNX Runtime not measured**: {sec['ort_unavailable']}.\n")
    out += ["| length | batch | " + " | ".join(f"{v} tokens/s" for v in SYSTEMS.values())
            + " | fastformerd per CPU second |",
            "|--:|--:|--:|--:|--:|--:|"]
    for r in sec["rows"]:
        out.append(f"| {r['length']} | {r['batch']} | "
                   + " | ".join(fmt(r.get(s), ".0f") for s in SYSTEMS)
                   + f" | {fmt(r.get('fastformerd_cpu'), '.0f')} |")
    out.append("")
    return out
