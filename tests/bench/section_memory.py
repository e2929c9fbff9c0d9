"""memory: the daemon's RSS idle, under load and after many requests, vs its
own logged estimate (issue 6)."""
import json
import os
import re
import time

import bench_models
from bench_daemon import Daemon, wrk, write_bodies
from bench_lib import ROOT, fmt, log, verdict

NAME = "memory"
TITLE = "Memory"


def default_models_present():
    conf = os.path.join(ROOT, "conf", "fastformerd.yaml")
    with open(conf) as f:
        paths = re.findall(r"^\s*(?:path|news_catalog):\s*(\S+)", f.read(), re.M)
    base = os.path.dirname(conf)
    return conf, bool(paths) and all(os.path.exists(os.path.join(base, p)) for p in paths)


def parse_estimate(text):
    """The daemon's own memory estimate from its start-up log, in MiB, or None."""
    for line in text.splitlines():
        if "estimate" not in line.lower():
            continue
        m = re.search(r"([\d.]+)\s*(MiB|MB|GiB|GB|KiB|kB|bytes)", line.split("estimate", 1)[-1])
        if m:
            v = float(m.group(1))
            return v * {"MiB": 1, "MB": 1e6 / 2**20, "GiB": 1024, "GB": 1e9 / 2**20,
                        "KiB": 1 / 1024, "kB": 1e3 / 2**20, "bytes": 1 / 2**20}[m.group(2)]
    return None


def start_daemon(ctx):
    """The default models when models/ has them, else the official-shape
    random classifier. Returns (daemon, classifier name, its vocab.txt, what
    is served)."""
    conf, present = default_models_present()
    if present:
        d = Daemon(ctx.build, ctx.tmp, "memory", config=conf)
        models = json.loads(d.get("/v1/models"))["models"]
        cls = next(m["name"] for m in models if m.get("task") == "classification")
        vocab = os.path.join(ROOT, "models", cls, "vocab.txt")
        if os.path.exists(vocab):
            return d, cls, vocab, "default models (conf/fastformerd.yaml)"
        return d, cls, os.path.join(ctx.model("official"), "vocab.txt"), \
            "default models (conf/fastformerd.yaml)"
    model_dir = ctx.model("official")
    d = Daemon(ctx.build, ctx.tmp, "memory", models=[{"name": "cls", "path": model_dir}])
    return d, "cls", os.path.join(model_dir, "vocab.txt"), \
        "generated official-shape classifier (models/ has no default models yet)"


def run(ctx):
    """RSS idle, after the first 10k requests and after `total` requests.
    Each phase is also capped in time (the machine may be slow); the table
    gives the request counts actually reached."""
    total, first_s, rest_s = (50_000, 30, 60) if ctx.quick else (200_000, 60, 180)
    d, cls, vocab, served = start_daemon(ctx)
    try:
        texts = bench_models.texts(vocab, 64, 64, seed=7)
        bodies = write_bodies(os.path.join(ctx.tmp, "memory.jsonl"),
                              [{"inputs": [t]} for t in texts])
        route = f"/v1/models/{cls}/classify"
        time.sleep(1.0)
        out = {"served": served, "estimate_mib": parse_estimate(d.log()),
               "idle_rss_mib": d.status("VmRSS"), "idle_hwm_mib": d.status("VmHWM")}
        r = wrk(d.port, route, bodies, 32, first_s, max_requests=10_000)
        out["rss_10k_mib"] = d.status("VmRSS")
        out["n_first"] = r["requests"]
        r2 = wrk(d.port, route, bodies, 32, rest_s, max_requests=total - r["requests"])
        out["rss_total_mib"] = d.status("VmRSS")
        out["n_total"] = r["requests"] + r2["requests"]
        out["load_hwm_mib"] = d.status("VmHWM")
        out["req_s"] = r2["req_s"]
        out["errors"] = r["errors"] + r2["errors"]
        out["growth_mib"] = out["rss_total_mib"] - out["rss_10k_mib"]
        log(f"memory: idle {out['idle_rss_mib']:.1f} MiB, peak {out['load_hwm_mib']:.1f} MiB, "
            f"after {out['n_first']} {out['rss_10k_mib']:.1f}, after {out['n_total']} "
            f"{out['rss_total_mib']:.1f} MiB")
        ctx.res[NAME] = out
    finally:
        d.stop()


def targets(res):
    mem = res.get(NAME)
    if not mem:
        return []
    est = mem["estimate_mib"]
    return [("peak RSS under load <= daemon's estimate + 32 MB",
             f"{fmt(mem['load_hwm_mib'], '.1f')} MiB vs estimate "
             f"{fmt(est, '.1f') if est else 'not logged'}",
             verdict(None if est is None else mem["load_hwm_mib"] <= est + 32e6 / 2**20)),
            (f"RSS growth {mem['n_first']} -> {mem['n_total']} requests <= 1 MB",
             f"{fmt(mem['growth_mib'], '+.2f')} MiB", verdict(mem["growth_mib"] <= 1e6 / 2**20))]


def report(res):
    mem = res.get(NAME)
    if not mem:
        return []
    est = mem["estimate_mib"]
    return [f"Served: {mem['served']}.\n",
            "| idle RSS | idle peak | peak under load | RSS after "
            f"{mem['n_first']} | RSS after {mem['n_total']} | growth | daemon's estimate |",
            "|--:|--:|--:|--:|--:|--:|--:|",
            f"| {mem['idle_rss_mib']:.1f} MiB | {mem['idle_hwm_mib']:.1f} MiB | "
            f"{mem['load_hwm_mib']:.1f} MiB | {mem['rss_10k_mib']:.1f} MiB | "
            f"{mem['rss_total_mib']:.1f} MiB | {mem['growth_mib']:+.2f} MiB | "
            f"{fmt(est, '.1f') + ' MiB' if est else 'not logged'} |",
            f"\n{mem['req_s']:.0f} req/s at 32 connections during the long run; "
            f"{mem['errors']} errors.\n"]
