#!/usr/bin/python3
"""Writes tests/fixtures/mind-tiny/: a tiny MIND-format dataset (news.tsv,
behaviors.tsv, train_behaviors.tsv) built from a recommender fixture's vocab,
and golden.json with the PyTorch scores of every impression's candidates (and
of every news of the catalog, for the catalog-wide recommend), for
tests/integration/test_cli.py (`fastformer-cli eval-mind`).

    /usr/bin/python3 tools/make_mind_tiny.py --model tests/fixtures/tiny-newsrec \\
        [--out tests/fixtures/mind-tiny]

Needs Debian's python3-torch. The scores come from tools/fastformer.py (the
PyTorch reference) with the weights read from the model directory: news
vectors from the news encoder over each title's word ids, a user vector from
the user encoder over the vectors of the history news found in news.tsv (the
last max_history of them, mask all ones; an empty history gives the zero
vector), score = dot(user, candidate). History and candidate ids missing from
news.tsv are skipped (and counted), as the CLI documents.

Titles use only whole, lowercase, alphabetic vocab words (plus unknown words
when the model's tokenizer is `word`), so the ids follow from str.split() and
the vocab alone, independently of the C tokenizers.
"""
import argparse
import hashlib
import json
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fastformer import FastformerConfig, FastformerNewsRec  # noqa: E402
from model_dir import load_safetensors  # noqa: E402

MISSING = ["N9001", "N9002", "N9003"]  # ids that are never in news.tsv


def load_model(path):
    with open(os.path.join(path, "config.json")) as f:
        cfg_json = json.load(f)
    assert cfg_json["architectures"] == ["FastformerForNewsRecommendation"], path
    with open(os.path.join(path, "vocab.txt"), encoding="utf-8") as f:
        vocab = [line.rstrip("\n").rstrip("\r") for line in f]
    cfg = FastformerConfig(
        hidden_size=cfg_json["hidden_size"],
        num_attention_heads=cfg_json["num_attention_heads"],
        intermediate_size=cfg_json["intermediate_size"],
        num_hidden_layers=cfg_json["num_hidden_layers"],
        max_position_embeddings=cfg_json["max_position_embeddings"],
        layer_norm_eps=cfg_json.get("layer_norm_eps", 1e-12),
        hidden_dropout_prob=0.0)
    model = FastformerNewsRec(cfg, cfg_json["vocab_size"],
                              user_num_hidden_layers=cfg_json["user_num_hidden_layers"],
                              max_history=cfg_json["max_history"])
    state = load_safetensors(os.path.join(path, "model.safetensors"))
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, cfg_json, vocab


def title_ids(title, token_id, unk, max_len):
    ids = [token_id.get(w, unk) for w in title.lower().split()]
    return ids[:max_len]


