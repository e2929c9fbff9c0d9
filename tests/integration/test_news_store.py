"""The durable news catalog (server.state_dir, one SQLite store per
recommender) through the real daemon over HTTP: the news routes, durability
across SIGHUP, restarts and kill -9 (exactly the acknowledged state), seeding
from news.tsv once, vectors kept per weights digest, the catalog-wide
recommend against the PyTorch brute force (tests/fixtures/mind-tiny/
golden.json, tools/make_mind_tiny.py), and the failures: a corrupt store at
start-up (exit 1 naming the file) and on SIGHUP (the old set keeps serving),
a read-only store (503 + Retry-After) and a full disk (507), with nothing
acknowledged lost. The read-only store is the real immutable flag (chattr
+i), the full disk a real 1 MiB tmpfs: both need root, and are skipped with
the reason otherwise."""
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import (DAEMON, FIXTURES, MIND_NEWS, NEWSREC_DIR, assert_close, launch,
                      yaml_config)

MIND = {"name": "mind", "path": NEWSREC_DIR, "news_catalog": MIND_NEWS}
STORE = "mind.news.sqlite"


def news_ids():
    with open(MIND_NEWS, encoding="utf-8") as f:
        return [line.split("\t")[0] for line in f if line.strip()]


def start(tmp_path, state, name="d", models=None, server=None, **kw):
    srv = {"state_dir": str(state)}
    srv.update(server or {})
    return launch(str(tmp_path), models=models or [MIND], server=srv, name=name, **kw)


def put(d, nid, title, category=None):
    body = {"title": title}
    if category is not None:
        body["category"] = category
    return d.request("PUT", f"/v1/models/mind/news/{nid}", body=body)


def get(d, nid):
    return d.get(f"/v1/models/mind/news/{nid}")


def metric(d, name):
    for line in d.get("/metrics").body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def stop_ok(d):
    rc = d.stop()
    assert rc == 0, d.log()[-3000:]


# ---- routes -------------------------------------------------------------------------------

def test_put_get_delete_and_bulk(tmp_path):
    d = start(tmp_path, tmp_path / "state")
    r = put(d, "X1", "team win", "sports")
    assert r.status == 201 and r.json() == {"model": "mind", "news_id": "X1", "replaced": False}
    r = put(d, "X1", "team wins again")
    assert r.status == 200 and r.json()["replaced"] is True
    r = get(d, "X1")
    assert r.status == 200, r
    item = r.json()
    assert item["title"] == "team wins again" and item["category"] == ""
    assert item["news_id"] == "X1" and item["updated"].endswith("Z")
    seeded = get(d, news_ids()[0]).json()
    assert seeded["category"]  # news.tsv's category column
    r = d.post("/v1/models/mind/news", {"items": [
        {"news_id": "B1", "title": "oil bank", "category": "finance"},
        {"news_id": "X1", "title": "team"}]})
    assert r.status == 200 and r.json() == {"model": "mind", "created": 1, "replaced": 1}
    assert get(d, "B1").json()["category"] == "finance"
    r = d.request("DELETE", "/v1/models/mind/news/B1")
    assert r.status == 200 and r.json() == {"model": "mind", "news_id": "B1", "deleted": True}
    r = d.request("DELETE", "/v1/models/mind/news/B1")
    assert r.status == 404
    assert r.json()["error"]["message"] == "model 'mind': unknown news_id 'B1'"
    assert get(d, "B1").status == 404
    assert metric(d, "fastformerd_news_catalog_items") == len(news_ids()) + 1
    # Bad bulk bodies: nothing written.
    for body, msg in [
        ({"items": [{"news_id": "C1", "title": "a"}, {"news_id": "C1", "title": "b"}]},
         "items[1].news_id: 'C1' is also items[0]"),
        ({"items": [{"news_id": "C1", "title": "a"}, {"news_id": "", "title": "b"}]},
         "items[1].news_id: expected 1 to 128 bytes, got 0"),
        ({"items": [{"news_id": "C1", "title": "a"}, {"news_id": "C2"}]},
         "items[1]: missing key 'title'"),
        ({"items": [{"news_id": "C1", "title": "a", "x": 1}]},
         "items[0]: unknown key 'x' (allowed: news_id, title, category)"),
        ({"items": []}, "items: must not be empty"),
    ]:
        r = d.post("/v1/models/mind/news", body)
        assert r.status == 400 and r.json()["error"]["message"] == msg, (body, r)
    assert get(d, "C1").status == 404
    # Routes of a model without a catalog, and unknown models.
    r = d.get("/v1/models/nope/news/N1")
    assert r.status == 404
    stop_ok(d)


