"""Model directories for `make bench`: random ones written with the PyTorch
reference (tools/fastformer.py) and tools/model_dir.py, the default model
models/review-sentiment, and the texts and news catalog the server benchmarks
send. Weights are init_weights' N(0, 0.02) with a fixed seed; the random
models compute nothing meaningful, only at full size.

Writing a model needs Debian's python3-torch (run with /usr/bin/python3);
torch is imported only then."""
import json
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))

# Official shape (fastformer.json), a wider one and a BERT-base-sized layer.
OFFICIAL = dict(hidden_size=256, num_attention_heads=16, intermediate_size=256, num_hidden_layers=2)
MID = dict(hidden_size=384, num_attention_heads=12, intermediate_size=1536, num_hidden_layers=2)
LARGE = dict(hidden_size=768, num_attention_heads=12, intermediate_size=3072, num_hidden_layers=2)

VOCAB_SIZE = 30000

# name -> (dims, max_position_embeddings) of the random classifiers.
CLASSIFIERS = {
    "official": (OFFICIAL, 256),
    "mid": (MID, 256),
    "large": (LARGE, 256),
    "official-p4096": (OFFICIAL, 4096),  # the length benchmark's lengths up to 4096
}
# Committed trained models the bench also measures (real weights).
DEFAULT_MODELS = {"review-sentiment": os.path.join(ROOT, "models", "review-sentiment")}


def describe(name):
    """'D=256 H=16 I=256 L=2' for a model name of model_dir."""
    if name in CLASSIFIERS:
        d = CLASSIFIERS[name][0]
    else:
        with open(os.path.join(DEFAULT_MODELS[name], "config.json")) as f:
            d = json.load(f)
    return (f"D={d['hidden_size']} H={d['num_attention_heads']} I={d['intermediate_size']} "
            f"L={d['num_hidden_layers']}")


def model_dir(name, models_root):
    """The directory of model `name`: a CLASSIFIERS entry (written once under
    models_root), "recommender" (with its news.tsv), or a DEFAULT_MODELS one."""
    if name in DEFAULT_MODELS:
        return DEFAULT_MODELS[name]
    path = os.path.join(models_root, name)
    if name == "recommender":
        return recommender_dir(path)[0]
    dims, positions = CLASSIFIERS[name]
    return classifier_dir(path, dims, positions)


def vocab_words(n):
    """[PAD], [UNK], then n-2 distinct lower-case pseudo-words (one \\w+ piece each)."""
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zi", "pa", "do", "fe", "gu", "hi",
            "ja", "bo"]
    words = ["[PAD]", "[UNK]"]
    i = 0
    while len(words) < n:
        x, w = i, ""
        while True:
            w += syll[x % 16]
            x //= 16
            if x == 0:
                break
        words.append(w + "x")  # the suffix keeps words of different lengths distinct
        i += 1
    return words


def _done_marker(path, spec):
    return os.path.join(path, ".bench-spec.json"), json.dumps(spec, sort_keys=True)


def _fresh(path, spec):
    marker, text = _done_marker(path, spec)
    try:
        with open(marker) as f:
            return f.read() == text
    except OSError:
        return False


def _mark(path, spec):
    marker, text = _done_marker(path, spec)
    with open(marker, "w") as f:
        f.write(text)


def classifier_dir(path, dims, max_positions, num_labels=4, seed=1):
    """Writes (once per spec) a random classifier model directory at path."""
    spec = {"kind": "classifier", **dims, "P": max_positions, "V": VOCAB_SIZE,
            "labels": num_labels, "seed": seed}
    if _fresh(path, spec):
        return path
    import torch
    from fastformer import FastformerClassifier, FastformerConfig
    from model_dir import model_config, write_model_dir
    torch.manual_seed(seed)
    cfg = FastformerConfig(**dims, max_position_embeddings=max_positions)
    model = FastformerClassifier(cfg, VOCAB_SIZE, num_labels).eval()
    labels = [f"label{i}" for i in range(num_labels)]
    write_model_dir(path, model.state_dict(),
                    model_config(cfg, VOCAB_SIZE, task="classification", id2label=labels),
                    vocab_words(VOCAB_SIZE))
    _mark(path, spec)
    return path


def recommender_dir(path, n_news=5000, title_words=(8, 20), seed=2):
    """A random news recommender (official shape, 1-layer news and user
    encoders as in the paper's MIND setting, 50 history items) and its
    MIND-format news.tsv of n_news random titles. Returns (dir, news.tsv)."""
    spec = {"kind": "recommender", **OFFICIAL, "V": VOCAB_SIZE, "news": n_news,
            "title_words": list(title_words), "seed": seed}
    news = os.path.join(path, "news.tsv")
    if _fresh(path, spec):
        return path, news
    import torch
    from fastformer import FastformerConfig, FastformerNewsRec
    from model_dir import model_config, write_model_dir
    torch.manual_seed(seed)
    dims = dict(OFFICIAL, num_hidden_layers=1)
    cfg = FastformerConfig(**dims, max_position_embeddings=32)
    model = FastformerNewsRec(cfg, VOCAB_SIZE, user_num_hidden_layers=1, max_history=50).eval()
    words = vocab_words(VOCAB_SIZE)
    write_model_dir(path, model.state_dict(),
                    model_config(cfg, VOCAB_SIZE, task="news-recommendation",
                                 user_num_hidden_layers=1, max_history=50),
                    words)
    rng = random.Random(seed)
    with open(news, "w") as f:
        for i in range(n_news):
            title = " ".join(rng.choice(words[2:]) for _ in range(rng.randint(*title_words)))
            f.write(f"N{i + 1}\tnews\tbench\t{title.capitalize()}\tAbstract.\thttps://example.org/\t[]\t[]\n")
    _mark(path, spec)
    return path, news


def read_titles(news_tsv):
    """[(news_id, title)] in file order."""
    out = []
    with open(news_tsv, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 4:
                out.append((cols[0], cols[3]))
    return out


def texts(vocab_path, n_texts, n_words, seed=3):
    """n_texts texts of n_words vocab words each (so n_words tokens with the
    word tokenizer), skipping special tokens like [PAD]/[UNK]/##pieces."""
    with open(vocab_path, encoding="utf-8") as f:
        words = [w for w in (line.rstrip("\n") for line in f)
                 if w and w.isalnum() and w.lower() == w]
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(n_words)) for _ in range(n_texts)]
