"""Hugging Face Text Embeddings Inference's routes under /tei/{name} against the
real daemon: /embed, /predict and the Inference API's endpoint shape (POST
/tei/{name}) give the v1 routes' numbers in TEI's shapes; /info and /health;
every error in TEI's shape {"error", "error_type"}; and the official Hugging
Face client (npm `@huggingface/inference`, pinned) pointed at an endpoint URL
when npm can install it."""
import json
import math
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, assert_close, golden, npm_client

HF_NPM = "@huggingface/inference@4.13.30"
KEY = "s3cret"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    from conftest import launch
    dm = launch(str(tmp_path_factory.mktemp("tei")), server={"api_key": KEY})
    yield dm
    assert dm.stop() == 0


def v1(d, route, model, inputs):
    r = d.post(f"/v1/models/{model}/{route}", {"inputs": inputs}, headers=AUTH)
    assert r.status == 200, r
    return r.json()


def tei(d, path, body, status=200):
    r = d.post("/tei/" + path, body, headers=AUTH)
    assert r.status == status, r
    return r.json()


def assert_tei_error(r, status, part):
    assert r.status == status, r
    body = r.json()
    assert set(body) == {"error", "error_type"}, body
    assert part in body["error"], body
    want_type = {429: "Overloaded", 503: "Unhealthy"}.get(status, "Validation")
    assert body["error_type"] == want_type


TEXTS = ["oil prices rise", "the team won the match"]
LABELS = golden("classifier_f32")["labels"]


def test_predict_one_text_and_a_list(d):
    probs = [p["probabilities"] for p in v1(d, "classify", "classifier", TEXTS)["predictions"]]
    one = tei(d, "classifier/predict", {"inputs": TEXTS[0]})
    assert [s["label"] for s in one] == sorted(LABELS, key=lambda l: -probs[0][LABELS.index(l)])
    for s in one:
        assert set(s) == {"score", "label"}
        assert_close(s["score"], probs[0][LABELS.index(s["label"])], rel=1e-6, abs_=1e-7)
    many = tei(d, "classifier/predict", {"inputs": TEXTS})
    assert len(many) == 2 and many[0] == one
    for got, p in zip(many, probs):
        assert [s["score"] for s in got] == sorted((s["score"] for s in got), reverse=True)
        for s in got:
            assert_close(s["score"], p[LABELS.index(s["label"])], rel=1e-6, abs_=1e-7)


def test_predict_raw_scores_are_the_logits(d):
    probs = [p["probabilities"] for p in v1(d, "classify", "classifier", TEXTS)["predictions"]]
    raw = tei(d, "classifier/predict", {"inputs": TEXTS, "raw_scores": True})
    for got, p in zip(raw, probs):
        logits = {s["label"]: s["score"] for s in got}
        z = max(logits.values())
        total = sum(math.exp(v - z) for v in logits.values())
        for label, v in logits.items():
            assert_close(math.exp(v - z) / total, p[LABELS.index(label)], rel=1e-5, abs_=1e-6)


def test_embed_normalised_and_not(d):
    want = v1(d, "embed", "classifier", TEXTS)["embeddings"]
    got = tei(d, "classifier/embed", {"inputs": TEXTS})
    raw = tei(d, "classifier/embed", {"inputs": TEXTS, "normalize": False})
    for g, r, w in zip(got, raw, want):
        norm = math.sqrt(sum(x * x for x in w))
        assert_close(g, [x / norm for x in w], rel=1e-5, abs_=1e-6)
        assert abs(math.sqrt(sum(x * x for x in g)) - 1) < 1e-5
        assert_close(r, w, rel=1e-6, abs_=1e-7)
    one = tei(d, "classifier/embed", {"inputs": TEXTS[0], "truncate": True,
                                      "truncation_direction": "right", "prompt_name": None,
                                      "dimensions": len(want[0])})
    assert one == got[:1]


def test_inference_api_endpoint_shape(d):
    probs = [p["probabilities"] for p in v1(d, "classify", "classifier", TEXTS)["predictions"]]
    got = tei(d, "classifier", {"inputs": TEXTS, "parameters": {}})
    assert len(got) == 2
    for g, p in zip(got, probs):
        for s in g:
            assert_close(s["score"], p[LABELS.index(s["label"])], rel=1e-6, abs_=1e-7)
    assert len(tei(d, "classifier", {"inputs": TEXTS[0]})) == 1  # always a list per text
    # a recommender embeds its news encoder's vectors, not normalised
    want = v1(d, "embed", "newsrec", TEXTS)["embeddings"]
    assert_close(tei(d, "newsrec", {"inputs": TEXTS})[1], want[1], rel=1e-6, abs_=1e-7)


