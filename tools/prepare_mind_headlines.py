#!/usr/bin/python3
"""A cross-domain headline check for agnews-topic, from the MIND test sample
(owner: training helper, issue 13). A report only: never used to train or to
choose a model, and not committed (MIND's licence: research use, no
redistribution).

Input: news.tsv of the MIND test sample (id, category, subcategory, title,
abstract, ...; `make data DATA_SETS=mind-sample` or DATA_SRC/mind-sample/).
MSN's categories that match an AG News class become its label: category
"sports" -> Sports, "finance" -> Business, subcategory "newsworld" -> World,
"newsscienceandtechnology" -> Sci/Tech; every other row is left out. Writes
titles.jsonl (the headline alone) and full.jsonl (headline + abstract), rows
{"text", "label"} with agnews-topic's ids (0=World 1=Sports 2=Business
3=Sci/Tech), in the file's order, plus SPLITS.txt.

    tools/prepare_mind_headlines.py data/mind-sample/news.tsv data/mind-headlines
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasplit import write_jsonl, write_split_record  # noqa: E402

BY_CATEGORY = {"sports": 1, "finance": 2}
BY_SUBCATEGORY = {"newsworld": 0, "newsscienceandtechnology": 3}


def label_of(category, subcategory):
    """agnews-topic's label id for a MIND category, or None when no AG News class matches."""
    if category in BY_CATEGORY:
        return BY_CATEGORY[category]
    return BY_SUBCATEGORY.get(subcategory)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("news_tsv")
    ap.add_argument("out_dir")
    a = ap.parse_args()
    titles, full = [], []
    with open(a.news_tsv, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 5:
                sys.exit(f"{a.news_tsv}:{n}: expected at least 5 tab-separated columns, got {len(cols)}")
            label = label_of(cols[1], cols[2])
            if label is None:
                continue
            titles.append({"text": cols[3], "label": label})
            full.append({"text": (cols[3] + " " + cols[4]).strip(), "label": label})
    os.makedirs(a.out_dir, exist_ok=True)
    write_jsonl(os.path.join(a.out_dir, "titles.jsonl"), titles)
    write_jsonl(os.path.join(a.out_dir, "full.jsonl"), full)
    counts = [sum(r["label"] == c for r in titles) for c in range(4)]
    write_split_record(a.out_dir, {
        "source": a.news_tsv + " (MIND test sample; report only, not for training)",
        "labels": "0=World (newsworld) 1=Sports (sports) 2=Business (finance) 3=Sci/Tech "
                  "(newsscienceandtechnology)",
        "rows per label": " ".join(str(c) for c in counts)}, ["titles.jsonl", "full.jsonl"])


if __name__ == "__main__":
    main()
