"""CORS (server.cors_allow_origins) and W3C trace context (traceparent) against
the real daemon: preflights, the origin header on answers (errors included),
origins that get nothing, "*" without credentials, and traceparent in, the
access log's trace_id/span_id and traceparent out."""
import re
import time

import pytest

ORIGIN = "https://app.example.com"
TP_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TP_PARENT = "00f067aa0ba902b7"
TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$")
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials",
                "access-control-allow-methods", "access-control-allow-headers",
                "access-control-max-age", "access-control-expose-headers")


@pytest.fixture(scope="module")
def cors_daemon(tmp_path_factory):
    from conftest import launch
    d = launch(str(tmp_path_factory.mktemp("cors")),
               server={"cors_allow_origins": f'["{ORIGIN}", "http://localhost:3000"]',
                       "api_key": "s3cret"})
    yield d
    assert d.stop() == 0


def preflight(d, path, method="POST", origin=ORIGIN, req_headers="content-type, authorization"):
    h = {"Access-Control-Request-Method": method}
    if origin:
        h["Origin"] = origin
    if req_headers:
        h["Access-Control-Request-Headers"] = req_headers
    return d.request("OPTIONS", path, headers=h)


def test_preflight_of_an_allowed_origin(cors_daemon):
    r = preflight(cors_daemon, "/v1/models/classifier/classify")
    assert r.status == 204, r
    assert r.body == b""
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["access-control-allow-methods"] == "POST"
    allowed = [h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")]
    for h in ("content-type", "authorization", "x-api-key", "traceparent", "x-request-id"):
        assert h in allowed
    assert int(r.headers["access-control-max-age"]) > 0
    assert r.headers["vary"] == "Origin"
    # a preflight carries no API key, and needs none
    r = preflight(cors_daemon, "/v1/models/classifier/news/N1", method="PUT",
                  origin="http://localhost:3000")
    assert r.status == 204 and r.headers["access-control-allow-origin"] == "http://localhost:3000"
    # every method of the path, in the route table's order
    assert r.headers["access-control-allow-methods"] == "PUT, GET, DELETE"


def test_preflight_lists_every_method_of_the_path(cors_daemon):
    r = preflight(cors_daemon, "/v1/models", method="GET", req_headers=None)
    assert r.status == 204 and r.headers["access-control-allow-methods"] == "GET"


def test_answers_carry_the_origin(cors_daemon):
    key = {"Authorization": "Bearer s3cret", "Origin": ORIGIN}
    r = cors_daemon.post("/v1/models/classifier/classify", {"inputs": ["good film"]}, headers=key)
    assert r.status == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
    assert "traceparent" in r.headers["access-control-expose-headers"].lower()
    # errors too: a browser must be able to read why it failed
    for method, path, body, headers, status in [
        ("POST", "/v1/models/classifier/classify", "{", key, 400),
        ("POST", "/v1/models/nope/classify", {"inputs": ["x"]}, key, 404),
        ("POST", "/v1/models/classifier/classify", {"inputs": ["x"]}, {"Origin": ORIGIN}, 401),
        ("GET", "/no/such/route", None, key, 404),
        ("DELETE", "/v1/models", None, key, 405),
    ]:
        r = cors_daemon.request(method, path, body=body, headers=headers)
        assert r.status == status, (path, r)
        assert r.headers["access-control-allow-origin"] == ORIGIN, (path, r.headers)


def test_other_origins_get_no_cors_headers(cors_daemon):
    for origin in ("https://evil.example.com", "https://app.example.com.evil.net", "null"):
        r = cors_daemon.get("/v1/models", headers={"Origin": origin,
                                                   "Authorization": "Bearer s3cret"})
        assert r.status == 200
        assert not any(h in r.headers for h in CORS_HEADERS), r.headers
        assert r.headers["vary"] == "Origin"
        r = preflight(cors_daemon, "/v1/models/classifier/classify", origin=origin)
        assert r.status == 405, r  # not a preflight we answer: OPTIONS is no route's method
        assert not any(h in r.headers for h in CORS_HEADERS), r.headers
        assert "POST" in r.headers["allow"]


def test_preflight_errors(cors_daemon):
    # without Origin, or without Access-Control-Request-Method: a plain OPTIONS -> 405
    r = preflight(cors_daemon, "/v1/models/classifier/classify", origin=None)
    assert r.status == 405 and "access-control-allow-origin" not in r.headers
    r = cors_daemon.request("OPTIONS", "/v1/models/classifier/classify",
                            headers={"Origin": ORIGIN})
    assert r.status == 405 and r.json()["error"]["code"] == 405
    # a method the path does not have
    r = preflight(cors_daemon, "/v1/models/classifier/classify", method="DELETE")
    assert r.status == 405 and "access-control-allow-methods" not in r.headers
    r = preflight(cors_daemon, "/v1/models/classifier/classify", method="POS")
    assert r.status == 405
    # an unknown path
    r = preflight(cors_daemon, "/v1/nothing/here")
    assert r.status == 404 and "access-control-allow-methods" not in r.headers


def test_cors_off_by_default(daemon):
    r = daemon.get("/v1/models", headers={"Origin": ORIGIN})
    assert r.status == 200
    assert not any(h in r.headers for h in CORS_HEADERS) and "vary" not in r.headers
    r = preflight(daemon, "/v1/models/classifier/classify")
    assert r.status == 405 and not any(h in r.headers for h in CORS_HEADERS)


def test_star_never_goes_with_credentials(start_daemon):
    d = start_daemon(server={"cors_allow_origins": '["*"]'})
    r = d.get("/v1/models", headers={"Origin": "https://anyone.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    assert "vary" not in r.headers  # the answer does not depend on Origin
    r = preflight(d, "/v1/models/classifier/classify", origin="https://anyone.example")
    assert r.status == 204 and r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    # a listed origin next to "*" is echoed, with credentials
    d2 = start_daemon(server={"cors_allow_origins": f'["*", "{ORIGIN}"]'})
    r = d2.get("/v1/models", headers={"Origin": ORIGIN})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    r = d2.get("/v1/models", headers={"Origin": "https://anyone.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers


def test_bad_cors_config_is_refused(tmp_path):
    import subprocess
    from conftest import DAEMON
    cfg = tmp_path / "bad.yaml"
    cfg.write_text('server:\n  cors_allow_origins: ["https://app.example.com/"]\n')
    p = subprocess.run([DAEMON, "--check-config", "--config", str(cfg)], capture_output=True,
                       text=True)
    assert p.returncode == 1
    assert (f"{cfg}:2: server.cors_allow_origins[0]: expected an origin such as "
            "https://app.example.com") in p.stderr


# ---- trace context -----------------------------------------------------------


def access_line(d, request_id, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in d.log().splitlines():
            if " access " in line and f"id={request_id} " in line:
                return line
        time.sleep(0.02)
    raise AssertionError(f"no access-log line for {request_id}:\n{d.log()[-2000:]}")


def metric(d, name):
    for line in d.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_traceparent_is_continued(daemon):
    tp = f"00-{TP_TRACE}-{TP_PARENT}-01"
    r = daemon.post("/v1/models/classifier/classify", {"inputs": ["fine"]},
                    headers={"traceparent": tp, "X-Request-Id": "trace-continued-1"})
    assert r.status == 200
    m = TRACEPARENT_RE.match(r.headers["traceparent"])
    assert m, r.headers["traceparent"]
    assert m.group(1) == TP_TRACE
    span = m.group(2)
    assert span != TP_PARENT and span != "0" * 16
    assert r.headers["traceparent"].endswith("-01")  # the caller's sampled flag
    line = access_line(daemon, "trace-continued-1")
    assert f"trace_id={TP_TRACE}" in line and f"span_id={span}" in line
    assert f"parent_id={TP_PARENT}" in line
    # an unsampled caller stays unsampled
    r = daemon.get("/healthz", headers={"traceparent": f"00-{TP_TRACE}-{TP_PARENT}-00"})
    assert r.headers["traceparent"].startswith(f"00-{TP_TRACE}-") and \
        r.headers["traceparent"].endswith("-00")


def test_no_traceparent_starts_a_trace(daemon):
    seen = set()
    for i in range(3):
        r = daemon.get("/v1/models", headers={"X-Request-Id": f"trace-new-{i}"})
        m = TRACEPARENT_RE.match(r.headers["traceparent"])
        assert m and m.group(1) != "0" * 32
        seen.add(m.group(1))
        line = access_line(daemon, f"trace-new-{i}")
        assert f"trace_id={m.group(1)} span_id={m.group(2)}" in line
        assert "parent_id=" not in line
    assert len(seen) == 3


@pytest.mark.parametrize("bad", [
    "junk",
    f"00-{TP_TRACE.upper()}-{TP_PARENT}-01",
    f"00-{'0' * 32}-{TP_PARENT}-01",
    f"00-{TP_TRACE}-{'0' * 16}-01",
    f"ff-{TP_TRACE}-{TP_PARENT}-01",
    f"00-{TP_TRACE}-{TP_PARENT}-01-extra",
    f"00-{TP_TRACE}-{TP_PARENT}",
])
def test_malformed_traceparent_is_ignored_and_counted(daemon, bad):
    before = metric(daemon, "fastformerd_traceparent_invalid_total")
    r = daemon.post("/v1/models/classifier/classify", {"inputs": ["fine"]},
                    headers={"traceparent": bad})
    assert r.status == 200, r  # never an error
    m = TRACEPARENT_RE.match(r.headers["traceparent"])
    assert m and m.group(1) != TP_TRACE  # a new trace
    assert metric(daemon, "fastformerd_traceparent_invalid_total") == before + 1


def test_error_answers_carry_traceparent_too(daemon):
    r = daemon.get("/v1/models/nope", headers={"traceparent": f"00-{TP_TRACE}-{TP_PARENT}-01"})
    assert r.status == 404 and r.headers["traceparent"].startswith(f"00-{TP_TRACE}-")


def test_json_access_log_has_trace_fields(start_daemon):
    import json
    from conftest import yaml_config  # noqa: F401
    d = start_daemon()
    # switch the log format through the config file and SIGHUP
    text = open(d.config_path).read().replace("format: text", "format: json")
    open(d.config_path, "w").write(text)
    import signal
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while '"event":"' not in d.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    r = d.get("/healthz", headers={"traceparent": f"00-{TP_TRACE}-{TP_PARENT}-01",
                                   "X-Request-Id": "json-trace"})
    span = TRACEPARENT_RE.match(r.headers["traceparent"]).group(2)
    deadline = time.monotonic() + 10
    entry = None
    while entry is None and time.monotonic() < deadline:
        for line in d.log().splitlines():
            if line.startswith("{") and '"json-trace"' in line:
                entry = json.loads(line)
        time.sleep(0.02)
    assert entry, d.log()[-2000:]
    assert entry["trace_id"] == TP_TRACE and entry["span_id"] == span
    assert entry["parent_id"] == TP_PARENT
