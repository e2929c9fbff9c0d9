#!/usr/bin/env python3
"""Writes tests/fixtures/mind-quirks/: synthetic MIND files (news.tsv,
behaviors.tsv) with the quirks of the real MIND data, and expected.json with
what a correct parser must find in them, computed here with Python's str.split
(independently of model/mind.c).

    python3 tools/make_mind_quirks.py [--out tests/fixtures/mind-quirks]

The text is generated (no MIND row is copied: MIND's licence does not allow
redistribution), but the shapes follow MINDsmall_train: 8 tab-separated news
columns with entity lists as JSON (some "[]"), empty abstracts, quotes, `|`
and non-ASCII text (… é ® ―, 4-byte emoji, a zero-width space and a U+FEFF
inside a title), a trailing space in a title, a 70 KB abstract (one line over
64 KiB), one repeated news id; impressions with an empty history, a 600-id
history, 2 to 300 candidates, ids that are not in news.tsv (in histories and
candidates), an impression whose only click is such an id, and times such as
"11/9/2019 7:05:31 AM". LF line ends, as in MIND; the tests derive CRLF and
other variants from these files.

expected.json holds, for each file, the counts, the sha256 of every column
(the values of all parsed rows, each followed by "\\n"; lists of ids joined by
one space) and a few rows in full; plus the sha256 of the two files, so the
tests notice when the data and the expectations come from different runs.
Needs only the Python standard library.
"""
import argparse
import hashlib
import json
import os
import random

SEED = 20191112
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

CATEGORIES = [
    ("news", ["newsus", "newspolitics", "newscrime", "newsworld", "newsscience"]),
    ("sports", ["football_nfl", "basketball_nba", "baseball_mlb", "soccer", "golf"]),
    ("finance", ["finance-companies", "markets", "finance-real-estate"]),
    ("foodanddrink", ["recipes", "foodnews", "restaurants"]),
    ("lifestyle", ["lifestyleroyals", "lifestylebuzz", "shop-holidays"]),
    ("weather", ["weathertopstories", "weathernews"]),
    ("video", ["viral", "news"]),
    ("travel", ["travelnews", "traveltips"]),
    ("health", ["medical", "wellness", "nutrition"]),
    ("autos", ["autosnews", "autosenthusiasts"]),
    ("music", ["musicnews", "music-celebrity"]),
    ("tv", ["tvnews", "tv-celebrity"]),
    ("movies", ["movienews", "movies-celebrity"]),
    ("entertainment", ["celebrity", "entertainment-celebrity"]),
    ("kids", ["kids"]),
]

WORDS = """city council votes new plan after long debate over road budget storm
brings heavy rain snow coast team wins game late goal coach says players
ready season opener market stocks rise fall record high oil prices company
reports quarterly profit sales jobs report shows growth school district
announces changes students parents police arrest suspect downtown shooting
officials warn residents flood risk river recipe easy dinner ideas holiday
cookies family week best places visit winter travel tips airport delays
doctors study finds sleep health heart risk new car model review electric
truck recall star singer album tour tickets show finale premiere date trailer
kids learn science museum opens exhibit mayor governor election results
voters county state lawmakers bill tax""".split()

PLACES = ["Springfield, Illinois", "Lake Tahoe", "Zürich", "São Paulo", "New Orleans",
          "Fort Collins, Colorado", "Hudson River", "Québec City"]
TYPES = ["G", "P", "O", "C", "J", "U", "N"]

# Pieces of real-world text the parser must pass through untouched.
ODDITIES = ["…", "café", "Pokémon®", "1919―2019", "🔎 Explore", "\u200bnew", "\ufeffupdate",
            "Señor", "\"Quoted\"", "'Skins", "$1.2 billion", "50%", "Q&A:", "<b>bold</b>", "東京"]


def sentence(rng, n_min, n_max):
    words = [rng.choice(WORDS) for _ in range(rng.randint(n_min, n_max))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words) + 1), rng.choice(ODDITIES))
    words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)


