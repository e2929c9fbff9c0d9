"""The model repository API (Triton / KServe extension) against the real
daemon: index, load and unload of one model while the others keep serving,
the config re-read on load, failures keeping the served version, 409 while a
load runs, the API key, /v2's extensions, the ready gauges, and 403 when
server.model_control is off. Answers are checked against the OpenAPI
document's schemas too."""
import re
import threading
import time

import pytest

from test_openapi_conformance import documented_schema, validate

KEY = "k3y"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def d(start_daemon):
    return start_daemon(server={"model_control": "true", "api_key": KEY})


def repo(d, what, body=None, headers=AUTH):
    return d.request("POST", f"/v2/repository/{what}", body=body, headers=headers)


def index(d, body=None):
    r = repo(d, "index", body, headers=AUTH)
    assert r.status == 200, r
    return {m["name"]: m for m in r.json()}


def ready_gauge(d, model):
    text = d.get("/metrics").body.decode()
    m = re.search(r'^fastformerd_model_ready\{model="%s"\} (\d)$' % re.escape(model), text, re.M)
    return int(m.group(1)) if m else None


def check_schema(d, template, status, r):
    spec = d.get("/openapi.json").json()
    schema = documented_schema(spec, template, "POST", status)
    assert not validate(spec, schema, r.json())


def test_index_lists_the_configured_models(d):
    r = repo(d, "index")
    check_schema(d, "/v2/repository/index", 200, r)
    idx = {m["name"]: m for m in r.json()}
    assert set(idx) == {"classifier", "newsrec", "mind"}
    for m in idx.values():
        assert m == {"name": m["name"], "version": "1", "state": "READY", "reason": ""}
    assert repo(d, "index", body="").status == 200  # Triton's clients may send no body
    r = d.get("/v2", headers=AUTH)
    assert r.json()["extensions"] == ["binary_tensor_data", "classification", "model_repository"]


def test_unload_then_load_while_others_serve(d):
    r = repo(d, "models/classifier/unload")
    assert r.status == 200, r
    check_schema(d, "/v2/repository/models/{name}/unload", 200, r)
    assert r.json() == {"name": "classifier", "version": "1", "state": "UNAVAILABLE",
                        "reason": "unloaded"}
    idx = index(d)
    assert idx["classifier"]["state"] == "UNAVAILABLE" and idx["classifier"]["reason"] == "unloaded"
    assert idx["newsrec"]["state"] == "READY"
    assert list(index(d, {"ready": True})) == ["newsrec", "mind"]
    r = d.post("/v1/models/classifier/classify", {"inputs": ["x"]}, headers=AUTH)
    assert r.status == 404 and "is unloaded" in r.json()["error"]["message"]
    r = d.post("/v1/embeddings", {"model": "classifier", "input": "x"}, headers=AUTH)
    assert r.status == 404 and r.json()["error"]["message"] == "model: 'classifier' is unloaded"
    assert r.json()["error"]["code"] == "model_not_found"
    r = d.post("/v1/models/classifier/tokenize", {"inputs": ["x"]}, headers=AUTH)
    assert r.status == 404
    assert d.get("/v2/models/classifier/ready", headers=AUTH).status in (200, 404, 503)
    models = {m["name"]: m for m in d.get("/v1/models", headers=AUTH).json()["models"]}
    assert models["classifier"]["state"] == "unloaded" and models["classifier"]["ready"] is False
    assert ready_gauge(d, "classifier") == 0 and ready_gauge(d, "newsrec") == 1
    assert d.get("/readyz").status == 200  # the daemon stays ready
    # unloading again is fine
    assert repo(d, "models/classifier/unload").status == 200

    r = repo(d, "models/classifier/load", body={})
    assert r.status == 200, r
    check_schema(d, "/v2/repository/models/{name}/load", 200, r)
    assert r.json() == {"name": "classifier", "version": "1", "state": "READY"}
    assert index(d)["classifier"]["state"] == "READY"
    assert d.post("/v1/models/classifier/classify", {"inputs": ["x"]}, headers=AUTH).status == 200
    assert ready_gauge(d, "classifier") == 1


def test_others_keep_serving_during_loads(d):
    stop = threading.Event()
    failures, served = [], [0]

    def hammer():
        while not stop.is_set():
            r = d.post("/v1/models/newsrec/embed", {"inputs": ["oil bank"]}, headers=AUTH)
            if r.status != 200:
                failures.append(r)
            served[0] += 1

    t = threading.Thread(target=hammer)
    t.start()
    try:
        for _ in range(5):
            assert repo(d, "models/classifier/load").status == 200
            assert repo(d, "models/mind/unload").status == 200
            assert repo(d, "models/mind/load").status == 200
    finally:
        stop.set()
        t.join()
    assert not failures, failures[:3]
    assert served[0] > 0


def test_load_rereads_the_config(d):
    from conftest import NEWSREC_DIR
    cfg = open(d.config_path).read()
    # a model added to the file is loaded on its own, without SIGHUP
    cfg = cfg.replace("logging:", f"  - name: added\n    path: {NEWSREC_DIR}\nlogging:")
    open(d.config_path, "w").write(cfg)
    assert index(d)["added"] == {"name": "added", "version": "1", "state": "UNAVAILABLE",
                                 "reason": "not loaded"}
    assert d.post("/v1/models/added/embed", {"inputs": ["oil"]}, headers=AUTH).status == 404
    assert repo(d, "models/added/load").status == 200
    assert d.post("/v1/models/added/embed", {"inputs": ["oil"]}, headers=AUTH).status == 200
    assert index(d)["added"]["state"] == "READY"


