"""TorchServe's inference API against the real daemon: POST and PUT
/predictions/{name}[/{version}] with a raw text body (no Content-Type, as
`curl -T file` and Python's requests send one) or JSON {"data"} / {"text"};
a classifier answers {"label": probability} with the v1 route's numbers, any
other model its vector; GET /ping; and every error in TorchServe's shape
{"code", "type", "message"}."""
import http.client
import json
import socket
import subprocess

import pytest

from conftest import assert_close, golden

KEY = "s3cret"
AUTH = {"Authorization": f"Bearer {KEY}"}
TEXTS = ["oil prices rise", "the team won the match"]
LABELS = golden("classifier_f32")["labels"]


@pytest.fixture(scope="module")
def d(tmp_path_factory):
    from conftest import launch
    dm = launch(str(tmp_path_factory.mktemp("torchserve")), server={"api_key": KEY})
    yield dm
    assert dm.stop() == 0


def raw(d, method, path, body, headers=AUTH):
    """A request whose body is sent as it is, with no Content-Type unless given."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None
    finally:
        conn.close()


def v1(d, route, model, inputs):
    r = d.post(f"/v1/models/{model}/{route}", {"inputs": inputs}, headers=AUTH)
    assert r.status == 200, r
    return r.json()


def assert_ts_error(status_body, status, part):
    got_status, body = status_body
    assert got_status == status, body
    assert set(body) == {"code", "type", "message"}, body
    assert body["code"] == status and part in body["message"], body
    want = {400: "BadRequestException", 401: "UnauthorizedException",
            404: "ModelNotFoundException", 405: "MethodNotAllowedException",
            413: "BadRequestException", 415: "BadRequestException",
            422: "BadRequestException"}[status]
    assert body["type"] == want, body


def test_raw_text_gives_the_v1_probabilities_by_label(d):
    probs = [p["probabilities"] for p in v1(d, "classify", "classifier", TEXTS)["predictions"]]
    for text, p in zip(TEXTS, probs):
        for method in ("POST", "PUT"):
            status, got = raw(d, method, "/predictions/classifier", text.encode())
            assert status == 200, got
            assert list(got) == LABELS  # every label, in the model's order
            for label, prob in got.items():
                assert_close(prob, p[LABELS.index(label)], rel=1e-6, abs_=1e-7)


def test_json_data_and_text_and_the_version(d):
    want = raw(d, "POST", "/predictions/classifier", TEXTS[1].encode())[1]
    for path in ("/predictions/classifier", "/predictions/classifier/1"):
        for key in ("data", "text"):
            r = d.post(path, {key: TEXTS[1]}, headers=AUTH)
            assert r.status == 200 and r.json() == want, r
    r = d.post("/predictions/classifier", {"data": TEXTS[1]},
               headers={**AUTH, "Content-Type": "application/json; charset=utf-8"})
    assert r.json() == want


def test_other_models_answer_their_vector(d):
    want = v1(d, "embed", "newsrec", TEXTS)["embeddings"]
    status, got = raw(d, "POST", "/predictions/newsrec", TEXTS[0].encode())
    assert status == 200
    assert_close(got, want[0], rel=1e-6, abs_=1e-7)


def test_a_long_text_is_truncated_as_torchserve_handlers_do(d):
    long_text = " ".join(["oil"] * 40)  # the fixture reads 16 tokens
    want = v1(d, "classify", "classifier", [long_text])["predictions"][0]["probabilities"]
    status, got = raw(d, "POST", "/predictions/classifier", long_text.encode())
    assert status == 200
    assert_close([got[l] for l in LABELS], want, rel=1e-6, abs_=1e-7)


def test_curl_upload_as_torchserve_documents_it(d, tmp_path):
    sample = tmp_path / "sample_text.txt"
    sample.write_text(TEXTS[0] + "\n")
    want = raw(d, "POST", "/predictions/classifier", (TEXTS[0] + "\n").encode())[1]
    for method in (["-X", "POST"], []):  # curl -T alone sends PUT
        p = subprocess.run(["curl", "-sS", *method, "-H", f"Authorization: Bearer {KEY}",
                            f"http://127.0.0.1:{d.port}/predictions/classifier", "-T",
                            str(sample)], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout) == want


@pytest.mark.parametrize("path,body,ctype,status,part", [
    ("/predictions/classifier", b"", None, 400, "request body is empty"),
    ("/predictions/classifier", b"\xff\xfe", None, 400, "invalid UTF-8"),
    ("/predictions/classifier", b'{"data": 3}', "application/json", 400,
     "data: expected a string"),
    ("/predictions/classifier", b'{"data": "a", "text": "b"}', "application/json", 400,
     "not both"),
    ("/predictions/classifier", b'{"foo": "a"}', "application/json", 400, "unknown key 'foo'"),
    ("/predictions/classifier", b'{}', "application/json", 400, "data: required"),
    ("/predictions/classifier", b'"a text"', "application/json", 400, "expected a JSON object"),
    ("/predictions/classifier", b'{nope', "application/json", 400, "JSON"),
    ("/predictions/classifier", b"a text", "application/x-www-form-urlencoded", 415,
     "Content-Type"),
    ("/predictions/classifier/2", b"a text", None, 404, "has no version '2'"),
    ("/predictions/nope", b"a text", None, 404, "model 'nope' not found"),
])
def test_errors_in_torchserve_shape(d, path, body, ctype, status, part):
    headers = {**AUTH, **({"Content-Type": ctype} if ctype else {})}
    assert_ts_error(raw(d, "POST", path, body, headers), status, part)


def test_transport_errors_in_torchserve_shape(d):
    assert_ts_error(raw(d, "POST", "/predictions/classifier", b"a", {}), 401, "API key")
    assert_ts_error(raw(d, "DELETE", "/predictions/classifier", None), 405, "DELETE")
    # a Content-Length past server.max_body_bytes (1 MiB by default): refused before the body
    with socket.create_connection(("127.0.0.1", d.port), timeout=30) as s:
        s.sendall(b"POST /predictions/classifier HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Length: 2000000\r\n\r\n")
        resp = b""
        while b"\r\n\r\n" not in resp or not resp.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
    head, _, body = resp.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert_ts_error((413, json.loads(body)), 413, "exceeds the limit")


def test_ping(d):
    status, body = raw(d, "GET", "/ping", None, {})  # open, like /healthz
    assert status == 200 and body == {"status": "Healthy"}
