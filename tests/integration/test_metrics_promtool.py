"""GET /metrics of the real daemon, after traffic on every kind of route,
passes `promtool check metrics` (Debian's prometheus package ships promtool;
`make test` installs it). Also checks the renderer on a registry filled with
every kind of series (label escaping, codes outside the fixed set, values
above the top bucket) through build/tests/test_metrics --render-sample."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found: apt-get install prometheus (make deps does)")

BUILD = os.path.dirname(os.environ.get("FASTFORMERD", os.path.join(ROOT, "build", "fastformerd")))
SAMPLE_BIN = os.path.join(BUILD, "tests", "test_metrics")


def promtool_check(text):
    """Runs promtool on the exposition text; returns (rc, output)."""
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def samples(text):
    """{series (name + labels as written): value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        out[series] = float(value)
    return out


@needs_promtool
def test_promtool_rejects_bad_input():
    """promtool really checks: a counter without _total and without HELP fails."""
    rc, out = promtool_check("# TYPE requests counter\nrequests 1\n")
    assert rc != 0, out


@needs_promtool
def test_renderer_sample_passes_promtool():
    if not os.access(SAMPLE_BIN, os.X_OK):
        pytest.skip(f"{SAMPLE_BIN} not built (make unit-bins)")
    text = subprocess.run([SAMPLE_BIN, "--render-sample"], capture_output=True, check=True,
                          timeout=60).stdout.decode()
    rc, out = promtool_check(text)
    assert rc == 0 and out.strip() == "", out
    s = samples(text)
    # escaping of a model name with a quote, a backslash and a newline
    assert s['fastformerd_model_ready{model="we\\"ird\\\\name\\n"}'] == 0
    assert s['fastformerd_http_requests_total{model="we\\"ird\\\\name\\n",'
             'route="/v2/models/{name}/infer",code="other"}'] == 1


@needs_promtool
def test_daemon_metrics_pass_promtool(start_daemon):
    d = start_daemon(batching={"max_batch_size": 8})
    assert d.post("/v1/models/classifier/classify",
                  {"inputs": ["a fine film", {"input_ids": [5, 6, 7]}]}).status == 200
    assert d.post("/v1/models/classifier/embed", {"inputs": ["hello"]}).status == 200
    assert d.post("/v1/models/mind/recommend",
                  {"history": ["some title"], "candidates": ["a", "b"]}).status == 200
    assert d.post("/v1/models/classifier/classify", {"inputs": "nope"}).status == 400
    assert d.post("/v1/models/nope/classify", {"inputs": ["x"]}).status == 404
    assert d.get("/no/such/route").status == 404
    assert d.get("/healthz").status == 200
    assert d.get("/v2/health/ready").status == 200
    r = d.get("/metrics")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.body.decode()
    rc, out = promtool_check(text)
    assert rc == 0 and out.strip() == "", out

    s = samples(text)
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                   "process_start_time_seconds"):
        assert family in s, family
    assert s['fastformerd_model_ready{model="classifier"}'] == 1
    assert s['fastformerd_model_ready{model="mind"}'] == 1
    assert s['fastformerd_http_requests_total{model="classifier",'
             'route="/v1/models/{name}/classify",code="200"}'] == 1
    assert s['fastformerd_http_requests_total{model="classifier",'
             'route="/v1/models/{name}/classify",code="400"}'] == 1
    # an unknown model name is not a label value: it counts under model=""
    assert not any('model="nope"' in k for k in s)
    # two items of one request: batch size and queue-time histograms saw them
    assert s['fastformerd_batch_size_count{model="classifier"}'] >= 1
    assert s['fastformerd_queue_duration_seconds_count{model="classifier"}'] >= 2
    # cumulative buckets end at _count
    for key, value in s.items():
        m = re.match(r'(\w+)_bucket\{(.*),le="\+Inf"\}$', key)
        if m:
            assert s[f"{m.group(1)}_count{{{m.group(2)}}}"] == value, key
