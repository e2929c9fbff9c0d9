"""engine: the C engine's forward vs its own products (gemm_run, or
cblas_sgemm for an encoder that is not packed) replayed alone (gemm_share,
issue 6), 1 engine thread, official and large shapes."""
from bench_lib import engine_proc, fmt, interleaved, log, reps_for, verdict

NAME = "engine"
TITLE = "Engine vs the GEMM limit (1 thread)"
SHAPES = [(1, 32), (1, 128), (32, 32), (32, 128), (64, 256)]
MODELS = ["official", "large"]


def measure_shape(e, label, b, n, quick):
    """One row: forward and GEMM-only, interleaved."""
    rounds = 3 if quick else 7
    fwd, gemm = f"fwd {b} {n} {{n}}", f"gemm {b} {n} {{n}}"
    reps = reps_for(e, fwd, 0.1 if quick else 0.25)
    cost = b * n * (9 if label == "large" else 1)  # ~ forward time
    if cost <= 65536:  # the first gemm also records the calls (untimed)
        e.seconds(gemm.format(n=1))
    rnds = rounds if cost <= 8192 else (3 if cost <= 65536 else 2)
    med, cpu = interleaved({"fwd": (e, fwd, reps), "gemm": (e, gemm, reps)}, rnds)
    gflop = float(e.last["fwd"][1])
    row = {"model": label, "batch": b, "length": n, "fwd_ms": med["fwd"] * 1e3,
           "gemm_ms": med["gemm"] * 1e3, "docs_s": b / med["fwd"],
           "tokens_s": b * n / med["fwd"], "gflops": gflop / med["fwd"],
           "gemm_gflops": gflop / med["gemm"] if med["gemm"] > 0 else None,
           "gemm_share": med["gemm"] / med["fwd"], "gemm_calls": int(e.last["gemm"][3]),
           "cpu_fwd_ms": cpu["fwd"] * 1e3, "cpu_gemm_ms": cpu["gemm"] * 1e3,
           "cpu_gemm_share": cpu["gemm"] / cpu["fwd"], "rounds": rnds, "reps": reps}
    if row["gemm_calls"] == 0:
        # No product was recorded: nothing to replay.
        for k in ("gemm_ms", "gemm_gflops", "gemm_share", "cpu_gemm_ms", "cpu_gemm_share"):
            row[k] = None
    return row


def run(ctx):
    rows = []
    for label in MODELS:
        e = engine_proc(ctx.build, ctx.model(label), 1)
        try:
            ctx.res["corename"] = e.ask("info")[6]
            for b, n in SHAPES:
                if ctx.quick and label == "large" and b * n > 1024:
                    continue
                row = measure_shape(e, label, b, n, ctx.quick)
                rows.append(row)
                log(f"engine {label} {b}x{n}: fwd {row['fwd_ms']:.3f} ms, gemm "
                    f"{fmt(row['gemm_ms'], '.3f')} ms, share {fmt(row['gemm_share'], '.3f')} "
                    f"(CPU time {fmt(row['cpu_gemm_share'], '.3f')})")
        finally:
            e.close()
    ctx.res[NAME] = {"rows": rows}


def targets(res):
    eng = {(r["model"], r["batch"], r["length"]): r for r in res.get(NAME, {}).get("rows", [])}
    out = []
    for shp in ((32, 128), (64, 256)):
        r = eng.get(("official", *shp))
        share, cpu_share = (r["gemm_share"], r["cpu_gemm_share"]) if r else (None, None)
        out.append((f"gemm_share >= 0.85, official {shp[0]}x{shp[1]}",
                    f"{fmt(share)} (CPU time {fmt(cpu_share)})"
                    + (" (no products to replay)" if r and share is None else ""),
                    verdict(None if share is None else share >= 0.85,
                            None if cpu_share is None else cpu_share >= 0.85)))
    return out


def report(res):
    rows = res.get(NAME, {}).get("rows")
    if not rows:
        return []
    out = ["Forward = model_encode_ids (gather, encoder, pooling). GEMM-only = the forward's own "
           "products (gemm_run on the packed weights, recorded through -Wl,--wrap) replayed alone "
           "on the same buffers, without their fused epilogues. GFLOP/s counts GEMM flops "
           "(fastformer_gemm_flops).\n",
           "| model | batch x len | forward ms | GEMM-only ms | docs/s | tokens/s | GFLOP/s "
           "| GEMM-only GFLOP/s | gemm_share | CPU ms fwd / GEMM | gemm_share in CPU time |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['batch']}x{r['length']} | {r['fwd_ms']:.3f} | "
                   f"{fmt(r['gemm_ms'], '.3f')} | {r['docs_s']:.1f} | {r['tokens_s']:.0f} | "
                   f"{r['gflops']:.1f} | {fmt(r['gemm_gflops'], '.1f')} | "
                   f"{fmt(r['gemm_share'], '.3f')} | {r['cpu_fwd_ms']:.3f} / "
                   f"{fmt(r['cpu_gemm_ms'], '.3f')} | {fmt(r['cpu_gemm_share'], '.3f')} |")
    out.append("\nModels: official D=256 H=16 I=256 L=2; large D=768 H=12 I=3072 L=2; random "
               "N(0, 0.02) weights, vocab 30000.\n")
    return out