def test_info_and_health(d):
    r = d.get("/tei/classifier/info", headers=AUTH)
    assert r.status == 200
    info = r.json()
    assert info["model_id"] == "classifier" and info["model_dtype"] == "float32"
    clf = info["model_type"]["classifier"]
    assert clf["id2label"] == {str(i): l for i, l in enumerate(LABELS)}
    assert clf["label2id"] == {l: i for i, l in enumerate(LABELS)}
    assert info["max_input_length"] == 16 and info["auto_truncate"] is False
    assert info["max_client_batch_size"] == 1024 and len(info["model_sha"]) == 64
    info = d.get("/tei/newsrec/info", headers=AUTH).json()
    assert info["model_type"] == {"embedding": {"pooling": "attention"}}
    r = d.get("/tei/newsrec/health", headers=AUTH)
    assert r.status == 200 and r.json() == {}
    assert_tei_error(d.get("/tei/nope/health", headers=AUTH), 404, "model 'nope' not found")


@pytest.mark.parametrize("path,body,status,part", [
    ("classifier/embed", {"inputs": []}, 422, "inputs: must not be empty"),
    ("classifier/embed", {"inputs": [["a", "b"]]}, 422, "inputs[0]: pairs of texts"),
    ("classifier/embed", {"inputs": ["a", 3]}, 400, "inputs[1]: expected a string"),
    ("classifier/embed", {"inputs": 3}, 400, "inputs: expected a string or an array"),
    ("classifier/embed", {}, 400, "inputs"),
    ("classifier/embed", {"inputs": "a", "pooling": "cls"}, 400, "pooling"),
    ("classifier/embed", {"inputs": "a", "normalize": "yes"}, 400, "normalize"),
    ("classifier/embed", {"inputs": "a", "truncation_direction": "left"}, 422,
     "truncation_direction"),
    ("classifier/embed", {"inputs": "a", "prompt_name": "query"}, 422, "prompt_name"),
    ("classifier/embed", {"inputs": "a", "dimensions": 8}, 422, "dimensions"),
    ("classifier/embed", {"inputs": " ".join(["oil"] * 40)}, 422, "inputs"),
    ("classifier/predict", {"inputs": ["oil"] * 1025}, 413, "1025 inputs"),
    ("classifier/predict", {"inputs": "a", "raw_scores": 1}, 400, "raw_scores"),
    ("newsrec/predict", {"inputs": "a"}, 400, "predict needs a classification model"),
    ("classifier", {"inputs": "a", "parameters": {"top_k": 1}}, 400, "parameters"),
    ("nope/embed", {"inputs": "a"}, 404, "model 'nope' not found"),
])
def test_errors_in_tei_shape(d, path, body, status, part):
    assert_tei_error(d.post("/tei/" + path, body, headers=AUTH), status, part)


def test_truncate_cuts_a_long_text(d):
    long_text = " ".join(["oil"] * 40)
    got = tei(d, "classifier/embed", {"inputs": long_text, "truncate": True, "normalize": False})
    want = v1(d, "embed", "classifier", [long_text])["embeddings"]  # v1 truncates by default
    assert_close(got[0], want[0], rel=1e-6, abs_=1e-7)


def test_transport_errors_in_tei_shape(d):
    assert_tei_error(d.post("/tei/classifier/embed", {"inputs": "a"}), 401, "API key")
    r = d.get("/tei/classifier/embed", headers=AUTH)
    assert_tei_error(r, 405, "")
    assert r.headers["allow"] == "POST"
    r = d.request("POST", "/tei/classifier/embed", body=b"{nope", headers=AUTH)
    assert_tei_error(r, 400, "JSON")


# ---- the official client ----------------------------------------------------------


@pytest.fixture(scope="module")
def hf_node():
    return npm_client(HF_NPM, "npm-hf", os.path.join("@huggingface", "inference"),
                      "the Hugging Face client")


def test_official_hugging_face_client(d, hf_node):
    node, prefix = hf_node
    script = os.path.join(ROOT, "tests", "integration", "hf_client.mjs")
    shutil.copy(script, os.path.join(prefix, "hf_client.mjs"))
    base = f"http://127.0.0.1:{d.port}/tei"
    p = subprocess.run([node, os.path.join(prefix, "hf_client.mjs"), base, KEY],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    probs = v1(d, "classify", "classifier", [TEXTS[0]])["predictions"][0]["probabilities"]
    assert [s["label"] for s in out["classification"]] == \
        sorted(LABELS, key=lambda l: -probs[LABELS.index(l)])
    for s in out["classification"]:
        assert_close(s["score"], probs[LABELS.index(s["label"])], rel=1e-6, abs_=1e-7)
    want = v1(d, "embed", "newsrec", TEXTS)["embeddings"]
    for got, w in zip(out["features"], want):
        assert_close(got, w, rel=1e-6, abs_=1e-7)
    assert out["unknown"]["status"] == 404 and "not found" in out["unknown"]["message"]
