"""catalog: the durable news catalog at 100,000 items (issue 14), with the
committed movielens-rec model (D=256): the restart-to-ready time from the
SQLite store (vectors stored for the weights' digest, nothing re-encoded)
next to the same daemon's start-up without a catalog, and the catalog-wide
recommend (top 10 of every item) next to a 20-candidate recommend, both at
one connection (latency)."""
import json
import os
import random
import shutil
import time

from bench_daemon import Daemon, sliced, write_bodies
from bench_lib import ROOT, fmt, log, median, verdict

NAME = "catalog"
TITLE = "News catalog: 100,000 items (movielens-rec, D=256)"
N_ITEMS = 100_000
BULK = 1000


def config(tmp, name, state_dir):
    path = os.path.join(tmp, f"{name}.yaml")
    lines = ["server:", "  listen: 127.0.0.1:0", f"  news_bulk_max_items: {BULK}"]
    if state_dir:
        lines.append(f"  state_dir: {state_dir}")
    lines += ["batching:", "  workers: 2", "  blas_threads: 1", "models:",
              "  - name: rec", f"    path: {os.path.join(ROOT, 'models', 'movielens-rec')}",
              "logging:", "  format: text", "  level: info"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def words():
    out = set()
    with open(os.path.join(ROOT, "models", "movielens-rec", "news.tsv"), encoding="utf-8") as f:
        for line in f:
            cols = line.split("\t")
            if len(cols) > 3:
                out.update(w for w in cols[3].split() if w.isalpha())
    return sorted(out)


def fill(d, n, rng):
    """n items through the bulk route (titles of 6-12 MovieLens words)."""
    vocab = words()
    t0 = time.monotonic()
    for start in range(0, n, BULK):
        items = [{"news_id": f"C{i:06d}",
                  "title": " ".join(rng.choice(vocab) for _ in range(rng.randint(6, 12)))}
                 for i in range(start, min(n, start + BULK))]
        status, body = d.post("/v1/models/rec/news", json.dumps({"items": items}))
        assert status == 200, body
    return time.monotonic() - t0


def start_seconds(build, tmp, name, cfg):
    t0 = time.monotonic()
    d = Daemon(build, tmp, name, config=cfg)
    return d, time.monotonic() - t0


def load_seconds(d):
    """The model's own load time from its "ready in X s" log line."""
    for line in d.log().splitlines():
        if "model 'rec' (news-recommendation) ready in" in line:
            return float(line.split("ready in ")[1].split(" s")[0])
    return float("nan")


def run(ctx):
    n = 20_000 if ctx.quick else N_ITEMS
    rounds = 2 if ctx.quick else 3
    state = os.path.join(ctx.tmp, "catalog-state")
    shutil.rmtree(state, ignore_errors=True)
    rng = random.Random(14)
    d = Daemon(ctx.build, ctx.tmp, "catalog-fill", config=config(ctx.tmp, "fill", state))
    try:
        fill_s = fill(d, n, rng)
    finally:
        d.stop()
    log(f"catalog: {n} items written in {fill_s:.1f} s")
    size_mib = sum(os.path.getsize(os.path.join(state, f)) for f in os.listdir(state)) / 2**20
    with_store, without, loads = [], [], []
    cfg_store = config(ctx.tmp, "store", state)
    cfg_bare = config(ctx.tmp, "bare", None)
    for r in range(rounds):
        for which in (("store", "bare") if r % 2 == 0 else ("bare", "store")):
            d, secs = start_seconds(ctx.build, ctx.tmp, f"catalog-{which}{r}",
                                    cfg_store if which == "store" else cfg_bare)
            try:
                if which == "store":
                    assert "encoding" not in d.log(), "stored vectors were not used"
                    with_store.append(secs)
                    loads.append(load_seconds(d))
                else:
                    without.append(secs)
            finally:
                d.stop()
    log(f"catalog: ready in {median(with_store):.2f} s with {n} items, "
        f"{median(without):.2f} s without a catalog")

    d = Daemon(ctx.build, ctx.tmp, "catalog-serve", config=cfg_store)
    try:
        ids = [f"C{i:06d}" for i in range(n)]
        bodies_catalog = write_bodies(os.path.join(ctx.tmp, "catalog_topk.jsonl"), [
            {"history": [{"news_id": i} for i in rng.sample(ids, 10)], "top_k": 10}
            for _ in range(64)])
        bodies_cands = write_bodies(os.path.join(ctx.tmp, "catalog_cands.jsonl"), [
            {"history": [{"news_id": i} for i in rng.sample(ids, 10)],
             "candidates": [{"news_id": i} for i in rng.sample(ids, 20)], "top_k": 10}
            for _ in range(64)])
        for f in (bodies_catalog, bodies_cands):
            with open(f) as fh:
                status, body = d.post("/v1/models/rec/recommend", fh.readline())
            assert status == 200, body
        jobs = [{"key": "catalog", "model": "rec", "conns": 1, "bodies": bodies_catalog,
                 "route": "/v1/models/rec/recommend"},
                {"key": "candidates", "model": "rec", "conns": 1, "bodies": bodies_cands,
                 "route": "/v1/models/rec/recommend"}]
        accs = sliced(d, jobs, 2 if ctx.quick else 4, 2)
    finally:
        d.stop()
    ctx.res[NAME] = {
        "items": n, "fill_s": fill_s, "store_mib": size_mib,
        "ready_store_s": median(with_store), "ready_bare_s": median(without),
        "load_store_s": median(loads), "rounds": rounds,
        "catalog": accs["catalog"], "candidates": accs["candidates"],
    }
    log(f"catalog: top-10 of {n} p50 {accs['catalog']['p50_us'] / 1e3:.2f} ms, "
        f"20 candidates p50 {accs['candidates']['p50_us'] / 1e3:.2f} ms")


def targets(res):
    sec = res.get(NAME)
    if not sec:
        return []
    p50 = sec["catalog"]["p50_us"] / 1e3
    ready = sec["ready_store_s"]
    n = sec["items"]
    return [(f"catalog-wide recommend p50 at {n} items <= 5 ms", f"{p50:.2f} ms",
             verdict(n >= N_ITEMS and p50 <= 5)),
            (f"restart to ready with {n} stored items <= 10 s", f"{ready:.2f} s",
             verdict(n >= N_ITEMS and ready <= 10))]


def report(res):
    sec = res.get(NAME)
    if not sec:
        return []
    c, k = sec["catalog"], sec["candidates"]
    return [
        f"{sec['items']} items written with the bulk route ({BULK} per request) in "
        f"{sec['fill_s']:.1f} s ({sec['items'] / sec['fill_s']:.0f} items/s, titles encoded and "
        f"committed); the store file is {sec['store_mib']:.0f} MiB.\n",
        "| start-up (median of %d, interleaved) | seconds to /readyz 200 |" % sec["rounds"],
        "|---|--:|",
        f"| with the {sec['items']}-item store (vectors read, nothing encoded) | "
        f"{sec['ready_store_s']:.2f} (the model's load: {sec['load_store_s']:.2f}) |",
        f"| same model, no catalog (baseline) | {sec['ready_bare_s']:.2f} |",
        "",
        "One connection, short wrk runs alternating the two rows; p50/p99 are medians of the "
        "runs'.\n",
        "| recommend (10 history items by id) | req/s | p50 ms | p99 ms | daemon CPU ms/req |",
        "|---|--:|--:|--:|--:|",
        f"| top 10 of the whole catalog | {c['req_s']:.1f} | {c['p50_us'] / 1e3:.2f} | "
        f"{c['p99_us'] / 1e3:.2f} | {fmt(c['cpu_ms_per_req'], '.2f')} |",
        f"| 20 candidates (baseline) | {k['req_s']:.1f} | {k['p50_us'] / 1e3:.2f} | "
        f"{k['p99_us'] / 1e3:.2f} | {fmt(k['cpu_ms_per_req'], '.2f')} |",
        "",
    ]