def test_bulk_limit_and_catalog_limit(tmp_path):
    n0 = len(news_ids())
    d = start(tmp_path, tmp_path / "state", server={"news_bulk_max_items": 3},
              models=[dict(MIND, max_catalog_items=n0 + 2)])
    items = [{"news_id": f"L{i}", "title": "team"} for i in range(4)]
    r = d.post("/v1/models/mind/news", {"items": items})
    assert r.status == 413
    assert r.json()["error"]["message"] == "items: 4 items, more than news_bulk_max_items (3)"
    r = d.post("/v1/models/mind/news", {"items": items[:3]})
    assert r.status == 409
    assert r.json()["error"]["message"] == (
        f"model 'mind': the news catalog holds {n0} items; 3 more would pass "
        f"max_catalog_items ({n0 + 2})")
    assert get(d, "L0").status == 404  # all or nothing
    assert put(d, "L0", "team").status == 201
    assert put(d, "L1", "team").status == 201
    assert put(d, "L2", "team").status == 409
    assert put(d, "L1", "team again").status == 200  # replacing adds nothing
    assert d.request("DELETE", "/v1/models/mind/news/L1").status == 200
    assert put(d, "L2", "team").status == 201
    stop_ok(d)


# ---- durability ------------------------------------------------------------------------------

def acknowledged_ops(d, n, rng_seed=7):
    """N mixed writes; returns {id: (title, category) or None (deleted)} of
    what the daemon acknowledged."""
    import random
    rng = random.Random(rng_seed)
    state = {}
    ids = [f"K{i}" for i in range(40)] + news_ids()[:5]
    for step in range(n):
        kind = rng.choice(["put", "put", "delete", "bulk"])
        if kind == "put":
            nid = rng.choice(ids)
            title = f"team win {step}"
            r = put(d, nid, title, "c%d" % (step % 3))
            assert r.status in (200, 201), r
            state[nid] = (title, "c%d" % (step % 3))
        elif kind == "delete":
            nid = rng.choice(ids)
            r = d.request("DELETE", f"/v1/models/mind/news/{nid}")
            assert r.status in (200, 404), r
            state[nid] = None
        else:
            chosen = rng.sample(ids, 4)
            items = [{"news_id": x, "title": f"oil bank {step}"} for x in chosen]
            r = d.post("/v1/models/mind/news", {"items": items})
            assert r.status == 200, r
            for x in chosen:
                state[x] = (f"oil bank {step}", "")
    return state


def check_state(d, state):
    for nid, want in state.items():
        r = get(d, nid)
        if want is None:
            assert r.status == 404, (nid, r)
        else:
            assert r.status == 200, (nid, r)
            assert (r.json()["title"], r.json()["category"]) == want, nid


def test_kill9_keeps_exactly_the_acknowledged_state(tmp_path):
    state_dir = tmp_path / "state"
    d = start(tmp_path, state_dir)
    state = acknowledged_ops(d, 60)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d = start(tmp_path, state_dir, name="d2")
    check_state(d, state)
    alive = {n for n, v in state.items() if v is not None}
    gone = {n for n, v in state.items() if v is None} & set(news_ids())
    assert metric(d, "fastformerd_news_catalog_items") == len(
        (set(news_ids()) - gone) | alive)
    # The stored vectors are used: nothing was encoded again.
    assert "encoding" not in d.log() and "encoded" not in d.log()
    # And a written item is scored like the same title sent as text.
    nid = next(n for n, v in state.items() if v)
    by_id = d.post("/v1/models/mind/recommend",
                   {"history": [{"news_id": news_ids()[0]}], "candidates": [{"news_id": nid}]})
    by_text = d.post("/v1/models/mind/recommend",
                     {"history": [{"news_id": news_ids()[0]}], "candidates": [state[nid][0]]})
    assert by_id.status == 200 and by_text.status == 200
    assert_close(by_id.json()["scores"], by_text.json()["scores"], 1e-5, 1e-5)
    stop_ok(d)


