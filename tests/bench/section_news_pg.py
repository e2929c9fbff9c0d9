"""news_pg: a recommender's news catalog in PostgreSQL (news_store:
"postgresql://..."), on a real server started for the run
(tests/integration/pgserver.py): the first start (encode news.tsv and seed
the table), a restart that reads every item with its vector back (no
encoding), a PUT's latency, and how long a PUT through replica A takes to be
served by replica B (issue 14)."""
import json
import os
import sys
import time
import urllib.error
import urllib.request

import bench_models
from bench_daemon import Daemon
from bench_lib import ROOT, fmt, log, median, verdict

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

NAME = "news_pg"
TITLE = "News catalog in PostgreSQL (D=256, two replicas on one server)"


def request(d, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(d.url(path), data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run(ctx):
    from pgserver import PgServer, server_bin_dir
    if server_bin_dir() is None:
        raise RuntimeError("PostgreSQL server not installed (apt-get install postgresql)")
    n_news = 20000 if ctx.quick else 100000
    rec_dir, news_tsv = bench_models.recommender_dir(
        os.path.join(ctx.out_dir, "models", f"recommender-{n_news}"), n_news=n_news)
    n_puts = 20 if ctx.quick else 50
    with PgServer() as pg:
        model = {"name": "rec", "path": rec_dir, "news_catalog": news_tsv,
                 "news_store": f'"{pg.dsn}"'}
        t0 = time.monotonic()
        a = Daemon(ctx.build, ctx.tmp, "news_pg_seed", models=[model])
        seed_s = time.monotonic() - t0
        a.stop()
        t0 = time.monotonic()
        a = Daemon(ctx.build, ctx.tmp, "news_pg_a", models=[model])
        restart_s = time.monotonic() - t0
        b = None
        try:
            b = Daemon(ctx.build, ctx.tmp, "news_pg_b", models=[model])
            put_ms, seen_ms = [], []
            for i in range(n_puts):
                title = f"bench update {i} of the catalog"
                t0 = time.monotonic()
                status, body = request(a, "PUT", f"/v1/models/rec/news/PG{i}", {"title": title})
                t1 = time.monotonic()
                assert status in (200, 201), body
                while True:
                    status, body = request(b, "GET", f"/v1/models/rec/news/PG{i}")
                    if status == 200 and json.loads(body)["title"] == title:
                        break
                    if time.monotonic() - t1 > 10:
                        raise RuntimeError(f"PUT PG{i} on A not seen on B within 10 s")
                    time.sleep(0.002)
                put_ms.append((t1 - t0) * 1e3)
                seen_ms.append((time.monotonic() - t1) * 1e3)
            items = a.metrics().get(("fastformerd_news_catalog_items", '{model="rec"}'))
        finally:
            a.stop()
            if b:
                b.stop()
    res = {"items": n_news, "catalog_items": items, "seed_s": seed_s, "restart_s": restart_s,
           "puts": n_puts, "put_p50_ms": median(put_ms), "put_p99_ms": percentile(put_ms, 0.99),
           "seen_p50_ms": median(seen_ms), "seen_p99_ms": percentile(seen_ms, 0.99),
           "seen_max_ms": max(seen_ms)}
    log(f"news_pg: {n_news} items: seed {seed_s:.1f} s, restart to ready {restart_s:.1f} s, "
        f"PUT p50 {res['put_p50_ms']:.1f} ms, seen on B p50 {res['seen_p50_ms']:.0f} ms "
        f"p99 {res['seen_p99_ms']:.0f} ms")
    ctx.res[NAME] = res


def targets(res):
    r = res.get(NAME)
    if not r:
        return []
    return [(f"news_pg: restart to ready with {r['items']:,} items in PostgreSQL <= 10 s",
             fmt(r["restart_s"], ".1f") + " s", verdict(r["restart_s"] <= 10)),
            ("news_pg: a PUT on A served by B within 1 s (max of the PUTs)",
             fmt(r["seen_max_ms"], ".0f") + " ms", verdict(r["seen_max_ms"] <= 1000))]


def report(res):
    r = res.get(NAME)
    if not r:
        return []
    return [
        "One PostgreSQL 15 server (initdb in a temporary directory, fsync on) and two daemons "
        "with the same recommender (D=256) and `news_store` on it. Times are wall clock from "
        "starting the process to `/readyz` 200.\n",
        "| what | measured |",
        "|---|--:|",
        f"| first start: encode {r['items']:,} titles of news.tsv and seed the table | "
        f"{r['seed_s']:.1f} s |",
        f"| restart: read {r['items']:,} items with their vectors back, no encoding | "
        f"{r['restart_s']:.1f} s |",
        f"| PUT through A (encode, commit, answer), p50 / p99 of {r['puts']} | "
        f"{r['put_p50_ms']:.1f} / {r['put_p99_ms']:.1f} ms |",
        f"| from A's answer to B serving the new title, p50 / p99 / max | "
        f"{r['seen_p50_ms']:.0f} / {r['seen_p99_ms']:.0f} / {r['seen_max_ms']:.0f} ms |",
        "",
    ]