def make_dataset(rng, words, unknown_ok, max_len, max_history):
    news = []
    for i in range(24):
        n = rng.randint(1, max_len + 3)  # some titles exceed max_len: truncated
        title = [rng.choice(words) for _ in range(n)]
        if unknown_ok and i % 5 == 0:
            title[rng.randrange(n)] = "zzqxunknown"
        if i % 3 == 0:
            title[0] = title[0].capitalize()
        row = (f"N{101 + i}", "news", "sub", " ".join(title), f"Abstract of news {i}.",
               f"https://example.org/n{101 + i}.html", "[]", "[]")
        news.append(row if i % 4 else row[:4])  # some rows without the trailing columns
    ids = [n[0] for n in news]

    def history(k):
        return [rng.choice(ids) for _ in range(k)]

    rows = []
    for i in range(16):
        if i == 0:
            hist = []  # empty history: zero user vector, all scores tie at 0
        elif i == 1:
            hist = history(max_history + 4)  # longer than max_history
        elif i == 2:
            hist = history(3) + [MISSING[0]] + history(2)  # a missing history id
        elif i == 3:
            hist = [MISSING[1], MISSING[2]]  # nothing found: zero user vector
        else:
            hist = history(rng.randint(1, max_history + 2))
        n_cand = 2 + (i * 5) % 19  # 2 .. 20 candidates
        cands = rng.sample(ids, min(n_cand, len(ids)))
        labels = [0] * len(cands)
        for j in rng.sample(range(len(cands)), max(1, len(cands) // 6)):
            labels[j] = 1
        items = [f"{c}-{y}" for c, y in zip(cands, labels)]
        if i == 4:
            items.append(f"{MISSING[0]}-0")  # a missing candidate is dropped
        if i == 5:
            items = [f"{MISSING[1]}-1"] + [f"{c}-0" for c in cands]  # only positive missing
        rows.append((str(1000 + i), f"U{i % 5}", f"11/{10 + i % 5}/2019 9:{i:02d}:00 AM",
                     " ".join(hist), " ".join(items)))
    train = []
    for i in range(10):
        hist = history(rng.randint(0, 6)) + ([MISSING[2]] if i == 3 else [])
        cands = rng.sample(ids, 4)
        items = " ".join(f"{c}-{1 if j == 0 else 0}" for j, c in enumerate(cands))
        train.append((str(2000 + i), f"U{i}", "11/9/2019 8:00:00 AM", " ".join(hist), items))
    return news, rows, train


def write_tsv(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write("\t".join(row) + "\n")


@torch.no_grad()
def golden(model, cfg_json, vocab, news, rows):
    token_id = {}
    for i, tok in enumerate(vocab):
        token_id.setdefault(tok, i)
    unk = token_id["[UNK]"]
    max_len = cfg_json["max_position_embeddings"]
    max_history = cfg_json["max_history"]
    vec = {}
    for nid, _, _, title, *_ in news:
        ids = title_ids(title, token_id, unk, max_len)
        vec[nid] = model.news_encoder(torch.tensor([ids], dtype=torch.long))[0]
    d = cfg_json["hidden_size"]
    out, counts = [], {"history_ids": 0, "history_skipped": 0, "candidates": 0,
                       "candidates_skipped": 0}
    for imp_id, _, _, hist, items in rows:
        hist = hist.split()
        found = [vec[h] for h in hist if h in vec]
        counts["history_ids"] += len(hist)
        counts["history_skipped"] += len(hist) - len(found)
        found = found[-max_history:]
        if found:
            hv = torch.stack(found).unsqueeze(0)
            user = model.user_encoder(hv, torch.ones(1, len(found)))[0]
        else:
            user = torch.zeros(d)
        scores, labels = [], []
        for item in items.split():
            nid, y = item.rsplit("-", 1)
            counts["candidates"] += 1
            if nid not in vec:
                counts["candidates_skipped"] += 1
                continue
            scores.append(float(torch.dot(user, vec[nid])))
            labels.append(int(y))
        # Every news of the catalog, for the catalog-wide recommend (brute force).
        catalog = {nid: float(torch.dot(user, v)) for nid, v in vec.items()}
        out.append({"impression_id": imp_id, "scores": scores, "labels": labels,
                    "zero_user": not found, "catalog_scores": catalog})
    return out, counts


def well_separated(impressions):
    """C and PyTorch scores differ by float rounding: distinct scores must be
    far enough apart that the ranking cannot flip."""
    for imp in impressions:
        if imp["zero_user"]:
            continue
        s = sorted(imp["scores"])
        for a, b in zip(s, s[1:]):
            if b - a < 1e-4 * max(1.0, abs(a), abs(b)):
                return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="recommender fixture directory")
    ap.add_argument("--out", default="tests/fixtures/mind-tiny")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, cfg_json, vocab = load_model(args.model)
    words = sorted({t for t in vocab if t.isascii() and t.isalpha() and t.islower()})
    assert len(words) >= 10, f"{args.model}: too few plain words in vocab.txt"
    unknown_ok = cfg_json.get("tokenizer", {}).get("type", "word") == "word"
    for seed in range(100):
        rng = random.Random(seed)
        news, rows, train = make_dataset(rng, words, unknown_ok,
                                         cfg_json["max_position_embeddings"],
                                         cfg_json["max_history"])
        impressions, counts = golden(model, cfg_json, vocab, news, rows)
        if well_separated(impressions):
            break
    else:
        sys.exit("no seed gave well-separated scores")
    os.makedirs(args.out, exist_ok=True)
    write_tsv(os.path.join(args.out, "news.tsv"), news)
    write_tsv(os.path.join(args.out, "behaviors.tsv"), rows)
    write_tsv(os.path.join(args.out, "train_behaviors.tsv"), train)
    doc = {
        "source": "tools/make_mind_tiny.py (PyTorch %s, tools/fastformer.py)" % torch.__version__,
        "model": os.path.relpath(args.model, os.path.dirname(os.path.abspath(args.out))),
        "model_sha256": hashlib.sha256(
            open(os.path.join(args.model, "model.safetensors"), "rb").read()).hexdigest(),
        "seed": seed,
        "counts": {"impressions": len(rows), **counts},
        "impressions": impressions,
    }
    with open(os.path.join(args.out, "golden.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{args.out}: {len(news)} news, {len(rows)} impressions, seed {seed}")


if __name__ == "__main__":
    main()
