#!/usr/bin/python3
"""Weight interpolation of two classifiers fine-tuned from the same model (owner: training helper, issue 13).

out = w * B + (1 - w) * A, tensor by tensor (int8 tables dequantized first, stored again as int8 with
a scale per row, factored through A's projection when A's table is; the other tensors as --dtype).
A and B must have the same config, vocabulary and tensor shapes, as a model and its own fine-tune do
(B = tools/train_classifier.py --init A). The weight is chosen on validation sets, like a checkpoint.

    tools/average_models.py data/train/review-sentiment-run4 data/train/sent6 data/train/avg --weight 0.5
"""
import argparse
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_dir import EMBEDDING_TABLES, PROJECTION_SUFFIX, load_safetensors, save_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("out")
    ap.add_argument("--weight", type=float, required=True, help="B's share, 0..1")
    ap.add_argument("--dtype", default="F16", choices=["F32", "F16", "BF16"])
    a = ap.parse_args()
    for name in ("config.json", "vocab.txt"):
        with open(os.path.join(a.a, name), "rb") as fa, open(os.path.join(a.b, name), "rb") as fb:
            if fa.read() != fb.read():
                sys.exit(f"{a.a} and {a.b} differ in {name}")
    pa, pb = (os.path.join(d, "model.safetensors") for d in (a.a, a.b))
    raw = load_safetensors(pa, dequantize=False)
    int8 = [k for k, v in raw.items() if v.dtype == torch.int8 and k in EMBEDDING_TABLES]
    projection = {k: raw[k + PROJECTION_SUFFIX] for k in int8 if k + PROJECTION_SUFFIX in raw}
    sa, sb = load_safetensors(pa), load_safetensors(pb)
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        sys.exit(f"{a.a} and {a.b} have different tensors")
    out = {k: a.weight * sb[k] + (1.0 - a.weight) * sa[k] for k in sa}
    os.makedirs(a.out, exist_ok=True)
    for name in ("config.json", "vocab.txt"):
        shutil.copy(os.path.join(a.a, name), os.path.join(a.out, name))
    try:
        save_safetensors(out, os.path.join(a.out, "model.safetensors"), a.dtype, int8=int8,
                         int8_projection=projection)
    except ValueError as e:
        sys.exit(f"{a.a}: {e}")
    print(f"{a.out}: {a.weight} x {a.b} + {1 - a.weight} x {a.a}")


if __name__ == "__main__":
    main()
