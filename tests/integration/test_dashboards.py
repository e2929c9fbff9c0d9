"""deploy/grafana/fastformerd.json and deploy/prometheus/alerts.yaml: the
rules pass `promtool check rules`, `promtool test rules` fires each alert on
synthetic series (deploy/prometheus/alerts_test.yaml), every dashboard
expression is valid PromQL (checked by promtool as a recording rule), and
every metric either file uses is one the real daemon exports on /metrics."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found: apt-get install prometheus (make deps does)")

ALERTS = os.path.join(ROOT, "deploy", "prometheus", "alerts.yaml")
ALERTS_TEST = os.path.join(ROOT, "deploy", "prometheus", "alerts_test.yaml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "fastformerd.json")
METRIC_RE = re.compile(r"\b((?:fastformerd|process)_[a-z0-9_]+)\b")


def promtool(*args, cwd=None):
    p = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    return p.returncode, p.stdout + p.stderr


def alert_exprs():
    """(alert name, expr) of alerts.yaml (a small reader for its block style)."""
    text = open(ALERTS).read()
    out = []
    for block in re.split(r"\n      - alert: ", text)[1:]:
        name = block.split("\n", 1)[0].strip()
        m = re.search(r"\n        expr: (\|\n(?:          .*\n)+|.*\n)", block + "\n")
        expr = m.group(1)
        if expr.startswith("|"):
            expr = " ".join(line.strip() for line in expr.splitlines()[1:])
        out.append((name, expr.strip()))
    return out


def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def dashboard_exprs(d):
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in d["templating"]["list"] if v["type"] == "query"]
    return exprs


def exported_families(text):
    """Metric names /metrics exposes: every TYPE'd family, and a histogram's
    _bucket, _sum and _count series."""
    names = set()
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            names.add(m.group(1))
            if m.group(2) == "histogram":
                names |= {m.group(1) + s for s in ("_bucket", "_sum", "_count")}
    return names


def missing_metrics(exprs, exported):
    return sorted({n for e in exprs for n in METRIC_RE.findall(e)} - exported)


def test_promtool_check_rules():
    rc, out = promtool("check", "rules", ALERTS)
    assert rc == 0, out
    assert "SUCCESS: 5 rules found" in out


def test_promtool_test_rules_fires_each_alert():
    rc, out = promtool("test", "rules", os.path.basename(ALERTS_TEST), cwd=os.path.dirname(ALERTS))
    assert rc == 0, out
    tested = set(re.findall(r"alertname: (\w+)", open(ALERTS_TEST).read()))
    fired = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels",
                           open(ALERTS_TEST).read()))
    names = {n for n, _ in alert_exprs()}
    assert names == {"FastformerdModelNotReady", "FastformerdHighRejectRate",
                     "FastformerdP99OverDeadline", "FastformerdRestarted",
                     "FastformerdRSSOverEstimate"}
    assert tested == names and fired == names


def test_promtool_test_rules_can_fail(tmp_path):
    """The unit test is real: an alert that would not fire fails it."""
    text = open(ALERTS).read().replace("fastformerd_model_ready == 0", "fastformerd_model_ready < 0")
    (tmp_path / "alerts.yaml").write_text(text)
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yaml")
    rc, out = promtool("test", "rules", "alerts_test.yaml", cwd=str(tmp_path))
    assert rc != 0 and "FastformerdModelNotReady" in out


def test_dashboard_shape():
    d = dashboard()
    assert d["title"] == "fastformerd" and d["uid"] == "fastformerd"
    titles = " | ".join(p["title"] for p in d["panels"])
    for topic in ("route and code", "p50 / p99", "Queue depth", "Queue time", "Batch size",
                  "Rejections by reason", "Readiness", "estimate against RSS", "cache hit rate"):
        assert topic in titles, topic
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert p["targets"], p["title"]
        assert p["datasource"]["type"] == "prometheus"
    exprs = " ".join(dashboard_exprs(d))
    for metric in ("fastformerd_http_requests_total", "fastformerd_request_duration_seconds_bucket",
                   "fastformerd_queue_depth", "fastformerd_queue_duration_seconds_bucket",
                   "fastformerd_batch_size", "fastformerd_rejected_requests_total",
                   "fastformerd_model_ready", "fastformerd_memory_estimate_bytes",
                   "process_resident_memory_bytes", "fastformerd_news_cache_hits_total"):
        assert metric in exprs, metric


def test_dashboard_expressions_are_promql(tmp_path):
    """Each panel's expression, with Grafana's variables filled in, as a
    recording rule that promtool parses."""
    d = dashboard()
    lines = ["groups:", "  - name: dashboard", "    rules:"]
    for i, p in enumerate(d["panels"]):
        for t in p["targets"]:
            e = (t["expr"].replace("$__rate_interval", "5m").replace("$instance", ".*")
                 .replace("$model", ".*"))
            lines += [f"      - record: panel_{i}_{t['refId']}", f"        expr: {json.dumps(e)}"]
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text("\n".join(lines) + "\n")
    rc, out = promtool("check", "rules", str(path))
    assert rc == 0, out
    # and the check can fail
    path.write_text("groups:\n  - name: x\n    rules:\n      - record: y\n"
                    "        expr: \"sum by (le (rate(x[5m]))\"\n")
    assert promtool("check", "rules", str(path))[0] != 0


def test_every_metric_exists_in_metrics(daemon):
    r = daemon.get("/metrics")
    assert r.status == 200
    exported = exported_families(r.body.decode())
    exprs = dashboard_exprs(dashboard()) + [e for _, e in alert_exprs()]
    used = {n for e in exprs for n in METRIC_RE.findall(e)}
    assert len(used) >= 12, used
    assert missing_metrics(exprs, exported) == []
    # the check itself catches a metric the daemon does not export
    assert missing_metrics(["rate(fastformerd_nope_total[5m])"], exported) == ["fastformerd_nope_total"]
