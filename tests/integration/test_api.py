"""Every route of fastformerd against the real daemon: outputs equal the
PyTorch goldens (tests/fixtures/*/golden.json) and `fastformer-cli predict`,
the OIP v2 routes agree with the REST ones, and the operational routes
(/healthz, /readyz, /metrics, /openapi.json) behave."""
import calendar
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import (CLASSIFIER_DIR, CLI, MIND_NEWS, NEWSREC_DIR, assert_close, golden)


def classifier_rows():
    g = golden("classifier_f32")
    rows = []
    for case in g["cases"]:
        for i, ids in enumerate(case["input_ids"]):
            rows.append((f"{case['name']}[{i}]", ids, case["probabilities"][i], case["pooled"][i]))
    return g, rows


def vocab(model_dir):
    with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
        return {tok.rstrip("\n"): i for i, tok in reversed(list(enumerate(f)))}


TEXTS = ["The market, the BANK and zzz-oil!", "team win first game of the season",
         "oil price up", "", "stocks " * 40]


# ---- operational routes ------------------------------------------------------------

def test_healthz(daemon):
    r = daemon.get("/healthz")
    assert r.status == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["content-type"] == "application/json"
    assert len(r.headers["x-request-id"]) >= 8


def test_request_id_is_echoed_or_generated(daemon):
    r = daemon.get("/healthz", headers={"X-Request-Id": "abc-123_x.y:z"})
    assert r.headers["x-request-id"] == "abc-123_x.y:z"
    a = daemon.get("/healthz").headers["x-request-id"]
    b = daemon.get("/healthz").headers["x-request-id"]
    assert a != b
    # A malformed id (spaces, too long) is replaced, not echoed.
    r = daemon.get("/healthz", headers={"X-Request-Id": "bad id"})
    assert r.headers["x-request-id"] != "bad id"
    r = daemon.get("/healthz", headers={"X-Request-Id": "x" * 200})
    assert len(r.headers["x-request-id"]) < 200
    # Errors carry it too.
    r = daemon.get("/nope", headers={"X-Request-Id": "err-1"})
    assert r.status == 404 and r.headers["x-request-id"] == "err-1"


def test_readyz(daemon):
    r = daemon.get("/readyz")
    assert r.status == 200
    assert r.json() == {"status": "ready"}


def test_openapi(daemon):
    r = daemon.get("/openapi.json")
    assert r.status == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    assert "paths" in doc


def test_metrics_pass_promtool_and_count_requests(daemon):
    daemon.post("/v1/models/classifier/classify", {"inputs": ["oil"]})
    r = daemon.get("/metrics")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    for family in ["fastformerd_http_requests_total", "fastformerd_request_duration_seconds",
                   "fastformerd_batch_size", "fastformerd_model_ready", "process_open_fds"]:
        assert family in text, family
    assert 'fastformerd_model_ready{model="classifier"} 1' in text
    assert ('fastformerd_http_requests_total{model="classifier",'
            'route="/v1/models/{name}/classify",code="200"}') in text
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=r.body, capture_output=True)
        assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()


# ---- classify / embed ------------------------------------------------------------------

def test_classify_ids_match_pytorch(daemon):
    g, rows = classifier_rows()
    r = daemon.post("/v1/models/classifier/classify",
                    {"inputs": [{"input_ids": ids} for _, ids, _, _ in rows]})
    assert r.status == 200, r
    out = r.json()
    assert out["model"] == "classifier"
    assert len(out["predictions"]) == len(rows)
    for (name, _, probs, _), p in zip(rows, out["predictions"]):
        assert_close(p["probabilities"], probs, 1e-4, 1e-5, name)
        best = max(range(len(probs)), key=lambda c: probs[c])
        assert p["label_id"] == best, name
        assert p["label"] == g["labels"][best]


