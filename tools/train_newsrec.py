#!/usr/bin/python3
"""Trains a Fastformer news recommender from MIND-format files and exports a
model directory (owner: models helper, issue 4).

Inputs: news.tsv (id, category, subcategory, title, ...) and behaviors.tsv
(impression id, user, time, history, candidates `ID-1`/`ID-0`), as in MIND
(MINDsmall/MINDlarge work unchanged: pass their news.tsv and behaviors.tsv;
use --news twice-listed files by passing several --news paths). The news
encoder reads the title column with the `word` tokenizer (max --title-len
tokens); the user encoder reads the vectors of the last --max-history
clicked news; score = dot(user, candidate).

Training follows the paper (Table 9): every clicked candidate of a training
impression is a sample with --npratio non-clicked candidates of the same
impression (sampled, with replacement when there are too few), softmax
cross-entropy over the 1 + npratio scores. Each step encodes every distinct
title of the batch once. The epoch with the best validation AUC is exported.

    /usr/bin/python3 tools/train_newsrec.py --news data/movielens/news.tsv \\
        --train data/movielens/train_behaviors.tsv --valid data/movielens/valid_behaviors.tsv \\
        --out models/movielens-rec
"""
import argparse
import os
import random
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenize_word  # noqa: E402
from fastformer import FastformerConfig, FastformerNewsRec  # noqa: E402
from model_dir import model_config, write_model_dir  # noqa: E402
import glove  # noqa: E402


def read_news(paths):
    titles = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                cols = line.rstrip("\n").split("\t")
                if len(cols) >= 4 and cols[0] not in titles:
                    titles[cols[0]] = cols[3]
    return titles


def read_behaviors(path):
    """-> [(user, [history ids], [(news id, label)])]"""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 5:
                continue
            hist = cols[3].split()
            cands = []
            for c in cols[4].split():
                nid, _, y = c.rpartition("-")
                cands.append((nid, int(y) if y else 0))
            out.append((cols[1], hist, cands))
    return out


# --- MIND metrics (per impression, then averaged) ---------------------------------------------
def auc_score(y, s):
    y, s = np.asarray(y), np.asarray(s, dtype=np.float64)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return greater / (len(pos) * len(neg))


def mrr_score(y, s):
    order = np.argsort(-np.asarray(s), kind="stable")
    yt = np.take(y, order)
    return np.sum(yt / (np.arange(len(yt)) + 1)) / np.sum(yt)


def dcg_score(y, s, k):
    order = np.argsort(-np.asarray(s), kind="stable")
    yt = np.take(y, order[:k])
    return np.sum((2 ** yt - 1) / np.log2(np.arange(len(yt)) + 2))


def ndcg_score(y, s, k):
    best = dcg_score(y, y, k)
    return dcg_score(y, s, k) / best


def mind_metrics(impressions_scores):
    """[(labels, scores)] -> dict of mean AUC, MRR, nDCG@5, nDCG@10 over impressions
    with at least one click and one non-click."""
    res = {"auc": [], "mrr": [], "ndcg5": [], "ndcg10": []}
    for y, s in impressions_scores:
        y = np.asarray(y)
        a = auc_score(y, s)
        if a is None:
            continue
        res["auc"].append(a)
        res["mrr"].append(mrr_score(y, s))
        res["ndcg5"].append(ndcg_score(y, s, 5))
        res["ndcg10"].append(ndcg_score(y, s, 10))
    return {k: float(np.mean(v)) if v else float("nan") for k, v in res.items()}


def fmt(m):
    return f"AUC {m['auc']:.4f} MRR {m['mrr']:.4f} nDCG@5 {m['ndcg5']:.4f} nDCG@10 {m['ndcg10']:.4f}"


# --- encoding -----------------------------------------------------------------------------------
class Titles:
    def __init__(self, titles, index, max_len):
        self.row = {nid: i + 1 for i, nid in enumerate(sorted(titles))}  # 0 = unknown news (zero vector)
        self.ids = [[]] + [tokenize_word.encode(titles[n], index, max_len) for n in sorted(titles)]

    def tensor(self, rows):
        n = max(1, max(len(self.ids[r]) for r in rows))
        t = torch.zeros(len(rows), n, dtype=torch.long)
        for i, r in enumerate(rows):
            if self.ids[r]:
                t[i, :len(self.ids[r])] = torch.tensor(self.ids[r])
        return t


