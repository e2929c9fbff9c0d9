"""The news catalog shared by replicas in PostgreSQL (news_store:
"postgresql://..."): two real daemons against one real server (Debian's
postgresql, initdb in a temporary directory, 127.0.0.1 and a free port;
tests/integration/pgserver.py), each test in a database of its own.

  - a PUT, a DELETE and a bulk upsert through A are seen by recommend on B;
  - the server stopped: writes answer 503 with Retry-After and a message
    naming the database, recommend keeps serving on both, the metric and the
    log say so; started again: both recover by themselves;
  - kill -9 of a daemon during acknowledged writes: after a restart exactly
    the acknowledged state is there;
  - an unreachable database at start-up: exit 1 naming it; a password in
    the DSN never reaches the log."""
import itertools
import re
import signal
import threading
import time

import pytest

from conftest import CLASSIFIER_DIR, MIND_NEWS, NEWSREC_DIR, launch
from pgserver import PgServer, server_bin_dir

pytestmark = pytest.mark.skipif(server_bin_dir() is None,
                                reason="PostgreSQL server not installed (apt-get install postgresql)")

_db_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def pg():
    with PgServer() as server:
        yield server


@pytest.fixture
def dsn(pg):
    """A fresh database on the module's server; its DSN."""
    if not pg.running:  # a test that stopped the server and failed before starting it again
        pg.start()
    name = f"news{next(_db_numbers)}"
    pg.sql(f"CREATE DATABASE {name} OWNER {pg.user}", database="postgres", user="postgres")
    return f"postgresql://{pg.user}@127.0.0.1:{pg.port}/{name}"


def mind_model(dsn, name="mind"):
    return {"name": name, "path": NEWSREC_DIR, "news_catalog": MIND_NEWS,
            "news_store": f'"{dsn}"'}


def mind_ids():
    with open(MIND_NEWS, encoding="utf-8") as f:
        return [line.split("\t")[0] for line in f if line.strip()]


def recommend(d, candidates, model="mind"):
    hist = mind_ids()[:3]
    return d.post(f"/v1/models/{model}/recommend",
                  {"history": [{"news_id": n} for n in hist],
                   "candidates": [{"news_id": c} for c in candidates]})


def wait_until(fn, timeout_s=10.0, what="condition"):
    """Polls fn() until it returns a true value; returns (value, seconds)."""
    start = time.monotonic()
    while True:
        v = fn()
        if v:
            return v, time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(0.01)