def test_classify_one_input_per_request_matches_pytorch(daemon):
    _, rows = classifier_rows()
    for name, ids, probs, _ in rows:
        r = daemon.post("/v1/models/classifier/classify", {"inputs": [{"input_ids": ids}]})
        assert r.status == 200, r
        assert_close(r.json()["predictions"][0]["probabilities"], probs, 1e-4, 1e-5, name)


def test_embed_classifier_matches_pytorch_pooled(daemon):
    _, rows = classifier_rows()
    r = daemon.post("/v1/models/classifier/embed",
                    {"inputs": [{"input_ids": ids} for _, ids, _, _ in rows]})
    assert r.status == 200, r
    out = r.json()
    assert out["model"] == "classifier"
    for (name, _, _, pooled), e in zip(rows, out["embeddings"]):
        assert_close(e, pooled, 1e-4, 1e-5, name)


def test_embed_recommender_gives_news_vectors(daemon):
    g = golden("newsrec")
    r = daemon.post("/v1/models/newsrec/embed",
                    {"inputs": [{"input_ids": ids} for ids in g["news"]["input_ids"]]})
    assert r.status == 200, r
    for i, (e, v) in enumerate(zip(r.json()["embeddings"], g["news"]["news_vectors"])):
        assert_close(e, v, 1e-4, 1e-5, f"news[{i}]")