def user_and_scores(model, vecs, hist_idx, hist_mask, cand_idx):
    """vecs (U,D); hist_idx (B,Hn) long; hist_mask (B,Hn) float; cand_idx (B,K) -> scores (B,K)."""
    user = model.user_encoder(vecs[hist_idx], hist_mask)
    return torch.bmm(vecs[cand_idx], user.unsqueeze(-1)).squeeze(-1)


def batch_tensors(samples, titles, max_history):
    """samples: [(hist rows, cand rows)] -> unique rows, local index tensors."""
    uniq = {}
    for hist, cands in samples:
        for r in list(hist[-max_history:]) + list(cands):
            if r not in uniq:
                uniq[r] = len(uniq)
    hn = max(1, max(len(h[-max_history:]) for h, _ in samples))
    hist_idx = torch.zeros(len(samples), hn, dtype=torch.long)
    hist_mask = torch.zeros(len(samples), hn)
    cand_idx = torch.tensor([[uniq[r] for r in c] for _, c in samples], dtype=torch.long)
    for i, (h, _) in enumerate(samples):
        h = h[-max_history:]
        if h:
            hist_idx[i, :len(h)] = torch.tensor([uniq[r] for r in h])
            hist_mask[i, :len(h)] = 1.0
    rows = sorted(uniq, key=uniq.get)
    return rows, hist_idx, hist_mask, cand_idx


def encode_rows(model, titles, rows, chunk=512):
    out = []
    order = sorted(range(len(rows)), key=lambda i: len(titles.ids[rows[i]]))
    for s in range(0, len(order), chunk):
        part = order[s:s + chunk]
        out.append((part, model.news_encoder(titles.tensor([rows[i] for i in part]))))
    d = out[0][1].shape[1]
    vecs = torch.zeros(len(rows), d)
    for part, v in out:
        vecs[torch.tensor(part)] = v
    return vecs


