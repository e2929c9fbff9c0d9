#!/usr/bin/python3
"""Checkpoint averaging along one training run (stochastic weight averaging; owner: training helper, issue 13).

Averages, tensor by tensor, the states that tools/train_classifier.py --keep-states saved at its
validations (F32 .pt files of one run, so one vocabulary and one config), and writes a model directory
with the config and vocabulary of a model directory of that run (its --out). The states to average are
chosen by rule before they are measured, e.g. every state of the run's second half.

    tools/average_states.py data/train/sent8 data/train/sent8-swa data/train/sent8.states/step-{600,750}.pt
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_dir import (EMBEDDING_TABLES, PROJECTION_SUFFIX, SCALE_SUFFIX, load_safetensors,  # noqa: E402
                       save_safetensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("like", help="a model directory of the same run (config.json, vocab.txt, dtypes)")
    ap.add_argument("out")
    ap.add_argument("states", nargs="+", help="state .pt files (--keep-states)")
    ap.add_argument("--dtype", default="F16", choices=["F32", "F16", "BF16"])
    a = ap.parse_args()
    like = load_safetensors(os.path.join(a.like, "model.safetensors"), dequantize=False)
    int8 = [k for k, v in like.items() if v.dtype == torch.int8 and k in EMBEDDING_TABLES]
    # the int8 scale layout of `like` too: one scale per row, or per block of D // G (K // G when
    # factored: then the mean is stored factored through like's projection, e.g. a frozen GloVe table)
    projection = {k: like[k + PROJECTION_SUFFIX] for k in int8 if k + PROJECTION_SUFFIX in like}
    blocks = {like[k].shape[1] // like[k + SCALE_SUFFIX].shape[1] for k in int8}
    if len(blocks) > 1:
        sys.exit(f"{a.like}: its int8 tables have different block sizes")
    block = blocks.pop() if blocks else None
    if block is not None and block == like[int8[0]].shape[1]:
        block = None  # one scale per row
    total = None
    for path in a.states:
        sd = torch.load(path, map_location="cpu")
        if total is None:
            total = {k: v.double().clone() for k, v in sd.items()}
        else:
            if sd.keys() != total.keys() or any(sd[k].shape != total[k].shape for k in sd):
                sys.exit(f"{path}: other tensors than {a.states[0]}")
            for k, v in sd.items():
                total[k] += v.double()
    avg = {k: (v / len(a.states)).float() for k, v in total.items()}
    with open(os.path.join(a.like, "config.json")) as f:
        n_pos = json.load(f)["max_position_embeddings"]
    pos = [k for k in avg if k.endswith("position_embeddings.weight")]
    if any(avg[k].shape[0] != n_pos for k in pos):
        sys.exit(f"{a.like}: max_position_embeddings {n_pos} differs from the states'")
    os.makedirs(a.out, exist_ok=True)
    for name in ("config.json", "vocab.txt"):
        shutil.copy(os.path.join(a.like, name), os.path.join(a.out, name))
    try:
        save_safetensors(avg, os.path.join(a.out, "model.safetensors"), a.dtype, int8=int8, int8_block=block,
                         int8_projection=projection)
    except ValueError as e:
        sys.exit(f"{a.like}: {e}")
    print(f"{a.out}: mean of {len(a.states)} states ({', '.join(os.path.basename(p) for p in a.states)})")


if __name__ == "__main__":
    main()
