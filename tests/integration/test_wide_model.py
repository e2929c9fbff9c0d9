"""The engine against PyTorch on a model wider than the golden fixtures
(D=32), on every GEMM kernel path this CPU supports, forced with
FASTFORMER_KERNELS: D=448, H=14, FFN 1040, two layers (k = 1040: a packed
panel larger than L1 and row groups of gemm_run_panels shorter than the
batch; n = 1040: a last panel of W half full; D = 448: a folded dense's
matrix of 784 KiB, formed and multiplied in two blocks of panels on every
path), short sequences and ones long enough for the folded key side and
the folded dense, batched by fastformer-cli predict. Needs
PyTorch (Debian's python3-torch, /usr/bin/python3); skips, saying so,
without it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (python3-torch): this test needs it")

ROOT = Path(__file__).resolve().parents[2]
CLI = os.environ.get("FASTFORMER_CLI", str(ROOT / "build" / "fastformer-cli"))
sys.path.insert(0, str(ROOT / "tools"))
torch.set_num_threads(1)

from fastformer import FastformerClassifier, FastformerConfig  # noqa: E402
from model_dir import model_config, write_model_dir  # noqa: E402

CFG = FastformerConfig(hidden_size=448, num_attention_heads=14, intermediate_size=1040,
                       num_hidden_layers=2, max_position_embeddings=96, initializer_range=0.1)
VOCAB = 300
LABELS = 3
LENGTHS = [1, 7, 11, 12, 40, 96]


def cpu_flags():
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def path_supported(path):
    flags = cpu_flags()
    return {"plain": True, "avx2": {"avx2", "fma"} <= flags, "avx512": {"avx512f", "fma"} <= flags}[path]


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory):
    """A random classifier directory, its sequences and PyTorch's logits for each."""
    path = tmp_path_factory.mktemp("wide")
    torch.manual_seed(11)
    model = FastformerClassifier(CFG, VOCAB, LABELS).eval()
    write_model_dir(str(path), model.state_dict(),
                    model_config(CFG, VOCAB, task="classification", id2label=[f"l{i}" for i in range(LABELS)]),
                    ["[PAD]", "[UNK]"] + [f"w{i}x" for i in range(VOCAB - 2)])
    g = torch.Generator().manual_seed(5)
    seqs = [torch.randint(1, VOCAB, (n,), generator=g).tolist() for n in LENGTHS]
    with torch.inference_mode():
        logits = [model(torch.tensor([s])).double()[0] for s in seqs]
    return path, seqs, logits


@pytest.mark.parametrize("kernels", ["plain", "avx2", "avx512"])
def test_wide_model_matches_pytorch_on_every_kernel_path(wide_model, kernels):
    if not path_supported(kernels):
        pytest.skip(f"this CPU cannot run the {kernels} kernels")
    path, seqs, want = wide_model
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", FASTFORMER_KERNELS=kernels)
    stdin = "".join(json.dumps({"input_ids": s}) + "\n" for s in seqs)
    r = subprocess.run([CLI, "predict", "--model", str(path)], input=stdin, capture_output=True,
                       text=True, timeout=120, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert len(out) == len(seqs)
    for n, o, z in zip(LENGTHS, out, want):
        probs = torch.softmax(z, 0).tolist()
        assert all(abs(g - w) <= 1e-5 for g, w in zip(o["probabilities"], probs)), (n, o, probs)
        assert all(abs(g - w) <= 1e-5 + 1e-4 * abs(w) for g, w in zip(o["logits"], z.tolist())), \
            (n, o["logits"], z.tolist())
    # The logits are spread enough for the check to mean something.
    assert max(float(z.max() - z.min()) for z in want) > 0.5