def test_kill9_under_concurrent_writes(tmp_path):
    """Writers keep going while the daemon is killed: every acknowledged
    write is there after the restart."""
    state_dir = tmp_path / "state"
    d = start(tmp_path, state_dir)
    acked, lock, stop = {}, threading.Lock(), threading.Event()

    def writer(k):
        i = 0
        while not stop.is_set():
            nid = f"W{k}-{i}"
            try:
                r = put(d, nid, f"team {i}")
            except OSError:
                return
            if r.status == 201:
                with lock:
                    acked[nid] = f"team {i}"
            i += 1

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 80 and time.monotonic() < deadline:
        time.sleep(0.01)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 80
    d = start(tmp_path, state_dir, name="d2")
    for nid, title in acked.items():
        r = get(d, nid)
        assert r.status == 200 and r.json()["title"] == title, (nid, r)
    stop_ok(d)


def test_sighup_keeps_written_items(tmp_path):
    """The issue's report: PUT, SIGHUP, recommend -> unknown news_id. Now the
    catalog survives reloads, with and without a state directory."""
    for state in (tmp_path / "state", None):
        srv = {"state_dir": str(state)} if state else {}
        d = launch(str(tmp_path), models=[MIND], server=srv, name=f"h{bool(state)}")
        assert put(d, "X1", "team win").status == 201
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "reload complete" not in d.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "news catalog kept" in d.log()
        r = d.post("/v1/models/mind/recommend",
                   {"history": [{"news_id": news_ids()[0]}], "candidates": [{"news_id": "X1"}]})
        assert r.status == 200, r
        assert put(d, "X2", "team").status == 201  # writes go on after the reload
        stop_ok(d)


def test_news_tsv_seeds_the_store_once(tmp_path):
    state_dir = tmp_path / "state"
    d = start(tmp_path, state_dir)
    assert "seeded with %d items" % len(news_ids()) in d.log()
    first = news_ids()[0]
    assert d.request("DELETE", f"/v1/models/mind/news/{first}").status == 200
    stop_ok(d)
    d = start(tmp_path, state_dir, name="d2")
    assert "seeded" not in d.log()
    assert get(d, first).status == 404  # the store is the truth, not news.tsv
    stop_ok(d)
    # Without news.tsv the store still serves its items.
    d = start(tmp_path, state_dir, name="d3", models=[{"name": "mind", "path": NEWSREC_DIR}])
    assert get(d, news_ids()[1]).status == 200
    stop_ok(d)


def test_new_weights_reencode_the_titles(tmp_path):
    """Another digest: the titles are encoded again at load (readiness says
    loading meanwhile), the new vectors are stored, and the next start
    encodes nothing."""
    state_dir = tmp_path / "state"
    d = start(tmp_path, state_dir)
    assert put(d, "X1", "team win").status == 201
    stop_ok(d)
    # The same model with its weights file changed by one value: a new digest.
    other = tmp_path / "other"
    os.makedirs(other)
    for f in ("config.json", "vocab.txt"):
        with open(os.path.join(NEWSREC_DIR, f), "rb") as src, open(other / f, "wb") as dst:
            dst.write(src.read())
    with open(os.path.join(NEWSREC_DIR, "model.safetensors"), "rb") as f:
        blob = bytearray(f.read())
    blob[-4:] = bytes(4)  # the last float of the last tensor becomes 0
    with open(other / "model.safetensors", "wb") as f:
        f.write(blob)
    model = {"name": "mind", "path": str(other)}
    d = start(tmp_path, state_dir, name="d2", models=[model])
    n = len(news_ids()) + 1
    assert f"encoding {n} news titles that have no stored vector" in d.log()
    r = d.post("/v1/models/mind/recommend",
               {"history": ["team"], "candidates": [{"news_id": "X1"}, "team win"]})
    s = r.json()["scores"]
    assert_close(s[0], s[1], 1e-5, 1e-5)  # X1's vector is the new weights' encoding
    stop_ok(d)
    d = start(tmp_path, state_dir, name="d3", models=[model])
    assert "encoding" not in d.log()
    stop_ok(d)


# ---- catalog-wide recommend ------------------------------------------------------------------