def entities(rng, text, escaped=False):
    """A MIND-style entity list over `text`: "[]" or JSON objects with the
    real keys, written as json.dumps writes them (", " and ": ")."""
    if rng.random() < 0.25:
        return "[]"
    out = []
    for _ in range(rng.randint(1, 3)):
        label = rng.choice(PLACES)
        word = rng.choice(text.split()) if text.split() else label
        out.append({"Label": label, "Type": rng.choice(TYPES),
                    "WikidataId": f"Q{rng.randint(1, 9999999)}",
                    "Confidence": rng.choice([1.0, 0.999, 0.94, 0.5]),
                    "OccurrenceOffsets": [max(0, text.find(word))],
                    "SurfaceForms": [word]})
    return json.dumps(out, ensure_ascii=escaped)


def mind_time(rng):
    month, day = 11, rng.randint(9, 15)
    hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    h12 = hour % 12 or 12
    return f"{month}/{day}/2019 {h12}:{minute:02d}:{second:02d} {'AM' if hour < 12 else 'PM'}"


def make_news(rng):
    ids = rng.sample(range(1, 130000), 160)
    rows = []
    for i, n in enumerate(ids):
        cat, subs = rng.choice(CATEGORIES)
        title = sentence(rng, 3, 16)
        abstract = "" if rng.random() < 0.06 else " ".join(
            sentence(rng, 6, 24) + "." for _ in range(rng.randint(1, 2)))
        if i == 1:
            title = "New stadium opens downtown | PHOTOS"
        if i == 2:
            title = "Weekend\u200b storm \ufeffwarning for the coast 🔎"
        if i == 3:
            title = "Trailing space in this title "
            abstract = ""
        if i == 4:
            title = "'Skins lose again: \"We have to be better,\" coach says…"
        if i == 100:  # one line over 64 KiB
            abstract = " ".join(sentence(rng, 10, 20) + "." for _ in range(700))
        url = "https://assets.msn.com/labs/mind/AA" + "".join(rng.choice(ALNUM) for _ in range(5)) + ".html"
        rows.append([f"N{n}", cat, rng.choice(subs), title, abstract, url,
                     entities(rng, title, escaped=(i == 7)), entities(rng, abstract)])
    # A repeated id (as when train and dev news files are concatenated): the
    # first row is kept.
    dup = list(rows[10])
    dup[3] = "A later copy of this news with another title"
    rows.insert(120, dup)
    return rows


