"""Fixtures that run the real fastformerd (env FASTFORMERD, default
build/fastformerd) on a free 127.0.0.1 port with the committed tiny models:

  classifier  tests/fixtures/classifier_f32  (3 labels, PyTorch golden.json)
  newsrec     tests/fixtures/newsrec         (recommender, golden.json)
  mind        tests/fixtures/newsrec + the news catalog tests/fixtures/mind-tiny/news.tsv

`daemon` is shared by the API tests; `start_daemon(...)` starts one with its
own settings. Every daemon is stopped with SIGTERM and must exit 0.
Standard library (http.client) plus pytest only."""
import array
import http.client
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
DAEMON = os.environ.get("FASTFORMERD", os.path.join(ROOT, "build", "fastformerd"))
CLI = os.environ.get("FASTFORMER_CLI", os.path.join(ROOT, "build", "fastformer-cli"))

CLASSIFIER_DIR = os.path.join(FIXTURES, "classifier_f32")
NEWSREC_DIR = os.path.join(FIXTURES, "newsrec")
MIND_NEWS = os.path.join(FIXTURES, "mind-tiny", "news.tsv")

DEFAULT_MODELS = [
    {"name": "classifier", "path": CLASSIFIER_DIR},
    {"name": "newsrec", "path": NEWSREC_DIR},
    {"name": "mind", "path": NEWSREC_DIR, "news_catalog": MIND_NEWS},
]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # {lower-case name: value}
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class Daemon:
    def __init__(self, proc, port, log_path, config_path):
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.config_path = config_path

    def request(self, method, path, body=None, headers=None, timeout=30):
        """One request on a fresh connection. `body` may be bytes, str or a
        JSON-able object (then sent as JSON)."""
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        headers = dict(headers or {})
        if body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"fastformerd did not exit after {sig!r}:\n{self.log()[-3000:]}")


def yaml_config(models, server=None, batching=None, logging=None):
    """A fastformerd YAML config (flat values only, which is all we need)."""
    lines = ["server:", "  listen: 127.0.0.1:0"]
    for k, v in (server or {}).items():
        lines.append(f"  {k}: {v}")
    if batching:
        lines.append("batching:")
        lines += [f"  {k}: {v}" for k, v in batching.items()]
    lines.append("models:")
    for m in models:
        lines.append(f"  - name: {m['name']}")
        for k, v in m.items():
            if k != "name":
                lines.append(f"    {k}: {v}")
    lines.append("logging:")
    for k, v in {"format": "text", "level": "info", **(logging or {})}.items():
        lines.append(f"  {k}: {v}")
    return "\n".join(lines) + "\n"


def launch(tmp_dir, models=None, server=None, batching=None, args=(), env=None, wait_ready=True,
           name="fastformerd"):
    """Starts fastformerd with a generated config in tmp_dir; returns a Daemon
    once it listens (and, with wait_ready, once /readyz says 200)."""
    os.makedirs(tmp_dir, exist_ok=True)
    config_path = os.path.join(tmp_dir, f"{name}.yaml")
    with open(config_path, "w") as f:
        f.write(yaml_config(DEFAULT_MODELS if models is None else models, server, batching))
    log_path = os.path.join(tmp_dir, f"{name}.log")
    full_env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    full_env.pop("NOTIFY_SOCKET", None)
    full_env.update(env or {})
    log = open(log_path, "w")
    proc = subprocess.Popen([DAEMON, "--config", config_path, *args], stdout=log,
                            stderr=subprocess.STDOUT, env=full_env)
    log.close()
    port = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(log_path, errors="replace") as f:
            m = re.search(r"listening on https?://127\.0\.0\.1:(\d+)", f.read())
        if m:
            port = int(m.group(1))
            break
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    if port is None:
        proc.kill()
        proc.wait()
        with open(log_path, errors="replace") as f:
            raise AssertionError(f"fastformerd did not start (rc={proc.returncode}):\n{f.read()}")
    d = Daemon(proc, port, log_path, config_path)
    if wait_ready:
        deadline = time.monotonic() + 60
        while True:
            r = d.get("/readyz")
            if r.status == 200:
                break
            if not d.alive() or time.monotonic() > deadline:
                d.stop(signal.SIGKILL)
                raise AssertionError(f"fastformerd never became ready: {r!r}\n{d.log()}")
            time.sleep(0.02)
    return d