@torch.no_grad()
def evaluate(model, titles, behaviors, max_history, batch=256):
    model.eval()
    need = sorted({titles.row.get(n, 0) for _, h, c in behaviors for n in h + [x for x, _ in c]})
    vecs = encode_rows(model, titles, need)
    pos = {r: i for i, r in enumerate(need)}
    results = []
    for s in range(0, len(behaviors), batch):
        part = behaviors[s:s + batch]
        hn = max(1, max(min(len(h), max_history) for _, h, _ in part))
        hist_idx = torch.zeros(len(part), hn, dtype=torch.long)
        hist_mask = torch.zeros(len(part), hn)
        for i, (_, h, _) in enumerate(part):
            h = h[-max_history:]
            if h:
                hist_idx[i, :len(h)] = torch.tensor([pos[titles.row.get(n, 0)] for n in h])
                hist_mask[i, :len(h)] = 1.0
        user = model.user_encoder(vecs[hist_idx], hist_mask)
        for i, (_, _, c) in enumerate(part):
            cv = vecs[torch.tensor([pos[titles.row.get(n, 0)] for n, _ in c])]
            results.append(([y for _, y in c], (cv @ user[i]).tolist()))
    model.train()
    return mind_metrics(results)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--news", required=True, action="append", help="news.tsv (repeatable)")
    ap.add_argument("--train", required=True, help="training behaviors.tsv")
    ap.add_argument("--valid", required=True, help="validation behaviors.tsv")
    ap.add_argument("--out", required=True)
    ap.add_argument("--title-len", type=int, default=32)
    ap.add_argument("--max-history", type=int, default=50)
    ap.add_argument("--npratio", type=int, default=4)
    ap.add_argument("--min-count", type=int, default=3)
    ap.add_argument("--max-vocab", type=int, default=20000)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--intermediate", type=int, default=256)
    ap.add_argument("--layers", type=int, default=1, help="news encoder layers (Table 9: 1)")
    ap.add_argument("--user-layers", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--evals-per-epoch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="F16", choices=["F32", "F16", "BF16"])
    ap.add_argument("--max-train", type=int, default=0, help="use only the first N impressions (tests)")
    ap.add_argument("--save-pt")
    ap.add_argument("--glove", help="GloVe 100d (data/glove): vocabulary from the titles' words and GloVe's "
                    "most frequent words, word embedding started from GloVe (tools/glove.py)")
    ap.add_argument("--glove-center", action="store_true",
                    help="subtract the mean GloVe vector before projecting (tools/glove.py)")
    ap.add_argument("--sparse-embedding", action="store_true", help="SparseAdam for the word embedding")
    ap.add_argument("--embedding-lr", type=float, help="learning rate of the word embedding (default: --lr)")
    ap.add_argument("--eval-every", type=int, default=0, help="validate every N steps")
    ap.add_argument("--embedding-dtype", choices=["I8"], help="store the word embedding as int8")
    ap.add_argument("--checkpoint", help="save the training state here at every validation; resume from it")
    ap.add_argument("--curve", help="append the learning curve here (TSV: step epoch seconds auc mrr ndcg5 ndcg10)")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    t0 = time.time()
    news = read_news(a.news)
    train_b = read_behaviors(a.train)
    if a.max_train:
        train_b = train_b[:a.max_train]
    valid_b = read_behaviors(a.valid)
    used = {n for _, h, c in train_b for n in h + [x for x, _ in c]}
    used_titles = [news[n] for n in sorted(used) if n in news]
    if a.glove:
        glove_words, glove_mat = glove.load(a.glove)
        vocab = glove.build_vocab(used_titles, glove_words, a.min_count, a.max_vocab)
    else:
        vocab = tokenize_word.build_vocab(used_titles, a.min_count, a.max_vocab)
    index = {w: i for i, w in enumerate(vocab)}
    titles = Titles(news, index, a.title_len)

    # samples: (user, hist rows, [pos row] + negative rows), in file order
    samples = []
    for user, hist, cands in train_b:
        hrows = [titles.row.get(n, 0) for n in hist][-a.max_history:]
        negs = [titles.row.get(n, 0) for n, y in cands if y == 0]
        for n, y in cands:
            if y != 1:
                continue
            if len(negs) >= a.npratio:
                chosen = rng.sample(negs, a.npratio)
            elif negs:
                chosen = [rng.choice(negs) for _ in range(a.npratio)]
            else:
                continue
            samples.append((hrows, [titles.row.get(n, 0)] + chosen))
    print(f"news {len(news)}, vocab {len(vocab)}, train impressions {len(train_b)}, samples {len(samples)}, "
          f"valid impressions {len(valid_b)}, prep {time.time() - t0:.1f}s", flush=True)

    cfg = FastformerConfig(hidden_size=a.hidden, num_attention_heads=a.heads, intermediate_size=a.intermediate,
                           num_hidden_layers=a.layers, max_position_embeddings=a.title_len,
                           hidden_dropout_prob=a.dropout)
    model = FastformerNewsRec(cfg, len(vocab), user_num_hidden_layers=a.user_layers, max_history=a.max_history)
    emb = model.news_encoder.word_embedding
    if a.glove:
        n = glove.init_embedding(emb.weight, vocab, glove_words, glove_mat, a.seed, a.glove_center)
        print(f"word embedding: {n} of {len(vocab)} rows from GloVe", flush=True)
    rest = [p for p in model.parameters() if p is not emb.weight]
    emb_lr = a.embedding_lr if a.embedding_lr is not None else a.lr
    if a.sparse_embedding:
        emb.sparse = True
        opts = [torch.optim.Adam(rest, lr=a.lr), torch.optim.SparseAdam([emb.weight], lr=emb_lr)]
    else:
        opts = [torch.optim.Adam([{"params": rest}, {"params": [emb.weight], "lr": emb_lr}], lr=a.lr)]
    conf = model_config(cfg, len(vocab), task="news-recommendation", user_num_hidden_layers=a.user_layers,
                        max_history=a.max_history)
    lossf = torch.nn.CrossEntropyLoss()
    # Batches are runs of consecutive samples (same users, shared histories: fewer distinct titles).
    batch_list = [list(range(s, min(s + a.batch, len(samples)))) for s in range(0, len(samples), a.batch)]
    steps_per_epoch = len(batch_list)
    total_steps = int(round(a.epochs * steps_per_epoch))
    eval_every = a.eval_every or max(1, steps_per_epoch // a.evals_per_epoch)
    best = (-1.0, None, 0)
    step, run_loss, run_n, elapsed0 = 0, 0.0, 0, 0.0
    if a.checkpoint and os.path.exists(a.checkpoint):
        ck = torch.load(a.checkpoint, map_location="cpu")
        if ck["vocab"] != vocab:
            sys.exit(f"{a.checkpoint}: made with another vocabulary; remove it or use the same settings")
        model.load_state_dict(ck["model"])
        for o, st in zip(opts, ck["opts"]):
            o.load_state_dict(st)
        step, elapsed0 = ck["step"], ck["elapsed"]
        best = (ck["best_metric"], ck["best_state"], ck["best_step"])
        rng = random.Random(a.seed + step)
        torch.manual_seed(a.seed + step)
        print(f"resumed from {a.checkpoint} at step {step} (best AUC {best[0]:.4f} at step {best[2]})", flush=True)
    t_start = time.time()

    def clock():
        return elapsed0 + time.time() - t_start

    def export(sd):
        write_model_dir(a.out, sd, conf, vocab, a.dtype, a.embedding_dtype)
    model.train()
    while step < total_steps:
        order = list(range(len(batch_list)))
        rng.shuffle(order)
        for bi in order:
            part = [samples[i] for i in batch_list[bi]]
            rows, hist_idx, hist_mask, cand_idx = batch_tensors(part, titles, a.max_history)
            vecs = model.news_encoder(titles.tensor(rows))
            scores = user_and_scores(model, vecs, hist_idx, hist_mask, cand_idx)
            loss = lossf(scores, torch.zeros(len(part), dtype=torch.long))
            for o in opts:
                o.zero_grad()
            loss.backward()
            for o in opts:
                o.step()
            step += 1
            run_loss += loss.item()
            run_n += 1
            if step % 50 == 0:
                print(f"step {step}/{total_steps} epoch {step / steps_per_epoch:.2f} loss {run_loss / run_n:.4f} "
                      f"titles/batch {len(rows)} {clock():.0f}s", flush=True)
                run_loss, run_n = 0.0, 0
            if step % eval_every == 0 or step == total_steps:
                m = evaluate(model, titles, valid_b, a.max_history)
                print(f"valid step {step}: {fmt(m)} {clock():.0f}s", flush=True)
                if a.curve:
                    with open(a.curve, "a") as f:
                        f.write(f"{step}\t{step / steps_per_epoch:.3f}\t{clock():.0f}\t"
                                + "\t".join(f"{m[k]:.4f}" for k in ("auc", "mrr", "ndcg5", "ndcg10")) + "\n")
                if m["auc"] > best[0]:
                    best = (m["auc"], {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
                    export(best[1])  # the best so far, in case of a stop
                    print(f"exported the best so far to {a.out}", flush=True)
                if a.checkpoint:
                    torch.save({"model": model.state_dict(), "opts": [o.state_dict() for o in opts], "step": step,
                                "elapsed": clock(), "best_metric": best[0], "best_state": best[1],
                                "best_step": best[2], "vocab": vocab}, a.checkpoint + ".tmp")
                    os.replace(a.checkpoint + ".tmp", a.checkpoint)
            if step >= total_steps:
                break

    model.load_state_dict(best[1])
    print(f"best valid AUC {best[0]:.4f} at step {best[2]}", flush=True)
    if a.save_pt:
        torch.save(best[1], a.save_pt)
    export(model.state_dict())
    print(f"wrote {a.out} ({a.dtype}, embedding {a.embedding_dtype or a.dtype}), total {clock():.0f}s", flush=True)


if __name__ == "__main__":
    main()
