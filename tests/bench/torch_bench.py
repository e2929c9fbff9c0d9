"""torch_bench: the PyTorch side of `make bench`. Loads a model directory into
the reference model (tools/fastformer.py) and answers the same stdin commands
as bench_engine (fwd B L N, pooled B L, info, quit), so that the driver can
alternate C and PyTorch measurements. Timing is model.encode(ids) (embedding,
encoder and pooling) under torch.inference_mode(); `fwd` answers
"ok WALL 0 CPU" (seconds; CPU = process CPU time, every thread).

usage: OPENBLAS_NUM_THREADS=T OMP_NUM_THREADS=T /usr/bin/python3 torch_bench.py DIR T
"""
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import torch  # noqa: E402

from fastformer import FastformerClassifier, FastformerConfig  # noqa: E402
from model_dir import load_safetensors  # noqa: E402


def bench_id(s, t, vocab_size):
    """The same ids as bench_engine.c's bench_id."""
    x = (s * 1000003 + t * 7919 + 12345) & 0xFFFFFFFF
    x = (x * 2654435761) & 0xFFFFFFFF
    x ^= x >> 16
    return 1 + x % (vocab_size - 1)


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


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(threads)
    model, c = load(path)
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