def make_behaviors(rng, news_ids):
    missing = [f"N{n}" for n in rng.sample(range(130000, 160000), 400)]

    def some_ids(k, p_missing):
        return [rng.choice(missing) if rng.random() < p_missing else rng.choice(news_ids)
                for _ in range(k)]

    rows = []
    imp_ids = rng.sample(range(1, 157000), 250)
    users = [f"U{rng.randint(1, 94000)}" for _ in range(100)]
    for i, imp in enumerate(imp_ids):
        if i % 50 == 7:
            hist = []
        elif i == 20:
            hist = some_ids(600, 0.3)
        else:
            hist = some_ids(min(int(rng.expovariate(1 / 15)) + 1, 150), 0.3)
        if i == 30:
            n_cand = 300
        elif i == 31:
            n_cand = 1
        else:
            n_cand = rng.randint(2, 30)
        cands = some_ids(n_cand, 0.15)
        labels = [0] * n_cand
        for j in rng.sample(range(n_cand), max(1, n_cand // 15)):
            labels[j] = 1
        if i == 40:  # the only click is an id news.tsv lacks
            cands = [rng.choice(missing)] + some_ids(5, 0.0)
            labels = [1, 0, 0, 0, 0, 0]
        items = " ".join(f"{c}-{y}" for c, y in zip(cands, labels))
        rows.append([str(imp), rng.choice(users), mind_time(rng), " ".join(hist), items])
    return rows


def write_tsv(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write("\t".join(r) + "\n")


def sha256_text(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def column_digest(values):
    return sha256_text("".join(v + "\n" for v in values))


def expect_news(path):
    """What a parser must find in news.tsv, from Python's own split."""
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    kept, seen, duplicates = [], set(), 0
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        cols = line.split("\t")
        assert len(cols) == 8, (line_no, len(cols))
        if cols[0] in seen:
            duplicates += 1
            continue
        seen.add(cols[0])
        kept.append((line_no, cols))
    names = ["id", "category", "subcategory", "title", "abstract", "url",
             "title_entities", "abstract_entities"]
    full = {1, 2, 3, 4, 5, 8, 11, len(kept)}  # 1-based indexes of rows given in full

    def row(i):
        line_no, cols = kept[i - 1]
        r = {"index": i - 1, "line": line_no, "title_bytes": len(cols[3].encode("utf-8"))}
        r.update(zip(names, cols))
        return r

    longest = max(range(len(kept)), key=lambda i: len(kept[i][1][4]))
    return {
        "file_sha256": sha256_text(text),
        "rows": len(kept),
        "duplicates": duplicates,
        "empty_abstracts": sum(1 for _, c in kept if c[4] == ""),
        "empty_entity_lists": sum(1 for _, c in kept for e in c[6:8] if e == "[]"),
        "longest_abstract": {"index": longest, "bytes": len(kept[longest][1][4].encode("utf-8")),
                             "line_bytes": len("\t".join(kept[longest][1]).encode("utf-8"))},
        "columns_sha256": {n: column_digest(c[k] for _, c in kept) for k, n in enumerate(names)},
        "rows_in_full": [row(i) for i in sorted(full)],
    }, [c[0] for _, c in kept]


def expect_behaviors(path, news_ids):
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    imps = []
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        cols = line.split("\t")
        assert len(cols) == 5, (line_no, len(cols))
        hist = [h for h in cols[3].split(" ") if h]
        items = [it.rsplit("-", 1) for it in cols[4].split(" ") if it]
        imps.append({"line": line_no, "impression_id": cols[0], "user_id": cols[1],
                     "time": cols[2], "history": hist,
                     "candidates": [c for c, _ in items], "labels": [int(y) for _, y in items]})
    known = set(news_ids)
    full = [0, 7, 20, 30, 31, 40, len(imps) - 1]
    return {
        "file_sha256": sha256_text(text),
        "impressions": len(imps),
        "history_ids": sum(len(i["history"]) for i in imps),
        "candidates": sum(len(i["candidates"]) for i in imps),
        "clicks": sum(sum(i["labels"]) for i in imps),
        "empty_histories": sum(1 for i in imps if not i["history"]),
        "history_ids_in_news": sum(1 for i in imps for h in i["history"] if h in known),
        "candidates_in_news": sum(1 for i in imps for c in i["candidates"] if c in known),
        "columns_sha256": {
            "impression_id": column_digest(i["impression_id"] for i in imps),
            "user_id": column_digest(i["user_id"] for i in imps),
            "time": column_digest(i["time"] for i in imps),
            "history": column_digest(" ".join(i["history"]) for i in imps),
            "candidates": column_digest(" ".join(i["candidates"]) for i in imps),
            "labels": column_digest("".join(map(str, i["labels"])) for i in imps),
        },
        "impressions_in_full": [dict(imps[k], index=k) for k in full if k != 20 and k != 30],
        "long_impressions": [{"index": k, "n_history": len(imps[k]["history"]),
                              "n_candidates": len(imps[k]["candidates"])} for k in (20, 30)],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/mind-quirks")
    args = ap.parse_args()
    rng = random.Random(SEED)
    news = make_news(rng)
    news_ids = sorted({r[0] for r in news})
    behaviors = make_behaviors(rng, news_ids)
    os.makedirs(args.out, exist_ok=True)
    write_tsv(os.path.join(args.out, "news.tsv"), news)
    write_tsv(os.path.join(args.out, "behaviors.tsv"), behaviors)
    news_doc, kept_ids = expect_news(os.path.join(args.out, "news.tsv"))
    doc = {
        "source": f"tools/make_mind_quirks.py (seed {SEED}); Python str.split, not model/mind.c",
        "news": news_doc,
        "behaviors": expect_behaviors(os.path.join(args.out, "behaviors.tsv"), kept_ids),
    }
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{args.out}: {news_doc['rows']} news ({news_doc['duplicates']} repeated id), "
          f"{doc['behaviors']['impressions']} impressions")


if __name__ == "__main__":
    main()
