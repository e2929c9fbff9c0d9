"""POST /v1/embeddings (OpenAI-compatible) against the real daemon: OpenAI's
request and response shapes (string, strings, token ids, base64), the
vectors equal to the embed route's, usage, every error in OpenAI's error
shape, and the official OpenAI client (npm `openai`, pinned) when npm can
install it."""
import base64
import json
import os
import shutil
import struct
import subprocess

import pytest

from conftest import ROOT, assert_close, npm_client

OPENAI_NPM = "openai@6.49.0"
KEY = "s3cret"


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    from conftest import launch
    dm = launch(str(tmp_path_factory.mktemp("openai")), server={"api_key": KEY})
    yield dm
    assert dm.stop() == 0


AUTH = {"Authorization": f"Bearer {KEY}"}


def post(d, body, headers=AUTH):
    return d.post("/v1/embeddings", body, headers=headers)


def embed(d, model, inputs):
    r = d.post(f"/v1/models/{model}/embed", {"inputs": inputs}, headers=AUTH)
    assert r.status == 200, r
    return r.json()["embeddings"]


def assert_openai_error(r, status, type_, param=None, code=None, message_part=""):
    assert r.status == status, r
    body = r.json()
    assert set(body) == {"error"}, body
    e = body["error"]
    assert set(e) == {"message", "type", "param", "code"}, e
    assert e["type"] == type_ and e["param"] == param and e["code"] == code, e
    assert message_part in e["message"], e


def test_texts_match_the_embed_route(d):
    texts = ["A wonderful film", "Dull and far too long", ""]
    r = post(d, {"model": "classifier", "input": texts})
    assert r.status == 200, r
    body = r.json()
    assert body["object"] == "list" and body["model"] == "classifier"
    assert [x["object"] for x in body["data"]] == ["embedding"] * 3
    assert [x["index"] for x in body["data"]] == [0, 1, 2]
    want = embed(d, "classifier", texts)
    for got, w in zip(body["data"], want):
        assert_close(got["embedding"], w, rel=1e-6, abs_=1e-7)
    # usage counts the tokens the model was given (its own tokenizer)
    tok = d.post("/v1/models/classifier/tokenize", {"inputs": texts}, headers=AUTH).json()
    n = sum(len(t) for t in tok["tokens"])
    assert body["usage"] == {"prompt_tokens": n, "total_tokens": n}
    # one string is one input
    r = post(d, {"model": "classifier", "input": "A wonderful film"})
    assert len(r.json()["data"]) == 1
    assert_close(r.json()["data"][0]["embedding"], want[0], rel=1e-6, abs_=1e-7)


def test_token_ids_and_base64(d):
    r = post(d, {"model": "newsrec", "input": [[3, 4, 5], [6]], "encoding_format": "base64"})
    assert r.status == 200, r
    want = embed(d, "newsrec", [{"input_ids": [3, 4, 5]}, {"input_ids": [6]}])
    for got, w in zip(r.json()["data"], want):
        raw = base64.b64decode(got["embedding"], validate=True)
        assert len(raw) == 4 * len(w)
        assert_close(list(struct.unpack(f"<{len(w)}f", raw)), w, rel=1e-6, abs_=1e-7)
    assert r.json()["usage"]["prompt_tokens"] == 4
    # [ids] is one sequence; trailing padding is not counted
    r = post(d, {"model": "newsrec", "input": [3, 4, 5, 0, 0], "encoding_format": "float",
                 "dimensions": len(want[0]), "user": "someone"})
    assert r.status == 200, r
    assert len(r.json()["data"]) == 1 and r.json()["usage"]["prompt_tokens"] == 3
    assert_close(r.json()["data"][0]["embedding"], want[0], rel=1e-6, abs_=1e-7)


def test_long_text_is_truncated_like_embed(d):
    text = " ".join(["word"] * 500)
    r = post(d, {"model": "classifier", "input": text})
    assert r.status == 200
    max_tokens = d.get("/v1/models/classifier", headers=AUTH).json()["max_tokens"]
    assert r.json()["usage"]["prompt_tokens"] <= max_tokens
    assert_close(r.json()["data"][0]["embedding"], embed(d, "classifier", [text])[0], rel=1e-6,
                 abs_=1e-7)