def test_failed_load_keeps_the_served_version(d):
    cfg = open(d.config_path).read()
    good = d.post("/v1/models/classifier/classify", {"inputs": ["x"]}, headers=AUTH).json()
    # point the served model at a broken directory, and add a broken model
    broken = re.sub(r"(- name: classifier\n    path: )\S+", r"\1/nonexistent", cfg)
    broken = broken.replace("logging:", "  - name: broken\n    path: /nonexistent\nlogging:")
    open(d.config_path, "w").write(broken)
    r = repo(d, "models/classifier/load")
    assert r.status == 422, r
    assert r.json()["error"].startswith(
        "model 'classifier': /nonexistent/config.json: ")
    assert "keeps serving" in r.json()["error"]
    assert d.post("/v1/models/classifier/classify", {"inputs": ["x"]}, headers=AUTH).json() == good
    assert index(d)["classifier"]["state"] == "READY"
    r = repo(d, "models/broken/load")
    assert r.status == 422
    idx = index(d)
    assert idx["broken"]["state"] == "UNAVAILABLE" and "failed" in idx["broken"]["reason"]
    # the routes say so, in their own shapes
    r = d.post("/v1/models/broken/classify", {"inputs": ["x"]}, headers=AUTH)
    assert r.status == 503 and "failed to load" in r.json()["error"]["message"]
    r = d.post("/v1/embeddings", {"model": "broken", "input": "x"}, headers=AUTH)
    assert r.status == 503
    assert r.json()["error"] == {"message": "model: 'broken' failed to load",
                                 "type": "server_error", "param": "model", "code": None}
    assert d.alive()


def test_config_that_no_longer_parses(d):
    open(d.config_path, "a").write("server:\n  bogus: 1\n")
    for what in ("index", "models/classifier/load", "models/classifier/unload"):
        r = repo(d, what)
        assert r.status == 500, (what, r)
        assert r.json()["error"].startswith("cannot read the configuration: ")
        assert d.config_path in r.json()["error"]
    assert d.post("/v1/models/classifier/classify", {"inputs": ["x"]}, headers=AUTH).status == 200


@pytest.mark.parametrize("what,body,status,part", [
    ("models/nope/load", None, 404, "model 'nope' is not in the configuration"),
    ("models/nope/unload", None, 404, "model 'nope' is not in the configuration"),
    ("models/classifier/load", {"parameters": {"config": "{}"}}, 400, "parameters: not supported"),
    ("models/classifier/load", {"parameters": 3}, 400, "parameters: not supported"),
    ("models/classifier/load", {"unload_dependents": True}, 400, "unknown key 'unload_dependents'"),
    ("models/classifier/load", "{", 400, "invalid JSON"),
    ("models/classifier/unload", "[]", 400, "expected a JSON object"),
    ("index", {"ready": "yes"}, 400, "ready: expected a boolean, got string"),
    ("index", {"foo": 1}, 400, "unknown key 'foo' (allowed: ready)"),
])
def test_errors(d, what, body, status, part):
    r = repo(d, what, body=body)
    assert r.status == status, r
    assert part in r.json()["error"]


def test_needs_the_api_key(d):
    for what in ("index", "models/classifier/load", "models/classifier/unload"):
        assert repo(d, what, headers={}).status == 401
        assert repo(d, what, headers={"X-API-Key": "wrong"}).status == 401
    assert index(d)["classifier"]["state"] == "READY"  # nothing happened


def test_concurrent_load_is_409(start_daemon):
    """Nine loads at once: the first runs, those that arrive while a load runs
    get 409 with Retry-After (how many do depends on timing; each answer is
    checked)."""
    d = start_daemon(server={"model_control": "true"})
    results = []

    def load(name):
        results.append(repo(d, f"models/{name}/load", headers={}))

    threads = [threading.Thread(target=load, args=(n,)) for n in ("mind", "classifier", "newsrec")
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in results)
    assert set(statuses) <= {200, 409}, results
    assert 200 in statuses
    for r in results:
        if r.status == 409:
            assert r.headers["retry-after"] == "1"
            assert "a model load is already running" in r.json()["error"]
    assert all(m["state"] == "READY" for m in index(d).values())
    assert d.post("/v1/models/mind/embed", {"inputs": ["oil"]}).status == 200


def test_off_by_default(daemon):
    for what in ("index", "models/classifier/load", "models/classifier/unload"):
        r = repo(daemon, what, headers={})
        assert r.status == 403, r
        # /v2/repository is the Open Inference Protocol's: the message is "error"
        assert r.json() == {
            "code": 403, "type": "permission_denied",
            "error": "the model repository API is off: set server.model_control: true (and "
                     "server.api_key) to load and unload models at run time"}
    assert daemon.get("/v2").json()["extensions"] == ["binary_tensor_data", "classification"]
    assert daemon.post("/v1/models/classifier/classify", {"inputs": ["x"]}).status == 200
