"""The bad-request catalogue: each case has its exact status and error JSON
({"error": {"code", "type", "message"}}, or under /v2 the Open Inference
Protocol's {"error": "message", "code", "type"}), and after each one the
daemon still answers a good request correctly. Also the API key (401) cases,
which need a daemon with a key."""
import json
import os
import socket
import time

import pytest

from conftest import ROOT, assert_close

C = "/v1/models/classifier/classify"
R = "/v1/models/newsrec/recommend"
M = "/v1/models/mind/recommend"
I = "/v2/models/classifier/infer"
LIMIT = 1048576

TYPES = {400: "invalid_argument", 401: "unauthenticated", 404: "not_found",
         405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
         422: "unprocessable_entity", 504: "deadline_exceeded"}


def error_body(path, status, message):
    """The error JSON for a request to `path`: the protocol's shape under /v2, TEI's under /tei,
    TorchServe's on /ping and under /predictions."""
    if path == "/v2" or path.startswith("/v2/"):
        return {"error": message, "code": status, "type": TYPES[status]}
    if path == "/tei" or path.startswith("/tei/"):
        kind = {429: "Overloaded", 503: "Unhealthy", 504: "Unhealthy"}.get(
            status, "Backend" if status >= 500 else "Validation")
        return {"error": message, "error_type": kind}
    if path == "/ping" or path == "/predictions" or path.startswith("/predictions/"):
        kind = {401: "UnauthorizedException", 404: "ModelNotFoundException",
                405: "MethodNotAllowedException", 429: "ServiceUnavailableException",
                503: "ServiceUnavailableException", 504: "RequestTimeoutException"}.get(
            status, "InternalServerException" if status >= 500 else "BadRequestException")
        return {"code": status, "type": kind, "message": message}
    return {"error": {"code": status, "type": TYPES[status], "message": message}}


def oip(tensor, **extra):
    return {"inputs": [tensor], **extra}


def ids_tensor(shape, data, datatype="INT64", name="input_ids"):
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


