"""torch_bench: the PyTorch side of `make bench`. Loads a model directory into
the reference model (tools/fastformer.py) and answers the same stdin commands
as bench_engine (fwd B L N, pooled B L, info, quit), so that the driver can
alternate C and PyTorch measurements. Timing is model.encode(ids) (embedding,
encoder and pooling) under torch.inference_mode(); `fwd` answers
"ok WALL 0 CPU" (seconds; CPU = process CPU time, every thread).

With --transformer it times, in place of the Fastformer, a standard
softmax-attention encoder of the directory's width, heads, FFN and depth
(nn.TransformerEncoder, random weights): what a BERT-style server runs.

usage: OPENBLAS_NUM_THREADS=T OMP_NUM_THREADS=T /usr/bin/python3 torch_bench.py DIR T [--transformer]
"""
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from bench_lib import bench_id  # noqa: E402
from fastformer import FastformerClassifier, FastformerConfig  # noqa: E402
from model_dir import load_safetensors  # noqa: E402


def load(path):
    with open(os.path.join(path, "config.json")) as f:
        c = json.load(f)
    cfg = FastformerConfig(hidden_size=c["hidden_size"],
                           num_attention_heads=c["num_attention_heads"],
                           intermediate_size=c["intermediate_size"],
                           num_hidden_layers=c["num_hidden_layers"],
                           max_position_embeddings=c["max_position_embeddings"],
                           layer_norm_eps=c["layer_norm_eps"])
    model = FastformerClassifier(cfg, c["vocab_size"], len(c["id2label"]))
    model.load_state_dict(load_safetensors(os.path.join(path, "model.safetensors")))
    return model.eval(), c


class SoftmaxTransformer(nn.Module):
    """BERT-style encoder of the same width, heads, FFN and depth as a
    Fastformer config: word + position embeddings and LayerNorm, then
    nn.TransformerEncoder (post-LN, GELU, batch_first, so eval runs PyTorch's
    fused fast path), then mean pooling. Random N(0, 0.02) weights: only the
    cost is of interest."""

    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.word_embedding = nn.Embedding(c["vocab_size"], d, padding_idx=0)
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], d)
        self.norm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        layer = nn.TransformerEncoderLayer(d, c["num_attention_heads"], c["intermediate_size"],
                                           dropout=0.0, activation="gelu", batch_first=True,
                                           layer_norm_eps=c["layer_norm_eps"])
        self.encoder = nn.TransformerEncoder(layer, c["num_hidden_layers"])
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, std=0.02)

    def encode(self, input_ids):
        n = input_ids.shape[1]
        x = self.word_embedding(input_ids) + self.position_embeddings(torch.arange(n))
        pad = input_ids == 0
        # Without padding (the bench ids have none) no mask is passed, which
        # keeps the fast path dense, as a server batching equal lengths would.
        x = self.encoder(self.norm(x), src_key_padding_mask=pad if bool(pad.any()) else None)
        return x.mean(dim=1)


def load_transformer(path):
    with open(os.path.join(path, "config.json")) as f:
        c = json.load(f)
    torch.manual_seed(3)
    return SoftmaxTransformer(c).eval(), c


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    model, c = load_transformer(path) if "--transformer" in sys.argv[3:] else load(path)
    vocab = c["vocab_size"]
    cache = {}

    def ids_for(b, n):
        if (b, n) not in cache:
            cache[(b, n)] = torch.tensor([[bench_id(s, t, vocab) for t in range(n)]
                                          for s in range(b)], dtype=torch.long)
        return cache[(b, n)]

    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "quit":
                break
            if words[0] == "info":
                print(f"ok torch {torch.__version__} threads {torch.get_num_threads()}")
            elif words[0] == "fwd":
                b, n, reps = map(int, words[1:4])
                ids = ids_for(b, n)
                with torch.inference_mode():
                    t0, c0 = time.perf_counter(), time.process_time()
                    for _ in range(reps):
                        model.encode(ids)
                    t, c = time.perf_counter() - t0, time.process_time() - c0
                print(f"ok {t:.9f} 0 {c:.9f}")  # wall, (no GFLOP), CPU: as bench_engine
            elif words[0] == "pooled":
                b, n = map(int, words[1:3])
                with torch.inference_mode():
                    v = model.encode(ids_for(b, n)).reshape(-1).tolist()
                print("ok " + " ".join(f"{x:.9g}" for x in v))
            else:
                print(f"error bad command: {line.strip()}")
        except (ValueError, IndexError, RuntimeError) as e:
            print(f"error {e}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
