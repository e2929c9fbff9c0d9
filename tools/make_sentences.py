#!/usr/bin/python3
"""Short review texts cut from whole reviews, each labelled by its review (owner: training helper, issue 13).

The sentiment model learned short texts from pros/cons phrases and generated negation phrases only, and
short positive sentences without a strong positive word lean negative. This gives it short texts of the
kind a review is made of, in both classes alike:
  - IMDB: the review is split into sentences (after ".", "!" or "?" followed by a space); sentences of 4 to
    25 word tokens (tools/tokenize_word.py's tokens that are words) are kept, and at most --per-review of
    them are drawn per review (seeded);
  - Amazon Fine Foods: --per-review crops of 6 to 16 consecutive whitespace-separated words, the first
    from the review's start, the others anywhere (run 8's plan thought its text had no punctuation; it
    has some, so a crop may end inside a sentence).
Each text takes its review's label, so a sentence that says nothing of the film (a plot line) carries its
review's label too: this is label noise, the same in both classes. Each source is balanced by label
(the larger class is cut at random to the smaller). Training texts come from training reviews only,
validation texts from validation reviews only (one per review), so no text of a held-out review is
trained on.

    tools/make_sentences.py data/imdb data/fine-foods data/sentences
writes train.jsonl (from the train splits) and valid.jsonl (IMDB validation sentences), plus SPLITS.txt.
"""
import argparse
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasplit import write_jsonl, write_split_record  # noqa: E402
import tokenize_word  # noqa: E402

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
WORD = re.compile(r"\w")
MIN_WORDS, MAX_WORDS = 4, 25
CROP_MIN, CROP_MAX = 6, 16


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def word_count(text):
    return sum(1 for t in tokenize_word.tokenize(text) if WORD.match(t))


def sentences(text):
    return [s for s in (p.strip() for p in SENTENCE_END.split(text)) if MIN_WORDS <= word_count(s) <= MAX_WORDS]


def crops(text, n, rng):
    words = text.split()
    if len(words) < CROP_MIN:
        return []
    out = []
    for k in range(n):
        size = rng.randint(CROP_MIN, min(CROP_MAX, len(words)))
        start = 0 if k == 0 else rng.randint(0, len(words) - size)
        out.append(" ".join(words[start:start + size]))
    return out


def balanced(rows, rng):
    by = {}
    for r in rows:
        by.setdefault(r["label"], []).append(r)
    n = min(len(v) for v in by.values())
    out = [r for v in by.values() for r in (v if len(v) == n else rng.sample(v, n))]
    rng.shuffle(out)
    return out


def from_imdb(reviews, per_review, rng):
    out = []
    for r in reviews:
        s = sentences(r["text"])
        out.extend({"text": t, "label": r["label"]} for t in (s if len(s) <= per_review else rng.sample(s, per_review)))
    return out


def from_finefoods(reviews, per_review, rng):
    return [{"text": t, "label": r["label"]} for r in reviews for t in crops(r["text"], per_review, rng)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("imdb_dir")
    ap.add_argument("finefoods_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--per-review", type=int, default=1,
                    help="texts drawn from each training review (run 8's plan: one)")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    imdb_train = balanced(from_imdb(read_jsonl(os.path.join(a.imdb_dir, "train.jsonl")), a.per_review, rng), rng)
    ff_train = balanced(from_finefoods(read_jsonl(os.path.join(a.finefoods_dir, "train.jsonl")), a.per_review, rng),
                        rng)
    train = imdb_train + ff_train
    rng.shuffle(train)
    valid = balanced(from_imdb(read_jsonl(os.path.join(a.imdb_dir, "valid.jsonl")), 1, rng), rng)
    os.makedirs(a.out_dir, exist_ok=True)
    write_jsonl(os.path.join(a.out_dir, "train.jsonl"), train)
    write_jsonl(os.path.join(a.out_dir, "valid.jsonl"), valid)
    write_split_record(a.out_dir, {"source": "data/imdb and data/fine-foods (tools/make_sentences.py)",
                                   "seed": a.seed, "per_review": a.per_review,
                                   "train": f"{len(imdb_train)} IMDB sentences + {len(ff_train)} Fine Foods crops",
                                   "valid": f"{len(valid)} IMDB validation sentences (one per review)",
                                   "labels": "0=negative 1=positive (the review's)"},
                       ["train.jsonl", "valid.jsonl"])


if __name__ == "__main__":
    main()