def metric(d, name, model="mind"):
    text = d.get("/metrics").body.decode()
    m = re.search(rf'^{name}\{{model="{model}"\}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


def test_writes_through_a_are_seen_by_b(start_daemon, dsn):
    a = start_daemon(models=[mind_model(dsn)])
    b = start_daemon(models=[mind_model(dsn)])
    assert metric(a, "fastformerd_news_store_up") == 1
    r = a.request("PUT", "/v1/models/mind/news/X1", body={"title": "oil bank says market up",
                                                          "category": "finance"})
    assert r.status == 201, r
    seen, seconds = wait_until(lambda: recommend(b, ["X1"]).status == 200, 10, "X1 on B")
    print(f"PUT on A seen by recommend on B after {seconds * 1000:.0f} ms")
    sa, sb = recommend(a, ["X1"]).json()["scores"], recommend(b, ["X1"]).json()["scores"]
    assert sa == pytest.approx(sb, rel=1e-6)
    g = b.get("/v1/models/mind/news/X1")
    assert g.status == 200, g
    assert g.json()["title"] == "oil bank says market up"
    assert g.json()["category"] == "finance"

    # Replaced on B, seen on A with the new title's vector.
    r = b.request("PUT", "/v1/models/mind/news/X1", body={"title": "team win game"})
    assert r.status == 200, r
    wait_until(lambda: a.get("/v1/models/mind/news/X1").json().get("title") == "team win game",
               10, "the new title on A")
    assert recommend(a, ["X1"]).json()["scores"] != pytest.approx(sa, rel=1e-6)

    # Bulk through A, delete through B.
    items = [{"news_id": f"B{i}", "title": f"market deal season {i}"} for i in range(5)]
    r = a.post("/v1/models/mind/news", {"items": items})
    assert r.status == 200, r
    wait_until(lambda: recommend(b, [f"B{i}" for i in range(5)]).status == 200, 10, "bulk on B")
    r = b.request("DELETE", "/v1/models/mind/news/B0")
    assert r.status == 200, r
    wait_until(lambda: recommend(a, ["B0"]).status == 400, 10, "the delete on A")
    assert "B0" in recommend(a, ["B0"]).json()["error"]["message"]
    assert a.get("/v1/models/mind/news/B0").status == 404
    n_a = metric(a, "fastformerd_news_catalog_items")
    wait_until(lambda: metric(b, "fastformerd_news_catalog_items") == n_a, 10, "equal counts")
    assert n_a == len(mind_ids()) + 1 + 4


def test_database_down_then_back(start_daemon, dsn, pg):
    a = start_daemon(models=[mind_model(dsn)])
    b = start_daemon(models=[mind_model(dsn)])
    assert a.request("PUT", "/v1/models/mind/news/K1", body={"title": "oil up"}).status == 201
    wait_until(lambda: recommend(b, ["K1"]).status == 200, 10, "K1 on B")

    pg.stop()
    wait_until(lambda: metric(a, "fastformerd_news_store_up") == 0, 10, "the metric on A")
    wait_until(lambda: metric(b, "fastformerd_news_store_up") == 0, 10, "the metric on B")
    where = f"postgresql://127.0.0.1:{pg.port}/{dsn.rsplit('/', 1)[1]}"
    for method, path, body in [("PUT", "/v1/models/mind/news/K2", {"title": "team win"}),
                               ("DELETE", "/v1/models/mind/news/K1", None),
                               ("POST", "/v1/models/mind/news",
                                {"items": [{"news_id": "K3", "title": "deal"}]})]:
        r = a.request(method, path, body=body)
        assert r.status == 503, (method, r)
        assert int(r.headers["retry-after"]) >= 1
        assert where in r.json()["error"]["message"], r
    # Reads keep serving from memory, on both replicas.
    for d in (a, b):
        r = recommend(d, ["K1", mind_ids()[5]])
        assert r.status == 200, r
        assert d.get("/readyz").status == 200
    assert re.search(rf"news store {re.escape(where)} of model 'mind' is unreachable", a.log())

    pg.start()
    wait_until(lambda: metric(a, "fastformerd_news_store_up") == 1, 30, "A reconnected")
    wait_until(lambda: metric(b, "fastformerd_news_store_up") == 1, 30, "B reconnected")
    assert "is reachable again" in a.log()
    r = a.request("PUT", "/v1/models/mind/news/K2", body={"title": "team win"})
    assert r.status == 201, r
    wait_until(lambda: recommend(b, ["K2"]).status == 200, 10, "K2 on B after the recovery")
    assert b.request("DELETE", "/v1/models/mind/news/K1").status == 200
    wait_until(lambda: recommend(a, ["K1"]).status == 400, 10, "the delete on A")


def test_kill9_keeps_exactly_the_acknowledged_writes(start_daemon, dsn, tmp_path):
    a = start_daemon(models=[mind_model(dsn)])
    acked = {}  # news_id -> title, or None when deleted
    # The write the kill interrupted was not acknowledged, but it may have
    # committed: a DELETE of an acknowledged item may or may not be there.
    unsettled = set()
    stop = threading.Event()

    def writer():
        for i in itertools.count():
            if stop.is_set():
                return
            try:
                if i % 7 == 3:
                    victim = f"W{i - 2}"
                    unsettled.add(victim)
                    r = a.request("DELETE", f"/v1/models/mind/news/{victim}", timeout=10)
                    unsettled.discard(victim)
                    if r.status == 200:
                        acked[victim] = None
                elif i % 7 == 5:
                    items = [{"news_id": f"W{i}-{k}", "title": f"bulk {i} {k} oil"} for k in range(3)]
                    r = a.post("/v1/models/mind/news", {"items": items}, timeout=10)
                    if r.status == 200:
                        acked.update({it["news_id"]: it["title"] for it in items})
                else:
                    title = f"market {i} team"
                    r = a.request("PUT", f"/v1/models/mind/news/W{i}", body={"title": title},
                                  timeout=10)
                    if r.status in (200, 201):
                        acked[f"W{i}"] = title
            except OSError:
                return  # the daemon is gone

    t = threading.Thread(target=writer)
    t.start()
    wait_until(lambda: len(acked) >= 40, 60, "40 acknowledged writes")
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    stop.set()
    t.join()
    assert any(v is None for v in acked.values()) and len(acked) >= 40

    b = start_daemon(models=[mind_model(dsn)], name="after-kill")
    for news_id, title in acked.items():
        r = b.get(f"/v1/models/mind/news/{news_id}")
        if news_id in unsettled and r.status == 404:
            continue  # the interrupted DELETE committed
        if title is None:
            assert r.status == 404, (news_id, r)
        else:
            assert r.status == 200, (news_id, r)
            assert r.json()["title"] == title
    live = [k for k, v in acked.items() if v is not None and k not in unsettled]
    assert recommend(b, live).status == 200


def test_unreachable_database_at_start_exits_1(tmp_path, pg):
    port = pg.port + 1 if pg.port < 65535 else pg.port - 1
    dsn = f"postgresql://reader:hunter2secret@127.0.0.1:{port}/nothere"
    d = launch(str(tmp_path), models=[mind_model(dsn)], wait_ready=False)
    assert d.proc.wait(timeout=60) == 1
    log = d.log()
    assert (f"model 'mind': postgresql://127.0.0.1:{port}/nothere: connection to server at "
            f'"127.0.0.1", port {port} failed: Connection refused') in log, log
    assert "hunter2secret" not in log


def test_news_store_must_be_postgresql(tmp_path):
    """Any other value is refused at start-up, without repeating it (it may
    hold a password)."""
    with pytest.raises(AssertionError) as e:
        launch(str(tmp_path), models=[mind_model("/var/lib/secret-path.sqlite")])
    text = str(e.value)
    assert "fastformerd did not start (rc=1)" in text
    assert ("fastformerd: model 'mind': news_store: expected a postgresql:// or postgres:// "
            "URI (a SQLite store goes under server.state_dir)") in text, text
    assert "secret-path" not in text


def test_password_never_logged(start_daemon, pg, dsn):
    # trust authentication ignores the password, so the daemon starts.
    with_password = dsn.replace(f"{pg.user}@", f"{pg.user}:hunter2secret@")
    d = start_daemon(models=[mind_model(with_password)])
    assert d.request("PUT", "/v1/models/mind/news/P1", body={"title": "x y"}).status == 201
    pg.stop()
    wait_until(lambda: metric(d, "fastformerd_news_store_up") == 0, 10, "down")
    r = d.request("PUT", "/v1/models/mind/news/P2", body={"title": "x y"})
    assert r.status == 503
    pg.start()
    wait_until(lambda: metric(d, "fastformerd_news_store_up") == 1, 30, "up")
    assert "hunter2secret" not in d.log()
    assert "hunter2secret" not in r.body.decode()
    for path in ("/metrics", "/v1/models", "/v1/models/mind", "/v2/models/mind"):
        assert "hunter2secret" not in d.get(path).body.decode(), path


def test_sighup_keeps_the_shared_catalog(start_daemon, dsn):
    """The issue's first report, with PostgreSQL: a write acknowledged
    before a reload is still served after it, and writes go on."""
    a = start_daemon(models=[mind_model(dsn)])
    b = start_daemon(models=[mind_model(dsn)])
    assert a.request("PUT", "/v1/models/mind/news/H1", body={"title": "oil up"}).status == 201
    a.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: re.search(r'fastformerd_reloads_total\{result="success"\} 1',
                                 a.get("/metrics").body.decode()), 30, "the reload")
    assert "news catalog kept" in a.log()
    assert recommend(a, ["H1"]).status == 200
    assert a.request("PUT", "/v1/models/mind/news/H2", body={"title": "team win"}).status == 201
    wait_until(lambda: recommend(b, ["H1", "H2"]).status == 200, 10, "H1 and H2 on B")
    assert metric(a, "fastformerd_news_store_up") == 1


