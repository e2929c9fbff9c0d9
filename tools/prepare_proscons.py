#!/usr/bin/python3
"""Pros and cons phrases (owner: training helper, issue 13).

Input: datasets/pros-cons/pros_cons.tsv (committed; Bing Liu's pros/cons
phrases from Epinions reviews, CC BY 4.0, README.txt beside it): columns
`text`, `label` (1 = pro, 0 = con). Labels map to sentiment as 0 = negative,
1 = positive. Fixed-seed shuffle, then test = first 2,000, valid = next
2,000, train = the rest (41,867); JSONL rows {"text": ..., "label": id},
plus SPLITS.txt.

    tools/prepare_proscons.py datasets/pros-cons data/pros-cons
"""
import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasplit import shuffled, write_jsonl, write_split_record  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    rows = []
    with open(os.path.join(a.raw_dir, "pros_cons.tsv"), encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            text = " ".join(r["text"].split())
            if text:
                rows.append({"text": text, "label": int(r["label"])})
    rows = shuffled(rows, a.seed)
    test, valid, train = rows[:2000], rows[2000:4000], rows[4000:]
    os.makedirs(a.out_dir, exist_ok=True)
    for name, part in (("train.jsonl", train), ("valid.jsonl", valid), ("test.jsonl", test)):
        write_jsonl(os.path.join(a.out_dir, name), part)
    write_split_record(a.out_dir, {"source": "datasets/pros-cons/pros_cons.tsv (Bing Liu, CC BY 4.0)",
                                   "seed": a.seed, "labels": "0=negative (con) 1=positive (pro)",
                                   "order": "test = first 2000 after shuffle, valid = next 2000, train = rest"},
                       ["train.jsonl", "valid.jsonl", "test.jsonl"])


if __name__ == "__main__":
    main()