def golden_impressions():
    with open(os.path.join(FIXTURES, "mind-tiny", "golden.json")) as f:
        g = json.load(f)
    with open(os.path.join(FIXTURES, "mind-tiny", "behaviors.tsv"), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    hist = {r[0]: r[3].split() for r in rows}
    return [(imp, hist[imp["impression_id"]]) for imp in g["impressions"]
            if not imp["zero_user"]]


def test_catalog_top_k_equals_pytorch_brute_force(tmp_path):
    d = start(tmp_path, tmp_path / "state")
    catalog = set(news_ids())
    for imp, hist in golden_impressions():
        want = imp["catalog_scores"]
        history = [{"news_id": h} for h in hist if h in catalog]
        r = d.post("/v1/models/mind/recommend",
                   {"history": history, "top_k": 1000, "exclude_history": False})
        assert r.status == 200, r
        recs = r.json()["recommendations"]
        assert sorted(x["news_id"] for x in recs) == sorted(want)  # every item once
        for x in recs:
            assert_close(x["score"], want[x["news_id"]], 1e-4, 1e-4, x["news_id"])
        # Best first: the PyTorch order, up to float-rounding ties.
        got = [round(want[x["news_id"]], 3) for x in recs]
        assert got == sorted(got, reverse=True), imp["impression_id"]
        # top_k keeps the head; exclude_history (the default) drops the history.
        r = d.post("/v1/models/mind/recommend", {"history": history, "top_k": 3})
        top = [x["news_id"] for x in r.json()["recommendations"]]
        rest = [x["news_id"] for x in recs if x["news_id"] not in {h["news_id"] for h in history}]
        assert len(top) == 3
        assert [round(want[t], 3) for t in top] == [round(want[t], 3) for t in rest[:3]]
    stop_ok(d)


def test_catalog_since_keeps_recent_items(tmp_path):
    d = start(tmp_path, tmp_path / "state")
    time.sleep(0.01)
    cut = get(d, news_ids()[0]).json()["updated"]
    time.sleep(0.02)
    assert put(d, "NEW1", "team win").status == 201
    time.sleep(0.01)  # NEW2 is the newer by at least a millisecond
    assert put(d, "NEW2", "oil bank").status == 201
    new_updated = get(d, "NEW1").json()["updated"]
    r = d.post("/v1/models/mind/recommend",
               {"history": [{"news_id": news_ids()[0]}], "since": new_updated})
    assert r.status == 200, r
    assert {x["news_id"] for x in r.json()["recommendations"]} == {"NEW1", "NEW2"}
    r = d.post("/v1/models/mind/recommend",
               {"history": [], "top_k": 2, "since": cut})
    # Empty history: every score is 0, so the newest come first.
    recs = r.json()["recommendations"]
    assert [x["news_id"] for x in recs] == ["NEW2", "NEW1"]
    assert [x["score"] for x in recs] == [0, 0]
    r = d.post("/v1/models/mind/recommend", {"history": [], "since": "2999-01-01T00:00:00Z"})
    assert r.status == 200 and r.json()["recommendations"] == []
    r = d.post("/v1/models/mind/recommend", {"history": [], "since": "tomorrow"})
    assert r.status == 400
    stop_ok(d)


# ---- bad store files -------------------------------------------------------------------------

def run_to_exit(tmp_path, state, models=None, name="bad"):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(yaml_config(models or [MIND], {"state_dir": str(state)}))
    p = subprocess.run([DAEMON, "--config", str(cfg)], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    return p.returncode, p.stdout + p.stderr


def test_corrupt_store_at_start_exits_1_naming_the_file(tmp_path):
    state = tmp_path / "state"
    os.makedirs(state)
    path = state / STORE
    path.write_bytes(b"not a database at all " * 200)
    rc, log = run_to_exit(tmp_path, state)
    assert rc == 1, log
    assert f"model 'mind': {path}: cannot read the file: file is not a database" in log, log
    # A SQLite file of another application is not written into either.
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE t(x)")
    db.commit()
    db.close()
    rc, log = run_to_exit(tmp_path, state)
    assert rc == 1
    assert f"{path}: not a fastformerd news store (SQLite application_id 0x00000000" in log, log


def test_damaged_page_at_start_exits_1(tmp_path):
    state = tmp_path / "state"
    d = start(tmp_path, state)
    d.post("/v1/models/mind/news",
           {"items": [{"news_id": f"P{i}", "title": "team win " * 8} for i in range(300)]})
    stop_ok(d)
    path = state / STORE
    with open(path, "r+b") as f:
        f.seek(4096 * 3)
        f.write(b"\xa5" * 4096)
    rc, log = run_to_exit(tmp_path, state)
    assert rc == 1, log
    assert str(path) in log and ("damaged news store" in log or "malformed" in log), log


def test_unusable_state_dir_exits_1(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, log = run_to_exit(tmp_path, blocker / "state")
    assert rc == 1
    assert f"state directory {blocker}/state: cannot create: Not a directory" in log, log


def test_sighup_with_a_corrupt_store_keeps_the_old_set(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    d = start(tmp_path, good)
    assert put(d, "X1", "team win").status == 201
    os.makedirs(bad)
    (bad / STORE).write_bytes(b"garbage" * 1000)
    with open(d.config_path, "w") as f:
        f.write(yaml_config([MIND], {"state_dir": str(bad)}))
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while "reload failed" not in d.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"reload failed, old models keep serving: model 'mind': {bad / STORE}" in d.log()
    assert d.get("/readyz").status == 200
    assert get(d, "X1").status == 200
    # The old catalog was retired during the load and is writable again.
    assert put(d, "X3", "team").status == 201
    stop_ok(d)
    d = start(tmp_path, good, name="d2")
    assert get(d, "X3").status == 200
    stop_ok(d)


# ---- read-only and full disks ----------------------------------------------------------------

def mount(*args):
    p = subprocess.run(["mount", *args], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount (needs root and mount privileges): {p.stderr.strip()}")


def umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def chattr(flag, *paths):
    p = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"chattr {flag} failed (needs root and a file system with the immutable "
                    f"flag): {p.stderr.strip()}")


def test_read_only_store_answers_503_and_loses_nothing(tmp_path):
    """The store's files refuse writes while the daemon runs (the immutable
    flag: writes through open descriptors fail with EPERM, as on a disk
    remounted read-only under a running process)."""
    state = tmp_path / "state"
    d = start(tmp_path, state)
    assert put(d, "X1", "team win").status == 201
    files = [state / STORE, state / (STORE + "-wal")]
    chattr("+i", *files)
    try:
        r = put(d, "X2", "oil bank")
        assert r.status == 503, r
        assert r.headers["retry-after"] == "5"
        msg = r.json()["error"]["message"]
        assert msg.startswith("model 'mind': news store read-only, nothing written: "), msg
        assert str(state / STORE) in msg and "Operation not permitted" in msg, msg
        r = d.request("DELETE", "/v1/models/mind/news/X1")
        assert r.status == 503, r
        r = d.post("/v1/models/mind/news", {"items": [{"news_id": "X3", "title": "team"}]})
        assert r.status == 503, r
        assert get(d, "X2").status == 404 and get(d, "X1").status == 200
        assert 'kind="read-only"} 3' in d.get("/metrics").body.decode()
        assert d.post("/v1/models/mind/recommend",
                      {"history": [{"news_id": "X1"}], "top_k": 2}).status == 200
    finally:
        chattr("-i", *files)
    assert put(d, "X2", "oil bank").status == 201
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d = start(tmp_path, state, name="d2")
    assert get(d, "X1").status == 200 and get(d, "X2").status == 200
    stop_ok(d)


def test_full_disk_answers_507_and_loses_nothing(tmp_path):
    mnt = tmp_path / "small"
    os.makedirs(mnt)
    mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt))
    try:
        d = start(tmp_path, mnt / "state")
        acked, status, i = {}, 201, 0
        title = "team win oil bank " * 20
        while status != 507 and i < 2000:
            items = [{"news_id": f"F{i}-{k}", "title": title} for k in range(20)]
            r = d.post("/v1/models/mind/news", {"items": items})
            status = r.status
            if status == 200:
                acked.update({x["news_id"]: title for x in items})
            i += 1
        assert status == 507, r
        msg = r.json()["error"]["message"]
        assert msg.startswith("model 'mind': news store full, nothing written: "), msg
        assert str(mnt / "state" / STORE) in msg
        assert get(d, f"F{i - 1}-0").status == 404  # the refused batch left nothing
        assert 'kind="full"}' in d.get("/metrics").body.decode()
        # Reads go on, and deletes make room.
        assert d.post("/v1/models/mind/recommend",
                      {"history": ["team"], "top_k": 2}).status == 200
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d = start(tmp_path, mnt / "state", name="d2")
        for nid in list(acked)[::7]:
            assert get(d, nid).status == 200, nid
        assert metric(d, "fastformerd_news_catalog_items") == len(news_ids()) + len(acked)
        stop_ok(d)
    finally:
        umount(mnt)