@pytest.mark.parametrize("body,status,param,code,part", [
    ({"model": "nope", "input": "x"}, 404, "model", "model_not_found", "'nope' does not exist"),
    ({"input": "x"}, 400, "model", None, "missing key 'model'"),
    ({"model": 3, "input": "x"}, 400, "model", None, "expected a string"),
    ({"model": "classifier"}, 400, None, None, "missing key 'input'"),
    ({"model": "classifier", "input": []}, 400, "input", None, "must not be empty"),
    ({"model": "classifier", "input": 3}, 400, "input", None, "expected a string, an array"),
    ({"model": "classifier", "input": [{"a": 1}]}, 400, "input", None, "expected a string"),
    ({"model": "classifier", "input": ["a", 1]}, 400, "input", None, "input[1]: expected a string"),
    ({"model": "classifier", "input": [1, "a"]}, 400, "input", None, "input[1]: expected an integer"),
    ({"model": "classifier", "input": [[1], 2]}, 400, "input", None, "input[1]: expected an array"),
    ({"model": "classifier", "input": [1, 99999]}, 400, "input", None, "input[1]: id 99999 >= vocab_size"),
    ({"model": "classifier", "input": [[1], [-2]]}, 400, "input", None, "input[1][0]"),
    ({"model": "classifier", "input": [[1], ["x"]]}, 400, "input", None, "input[1][0]"),
    ({"model": "classifier", "input": ["a"] * 1025}, 413, "input", None, "more than the limit of 1024"),
    ({"model": "classifier", "input": "x", "encoding_format": "int8"}, 400, "encoding_format", None,
     "expected \"float\" or \"base64\""),
    ({"model": "classifier", "input": "x", "dimensions": 7}, 400, "dimensions", None,
     "no other number is supported"),
    ({"model": "classifier", "input": "x", "user": 5}, 400, "user", None, "expected a string"),
    ({"model": "classifier", "input": "x", "temperature": 1}, 400, None, None, "unknown key 'temperature'"),
])
def test_errors_in_openai_shape(d, body, status, param, code, part):
    r = d.request("POST", "/v1/embeddings", body=json.dumps(body), headers=AUTH)
    assert_openai_error(r, status, "invalid_request_error", param, code, part)


def test_body_errors_in_openai_shape(d):
    for raw, part in [("", "request body is empty"), ("{", "invalid JSON"),
                      ("[1]", "expected a JSON object"),
                      (b'{"model": "classifier", "input": "\xff"}', "invalid JSON")]:
        r = d.request("POST", "/v1/embeddings", body=raw, headers=AUTH)
        assert_openai_error(r, 400, "invalid_request_error", None, None, part)


def test_transport_errors_keep_the_daemon_shape(d):
    r = post(d, {"model": "classifier", "input": "x"}, headers={})
    assert r.status == 401 and r.json()["error"]["code"] == 401
    assert "message" in r.json()["error"] and "type" in r.json()["error"]
    r = d.get("/v1/embeddings", headers=AUTH)
    assert r.status == 405 and r.headers["allow"] == "POST"


# ---- the official client ----------------------------------------------------------


@pytest.fixture(scope="module")
def openai_node():
    return npm_client(OPENAI_NPM, "npm-openai", "openai", "the official OpenAI client")


def test_official_openai_client(d, openai_node):
    node, prefix = openai_node
    script = os.path.join(ROOT, "tests", "integration", "openai_client.mjs")
    # node resolves "openai" from the script's folder upwards or NODE_PATH (ESM: a copy next to it)
    shutil.copy(script, os.path.join(prefix, "openai_client.mjs"))
    p = subprocess.run([node, os.path.join(prefix, "openai_client.mjs"),
                        f"http://127.0.0.1:{d.port}/v1", KEY, "classifier"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    want = embed(d, "classifier", ["A wonderful film", "Dull and far too long"])
    one = out["default_one"]
    assert one["object"] == "list" and one["model"] == "classifier"
    assert one["usage"]["prompt_tokens"] == one["usage"]["total_tokens"] > 0
    assert one["data"][0]["object"] == "embedding" and one["data"][0]["index"] == 0
    assert_close(one["data"][0]["embedding"], want[0], rel=1e-6, abs_=1e-7)  # base64, decoded
    for got, w in zip(out["float_many"]["data"], want):
        assert_close(got["embedding"], w, rel=1e-6, abs_=1e-7)
    want_ids = embed(d, "classifier", [{"input_ids": [5, 17, 42]}, {"input_ids": [7]}])
    for got, w in zip(out["ids"]["data"], want_ids):
        assert_close(got, w, rel=1e-6, abs_=1e-7)
    assert out["ids"]["usage"]["prompt_tokens"] == 4
    assert out["unknown_model"]["status"] == 404
    assert out["unknown_model"]["code"] == "model_not_found"
    assert out["unknown_model"]["type"] == "invalid_request_error"
    assert out["unknown_model"]["param"] == "model"
    assert out["bad_input"]["status"] == 400 and out["bad_input"]["param"] == "input"
    assert "input[1]: expected an integer" in out["bad_input"]["message"]
    assert out["wrong_key"]["status"] == 401 and "invalid API key" in out["wrong_key"]["message"]
    listed = {m["id"]: m for m in out["models_list"]}
    assert "classifier" in listed and listed["classifier"]["object"] == "model"
    assert listed["classifier"]["owned_by"] == "fastformerd"
    assert out["models_retrieve"] == listed["classifier"]
    assert out["models_retrieve_unknown"]["status"] == 404