def cli_predict(model_dir, lines):
    p = subprocess.run([CLI, "predict", "--model", model_dir],
                       input="".join(json.dumps(x) + "\n" for x in lines),
                       capture_output=True, text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


@pytest.mark.skipif(not os.access(CLI, os.X_OK), reason="fastformer-cli not built")
def test_classify_text_equals_cli(daemon):
    cli = cli_predict(CLASSIFIER_DIR, [{"text": t} for t in TEXTS])
    r = daemon.post("/v1/models/classifier/classify", {"inputs": TEXTS})
    assert r.status == 200, r
    for t, c, p in zip(TEXTS, cli, r.json()["predictions"]):
        assert p["label"] == c["label"] and p["label_id"] == c["label_id"], t
        assert_close(p["probabilities"], c["probabilities"], 1e-5, 1e-6, t)


@pytest.mark.skipif(not os.access(CLI, os.X_OK), reason="fastformer-cli not built")
def test_embed_news_text_equals_cli(daemon):
    cli = cli_predict(NEWSREC_DIR, [{"text": t} for t in TEXTS])
    r = daemon.post("/v1/models/newsrec/embed", {"inputs": TEXTS})
    assert r.status == 200, r
    for t, c, e in zip(TEXTS, cli, r.json()["embeddings"]):
        assert_close(e, c["embedding"], 1e-5, 1e-6, t)


def test_text_equals_its_ids(daemon):
    v = vocab(CLASSIFIER_DIR)
    words = ["the", "market", ",", "the", "bank", "and", "zzz", "-", "oil", "!"]
    ids = [v.get(w, v["[UNK]"]) for w in words]
    r = daemon.post("/v1/models/classifier/classify",
                    {"inputs": [TEXTS[0], {"input_ids": ids}]})
    assert r.status == 200, r
    a, b = r.json()["predictions"]
    assert_close(a["probabilities"], b["probabilities"], 1e-5, 1e-6)


def test_long_text_is_truncated_unless_truncate_false(daemon):
    v = vocab(CLASSIFIER_DIR)
    long_text = " ".join(["market"] * 40)
    r = daemon.post("/v1/models/classifier/classify",
                    {"inputs": [long_text, {"input_ids": [v["market"]] * 16}]})
    assert r.status == 200, r
    a, b = r.json()["predictions"]
    assert_close(a["probabilities"], b["probabilities"], 1e-5, 1e-6)
    r = daemon.post("/v1/models/classifier/classify", {"inputs": [long_text], "truncate": False})
    assert r.status == 422
    assert r.json() == {"error": {"code": 422, "type": "unprocessable_entity", "message":
                        "inputs[0]: text is longer than the model's maximum of 16 tokens and "
                        "truncate is false"}}
    # Trailing padding does not count as length.
    r = daemon.post("/v1/models/classifier/classify",
                    {"inputs": [{"input_ids": [5] * 16 + [0] * 30}], "truncate": False})
    assert r.status == 200, r


# ---- recommend ---------------------------------------------------------------------------

def test_recommend_ids_match_pytorch(daemon):
    g = golden("newsrec")
    for u in g["users"]:
        body = {"history": [{"input_ids": x} for x in u["history"]],
                "candidates": [{"input_ids": x} for x in u["candidates"]]}
        r = daemon.post("/v1/models/newsrec/recommend", body)
        assert r.status == 200, (u["name"], r)
        out = r.json()
        assert out["model"] == "newsrec"
        assert_close(out["scores"], u["scores"], 1e-4, 1e-4, u["name"])
        want = sorted(range(len(u["scores"])), key=lambda i: (-u["scores"][i], i))
        got = out["ranking"]
        assert sorted(got) == list(range(len(u["scores"])))
        # Equal-score ties aside, the ranking is the scores' order.
        assert [round(u["scores"][i], 3) for i in got] == [round(u["scores"][i], 3) for i in want]


def test_recommend_empty_history_scores_zero(daemon):
    g = golden("newsrec")
    u = next(x for x in g["users"] if x["name"] == "history_empty")
    r = daemon.post("/v1/models/newsrec/recommend",
                    {"history": [], "candidates": [{"input_ids": x} for x in u["candidates"]]})
    assert r.status == 200, r
    assert r.json()["scores"] == [0.0] * len(u["candidates"])
    assert r.json()["ranking"] == list(range(len(u["candidates"])))


def test_recommend_top_k(daemon):
    g = golden("newsrec")
    u = next(x for x in g["users"] if x["name"] == "history_full")
    body = {"history": [{"input_ids": x} for x in u["history"]],
            "candidates": [{"input_ids": x} for x in u["candidates"]], "top_k": 2}
    r = daemon.post("/v1/models/newsrec/recommend", body)
    assert r.status == 200, r
    out = r.json()
    assert len(out["scores"]) == len(u["candidates"])
    full = sorted(range(len(u["scores"])), key=lambda i: -u["scores"][i])
    assert out["ranking"] == full[:2]
    body["top_k"] = 100  # more than the candidates: all of them
    assert len(daemon.post("/v1/models/newsrec/recommend", body).json()["ranking"]) == len(
        u["candidates"])


def mind_titles():
    titles = {}
    with open(MIND_NEWS, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            titles[cols[0]] = cols[3]
    return titles


def test_recommend_news_ids_equal_titles_as_text(daemon):
    titles = mind_titles()
    ids = list(titles)[:8]
    hist, cands = ids[:3], ids[3:8]
    by_id = daemon.post("/v1/models/mind/recommend",
                        {"history": [{"news_id": n} for n in hist],
                         "candidates": [{"news_id": n} for n in cands]})
    assert by_id.status == 200, by_id
    by_text = daemon.post("/v1/models/mind/recommend",
                          {"history": [titles[n] for n in hist],
                           "candidates": [titles[n] for n in cands]})
    assert by_text.status == 200, by_text
    assert_close(by_id.json()["scores"], by_text.json()["scores"], 1e-4, 1e-4)
    # Mixed forms, and the text-news cache answering the second time.
    mixed = {"history": [{"news_id": hist[0]}, titles[hist[1]], {"news_id": hist[2]}],
             "candidates": [titles[n] for n in cands]}
    for _ in range(2):
        r = daemon.post("/v1/models/mind/recommend", mixed)
        assert r.status == 200, r
        assert_close(r.json()["scores"], by_text.json()["scores"], 1e-4, 1e-4)
    metrics = daemon.get("/metrics").body.decode()
    hits = re.search(r'fastformerd_news_cache_hits_total\{model="mind"\} (\d+)', metrics)
    misses = re.search(r'fastformerd_news_cache_misses_total\{model="mind"\} (\d+)', metrics)
    assert hits and int(hits.group(1)) >= 6, metrics  # titles seen before
    assert misses and int(misses.group(1)) >= 6


def test_put_news_adds_and_replaces(daemon):
    titles = mind_titles()
    title = "oil bank says market up"
    r = daemon.request("PUT", "/v1/models/mind/news/NEW1", body={"title": title})
    assert r.status == 201, r
    assert r.json() == {"model": "mind", "news_id": "NEW1", "replaced": False}
    hist = list(titles)[:2]
    body = {"history": [{"news_id": n} for n in hist], "candidates": [{"news_id": "NEW1"}]}
    a = daemon.post("/v1/models/mind/recommend", body)
    assert a.status == 200, a
    b = daemon.post("/v1/models/mind/recommend",
                    {"history": [titles[n] for n in hist], "candidates": [title]})
    assert_close(a.json()["scores"], b.json()["scores"], 1e-4, 1e-4)
    r = daemon.request("PUT", "/v1/models/mind/news/NEW1", body={"title": "team win game"})
    assert r.status == 200, r
    assert r.json()["replaced"] is True
    c = daemon.post("/v1/models/mind/recommend", body)
    assert c.json()["scores"] != a.json()["scores"]


# ---- model descriptions ----------------------------------------------------------------------

def test_models_list(daemon):
    r = daemon.get("/v1/models")
    assert r.status == 200
    models = {m["name"]: m for m in r.json()["models"]}
    assert set(models) == {"classifier", "newsrec", "mind"}
    assert models["classifier"]["task"] == "classification"
    assert models["newsrec"]["task"] == "news-recommendation"
    # OpenAI's list shape beside ours, for its clients' models.list()
    body = r.json()
    assert body["object"] == "list"
    assert sorted(m["id"] for m in body["data"]) == ["classifier", "mind", "newsrec"]
    for m in body["data"]:
        assert m["object"] == "model" and m["owned_by"] == "fastformerd"
        assert abs(m["created"] - time.time()) < 3600


def test_model_description(daemon):
    r = daemon.get("/v1/models/classifier")
    assert r.status == 200
    m = r.json()
    assert m["name"] == "classifier" and m["task"] == "classification"
    assert m["labels"] == golden("classifier_f32")["labels"]
    with open(os.path.join(CLASSIFIER_DIR, "model.safetensors"), "rb") as f:
        assert m["weights_sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert m["config"]["hidden_size"] == 32 and m["config"]["vocab_size"] == 60
    assert m["max_tokens"] == 16
    assert m["load_time"].endswith("Z")
    # OpenAI's model object (models.retrieve), the same load time in Unix seconds
    assert m["id"] == "classifier" and m["object"] == "model" and m["owned_by"] == "fastformerd"
    loaded = calendar.timegm(time.strptime(m["load_time"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert m["created"] == loaded
    r = daemon.get("/v1/models/mind")
    assert r.json()["news_catalog_items"] >= 24


# ---- Open Inference Protocol v2 -----------------------------------------------------------------

def test_oip_health_and_metadata(daemon):
    r = daemon.get("/v2")
    assert r.status == 200 and r.json()["name"] == "fastformerd"
    assert r.json()["extensions"] == ["binary_tensor_data", "classification"]
    assert daemon.get("/v2/health/live").json() == {"live": True}
    assert daemon.get("/v2/health/ready").json() == {"ready": True}
    r = daemon.get("/v2/models/classifier")
    assert r.status == 200
    m = r.json()
    assert m["name"] == "classifier"
    assert {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]} in m["outputs"]
    assert {t["name"] for t in m["inputs"]} == {"text", "input_ids"}
    assert daemon.get("/v2/models/newsrec/ready").json() == {"name": "newsrec", "ready": True}
    assert daemon.get("/v2/models/nope/ready").status == 404
    # Version "1" is every model's only version.
    assert m["versions"] == ["1"]
    assert daemon.get("/v2/models/classifier/versions/1").json() == m
    assert daemon.get("/v2/models/newsrec/versions/1/ready").json() == {"name": "newsrec",
                                                                        "ready": True}


def test_oip_infer_ids_match_pytorch(daemon):
    g = golden("classifier_f32")
    case = next(c for c in g["cases"] if c["name"] == "random_batch")
    width = max(len(x) for x in case["input_ids"])
    data = []
    for ids in case["input_ids"]:
        data += ids + [0] * (width - len(ids))  # 0 = padding
    body = {"id": "req-7", "inputs": [{"name": "input_ids", "datatype": "INT64",
                                       "shape": [len(case["input_ids"]), width], "data": data}]}
    r = daemon.post("/v2/models/classifier/infer", body)
    assert r.status == 200, r
    out = r.json()
    assert out["id"] == "req-7" and out["model_name"] == "classifier"
    (o,) = out["outputs"]
    assert o["name"] == "probabilities" and o["datatype"] == "FP32"
    assert o["shape"] == [len(case["input_ids"]), 3]
    flat = [p for row in case["probabilities"] for p in row]
    assert_close(o["data"], flat, 1e-4, 1e-5)


def test_oip_infer_text_equals_rest(daemon):
    rest = daemon.post("/v1/models/classifier/classify", {"inputs": TEXTS}).json()
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(TEXTS), 1],
                        "data": TEXTS}],
            "outputs": [{"name": "probabilities"}, {"name": "embeddings"}]}
    r = daemon.post("/v2/models/classifier/infer", body)
    assert r.status == 200, r
    probs, embs = r.json()["outputs"]
    assert "id" not in r.json()
    flat = [p for pred in rest["predictions"] for p in pred["probabilities"]]
    assert_close(probs["data"], flat, 1e-5, 1e-6)
    assert embs["name"] == "embeddings" and embs["shape"] == [len(TEXTS), 32]


def test_oip_infer_recommender_embeddings(daemon):
    g = golden("newsrec")
    ids = g["news"]["input_ids"][:3]
    width = max(len(x) for x in ids)
    data = [t for x in ids for t in x + [0] * (width - len(x))]
    body = {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [3, width],
                        "data": data}]}
    r = daemon.post("/v2/models/newsrec/infer", body)
    assert r.status == 200, r
    (o,) = r.json()["outputs"]
    assert o["name"] == "embeddings" and o["shape"] == [3, 32]
    flat = [v for row in g["news"]["news_vectors"][:3] for v in row]
    assert_close(o["data"], flat, 1e-4, 1e-5)


