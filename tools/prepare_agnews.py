#!/usr/bin/python3
"""AG News topic data (owner: models helper, issue 4).

Input: test.csv of AG News (the 7,600-row test split; columns class 1-4,
title, description), as `make data` puts it in data/agnews-test/. Text = title + " " + description, with the corpus's
backslash line escapes turned into spaces. Labels 0=World 1=Sports
2=Business 3=Sci/Tech. Fixed-seed shuffle, split 6,000/600/1,000
(train/valid/test), JSONL rows {"text": ..., "label": id}, plus SPLITS.txt.
The same rows with the title alone go to train_titles.jsonl, valid_titles.jsonl
and test_titles.jsonl (a headline by itself; issue 13), and train_crops.jsonl
holds more headline-length training texts: each training row's description
cut to its first sentence and at most 16 words, without a leading dateline
or agency ("SINGAPORE :", "Reuters -", "(AP)"); train_sentences.jsonl adds the
descriptions' later sentences (each of at least 4 words, cut to 16), more
headline-length texts.

    tools/prepare_agnews.py data/agnews-test/test.csv data/agnews
"""
import argparse
import csv
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasplit import shuffled, write_jsonl, write_split_record  # noqa: E402

LABELS = ["World", "Sports", "Business", "Sci/Tech"]
# A dateline or agency before the story: "SINGAPORE :", "Reuters -", "LONDON (AFP) --", "(AP)".
DATELINE = re.compile(r"^(?:[^.!?]{0,40}?\s)?(?:[:-]+|\([^)]{1,20}\)\s*[:-]*)\s+")
SENTENCE_END = re.compile(r"(?<=[a-z0-9)][.!?])\s")


def crop(description, max_words=16):
    """The description's first sentence, without a dateline, at most max_words words."""
    text = DATELINE.sub("", description, count=1)
    text = SENTENCE_END.split(text, maxsplit=1)[0]
    return " ".join(text.split()[:max_words])


def later_sentences(description, max_words=16, min_words=4):
    """The description's sentences after the first (dateline removed as in crop), each cut to max_words
    words; sentences of fewer than min_words words are left out."""
    text = DATELINE.sub("", description, count=1)
    return [" ".join(s.split()[:max_words]) for s in SENTENCE_END.split(text)[1:] if len(s.split()) >= min_words]


def load(test_csv, seed):
    """The 7,600 rows, shuffled with seed: (full text, title, crop, later sentences) rows, the first three
    each {"text", "label"}, the last a list of them."""
    rows = []
    with open(test_csv, encoding="utf-8", newline="") as f:
        for cls, title, desc in csv.reader(f):
            text = " ".join((title + " " + desc).replace("\\", " ").split())
            title = " ".join(title.replace("\\", " ").split())
            desc = " ".join(desc.replace("\\", " ").split())
            label = int(cls) - 1
            rows.append(({"text": text, "label": label}, {"text": title, "label": label},
                         {"text": crop(desc), "label": label},
                         [{"text": t, "label": label} for t in later_sentences(desc)]))
    if len(rows) != 7600:
        sys.exit(f"{test_csv}: expected 7600 rows, got {len(rows)}")
    return shuffled(rows, seed)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("test_csv")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    rows = load(a.test_csv, a.seed)
    train, valid, test = rows[:6000], rows[6000:6600], rows[6600:]
    os.makedirs(a.out_dir, exist_ok=True)
    files = []
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        for suffix, column in (("", 0), ("_titles", 1)):
            files.append(f"{name}{suffix}.jsonl")
            write_jsonl(os.path.join(a.out_dir, files[-1]), [r[column] for r in part])
    files.append("train_crops.jsonl")
    write_jsonl(os.path.join(a.out_dir, files[-1]), [r[2] for r in train if r[2]["text"]])
    files.append("train_sentences.jsonl")
    write_jsonl(os.path.join(a.out_dir, files[-1]), [t for r in train for t in r[3]])
    write_split_record(a.out_dir, {"source": "AG News test split (7,600 rows), ag_news_csv/test.csv",
                                   "seed": a.seed, "labels": "0=World 1=Sports 2=Business 3=Sci/Tech",
                                   "order": "train = first 6000 after shuffle, valid = next 600, test = last 1000",
                                   "titles": "*_titles.jsonl: the same rows, title only",
                                   "crops": "train_crops.jsonl: the training rows' descriptions, first sentence, "
                                            "<= 16 words, no dateline",
                                   "sentences": "train_sentences.jsonl: the training rows' descriptions, each later "
                                                "sentence of >= 4 words, cut to 16"},
                       files)


if __name__ == "__main__":
    main()