def test_news_store_only_for_recommenders(tmp_path, dsn):
    d = launch(str(tmp_path), models=[{"name": "cls", "path": CLASSIFIER_DIR,
                                       "news_store": f'"{dsn}"'}], wait_ready=False)
    assert d.proc.wait(timeout=60) == 1
    assert ("model 'cls': news_store is only for news-recommendation models, this one is a "
            "classification model") in d.log(), d.log()


def test_concurrent_writers_on_both_replicas_converge(start_daemon, dsn, pg):
    """Two writers on each replica over the same 12 ids (PUT and DELETE at
    random) while readers recommend on both: afterwards both replicas serve
    exactly the table's state, item by item (no replica keeps a row's older
    state because of the order in which it applied the changes)."""
    import random
    a = start_daemon(models=[mind_model(dsn)])
    b = start_daemon(models=[mind_model(dsn)])
    ids = [f"C{i}" for i in range(12)]
    stop = threading.Event()
    errors = []

    def writer(d, seed):
        rng = random.Random(seed)
        for n in range(60):
            i = rng.choice(ids)
            if rng.random() < 0.3:
                r = d.request("DELETE", f"/v1/models/mind/news/{i}")
                ok = r.status in (200, 404)
            else:
                r = d.request("PUT", f"/v1/models/mind/news/{i}",
                              body={"title": f"market oil {seed} {n}"})
                ok = r.status in (200, 201)
            if not ok:
                errors.append(r)

    def reader(d):
        rng = random.Random(7)
        while not stop.is_set():
            r = recommend(d, [rng.choice(mind_ids())])
            if r.status != 200:
                errors.append(r)

    writers = [threading.Thread(target=writer, args=(d, s))
               for s, d in enumerate([a, a, b, b])]
    readers = [threading.Thread(target=reader, args=(d,)) for d in (a, b)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors[:3]

    db = database_state(pg, dsn)

    def served(d):
        out = {}
        for i in ids:
            r = d.get(f"/v1/models/mind/news/{i}")
            if r.status == 200:
                out[i] = r.json()["title"]
        return out

    wait_until(lambda: served(a) == db and served(b) == db, 15, "both replicas = the table")
    # And the vectors: both replicas score every live item the same.
    live = sorted(db)
    if live:
        sa, sb = recommend(a, live).json()["scores"], recommend(b, live).json()["scores"]
        assert sa == pytest.approx(sb, rel=1e-6)


def database_state(pg, dsn):
    """{news_id: title} of the live C* items of model 'mind' in the table."""
    out = pg.sql("SELECT news_id, title FROM fastformerd_news WHERE model = 'mind' "
                 "AND NOT deleted AND news_id LIKE 'C%'", database=dsn.rsplit("/", 1)[1])
    return dict(line.split("|", 1) for line in out.splitlines() if line)
