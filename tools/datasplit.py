"""Shared helpers for the data preparation scripts (owner: models helper, issue 4):
seeded shuffles, JSONL writing and a split record with sha256 sums."""
import hashlib
import json
import os
import random


def shuffled(items, seed):
    items = list(items)
    random.Random(seed).shuffle(items)
    return items


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_split_record(out_dir, info, files):
    """Writes out_dir/SPLITS.txt: the settings, then `sha256  name  rows` per file."""
    lines = [f"{k}: {v}" for k, v in info.items()]
    for name in files:
        path = os.path.join(out_dir, name)
        with open(path, "rb") as f:
            rows = sum(1 for _ in f)
        lines.append(f"{sha256_file(path)}  {name}  {rows}")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "SPLITS.txt"), "w") as f:
        f.write(text)
    print(text, end="")