# ---- deadlines, HEAD, keep-alive ------------------------------------------------------------------

def test_deadline_passed_in_queue_gives_504(daemon):
    # The deadline counts from the headers; the body follows 50 ms later, so
    # the request reaches the queue with its 1 ms deadline long gone.
    body = json.dumps({"inputs": ["oil"]}).encode()
    s = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    s.sendall(b"POST /v1/models/classifier/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"X-Request-Timeout-Ms: 1\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    time.sleep(0.05)
    s.sendall(body)
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 504"), data
    assert json.loads(payload) == {"error": {"code": 504, "type": "deadline_exceeded", "message":
                                   "the request's deadline passed while it was queued"}}


def test_keep_alive_serves_many_requests_on_one_connection(daemon):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    for i in range(5):
        conn.request("POST", "/v1/models/classifier/classify", body=json.dumps({"inputs": ["oil"]}),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        assert r.status == 200
        r.read()
    conn.close()


def test_concurrent_requests_from_threads_all_answered(daemon):
    want = daemon.post("/v1/models/classifier/classify", {"inputs": TEXTS[:3]}).json()
    results = []

    def client():
        for _ in range(10):
            r = daemon.post("/v1/models/classifier/classify", {"inputs": TEXTS[:3]})
            results.append((r.status, r.json()))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80
    for status, out in results:
        assert status == 200
        for a, b in zip(out["predictions"], want["predictions"]):
            assert_close(a["probabilities"], b["probabilities"], 1e-5, 1e-6)