@pytest.fixture
def start_daemon(tmp_path):
    """Factory: start_daemon(models=..., server=..., batching=...) -> Daemon.
    Each one is stopped with SIGTERM at teardown and must exit 0."""
    started = []

    def start(**kw):
        kw.setdefault("name", f"fastformerd{len(started)}")
        d = launch(str(tmp_path), **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            rc = d.stop()
            assert rc == 0, f"fastformerd exited with {rc}:\n{d.log()[-3000:]}"


@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    """The shared daemon with the default models."""
    d = launch(str(tmp_path_factory.mktemp("daemon")))
    yield d
    rc = d.stop()
    assert rc == 0, f"fastformerd exited with {rc}:\n{d.log()[-3000:]}"


def npm_client(spec, folder, module, what):
    """Node and the folder build/FOLDER where the pinned npm package SPEC is
    installed (once, --ignore-scripts), for a test that runs an official
    client; skips the test without node/npm or a reachable registry.
    MODULE: the package's folder under node_modules."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip(f"no node/npm: install Debian's npm to run {what}")
    prefix = os.path.join(ROOT, "build", folder)
    if not os.path.exists(os.path.join(prefix, "node_modules", module, "package.json")):
        p = subprocess.run([npm, "install", "--ignore-scripts", "--no-audit", "--no-fund",
                            "--prefix", prefix, spec], capture_output=True, text=True,
                           timeout=300)
        if p.returncode != 0:
            pytest.skip(f"npm could not install {spec} (no registry?): {p.stderr[-300:]}")
    return node, prefix


def golden(name):
    with open(os.path.join(FIXTURES, name, "golden.json")) as f:
        return json.load(f)


def wait_for(cond, what, timeout=30):
    """Polls cond() until it is true; fails with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def assert_close(got, want, rel=1e-4, abs_=1e-5, what=""):
    """Element-wise |got - want| <= abs_ + rel * |want| over nested lists."""
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{what}: {got!r} vs {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, rel, abs_, f"{what}[{i}]")
        return
    assert abs(got - want) <= abs_ + rel * abs(want), f"{what}: got {got}, want {want}"


def make_slow_classifier(path, hidden=512, heads=8, intermediate=4096, max_len=512):
    """Writes a classifier model directory with random weights, the tensor
    names of tests/fixtures/classifier_f32 and bigger dimensions, so that one
    batch takes long enough (a few hundred ms for 4 x 512 tokens even with the
    packed AVX-512 kernels on a quiet machine, about 43 GFLOP) to keep a
    worker busy while a test does something else. Standard library only."""
    src = CLASSIFIER_DIR
    with open(os.path.join(src, "model.safetensors"), "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    dims = {cfg["hidden_size"]: hidden, cfg["intermediate_size"]: intermediate,
            cfg["max_position_embeddings"]: max_len, cfg["num_attention_heads"]: heads}
    rng = random.Random(0)
    out_header, blobs, offset = {}, [], 0
    for name in sorted(k for k in header if k != "__metadata__"):
        shape = [dims.get(d, d) for d in header[name]["shape"]]
        count = 1
        for d in shape:
            count *= d
        if name.endswith("LayerNorm.weight"):
            values = array.array("f", [1.0]) * count
        else:
            values = array.array("f", (rng.uniform(-0.05, 0.05) for _ in range(count)))
        raw = values.tobytes()
        out_header[name] = {"dtype": "F32", "shape": shape,
                            "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(out_header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    cfg.update(hidden_size=hidden, num_attention_heads=heads, intermediate_size=intermediate,
               max_position_embeddings=max_len)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f)
    shutil.copy(os.path.join(src, "vocab.txt"), os.path.join(path, "vocab.txt"))
    return path


@pytest.fixture(scope="session")
def slow_classifier(tmp_path_factory):
    return make_slow_classifier(str(tmp_path_factory.mktemp("slow") / "slow"))
