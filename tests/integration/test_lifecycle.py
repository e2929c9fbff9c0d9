"""fastformerd's life cycle: flags, --check-config, --healthcheck, start-up
failures, readiness while loading, SIGHUP reloads (good and corrupt), the
sd-notify sequence, and SIGTERM draining under load."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import CLASSIFIER_DIR, DAEMON, NEWSREC_DIR, yaml_config

GOOD = {"inputs": [{"input_ids": [7]}]}
GOOD_PROBS = [0.8793465495109558, 0.0907304584980011, 0.029922939836978912]


def run(*args, timeout=60):
    return subprocess.run([DAEMON, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))


def probs_ok(got):
    return all(abs(a - b) <= 1e-5 + 1e-4 * abs(b) for a, b in zip(got, GOOD_PROBS))


def corrupt_copy(src, dst):
    shutil.copytree(src, dst)
    with open(os.path.join(dst, "model.safetensors"), "r+b") as f:
        f.truncate(100)


# ---- flags ----------------------------------------------------------------------------

def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("fastformerd ")
    r = run("--help")
    assert r.returncode == 0 and "--check-config" in r.stdout and "--healthcheck" in r.stdout
    r = run("--no-such-flag")
    assert r.returncode == 2 and "Usage:" in r.stderr
    r = run("stray")
    assert r.returncode == 2 and "unexpected argument 'stray'" in r.stderr


def test_check_config(tmp_path):
    r = run("--check-config", "--model", f"c={CLASSIFIER_DIR}", "--model", f"n={NEWSREC_DIR}")
    assert r.returncode == 0, r.stderr
    assert "config OK: 2 models loaded" in r.stdout
    r = run("--check-config", "--model", f"c={tmp_path}/missing")
    assert r.returncode == 1
    assert f"model 'c': {tmp_path}/missing/config.json" in r.stderr
    corrupt_copy(CLASSIFIER_DIR, tmp_path / "broken")
    r = run("--check-config", "--model", f"c={tmp_path}/broken")
    assert r.returncode == 1 and "model.safetensors" in r.stderr
    r = run("--check-config")
    assert r.returncode == 1 and "no models configured" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  max_connections: lots\n")
    r = run("--check-config", "--config", str(bad))
    assert r.returncode == 1 and "bad.yaml:2: server.max_connections" in r.stderr


def test_healthcheck(daemon):
    r = run("--healthcheck", "--listen", f"127.0.0.1:{daemon.port}")
    assert r.returncode == 0, r.stderr
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run("--healthcheck", "--listen", f"127.0.0.1:{port}")
    assert r.returncode == 1 and "cannot connect" in r.stderr


def test_listen_address_in_use_fails(daemon):
    r = run("--listen", f"127.0.0.1:{daemon.port}", "--model", f"c={CLASSIFIER_DIR}")
    assert r.returncode == 1
    assert f"listen 127.0.0.1:{daemon.port}: Address already in use" in r.stderr


def test_corrupt_model_at_start_up_exits_1(tmp_path):
    corrupt_copy(CLASSIFIER_DIR, tmp_path / "broken")
    r = run("--listen", "127.0.0.1:0", "--model", f"c={tmp_path}/broken")
    assert r.returncode == 1
    assert "loading models failed" in r.stderr and "model.safetensors" in r.stderr


# ---- readiness while loading --------------------------------------------------------------

def test_readyz_says_loading_until_models_are_in(start_daemon, tmp_path):
    # A large news catalog keeps the loader busy for a while after listening.
    words = "the a of oil bank market team win game season report price deal".split()
    news = tmp_path / "news.tsv"
    with open(news, "w") as f:
        for i in range(60000):
            title = " ".join(words[(i * 7 + k) % len(words)] for k in range(3 + i % 9))
            f.write(f"N{i}\tnews\tsub\t{title}\tabstract\turl\t[]\t[]\n")
    d = start_daemon(models=[{"name": "mind", "path": NEWSREC_DIR, "news_catalog": str(news)},
                             {"name": "classifier", "path": CLASSIFIER_DIR}],
                     wait_ready=False)
    assert d.get("/healthz").status == 200  # serving HTTP at once
    seen_loading = False
    deadline = time.monotonic() + 120
    while True:
        r = d.get("/readyz")
        if r.status == 200:
            assert r.json() == {"status": "ready"}
            break
        assert r.status == 503
        assert r.json() == {"status": "not_ready", "reason": "loading"}
        p = d.get("/ping")  # TorchServe's health check: Unhealthy while loading (or ready now)
        assert (p.status, p.json()) in ((500, {"status": "Unhealthy"}), (200, {"status": "Healthy"}))
        seen_loading = True
        # The model list names what is coming, not an empty list. (The set
        # may swap in between the two GETs; then both are ready.)
        listed = {m["name"]: m for m in d.get("/v1/models").json()["models"]}
        assert set(listed) == {"mind", "classifier"}, listed
        for m in listed.values():
            assert m in ({"name": m["name"], "ready": False, "state": "loading"},) or \
                (m["ready"] is True and m["state"] == "ready"), m
        m = d.post("/v1/models/mind/recommend", {"history": [], "candidates": ["oil"]})
        if m.status == 503:
            assert m.json()["error"]["message"] == "model 'mind' is still loading"
            assert m.headers["retry-after"] == "1"
        v = d.get("/v2/models/mind/versions/1")
        if v.status == 503:  # the Open Inference Protocol's error shape
            assert v.json() == {"error": "model 'mind' is still loading", "code": 503,
                                "type": "unavailable"}
        assert d.get("/v2/health/ready").status in (200, 503)
        assert time.monotonic() < deadline, "never became ready"
        time.sleep(0.01)
    assert seen_loading, "the catalog loaded before the first /readyz"
    r = d.get("/v1/models/mind")
    assert r.json()["news_catalog_items"] == 60000
    listed = d.get("/v1/models").json()["models"]
    assert sorted((m["name"], m["ready"], m["state"]) for m in listed) == [
        ("classifier", True, "ready"), ("mind", True, "ready")]


# ---- SIGHUP --------------------------------------------------------------------------------

def wait_metrics(d, lines, seconds=10):
    """Polls /metrics until every line is there; fails naming the missing ones."""
    deadline = time.monotonic() + seconds
    while True:
        metrics = d.get("/metrics").body.decode()
        missing = [line for line in lines if line not in metrics]
        if not missing:
            return metrics
        assert time.monotonic() < deadline, f"/metrics never showed {missing}"
        time.sleep(0.02)


def test_sighup_reloads_and_a_corrupt_model_keeps_the_old_set(start_daemon, tmp_path):
    d = start_daemon(models=[{"name": "classifier", "path": CLASSIFIER_DIR}])
    sha = d.get("/v1/models/classifier").json()["weights_sha256"]
    # 1. a good new config: one more model
    with open(d.config_path, "w") as f:
        f.write(yaml_config([{"name": "classifier", "path": CLASSIFIER_DIR},
                             {"name": "newsrec", "path": NEWSREC_DIR}]))
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while d.get("/v1/models/newsrec").status != 200:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert d.get("/readyz").status == 200
    # The gauges follow the swap (the model answers first), so wait for them.
    wait_metrics(d, ['fastformerd_model_ready{model="newsrec"} 1'])
    # 2. a corrupt model: the old set keeps answering, before and after
    corrupt_copy(CLASSIFIER_DIR, tmp_path / "broken")
    with open(d.config_path, "w") as f:
        f.write(yaml_config([{"name": "classifier", "path": str(tmp_path / "broken")}]))
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while "reload failed" not in d.log():
        r = d.post("/v1/models/classifier/classify", GOOD)
        assert r.status == 200 and probs_ok(r.json()["predictions"][0]["probabilities"])
        assert time.monotonic() < deadline
    r = d.post("/v1/models/classifier/classify", GOOD)
    assert r.status == 200 and probs_ok(r.json()["predictions"][0]["probabilities"])
    assert d.get("/v1/models/classifier").json()["weights_sha256"] == sha
    assert d.get("/v1/models/newsrec").status == 200
    assert d.get("/readyz").status == 200
    metrics = d.get("/metrics").body.decode()
    assert 'fastformerd_reloads_total{result="success"} 1' in metrics
    assert 'fastformerd_reloads_total{result="failure"} 1' in metrics
    # 2b. a new model that fails to load: listed as failed, the old set serves
    with open(d.config_path, "w") as f:
        f.write(yaml_config([{"name": "classifier", "path": CLASSIFIER_DIR},
                             {"name": "newsrec", "path": NEWSREC_DIR},
                             {"name": "extra", "path": str(tmp_path / "broken")}]))
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while d.log().count("reload failed") < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    listed = {m["name"]: m for m in d.get("/v1/models").json()["models"]}
    assert listed["extra"] == {"name": "extra", "ready": False, "state": "failed"}
    assert listed["classifier"]["state"] == "ready" and listed["newsrec"]["state"] == "ready"
    r = d.get("/v1/models/extra")
    assert r.status == 503 and r.json()["error"]["message"] == "model 'extra' failed to load"
    # 3. a model removed from the config: gone, and its ready gauge says 0
    with open(d.config_path, "w") as f:
        f.write(yaml_config([{"name": "classifier", "path": CLASSIFIER_DIR}]))
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while d.get("/v1/models/newsrec").status != 404:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    wait_metrics(d, ['fastformerd_model_ready{model="newsrec"} 0',
                     'fastformerd_model_ready{model="classifier"} 1'])
    assert "extra" not in {m["name"] for m in d.get("/v1/models").json()["models"]}
    # 4. a config that does not parse: same
    with open(d.config_path, "w") as f:
        f.write("models: [\n")
    d.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while d.log().count("reload failed") < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert d.post("/v1/models/classifier/classify", GOOD).status == 200


def test_sd_notify_sequence(start_daemon, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    msgs = []

    def until(word):
        while True:
            m = sock.recv(4096).decode()
            msgs.append(m)
            if word in m.split("\n"):
                return

    try:
        d = start_daemon(models=[{"name": "classifier", "path": CLASSIFIER_DIR}],
                         env={"NOTIFY_SOCKET": path})
        until("READY=1")
        d.proc.send_signal(signal.SIGHUP)
        until("RELOADING=1")
        until("READY=1")
        d.proc.send_signal(signal.SIGTERM)
        until("STOPPING=1")
        assert d.proc.wait(timeout=30) == 0
    finally:
        sock.close()
    lines = [line for m in msgs for line in m.split("\n")]
    order = [x for x in lines if x in ("READY=1", "RELOADING=1", "STOPPING=1")]
    assert order == ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"], msgs
    assert any(x.startswith("STATUS=") for x in lines)


# ---- SIGTERM ---------------------------------------------------------------------------------

def test_sigterm_under_load_answers_every_accepted_request(start_daemon):
    d = start_daemon(models=[{"name": "classifier", "path": CLASSIFIER_DIR}],
                     batching={"workers": 1})
    body = json.dumps({"inputs": [{"input_ids": [7]}] * 64}).encode()
    stop = threading.Event()
    outcomes = []
    lock = threading.Lock()

    def client():
        while not stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
            try:
                conn.request("POST", "/v1/models/classifier/classify", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
            except (ConnectionError, OSError):
                with lock:
                    outcomes.append(("refused", None))
                return  # the daemon has gone: nothing was accepted on this connection
            finally:
                conn.close()
            with lock:
                outcomes.append((r.status, json.loads(data)))

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    while len(outcomes) < 30:
        time.sleep(0.005)
    d.proc.send_signal(signal.SIGTERM)
    rc = d.proc.wait(timeout=60)
    stop.set()
    for t in threads:
        t.join()
    assert rc == 0, d.log()[-2000:]
    ok = draining = 0
    for status, out in outcomes:
        if status == 200:
            ok += 1
            assert len(out["predictions"]) == 64
            assert probs_ok(out["predictions"][0]["probabilities"])
        elif status == 503:
            draining += 1
            assert out["error"]["type"] == "unavailable"
            assert out["error"]["message"] in ("server is draining (shutting down)",)
        else:
            assert status == "refused", (status, out)
    assert ok >= 30
    assert "draining" in d.log() and "exiting with status 0" in d.log()