# (id, method, path, body, headers, status, message)
CASES = [
    # ---- malformed JSON and bodies
    ("json_truncated", "POST", C, b'{"inputs": [', {}, 400,
     "invalid JSON at line 1, column 12: ']' expected near end of file"),
    ("json_garbage", "POST", C, b"inputs=a", {}, 400,
     "invalid JSON at line 1, column 6: invalid token near 'inputs'"),
    ("json_array_body", "POST", C, b'["a"]', {}, 400,
     "request body: expected a JSON object, got array"),
    ("json_scalar_body", "POST", C, b"42", {}, 400,
     "request body: expected a JSON object, got integer"),
    ("empty_body", "POST", C, b"", {}, 400, "request body is empty: expected a JSON object"),
    ("json_nan", "POST", C, b'{"inputs": [{"input_ids": [NaN]}]}', {}, 400,
     "invalid JSON at line 1, column 30: invalid token near 'NaN'"),
    ("json_infinity", "POST", C, b'{"inputs": [{"input_ids": [Infinity]}]}', {}, 400,
     "invalid JSON at line 1, column 35: invalid token near 'Infinity'"),
    ("json_duplicate_keys", "POST", C, b'{"inputs": ["a"], "inputs": ["b"]}', {}, 400,
     "invalid JSON at line 1, column 26: duplicate object key near '\"inputs\"'"),
    ("json_deep_nesting", "POST", C, b"[" * 10000 + b"]" * 10000, {}, 400,
     "invalid JSON at line 1, column 2049: maximum parsing depth reached near '['"),
    ("json_huge_integer", "POST", C, b'{"inputs": [{"input_ids": [123456789012345678901234567890]}]}',
     {}, 400, "invalid JSON at line 1, column 57: too big integer"),
    ("json_huge_real", "POST", C, b'{"inputs": [{"input_ids": [1e999]}]}', {}, 400,
     "invalid JSON at line 1, column 32: real number overflow near '1e999'"),
    ("invalid_utf8", "POST", C, b'{"inputs": ["caf\xe9"]}', {}, 400,
     "invalid JSON at line 1, column 16: unable to decode byte 0xe9 near '\"caf'"),
    ("overlong_utf8", "POST", C, b'{"inputs": ["\xc0\xaf"]}', {}, 400,
     "invalid JSON at line 1, column 13: unable to decode byte 0xc0 near '\"'"),
    # ---- wrong fields and types
    ("missing_inputs", "POST", C, {}, {}, 400, "missing key 'inputs'"),
    ("unknown_top_key", "POST", C, {"inputs": ["a"], "input": ["b"]}, {}, 400,
     "unknown key 'input' (allowed: inputs, truncate)"),
    ("inputs_not_array", "POST", C, {"inputs": "oil"}, {}, 400,
     "inputs: expected an array, got string"),
    ("inputs_empty", "POST", C, {"inputs": []}, {}, 400, "inputs: must not be empty"),
    ("inputs_too_many", "POST", C, {"inputs": ["a"] * 1025}, {}, 413,
     "inputs: 1025 inputs, more than the limit of 1024 per request"),
    ("input_number", "POST", C, {"inputs": ["a", 5]}, {}, 400,
     "inputs[1]: expected a string or an object with 'input_ids', got integer"),
    ("input_null", "POST", C, {"inputs": [None]}, {}, 400,
     "inputs[0]: expected a string or an object with 'input_ids', got null"),
    ("input_ids_string", "POST", C, {"inputs": [{"input_ids": "1 2"}]}, {}, 400,
     "inputs[0].input_ids: expected an array of integers, got string"),
    ("input_ids_float", "POST", C, {"inputs": [{"input_ids": [1, 2.5]}]}, {}, 400,
     "inputs[0].input_ids[1]: expected an integer id, got number"),
    ("input_ids_bool", "POST", C, {"inputs": [{"input_ids": [True]}]}, {}, 400,
     "inputs[0].input_ids[0]: expected an integer id, got boolean"),
    ("id_too_large", "POST", C, {"inputs": ["a", {"input_ids": [3, 4, 5, 6, 7, 8, 9, 99999]}]}, {},
     400, "inputs[1].input_ids[7]: id 99999 >= vocab_size 60"),
    ("id_equal_vocab", "POST", C, {"inputs": [{"input_ids": [60]}]}, {}, 400,
     "inputs[0].input_ids[0]: id 60 >= vocab_size 60"),
    ("id_negative", "POST", C, {"inputs": [{"input_ids": [5, -1]}]}, {}, 400,
     "inputs[0].input_ids[1]: id -1 is negative"),
    ("input_unknown_key", "POST", C, {"inputs": [{"ids": [1]}]}, {}, 400,
     "inputs[0]: unknown key 'ids' (expected 'input_ids')"),
    ("news_id_on_classifier", "POST", C, {"inputs": [{"news_id": "N101"}]}, {}, 400,
     "inputs[0]: unknown key 'news_id' (expected 'input_ids')"),
    ("truncate_string", "POST", C, {"inputs": ["a"], "truncate": "no"}, {}, 400,
     "truncate: expected a boolean, got string"),
    ("too_long_truncate_false", "POST", C, {"inputs": [{"input_ids": [5] * 17}], "truncate": False},
     {}, 422, "inputs[0].input_ids: 17 ids, more than the model's maximum of 16 and truncate is "
     "false"),
    ("classify_on_recommender", "POST", "/v1/models/newsrec/classify", {"inputs": ["a"]}, {}, 400,
     "model 'newsrec' is a news-recommendation model; classify needs a classification model"),
    ("recommend_on_classifier", "POST", "/v1/models/classifier/recommend",
     {"history": [], "candidates": ["a"]}, {}, 400,
     "model 'classifier' is a classification model; recommend needs a news-recommendation model"),
    ("recommend_no_candidates", "POST", R, {"history": ["a"], "candidates": []}, {}, 400,
     "candidates: must not be empty"),
    ("recommend_missing_history", "POST", R, {"candidates": ["a"]}, {}, 400,
     "missing key 'history'"),
    ("recommend_top_k_zero", "POST", R, {"history": [], "candidates": ["a"], "top_k": 0}, {}, 400,
     "top_k: expected an integer >= 1, got 0"),
    ("recommend_top_k_string", "POST", R, {"history": [], "candidates": ["a"], "top_k": "3"}, {},
     400, "top_k: expected an integer >= 1, got string"),
    ("recommend_news_both_keys", "POST", M,
     {"history": [], "candidates": [{"news_id": "N101", "input_ids": [3]}]}, {}, 400,
     "candidates[0]: give either 'input_ids' or 'news_id', not both"),
    ("recommend_unknown_news_id", "POST", M, {"history": [{"news_id": "N999"}], "candidates": ["a"]},
     {}, 400, "history[0].news_id: unknown news_id 'N999'"),
    ("recommend_news_id_without_catalog", "POST", R,
     {"history": [], "candidates": [{"news_id": "N101"}]}, {}, 400,
     "candidates[0].news_id: model 'newsrec' has no news catalog"),
    ("put_news_without_catalog", "PUT", "/v1/models/newsrec/news/N1", {"title": "oil"}, {}, 400,
     "model 'newsrec' has no news catalog (configure server.state_dir or models[].news_catalog)"),
    ("put_news_no_title", "PUT", "/v1/models/mind/news/N1", {"titel": "oil"}, {}, 400,
     "unknown key 'titel' (allowed: title, category)"),
    ("put_news_title_number", "PUT", "/v1/models/mind/news/N1", {"title": 7}, {}, 400,
     "title: expected a string, got integer"),
    # ---- routes and methods
    ("unknown_model", "POST", "/v1/models/nope/classify", {"inputs": ["a"]}, {}, 404,
     "model 'nope' not found"),
    ("unknown_model_oip", "POST", "/v2/models/nope/infer", {}, {}, 404, "model 'nope' not found"),
    ("unknown_model_oip_metadata", "GET", "/v2/models/nope", None, {}, 404,
     "model 'nope' not found"),
    ("unknown_model_oip_versioned", "GET", "/v2/models/nope/versions/1/ready", None, {}, 404,
     "model 'nope' not found"),
    ("unknown_route_oip", "GET", "/v2/repository/nope", None, {}, 404,
     "no route for GET /v2/repository/nope"),
    ("unknown_version_metadata", "GET", "/v2/models/classifier/versions/2", None, {}, 404,
     "model 'classifier' has no version '2' (its only version is '1')"),
    ("unknown_version_ready", "GET", "/v2/models/classifier/versions/0/ready", None, {}, 404,
     "model 'classifier' has no version '0' (its only version is '1')"),
    ("unknown_version_infer", "POST", "/v2/models/classifier/versions/v1/infer",
     {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [1, 1], "data": [7]}]}, {},
     404, "model 'classifier' has no version 'v1' (its only version is '1')"),
    ("unknown_route", "GET", "/v3/models", None, {}, 404, "no route for GET /v3/models"),
    ("trailing_slash", "GET", "/v1/models/", None, {}, 404, "no route for GET /v1/models/"),
    ("wrong_method_classify", "GET", C, None, {}, 405,
     "method GET is not allowed on /v1/models/classifier/classify (allowed: POST)"),
    ("wrong_method_models", "DELETE", "/v1/models", None, {}, 405,
     "method DELETE is not allowed on /v1/models (allowed: GET)"),
    ("wrong_method_healthz", "POST", "/healthz", b"{}", {}, 405,
     "method POST is not allowed on /healthz (allowed: GET)"),
    ("wrong_method_infer", "PUT", I, b"{}", {}, 405,
     "method PUT is not allowed on /v2/models/classifier/infer (allowed: POST)"),
    # ---- sizes and headers
    ("bad_timeout_header", "POST", C, {"inputs": ["a"]}, {"X-Request-Timeout-Ms": "soon"}, 400,
     "header X-Request-Timeout-Ms: expected an integer in [1, 3600000]"),
    ("zero_timeout_header", "POST", C, {"inputs": ["a"]}, {"X-Request-Timeout-Ms": "0"}, 400,
     "header X-Request-Timeout-Ms: expected an integer in [1, 3600000]"),
    # ---- Open Inference Protocol
    ("oip_shape_data_mismatch", "POST", I, oip(ids_tensor([2, 3], [1, 2, 3, 4, 5])), {}, 400,
     "inputs[0]: shape [2,3] holds 6 elements but data has 5"),
    ("oip_unknown_datatype", "POST", I, oip(ids_tensor([1, 1], [1], datatype="INT128")), {}, 400,
     "inputs[0].datatype: unknown datatype 'INT128'"),
    ("oip_ids_as_fp32", "POST", I, oip(ids_tensor([1, 1], [1.0], datatype="FP32")), {}, 400,
     "inputs[0]: tensor 'input_ids' must be INT64 or INT32, got FP32"),
    ("oip_text_as_int64", "POST", I, oip(ids_tensor([1], [1], name="text")), {}, 400,
     "inputs[0]: tensor 'text' must be BYTES, got INT64"),
    ("oip_negative_shape", "POST", I, oip(ids_tensor([1, -3], [])), {}, 400,
     "inputs[0].shape[1]: -3 is negative"),
    ("oip_overflowing_shape", "POST", I, oip(ids_tensor([4294967296, 4294967296], [])), {}, 400,
     "inputs[0].shape: the element count overflows (more than 2147483647)"),
    ("oip_shape_not_ints", "POST", I, oip(ids_tensor([1, "2"], [1, 2])), {}, 400,
     "inputs[0].shape[1]: expected an integer, got string"),
    ("oip_ids_1d", "POST", I, oip(ids_tensor([3], [1, 2, 3])), {}, 400,
     "inputs[0].shape: 'input_ids' needs [batch, len], got [3]"),
    ("oip_text_2d", "POST", I,
     oip({"name": "text", "datatype": "BYTES", "shape": [1, 2], "data": ["a", "b"]}), {}, 400,
     "inputs[0].shape: 'text' needs [batch] or [batch, 1], got [1,2]"),
    ("oip_id_out_of_range", "POST", I, oip(ids_tensor([2, 3], [1, 2, 3, 4, 60, 0])), {}, 400,
     "inputs[0].data[4]: id 60 >= vocab_size 60"),
    ("oip_text_not_string", "POST", I,
     oip({"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a", 3]}), {}, 400,
     "inputs[0].data[1]: expected a string (BYTES), got integer"),
    ("oip_unknown_input", "POST", I, oip(ids_tensor([1, 1], [1], name="pixels")), {}, 400,
     "inputs[0].name: unknown input 'pixels' (expected 'text' or 'input_ids')"),
    ("oip_two_inputs", "POST", I,
     {"inputs": [ids_tensor([1, 1], [1]), ids_tensor([1, 1], [1])]}, {}, 400,
     "inputs: expected exactly one tensor ('text' or 'input_ids'), got 2"),
    ("oip_no_inputs", "POST", I, {"inputs": []}, {}, 400,
     "inputs: expected exactly one tensor ('text' or 'input_ids'), got 0"),
    ("oip_empty_batch", "POST", I, oip(ids_tensor([0, 4], [])), {}, 400,
     "inputs[0].shape[0]: the batch must not be empty"),
    ("oip_unknown_output", "POST", I, oip(ids_tensor([1, 1], [1]), outputs=[{"name": "logits"}]),
     {}, 400, "outputs[0].name: unknown output 'logits' (expected 'probabilities' or 'embeddings')"),
    ("oip_id_not_string", "POST", I, oip(ids_tensor([1, 1], [1]), id=7), {}, 400,
     "id: expected a string, got integer"),
    ("oip_too_long_truncate_false", "POST", I,
     oip(ids_tensor([1, 17], [5] * 17), parameters={"truncate": False}), {}, 422,
     "inputs[0].data: 17 ids, more than the model's maximum of 16 and truncate is false"),
    ("oip_batch_too_large", "POST", I,
     oip({"name": "text", "datatype": "BYTES", "shape": [1025], "data": ["a"] * 1025}), {}, 413,
     "inputs[0]: batch of 1025, more than the limit of 1024 per request"),
    ("oip_bad_timeout_header", "POST", I, oip(ids_tensor([1, 1], [1])),
     {"X-Request-Timeout-Ms": "soon"}, 400,
     "header X-Request-Timeout-Ms: expected an integer in [1, 3600000]"),
    ("oip_tensor_unknown_key", "POST", I, oip({**ids_tensor([1, 1], [1]), "contents": {}}), {}, 400,
     "inputs[0]: unknown key 'contents' (allowed: name, shape, datatype, data, parameters)"),
]


