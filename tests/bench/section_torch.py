"""torch: the C engine vs the PyTorch reference (tools/fastformer.py) on the
same weights and ids, each with 1 and 2 threads (issue 6)."""
from bench_lib import Measurers, engine_proc, fmt, interleaved, log, reps_for, torch_proc, verdict

NAME = "torch"
TITLE = "Engine vs PyTorch (same weights, same ids)"
SHAPES = {"official": [(1, 32), (1, 128), (32, 32), (32, 128), (64, 256)],
          "large": [(1, 32), (32, 32)]}


def check(procs):
    """max |C - torch| over the pooled vectors of 2 x 16 bench ids."""
    a = [float(x) for x in procs["C 1t"].ask("pooled 2 16")]
    t = [float(x) for x in procs["torch 1t"].ask("pooled 2 16")]
    return max(abs(x - y) for x, y in zip(a, t))


def measure_shape(procs, label, b, n, quick):
    fmt_ = f"fwd {b} {n} {{n}}"
    jobs = {k: (p, fmt_, reps_for(p, fmt_, 0.1 if quick else 0.2)) for k, p in procs.items()}
    rounds = (3 if quick else 5) if b * n * (9 if label == "large" else 1) <= 8192 else 3
    med, cpu = interleaved(jobs, rounds)
    c_best = min(("C 1t", "C 2t"), key=lambda k: med[k])
    t_best = min(("torch 1t", "torch 2t"), key=lambda k: med[k])
    return {"model": label, "batch": b, "length": n,
            **{f"{k} docs_s": b / v for k, v in med.items()},
            "C best": c_best, "torch best": t_best,
            "ratio": med[t_best] / med[c_best],
            # 1 thread each: torch CPU seconds per forward / C's.
            "cpu_ratio_1t": cpu["torch 1t"] / cpu["C 1t"]}


def run(ctx):
    rows, checks = [], {}
    for label, shapes in SHAPES.items():
        if ctx.quick and label != "official":
            continue
        model_dir = ctx.model(label)
        with Measurers(**{"C 1t": engine_proc(ctx.build, model_dir, 1),
                          "C 2t": engine_proc(ctx.build, model_dir, 2),
                          "torch 1t": torch_proc(model_dir, 1),
                          "torch 2t": torch_proc(model_dir, 2)}) as procs:
            ctx.res["torch_version"] = " ".join(procs["torch 1t"].ask("info")[:2])
            checks[label] = check(procs)
            for b, n in shapes:
                row = measure_shape(procs, label, b, n, ctx.quick)
                rows.append(row)
                c, t = row["C best"], row["torch best"]
                log(f"torch {label} {b}x{n}: C {row[c + ' docs_s']:.1f} docs/s ({c}), torch "
                    f"{row[t + ' docs_s']:.1f} docs/s ({t}), ratio {row['ratio']:.2f} "
                    f"(CPU time, 1 thread: {row['cpu_ratio_1t']:.2f})")
    ctx.res[NAME] = {"rows": rows, "check_max_abs_diff": checks}


def targets(res):
    tor = {(r["model"], r["batch"], r["length"]): r for r in res.get(NAME, {}).get("rows", [])}
    out = []
    for shp in ((32, 128), (1, 32)):
        r = tor.get(("official", *shp))
        out.append((f"C docs/s >= 1.3x PyTorch, official {shp[0]}x{shp[1]}",
                    f"{fmt(r and r['ratio'])}x (CPU time, 1 thread: "
                    f"{fmt(r and r['cpu_ratio_1t'])}x)",
                    verdict(r and r["ratio"] >= 1.3, r and r["cpu_ratio_1t"] >= 1.3)))
    return out


def report(res):
    sec = res.get(NAME)
    if not sec or not sec["rows"]:
        return []
    chk = ", ".join(f"{k} {v:.1e}" for k, v in sec["check_max_abs_diff"].items())
    out = [f"Pooled vectors agree (max |C - torch| on 2x16: {chk}). torch.inference_mode(), "
           "warm-up, model.encode(ids).\n",
           "| model | batch x len | C 1t docs/s | C 2t docs/s | torch 1t docs/s | "
           "torch 2t docs/s | C / torch (best of each) | same in CPU time, 1 thread |",
           "|---|---|--:|--:|--:|--:|--:|--:|"]
    for r in sec["rows"]:
        out.append(f"| {r['model']} | {r['batch']}x{r['length']} | {r['C 1t docs_s']:.1f} | "
                   f"{r['C 2t docs_s']:.1f} | {r['torch 1t docs_s']:.1f} | "
                   f"{r['torch 2t docs_s']:.1f} | {r['ratio']:.2f} | {r['cpu_ratio_1t']:.2f} |")
    out.append("")
    return out
