#!/usr/bin/python3
"""MovieLens -> MIND format (owner: models helper, issue 4).

Input: ml-latest-small (ratings.csv, movies.csv): the 2016 release committed
in datasets/movielens-small. Output in out_dir:
  news.tsv        every movie as a MIND news row: id M<movieId>, category =
                  first genre, subcategory "movie", title = "<title> | <genres>"
                  (the genres as text, so the news encoder sees them), the other
                  columns empty. These are movie titles, not news.
  train_behaviors.tsv, valid_behaviors.tsv, test_behaviors.tsv   MIND behaviors
                  (impression id, user U<userId>, time, history, candidates).
  SPLITS.txt      settings, counts and sha256 of each file.

Protocol: each user's ratings in time order (ties by movieId). A click is a
rating >= 4. The last 10% of each user's ratings (ceil) is the test period,
the rest the training period. Every click with at least one earlier click
gives an impression: history = the user's earlier clicks (most recent 50, oldest
first), candidates = the click (label 1) plus 4 non-clicked movies (label 0)
sampled without replacement from movies the user never rated, with
probability proportional to their number of ratings in the training period
(all users), shuffled with the click. Each user's last training-period
impression is the validation set; clicks in the test period are the test set.

    tools/prepare_movielens.py datasets/movielens-small data/movielens
"""
import argparse
import bisect
import csv
import datetime
import itertools
import math
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasplit import write_split_record  # noqa: E402


def news_id(movie):
    return f"M{movie}"


def mind_time(ts):
    d = datetime.datetime.utcfromtimestamp(ts)
    hour = d.hour % 12 or 12
    return f"{d.month}/{d.day}/{d.year} {hour}:{d.minute:02d}:{d.second:02d} {'AM' if d.hour < 12 else 'PM'}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("movielens_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--negatives", type=int, default=4)
    ap.add_argument("--max-history", type=int, default=50)
    ap.add_argument("--test-fraction", type=float, default=0.1)
    a = ap.parse_args()
    rng = random.Random(a.seed)

    movies = {}
    with open(os.path.join(a.movielens_dir, "movies.csv"), encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            genres = [] if row["genres"] == "(no genres listed)" else row["genres"].split("|")
            movies[int(row["movieId"])] = (row["title"].strip(), genres)
    by_user = {}
    with open(os.path.join(a.movielens_dir, "ratings.csv"), encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            by_user.setdefault(int(row["userId"]), []).append(
                (int(row["timestamp"]), int(row["movieId"]), float(row["rating"])))

    # Split each timeline; popularity = ratings in the training period.
    popularity = {}
    timelines = {}
    for user in sorted(by_user):
        rs = sorted(by_user[user])
        cut = len(rs) - math.ceil(a.test_fraction * len(rs))
        timelines[user] = (rs, cut)
        for _, m, _ in rs[:cut]:
            popularity[m] = popularity.get(m, 0) + 1
    pool = sorted(popularity)
    cum = list(itertools.accumulate(popularity[m] for m in pool))

    def sample_negatives(rated):
        out = []
        while len(out) < a.negatives:
            m = pool[bisect.bisect_right(cum, rng.random() * cum[-1])]
            if m not in rated and m not in out:
                out.append(m)
        return out

    splits = {"train": [], "valid": [], "test": []}
    for user in sorted(timelines):
        rs, cut = timelines[user]
        rated = {m for _, m, _ in rs}
        clicks = []
        user_imps = {"train": [], "test": []}
        for i, (ts, m, r) in enumerate(rs):
            if r < 4:
                continue
            if clicks:
                cands = [(m, 1)] + [(n, 0) for n in sample_negatives(rated)]
                rng.shuffle(cands)
                hist = clicks[-a.max_history:]
                user_imps["train" if i < cut else "test"].append((user, ts, hist, cands))
            clicks.append(m)
        if user_imps["train"]:
            splits["valid"].append(user_imps["train"].pop())
        splits["train"].extend(user_imps["train"])
        splits["test"].extend(user_imps["test"])

    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "news.tsv"), "w", encoding="utf-8") as f:
        for m in sorted(movies):
            title, genres = movies[m]
            text = title + (" | " + " ".join(genres) if genres else "")
            cat = genres[0].lower() if genres else "none"
            f.write(f"{news_id(m)}\t{cat}\tmovie\t{text}\t\t\t[]\t[]\n")
    imp_id = 0
    for name in ("train", "valid", "test"):
        with open(os.path.join(a.out_dir, f"{name}_behaviors.tsv"), "w", encoding="utf-8") as f:
            for user, ts, hist, cands in splits[name]:
                imp_id += 1
                h = " ".join(news_id(m) for m in hist)
                c = " ".join(f"{news_id(m)}-{y}" for m, y in cands)
                f.write(f"{imp_id}\tU{user}\t{mind_time(ts)}\t{h}\t{c}\n")
    write_split_record(a.out_dir, {
        "source": "MovieLens ml-latest-small (GroupLens; research/non-commercial, see its README.txt)",
        "seed": a.seed, "users": len(timelines), "movies": len(movies),
        "ratings": sum(len(v) for v in by_user.values()),
        "protocol": f"clicks = rating >= 4; last {a.test_fraction:.0%} of each user's ratings = test period; "
                    f"history <= {a.max_history} earlier clicks; {a.negatives} negatives per click sampled "
                    f"by training-period popularity from movies the user never rated; valid = each user's last "
                    f"training-period impression"},
        ["news.tsv", "train_behaviors.tsv", "valid_behaviors.tsv", "test_behaviors.tsv"])


if __name__ == "__main__":
    main()