def check_good(daemon):
    r = daemon.post(C, {"inputs": [{"input_ids": [7]}]})
    assert r.status == 200, r
    assert_close(r.json()["predictions"][0]["probabilities"],
                 [0.8793465495109558, 0.0907304584980011, 0.029922939836978912], 1e-4, 1e-5)


def test_catalogue_is_big_enough():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_request(daemon, case):
    _, method, path, body, headers, status, message = case
    r = daemon.request(method, path, body=body, headers=headers)
    assert r.status == status, r
    assert r.headers["content-type"] == "application/json"
    assert "x-request-id" in r.headers
    assert r.json() == error_body(path, status, message)
    if status == 405:
        assert r.headers["allow"]
    assert daemon.alive()
    check_good(daemon)


def raw_exchange(daemon, data, chunks=(), pause=0.0):
    """Sends raw bytes (then each chunk, `pause` seconds before each) and
    returns (status line, headers, body)."""
    s = socket.create_connection(("127.0.0.1", daemon.port), timeout=20)
    s.sendall(data)
    for c in chunks:
        time.sleep(pause)
        s.sendall(c)
    resp = b""
    while True:
        try:
            got = s.recv(65536)
        except ConnectionResetError:
            break
        if not got:
            break
        resp += got
        head, sep, body = resp.partition(b"\r\n\r\n")
        if sep:
            length = [int(h.split(b":")[1]) for h in head.split(b"\r\n")
                      if h.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
    s.close()
    head, _, body = resp.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], head, body


