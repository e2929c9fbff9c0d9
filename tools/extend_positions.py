#!/usr/bin/python3
"""Copies a classifier's model directory with more position rows (owner: training helper, issue 13).

Row i of the new position table is row i mod n of the trained one (n = its
max_position_embeddings), as tools/train_classifier.py's --init does for a
longer --max-len: a longer text is then read as its parts are, without
training. An int8 word embedding is stored again as int8 (re-quantizing the
dequantized table gives back the same int8 values and scales), factored
through the same projection when it is factored; the other
tensors are written as --dtype (F16 gives back F16 weights bit for bit).

    tools/extend_positions.py models/review-sentiment data/train/sent-1024 --max-len 1024
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_dir import EMBEDDING_TABLES, PROJECTION_SUFFIX, load_safetensors, save_safetensors  # noqa: E402
from train_classifier import POSITIONS, extend_positions  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--max-len", type=int, required=True)
    ap.add_argument("--dtype", default="F16", choices=["F32", "F16", "BF16"])
    a = ap.parse_args()
    path = os.path.join(a.model_dir, "model.safetensors")
    raw = load_safetensors(path, dequantize=False)
    int8 = [k for k, v in raw.items() if v.dtype == torch.int8 and k in EMBEDDING_TABLES]
    projection = {k: raw[k + PROJECTION_SUFFIX] for k in int8 if k + PROJECTION_SUFFIX in raw}
    sd = load_safetensors(path)
    n = extend_positions(sd, a.max_len)
    if n >= a.max_len:
        sys.exit(f"{a.model_dir}: already has {n} position rows")
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.model_dir, "config.json")) as f:
        config = json.load(f)
    config["max_position_embeddings"] = a.max_len
    with open(os.path.join(a.out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    shutil.copy(os.path.join(a.model_dir, "vocab.txt"), os.path.join(a.out_dir, "vocab.txt"))
    save_safetensors(sd, os.path.join(a.out_dir, "model.safetensors"), a.dtype, int8=int8,
                     int8_projection=projection)
    print(f"{a.out_dir}: position rows {n} -> {a.max_len} ({POSITIONS})")


if __name__ == "__main__":
    main()
