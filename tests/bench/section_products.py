"""products: where each runtime's forward goes, 1 thread: the engine's forward
and its own products replayed alone (bench_engine fwd / gemm), ONNX Runtime's
forward and its MatMuls alone (the exported model, and the same weights'
products as a graph of their own: ort_export.py --products), all four
round-robin at 1x32 and 32x128 for the three widths of the ort section.

Each runtime's "rest" is its forward minus its products: everything that is
not a weight product (gather, LayerNorm, GELU, the additive attention,
pooling, the per-run overhead). The GFLOP/s compare the kernels: the engine
does fewer multiply-adds (its folds), so its products' GFLOP count is its
own (fastformer_gemm_flops), ONNX Runtime's is 2 x rows x (4 D^2 + 2 D I) x
layers. This is the profile behind the engine / ONNX Runtime ratios: which
part of the forward a ratio short of its target would have to come from."""
import bench_models
import bench_ort
from bench_lib import (Measurers, Unavailable, engine_proc, fmt, interleaved, log, ort_proc,
                       read_config, reps_for)

NAME = "products"
TITLE = "Where the forward goes: products and the rest, engine and ONNX Runtime (1 thread)"
SHAPES = [(1, 32), (32, 128)]
MODELS = ["review-sentiment", "mid", "large"]


def ort_gflop(cfg, rows):
    """ONNX Runtime's product GFLOP for `rows` token rows (no folds)."""
    d, i = cfg["hidden_size"], cfg["intermediate_size"]
    return 2.0 * rows * (4 * d * d + 2 * d * i) * cfg["num_hidden_layers"] / 1e9


def measure_model(ctx, name, sec):
    model_dir = ctx.model(name)
    cfg = read_config(model_dir)
    sec["models"][name] = bench_models.describe(name)
    full = bench_ort.onnx_for(ctx.out_dir, model_dir, name)
    prods = bench_ort.onnx_for(ctx.out_dir, model_dir, name, products=True)
    procs = {"engine": engine_proc(ctx.build, model_dir, 1),
             "ort": ort_proc(ctx.ort_dir, full, cfg["vocab_size"], 1),
             "ort products": ort_proc(ctx.ort_dir, prods, cfg["vocab_size"], 1)}
    with Measurers(**procs) as p:
        for b, n in SHAPES:
            if ctx.quick and (b, n) != (1, 32):
                continue
            cmds = {"engine forward": (p["engine"], f"fwd {b} {n} {{n}}"),
                    "engine products": (p["engine"], f"gemm {b} {n} {{n}}"),
                    "ort forward": (p["ort"], f"fwd {b} {n} {{n}}"),
                    "ort products": (p["ort products"], f"fwd {b} {n} {{n}}")}
            block = 0.1 if ctx.quick else 0.25
            jobs = {k: (m, c, reps_for(m, c, block)) for k, (m, c) in cmds.items()}
            rounds = 3 if ctx.quick or b * n > 1024 else 5
            wall, cpu = interleaved(jobs, rounds)
            row = {"model": name, "batch": b, "length": n, "wall": wall, "cpu": cpu,
                   "engine_gflop": float(p["engine"].last["gemm"][1]),
                   "ort_gflop": ort_gflop(cfg, b * n), "rounds": rounds}
            sec["rows"].append(row)
            log(f"products {name} {b}x{n}: " + ", ".join(
                f"{k} {s * 1e3:.3f} ms" for k, s in wall.items()))


def run(ctx):
    sec = {"rows": [], "models": {}}
    ctx.res[NAME] = sec
    try:
        bench_ort.ort_ready(ctx.ort_dir)
        for name in MODELS:
            measure_model(ctx, name, sec)
    except Unavailable as e:
        sec["unavailable"] = str(e)
        log(f"products: not measured: {e}")


def targets(res):
    return []  # a profile, not a target: it explains the ort section's ratios


def report(res):
    sec = res.get(NAME)
    if not sec:
        return []
    if "unavailable" in sec:
        return [f"Not measured: {sec['unavailable']}.\n"]
    out = ["Each runtime's forward, its weight products alone, and the rest (forward minus "
           "products), in ms per forward of the batch, 1 thread, medians of round-robin blocks "
           "(wall time; CPU time in results.json). Engine products = its own recorded "
           "products replayed (bench_engine gemm, the `engine` section's GEMM-only); ONNX "
           "Runtime products = the same weights' MatMuls as a graph of their own "
           "(tests/bench/ort_export.py --products: per layer query, key, transform, "
           "attention.output.dense, intermediate, output; MLAS prepacks them as in the model). "
           "GFLOP/s: each runtime's own products' GFLOP (the engine's folds do fewer) over "
           "its products' time. Products alone run on warm caches, so \"rest\" also holds what "
           "the products lose to the ops between them in the forward.\n",
           "| model | batch x len | engine forward | engine products | engine rest | ORT forward "
           "| ORT products | ORT rest | engine products GFLOP/s | ORT products GFLOP/s "
           "| forward ratio ORT / engine |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in sec["rows"]:
        w = {k: v * 1e3 for k, v in r["wall"].items()}
        e_rest = w["engine forward"] - w["engine products"]
        o_rest = w["ort forward"] - w["ort products"]
        out.append(f"| {r['model']} | {r['batch']}x{r['length']} | {w['engine forward']:.3f} | "
                   f"{w['engine products']:.3f} | {e_rest:.3f} | {w['ort forward']:.3f} | "
                   f"{w['ort products']:.3f} | {o_rest:.3f} | "
                   f"{r['engine_gflop'] / w['engine products'] * 1e3:.1f} | "
                   f"{r['ort_gflop'] / w['ort products'] * 1e3:.1f} | "
                   f"{fmt(w['ort forward'] / w['engine forward'])} |")
    out.append("\nModels: " + "; ".join(f"{k} {v}" for k, v in sec["models"].items()) + ".\n")
    return out
