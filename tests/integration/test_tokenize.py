"""POST /v1/models/{name}/tokenize against the real daemon: the ids and
texts the model is given, checked against the Python reference tokenizer
(tools/tokenize_word.py) and its vocabulary; truncation at the model's
maximum (and 422 with truncate false), the same ids classify sees, and every
error path."""
import os
import sys

import pytest

from conftest import CLASSIFIER_DIR, ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))
import tokenize_word  # noqa: E402  (the reference tokenizer)

VOCAB = tokenize_word.read_vocab(os.path.join(CLASSIFIER_DIR, "vocab.txt"))
INDEX = {w: i for i, w in enumerate(VOCAB)}


def reference(text, max_len):
    ids = tokenize_word.encode(text, INDEX, 10**9)
    return [{"id": i, "text": VOCAB[i]} for i in ids[:max_len]], len(ids) > max_len


def max_tokens(daemon):
    return daemon.get("/v1/models/classifier").json()["max_tokens"]


def test_tokens_match_the_reference(daemon):
    texts = ["The film, of the year!", "zzzunknownword the", "", "ÉCOLE à la plage"]
    r = daemon.post("/v1/models/classifier/tokenize", {"inputs": texts})
    assert r.status == 200, r
    body = r.json()
    assert body["model"] == "classifier"
    n = max_tokens(daemon)
    for text, got, cut in zip(texts, body["tokens"], body["truncated"]):
        want, want_cut = reference(text, n)
        assert got == want, text
        assert cut is want_cut
    assert body["tokens"][1][0] == {"id": 1, "text": "[UNK]"}
    assert body["tokens"][2] == []


def test_one_string_and_a_recommender(daemon):
    r = daemon.post("/v1/models/classifier/tokenize", {"inputs": "the film"})
    assert r.status == 200 and len(r.json()["tokens"]) == 1
    # a recommender tokenizes titles with its news encoder's tokenizer
    r = daemon.post("/v1/models/mind/tokenize", {"inputs": ["oil bank"]})
    assert r.status == 200 and r.json()["model"] == "mind"
    assert all(t["id"] > 0 for t in r.json()["tokens"][0])


def test_truncation_is_the_models(daemon):
    n = max_tokens(daemon)
    text = " ".join(["the"] * (n + 5))
    r = daemon.post("/v1/models/classifier/tokenize", {"inputs": [text, "the"]})
    assert r.status == 200
    assert len(r.json()["tokens"][0]) == n and r.json()["truncated"] == [True, False]
    exact = " ".join(["the"] * n)
    r = daemon.post("/v1/models/classifier/tokenize", {"inputs": [exact], "truncate": False})
    assert r.status == 200 and r.json()["truncated"] == [False]
    r = daemon.post("/v1/models/classifier/tokenize", {"inputs": ["a", text], "truncate": False})
    assert r.status == 422
    assert r.json()["error"]["message"] == (
        f"inputs[1]: text is longer than the model's maximum of {n} tokens and truncate is false")
    # the same rule as classify
    r = daemon.post("/v1/models/classifier/classify", {"inputs": ["a", text], "truncate": False})
    assert r.status == 422


def test_tokens_are_what_classify_computes(daemon):
    text = "the film of the year, a film"
    ids = [t["id"] for t in
           daemon.post("/v1/models/classifier/tokenize", {"inputs": [text]}).json()["tokens"][0]]
    a = daemon.post("/v1/models/classifier/classify", {"inputs": [text]}).json()
    b = daemon.post("/v1/models/classifier/classify", {"inputs": [{"input_ids": ids}]}).json()
    assert a["predictions"][0]["probabilities"] == b["predictions"][0]["probabilities"]


@pytest.mark.parametrize("path,body,status,message", [
    ("/v1/models/nope/tokenize", {"inputs": ["x"]}, 404, "model 'nope' not found"),
    ("/v1/models/classifier/tokenize", {}, 400, "missing key 'inputs'"),
    ("/v1/models/classifier/tokenize", {"inputs": []}, 400, "inputs: must not be empty"),
    ("/v1/models/classifier/tokenize", {"inputs": 3}, 400,
     "inputs: expected a string or an array of strings, got integer"),
    ("/v1/models/classifier/tokenize", {"inputs": ["a", {"input_ids": [1]}]}, 400,
     "inputs[1]: expected a string, got object"),
    ("/v1/models/classifier/tokenize", {"inputs": ["a"], "truncate": "no"}, 400,
     "truncate: expected a boolean, got string"),
    ("/v1/models/classifier/tokenize", {"inputs": ["a"], "add_special_tokens": True}, 400,
     "unknown key 'add_special_tokens' (allowed: inputs, truncate)"),
    ("/v1/models/classifier/tokenize", {"inputs": ["a"] * 1025}, 413,
     "inputs: 1025 inputs, more than the limit of 1024 per request"),
    ("/v1/models/classifier/tokenize", "{", 400, "invalid JSON"),
    ("/v1/models/classifier/tokenize", "", 400, "request body is empty"),
])
def test_errors(daemon, path, body, status, message):
    r = daemon.post(path, body)
    assert r.status == status, r
    assert r.json()["error"]["code"] == status
    assert message in r.json()["error"]["message"], r.json()


def test_invalid_utf8(daemon):
    r = daemon.post("/v1/models/classifier/tokenize", b'{"inputs": ["ok", "caf\\u00e9 \xff"]}')
    assert r.status == 400
    r = daemon.request("GET", "/v1/models/classifier/tokenize")
    assert r.status == 405 and r.headers["allow"] == "POST"


def test_needs_the_api_key(start_daemon):
    d = start_daemon(server={"api_key": "k"})
    assert d.post("/v1/models/classifier/tokenize", {"inputs": ["a"]}).status == 401
    r = d.post("/v1/models/classifier/tokenize", {"inputs": ["a"]}, headers={"X-API-Key": "k"})
    assert r.status == 200
