#!/usr/bin/python3
"""Amazon Fine Foods reviews, the 5,000-review subset of Debian's
r-cran-modeldata (owner: training helper, issue 13).

Input: the folder holding r-cran-modeldata_1.1.0-1_all.deb (`make data`
fetches it with apt-get download). Unpacks it (dpkg-deb), has R write its
training_data and testing_data (needs Rscript: apt-get install
r-base-core) to fine_foods.tsv, and checks that file's sha256. The package's
split is kept: its 1,000 test reviews are the test set; its 4,000 training
reviews are shuffled (fixed seed) into valid = first 500 and train = the
other 3,500. Labels: score "great" = 1 (positive), "other" = 0 (negative).
`<br />` tags become spaces. JSONL rows {"text": ..., "label": id}, plus
SPLITS.txt.

    tools/prepare_finefoods.py data/fine-foods-deb data/fine-foods
"""
import argparse
import csv
import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasplit import sha256_file, shuffled, write_jsonl, write_split_record  # noqa: E402

TSV_SHA256 = "aadcf7b3c93ef3fc4762562825491637fe5c9fc45fb9ef1b9944f206a263c16b"
R_EXPORT = ('e<-new.env();lazyLoad("ex/usr/lib/R/site-library/modeldata/data/Rdata",envir=e);'
            'write.table(rbind(cbind(split="train",e$training_data),cbind(split="test",e$testing_data)),'
            '"fine_foods.tsv",sep="\\t",quote=FALSE,row.names=FALSE)')
BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def export_tsv(raw):
    tsv = os.path.join(raw, "fine_foods.tsv")
    if os.path.exists(tsv) and sha256_file(tsv) == TSV_SHA256:
        return tsv
    debs = glob.glob(os.path.join(raw, "r-cran-modeldata_*.deb"))
    if not debs:
        sys.exit(f"{raw}: no r-cran-modeldata_*.deb (apt-get download r-cran-modeldata)")
    if not shutil.which("Rscript"):
        sys.exit("prepare_finefoods.py: Rscript is missing: apt-get install --no-install-recommends r-base-core")
    subprocess.run(["dpkg-deb", "-x", os.path.basename(debs[0]), "ex"], cwd=raw, check=True)
    subprocess.run(["Rscript", "-e", R_EXPORT], cwd=raw, check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(os.path.join(raw, "ex"))
    if sha256_file(tsv) != TSV_SHA256:
        sys.exit(f"{tsv}: sha256 {sha256_file(tsv)}, expected {TSV_SHA256}")
    return tsv


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("raw_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    parts = {"train": [], "test": []}
    with open(export_tsv(a.raw_dir), encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            text = " ".join(BR.sub(" ", r["review"]).split())
            parts[r["split"]].append({"text": text, "label": 1 if r["score"] == "great" else 0})
    if (len(parts["train"]), len(parts["test"])) != (4000, 1000):
        sys.exit(f"fine_foods.tsv: expected 4000 train and 1000 test rows, got "
                 f"{len(parts['train'])} and {len(parts['test'])}")
    rows = shuffled(parts["train"], a.seed)
    valid, train = rows[:500], rows[500:]
    os.makedirs(a.out_dir, exist_ok=True)
    for name, part in (("train.jsonl", train), ("valid.jsonl", valid), ("test.jsonl", parts["test"])):
        write_jsonl(os.path.join(a.out_dir, name), part)
    write_split_record(a.out_dir, {"source": "Debian r-cran-modeldata 1.1.0-1, training_data/testing_data "
                                   "(Amazon Fine Foods subset)", "seed": a.seed,
                                   "labels": "0=negative (score other) 1=positive (score great)",
                                   "order": "test = the package's 1000 test rows; its 4000 training rows "
                                            "shuffled: valid = first 500, train = other 3500"},
                       ["train.jsonl", "valid.jsonl", "test.jsonl"])


if __name__ == "__main__":
    main()
