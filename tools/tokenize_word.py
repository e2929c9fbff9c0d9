r"""The official `word` tokenizer in Python (owner: models helper, issue 4).

tokenize(text) = re.findall(r"\w+|[^\w\s]+", text.lower()), with Python's
Unicode str.lower and Unicode \w. The C `word` tokenizer (model/tokenizer.c)
must give the same tokens. Ids come from vocab.txt: unknown -> [UNK] (1),
[PAD] is 0, and sequences are truncated to max_position_embeddings
(keeping the first tokens)."""
import collections
import re

PAD, UNK = "[PAD]", "[UNK]"
_WORD_RE = re.compile(r"\w+|[^\w\s]+")


def tokenize(text):
    return _WORD_RE.findall(text.lower())


def build_vocab(texts, min_count=5, max_size=None):
    """[PAD]=0, [UNK]=1, then tokens with count >= min_count, most frequent
    first, ties broken by the token itself; at most max_size entries in all."""
    counts = collections.Counter()
    for t in texts:
        counts.update(tokenize(t))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    vocab = [PAD, UNK] + [w for w in words if w not in (PAD, UNK)]
    if max_size is not None:
        vocab = vocab[:max_size]
    return vocab


def encode(text, index, max_len):
    """index: {token: id}. Returns ids (no padding), truncated to max_len."""
    unk = index[UNK]
    return [index.get(w, unk) for w in tokenize(text)[:max_len]]


def read_vocab(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]