def test_chunked_body_over_limit_is_413(daemon):
    chunk = b"a" * 65536
    chunks = [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * 17 + [b"0\r\n\r\n"]
    line, _, body = raw_exchange(daemon, b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n", chunks)
    assert line.startswith(b"HTTP/1.1 413"), line
    assert json.loads(body) == {"error": {"code": 413, "type": "payload_too_large", "message":
                                f"request body exceeds the limit of {LIMIT} bytes"}}
    check_good(daemon)


def test_chunked_body_within_limit_is_served(daemon):
    payload = json.dumps({"inputs": [{"input_ids": [7]}]}).encode()
    chunks = [b"%x\r\n" % 5 + payload[:5] + b"\r\n",
              b"%x\r\n" % (len(payload) - 5) + payload[5:] + b"\r\n", b"0\r\n\r\n"]
    line, _, body = raw_exchange(daemon, b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                 b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", chunks)
    assert line.startswith(b"HTTP/1.1 200"), line
    assert json.loads(body)["predictions"][0]["label"] == "negative"


def test_oversized_content_length_is_refused_before_the_body(daemon):
    # Expect: 100-continue with a too-large Content-Length: the 413 comes
    # without the client sending any body at all.
    line, _, body = raw_exchange(daemon, b"POST " + C.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                 b"Expect: 100-continue\r\nContent-Length: 5000000\r\n\r\n")
    assert line.startswith(b"HTTP/1.1 413"), line
    assert json.loads(body)["error"]["message"] == (
        f"request body of 5000000 bytes exceeds the limit of {LIMIT} bytes")
    check_good(daemon)


def test_oip_transport_errors_have_the_protocol_shape(daemon):
    # 413 before the body (Content-Length over the limit) and 504 (the deadline
    # passed while queued) come from the transport and the frame, not the parser.
    line, _, body = raw_exchange(daemon, b"POST " + I.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 b"Expect: 100-continue\r\nContent-Length: 5000000\r\n\r\n")
    assert line.startswith(b"HTTP/1.1 413"), line
    assert json.loads(body) == error_body(
        I, 413, f"request body of 5000000 bytes exceeds the limit of {LIMIT} bytes")
    payload = json.dumps(oip(ids_tensor([1, 1], [7]))).encode()
    line, _, answer = raw_exchange(
        daemon, b"POST " + I.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Timeout-Ms: 1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(payload),
        [payload], pause=0.05)
    assert line.startswith(b"HTTP/1.1 504"), line
    assert json.loads(answer) == error_body(I, 504,
                                            "the request's deadline passed while it was queued")


def test_nul_in_text_is_a_control_character_not_an_error(daemon):
    r = daemon.post(C, {"inputs": ["oil\u0000price", "oil price"]})
    assert r.status == 200, r


def test_api_key(start_daemon):
    d = start_daemon(server={"api_key": "s3cret-key"})
    body = {"inputs": [{"input_ids": [7]}]}
    r = d.post(C, body)
    assert r.status == 401
    assert r.json() == {"error": {"code": 401, "type": "unauthenticated", "message":
                        "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'"}}
    assert r.headers["www-authenticate"] == "Bearer"
    for headers in [{"Authorization": "Bearer s3cret-kez"}, {"Authorization": "Bearer s3cret"},
                    {"Authorization": "Bearer s3cret-key-and-more"}, {"X-API-Key": ""},
                    {"Authorization": "Basic czNjcmV0LWtleQ=="}]:
        r = d.post(C, body, headers=headers)
        assert r.status == 401, headers
        assert r.json()["error"]["message"] in ("invalid API key", "missing API key: send "
                                                "'Authorization: Bearer <key>' or 'X-API-Key'")
    assert d.get("/v1/models").status == 401
    r = d.post(I, {})
    assert r.status == 401
    assert r.json() == {"error": "missing API key: send 'Authorization: Bearer <key>' or "
                        "'X-API-Key'", "code": 401, "type": "unauthenticated"}
    assert d.get("/v2/models/classifier/versions/1").status == 401
    # Health, readiness and metrics stay open.
    for path in ["/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"]:
        assert d.get(path).status == 200, path
    assert d.post(C, body, headers={"Authorization": "Bearer s3cret-key"}).status == 200
    assert d.post(C, body, headers={"X-API-Key": "s3cret-key"}).status == 200
    assert 'reason="unauthorized"' in d.get("/metrics").body.decode()


# Every route with a method it does not take: 405 with the right Allow. The
# routes are the documented ones (test_openapi checks the document against the
# route table), with the path parameters filled in.
def documented_routes():
    with open(os.path.join(ROOT, "server", "openapi.json")) as f:
        paths = json.load(f)["paths"]
    methods = ("GET", "POST", "PUT", "DELETE", "PATCH")
    return [([m.upper() for m in ops if m.upper() in methods],
             template.replace("{name}", "classifier").replace("{id}", "N1")
             .replace("{version}", "1"))
            for template, ops in paths.items()]


ROUTES = documented_routes()


@pytest.mark.parametrize("allowed,path", ROUTES, ids=[p for _, p in ROUTES])
def test_wrong_method_on_every_route(daemon, allowed, path):
    for method in ["GET", "POST", "PUT", "DELETE", "PATCH"]:
        if method in allowed:
            continue
        r = daemon.request(method, path, body=b"{}" if method in ("POST", "PUT", "PATCH") else None)
        assert r.status == 405, (method, path, r)
        allow = r.headers["allow"]
        assert sorted(allow.split(", ")) == sorted(allowed)
        assert r.json() == error_body(
            path, 405, f"method {method} is not allowed on {path} (allowed: {allow})")
    # HEAD works wherever GET does, without a body (a news item of the
    # classifier is a 400: it has no catalog).
    if "GET" in allowed:
        assert daemon.request("HEAD", path).status in (200, 400, 503)
