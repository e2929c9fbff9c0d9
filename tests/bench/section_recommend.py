"""recommend: the news recommender through the daemon: catalog ids vs raw
titles, cache disabled and warm (issue 6)."""
import os
import random

import bench_models
from bench_daemon import Daemon, sliced, wrk, write_bodies
from bench_lib import fmt, log, verdict

NAME = "recommend"
TITLE = "Recommendation (50 history + 20 candidates, 32 connections)"


def write_requests(tmp, news_tsv):
    """32 requests of 50 history + 20 candidates, as catalog ids and as raw
    titles: returns the two bodies files."""
    titles = bench_models.read_titles(news_tsv)
    rng = random.Random(5)
    reqs = []
    for _ in range(32):
        pick = rng.sample(titles, 70)
        reqs.append((pick[:50], pick[50:]))
    by_id = write_bodies(os.path.join(tmp, "rec_ids.jsonl"), [
        {"history": [{"news_id": i} for i, _ in h], "candidates": [{"news_id": i} for i, _ in c]}
        for h, c in reqs])
    by_title = write_bodies(os.path.join(tmp, "rec_titles.jsonl"), [
        {"history": [t for _, t in h], "candidates": [t for _, t in c]} for h, c in reqs])
    return by_id, by_title


def run(ctx):
    rec_dir = ctx.model("recommender")
    news_tsv = os.path.join(rec_dir, "news.tsv")
    slices, slice_s = (2, 2) if ctx.quick else (4, 2)
    conns = 32
    by_id, by_title = write_requests(ctx.tmp, news_tsv)
    d = Daemon(ctx.build, ctx.tmp, "recommend", models=[
        {"name": "rec", "path": rec_dir, "news_catalog": news_tsv, "news_cache_entries": 8192},
        {"name": "rec-nocache", "path": rec_dir, "news_catalog": news_tsv,
         "news_cache_entries": 0}])
    try:
        for f, m in ((by_id, "rec"), (by_title, "rec-nocache")):
            with open(f) as fh:
                status, body = d.post(f"/v1/models/{m}/recommend", fh.readline())
            assert status == 200, body
        # Fills the cache of `rec` with every title of the bodies (2240 < 8192 entries).
        wrk(d.port, "/v1/models/rec/recommend", by_title, 8, 2)
        jobs = [{"key": label, "model": m, "conns": conns, "bodies": f,
                 "route": f"/v1/models/{m}/recommend"}
                for label, m, f in [("catalog ids", "rec", by_id),
                                    ("raw titles, cache disabled", "rec-nocache", by_title),
                                    ("raw titles, warm cache", "rec", by_title)]]
        accs = sliced(d, jobs, slices, slice_s)
        rows = []
        for label, a in accs.items():
            a.update(label=label, conns=conns)
            rows.append(a)
            log(f"recommend {label}: {a['req_s']:.0f} req/s, p99 {a['p99_us'] / 1e3:.2f} ms, "
                f"errors {a['errors']}")
        ctx.res[NAME] = {"rows": rows, "ratio": rows[0]["req_s"] / rows[1]["req_s"]}
    finally:
        d.stop()


def targets(res):
    rr = res.get(NAME, {}).get("ratio")
    return [("recommend: catalog ids >= 5x raw titles without cache", fmt(rr) + "x",
             verdict(rr and rr >= 5))]


def report(res):
    sec = res.get(NAME)
    if not sec:
        return []
    out = ["Short wrk runs round-robin over the three rows; p50/p99 are medians of the runs'.\n",
           "| request | req/s | p50 ms | p99 ms | daemon CPU ms/req | cache hits | cache misses "
           "| errors |",
           "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in sec["rows"]:
        out.append(f"| {r['label']} | {r['req_s']:.1f} | {r['p50_us'] / 1e3:.2f} | "
                   f"{r['p99_us'] / 1e3:.2f} | {fmt(r['cpu_ms_per_req'], '.2f')} | "
                   f"{r['cache_hits']:.0f} | {r['cache_misses']:.0f} | {r['errors']} |")
    out.append("")
    return out
