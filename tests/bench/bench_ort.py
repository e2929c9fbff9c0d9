"""bench_ort: ONNX Runtime for `make bench`: is it installed, the exported
.onnx of a model directory (exported once, again when the weights or the
exporter change), and the exactness check that comes before any timing.

`make bench` installs onnxruntime-node with npm into build/bench/ort; when
node, that package or python3-torch (for the export) is missing, ort_ready
raises Unavailable saying which, and the sections print that in place of the
ONNX Runtime figures."""
import importlib.util
import json
import os
import shutil
import subprocess

from bench_lib import HERE, PYTHON, ROOT, Unavailable, bench_id, thread_env

EXPORTER = os.path.join(HERE, "ort_export.py")
# The engine's and ONNX Runtime's probabilities must agree this closely.
CHECK_TOLERANCE = 1e-5


def ort_ready(ort_dir):
    """Raises Unavailable unless node, onnxruntime-node and torch are here."""
    if ort_dir is None:
        raise Unavailable("no --ort-dir given (make bench passes build/bench/ort)")
    if not shutil.which("node"):
        raise Unavailable("node is not installed (make bench installs Debian's npm, which "
                          "brings it)")
    if not os.path.exists(os.path.join(ort_dir, "node_modules", "onnxruntime-node",
                                       "package.json")):
        raise Unavailable(f"onnxruntime-node is not installed in {os.path.relpath(ort_dir, ROOT)} "
                          "(npm missing or `npm install` failed: see npm.log there)")
    if importlib.util.find_spec("torch") is None:
        raise Unavailable("python3-torch is missing: the model cannot be exported to ONNX")


def _stale(out, inputs):
    if not os.path.exists(out):
        return True
    t = os.path.getmtime(out)
    return any(os.path.getmtime(p) > t for p in inputs)


def onnx_for(out_dir, model_dir, name, products=False):
    """build/bench/onnx/NAME.onnx exported from model_dir (name "probe": the
    probe graph, model_dir None; products: NAME-products.onnx, the model's
    weight products alone, ort_export.py's Products). Raises Unavailable when
    the export fails."""
    onnx_dir = os.path.join(out_dir, "onnx")
    os.makedirs(onnx_dir, exist_ok=True)
    out = os.path.join(onnx_dir, f"{name}{'-products' if products else ''}.onnx")
    inputs = [EXPORTER, os.path.join(ROOT, "tools", "fastformer.py")]
    if model_dir is not None:
        inputs += [os.path.join(model_dir, f) for f in ("model.safetensors", "config.json")]
    if _stale(out, inputs):
        argv = [PYTHON, EXPORTER, *(["--products"] if products else []),
                "--probe" if model_dir is None else model_dir, out]
        r = subprocess.run(argv, capture_output=True, text=True, env=thread_env(1), timeout=600)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise Unavailable(f"torch.onnx.export of {name} failed: {last}")
    return out


def check_rows(vocab_size):
    """The check's inputs: 4 rows of bench ids, padded with 0 after 32, 19, 7
    and 32 tokens, so that the padding mask is exercised too."""
    lengths, width = (32, 19, 7, 32), 32
    return [[bench_id(s, t, vocab_size) if t < n else 0 for t in range(width)]
            for s, n in enumerate(lengths)]


def engine_probabilities(build, model_dir, rows):
    """fastformer-cli predict's probabilities for the rows (input_ids lines)."""
    lines = "".join(json.dumps({"input_ids": r}) + "\n" for r in rows)
    r = subprocess.run([os.path.join(build, "fastformer-cli"), "predict", "--model", model_dir],
                       input=lines, capture_output=True, text=True, env=thread_env(1),
                       timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"fastformer-cli predict failed: {r.stderr.strip()[:300]}")
    return [p for line in r.stdout.splitlines() for p in json.loads(line)["probabilities"]]


def check(build, model_dir, engine, ort, vocab_size):
    """Max |engine - ONNX Runtime| of the probabilities (fastformer-cli
    predict, padded rows) and of the pooled vectors (bench_engine, 2 x 16
    bench ids), and whether the probabilities are within CHECK_TOLERANCE."""
    rows = check_rows(vocab_size)
    ours = engine_probabilities(build, model_dir, rows)
    theirs = json.loads(ort.ask_raw("run " + json.dumps(rows)))["probabilities"]
    pooled_ours = [float(x) for x in engine.ask("pooled 2 16")]
    ids = [[bench_id(s, t, vocab_size) for t in range(16)] for s in range(2)]
    pooled_theirs = json.loads(ort.ask_raw("run " + json.dumps(ids)))["pooled"]
    if len(ours) != len(theirs) or len(pooled_ours) != len(pooled_theirs):
        raise RuntimeError("the engine and ONNX Runtime return different numbers of outputs")
    probs = max(abs(a - b) for a, b in zip(ours, theirs))
    pooled = max(abs(a - b) for a, b in zip(pooled_ours, pooled_theirs))
    return {"probabilities": probs, "pooled": pooled, "ok": probs <= CHECK_TOLERANCE}
