#!/usr/bin/python3
"""k-fold cross-validation splits of AG News train + validation (owner: training helper, issue 13).

The topic model's 600 validation rows are too few to choose between recipes
whose difference is a few rows (models/agnews-topic/README.md). This splits
the 6,600 rows of train + validation (the first 6,600 of
tools/prepare_agnews.py's shuffle; the 1,000 test rows are never read) into k
folds of consecutive rows. Fold i holds out its rows as validation
(valid.jsonl, valid_titles.jsonl) and trains on the others (train.jsonl,
train_titles.jsonl, train_crops.jsonl, train_sentences.jsonl: the same kinds of text as the
model's training files), in data/agnews-cv/fold<i>/.

    tools/agnews_folds.py data/agnews-test/test.csv data/agnews-cv --k 3
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasplit import write_jsonl, write_split_record  # noqa: E402
from prepare_agnews import load  # noqa: E402

TRAIN_VALID = 6600


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("test_csv")
    ap.add_argument("out_dir")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1234, help="prepare_agnews.py's shuffle seed")
    a = ap.parse_args()
    rows = load(a.test_csv, a.seed)[:TRAIN_VALID]
    size = -(-len(rows) // a.k)
    for i in range(a.k):
        held, kept = rows[i * size:(i + 1) * size], rows[:i * size] + rows[(i + 1) * size:]
        out = os.path.join(a.out_dir, f"fold{i}")
        os.makedirs(out, exist_ok=True)
        files = {"train.jsonl": [r[0] for r in kept], "train_titles.jsonl": [r[1] for r in kept],
                 "train_crops.jsonl": [r[2] for r in kept if r[2]["text"]],
                 "train_sentences.jsonl": [t for r in kept for t in r[3]],
                 "valid.jsonl": [r[0] for r in held], "valid_titles.jsonl": [r[1] for r in held]}
        for name, part in files.items():
            write_jsonl(os.path.join(out, name), part)
        write_split_record(out, {"source": "AG News train + validation rows (tools/prepare_agnews.py, first 6600)",
                                 "fold": f"{i} of {a.k}: rows {i * size}..{min(len(rows), (i + 1) * size) - 1} "
                                         "held out"}, list(files))


if __name__ == "__main__":
    main()
