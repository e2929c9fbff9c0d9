#!/usr/bin/python3
"""Converts a PyTorch state_dict (.pt, e.g. saved by the official notebook with
torch.save(model.state_dict(), ...)) into a fastformerd model directory:
config.json + model.safetensors (F32, F16 or BF16, with the word embedding
table optionally in int8) + vocab.txt (owner: models helper, issue 4).

The sizes (hidden, heads, intermediate, layers, positions, vocab, labels,
user layers, history) are read from the tensor shapes; the state_dict is
loaded strictly into tools/fastformer.py's model first, so a missing,
misnamed or misshapen tensor is reported by name. A `module.` prefix
(DataParallel) is stripped.

    /usr/bin/python3 tools/export.py --state-dict model.pt --vocab vocab.txt \\
        --labels World,Sports,Business,Sci/Tech --dtype F16 --out models/my-model

--embedding-dtype I8 stores the word embedding table (word_embedding.weight,
or news_encoder.word_embedding.weight) as int8 plus a float32 scale tensor
NAME_scale: symmetric round-to-nearest, scale = max|x|/127 per row (or per
block of --embedding-block elements), zero rows stay zero (README, "int8
embeddings"). Every other tensor is written as --dtype.

A table that is exactly rank K, every row W[r] = P @ f[r] for a (hidden, K)
matrix P with orthonormal columns (a frozen GloVe table from
tools/train_classifier.py --glove --freeze-embedding --glove-factored), can
be stored factored with --embedding-dtype I8 and its P: int8 (V, K) rows of
W @ P with their scales, plus NAME_projection = P in F32 (K + 4 bytes a row
and 4 * hidden * K once, instead of hidden + 4 bytes a row). P is given as
  --embedding-projection-seed S   tools/glove.py's projection(hidden, S),
                                  the one a --glove run with --seed S used
                                  (K = 100, GloVe's width; hidden >= 100)
  --embedding-projection FILE     a .pt file holding any (hidden, K) tensor
A table not in P's column space (max|W @ P @ P^T - W| above 1e-4 *
max(1, max|W|)) is refused, naming the table.

The vocab file is one token per line (line number = id, [PAD] at 0, [UNK]
present), or a JSON object {token: id} like the notebook's word_dict.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fastformer import FastformerClassifier, FastformerConfig, FastformerNewsRec  # noqa: E402
from model_dir import model_config, write_model_dir  # noqa: E402


def read_vocab(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        d = json.loads(text)
        vocab = [None] * (max(d.values()) + 1)
        for tok, i in d.items():
            vocab[i] = tok
        if vocab[0] is None:
            vocab[0] = "[PAD]"
        missing = [i for i, t in enumerate(vocab) if t is None]
        if missing:
            raise ValueError(f"{path}: no token has id {missing[0]}")
        return vocab
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def encoder_dims(sd, prefix):
    """Returns FastformerConfig kwargs from the tensors under prefix (e.g. 'fastformer_model.')."""
    layers = 0
    while f"{prefix}encoders.{layers}.attention.self.query.weight" in sd:
        layers += 1
    if layers == 0:
        raise ValueError(f"state_dict has no tensor {prefix}encoders.0.attention.self.query.weight")
    pos = sd[f"{prefix}position_embeddings.weight"]
    return {"hidden_size": pos.shape[1], "max_position_embeddings": pos.shape[0], "num_hidden_layers": layers,
            "num_attention_heads": sd[f"{prefix}encoders.0.attention.self.query_att.weight"].shape[0],
            "intermediate_size": sd[f"{prefix}encoders.0.intermediate.dense.weight"].shape[0]}


def build(sd, labels=None, layer_norm_eps=1e-12):
    """-> (model with sd loaded strictly, config.json dict)."""
    if "word_embedding.weight" in sd:
        dims = encoder_dims(sd, "fastformer_model.")
        cfg = FastformerConfig(layer_norm_eps=layer_norm_eps, **dims)
        vocab_size = sd["word_embedding.weight"].shape[0]
        num_labels = sd["dense_linear.weight"].shape[0]
        labels = labels or [f"LABEL_{i}" for i in range(num_labels)]
        if len(labels) != num_labels:
            raise ValueError(f"{len(labels)} labels given, dense_linear.weight has {num_labels} rows")
        model = FastformerClassifier(cfg, vocab_size, num_labels)
        conf = model_config(cfg, vocab_size, task="classification", id2label=labels)
    elif "news_encoder.word_embedding.weight" in sd:
        dims = encoder_dims(sd, "news_encoder.fastformer_model.")
        udims = encoder_dims(sd, "user_encoder.fastformer_model.")
        cfg = FastformerConfig(layer_norm_eps=layer_norm_eps, **dims)
        vocab_size = sd["news_encoder.word_embedding.weight"].shape[0]
        model = FastformerNewsRec(cfg, vocab_size, udims["num_hidden_layers"], udims["max_position_embeddings"])
        conf = model_config(cfg, vocab_size, task="news-recommendation",
                            user_num_hidden_layers=udims["num_hidden_layers"],
                            max_history=udims["max_position_embeddings"])
    else:
        raise ValueError("state_dict has neither word_embedding.weight (classifier) nor "
                         "news_encoder.word_embedding.weight (recommender)")
    model.load_state_dict(sd, strict=True)
    return model, conf, vocab_size


def glove_projection(hidden, seed):
    """tools/glove.py's projection(hidden, seed): (hidden, 100), orthonormal columns."""
    import glove  # its own imports (tokenize_word) are only needed here
    if hidden < glove.DIM:
        raise ValueError(f"a GloVe projection needs hidden size >= {glove.DIM}, the model has {hidden}")
    return glove.projection(hidden, seed)


def load_projection(path):
    """The (hidden, K) tensor saved with torch.save in `path`."""
    p = torch.load(path, map_location="cpu")
    if not isinstance(p, torch.Tensor):
        raise ValueError(f"{path}: holds a {type(p).__name__}, not a (hidden, K) tensor")
    return p.float()


def export(sd, vocab, out, dtype="F32", labels=None, tokenizer="word", lowercase=True, layer_norm_eps=1e-12,
           embedding_dtype=None, embedding_block=None, embedding_projection=None,
           embedding_projection_seed=None):
    """Writes the model directory `out`; returns its config.json dict. The word
    embedding table is stored factored through embedding_projection (a
    (hidden, K) tensor), or through glove_projection(hidden,
    embedding_projection_seed)."""
    sd = {(k[7:] if k.startswith("module.") else k): v.float() for k, v in sd.items()}
    model, conf, vocab_size = build(sd, labels, layer_norm_eps)
    if len(vocab) != vocab_size:
        raise ValueError(f"vocab has {len(vocab)} tokens, the embedding has {vocab_size} rows")
    if "[UNK]" not in vocab:
        raise ValueError("vocab has no [UNK] token")
    conf["tokenizer"] = {"type": tokenizer, "lowercase": lowercase}
    if embedding_projection_seed is not None:
        embedding_projection = glove_projection(conf["hidden_size"], embedding_projection_seed)
    write_model_dir(out, model.state_dict(), conf, vocab, dtype, embedding_dtype, embedding_block,
                    embedding_projection)
    return conf


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state-dict", required=True, help=".pt file holding a state_dict")
    ap.add_argument("--vocab", required=True, help="vocab.txt or word_dict .json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--labels", help="comma-separated label names in id order (classifiers)")
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    ap.add_argument("--embedding-dtype", choices=["I8"],
                    help="store the word embedding table as int8 + per-row scales (default: --dtype)")
    ap.add_argument("--embedding-block", type=int,
                    help="with --embedding-dtype I8: one scale per block of this many elements "
                         "(divides hidden_size; default: one scale per row)")
    ap.add_argument("--embedding-projection-seed", type=int,
                    help="with --embedding-dtype I8: store the table factored through tools/glove.py's "
                         "projection(hidden, SEED) (K = 100; see above)")
    ap.add_argument("--embedding-projection",
                    help="with --embedding-dtype I8: store the table factored through the (hidden, K) "
                         "tensor in this .pt file")
    ap.add_argument("--tokenizer", default="word", choices=["word", "wordpiece"])
    ap.add_argument("--no-lowercase", action="store_true")
    ap.add_argument("--layer-norm-eps", type=float, default=1e-12)
    a = ap.parse_args(argv)
    if a.embedding_block is not None and a.embedding_dtype != "I8":
        ap.error("--embedding-block needs --embedding-dtype I8")
    if a.embedding_projection_seed is not None and a.embedding_projection is not None:
        ap.error("give --embedding-projection-seed or --embedding-projection, not both")
    factored = a.embedding_projection_seed is not None or a.embedding_projection is not None
    if factored and a.embedding_dtype != "I8":
        ap.error("--embedding-projection-seed and --embedding-projection need --embedding-dtype I8")
    sd = torch.load(a.state_dict, map_location="cpu")
    if isinstance(sd, torch.nn.Module):
        sd = sd.state_dict()
    try:
        projection = load_projection(a.embedding_projection) if a.embedding_projection else None
        conf = export(sd, read_vocab(a.vocab), a.out, a.dtype, a.labels.split(",") if a.labels else None,
                      a.tokenizer, not a.no_lowercase, a.layer_norm_eps, a.embedding_dtype, a.embedding_block,
                      projection, a.embedding_projection_seed)
    except (ValueError, RuntimeError, KeyError) as e:
        sys.exit(f"export.py: {a.state_dict}: {e}")
    emb = f", word embedding {a.embedding_dtype}" if a.embedding_dtype else ""
    if factored:
        emb += " factored"
    print(f"wrote {a.out}: {conf['architectures'][0]}, vocab {conf['vocab_size']}, {a.dtype}{emb}")


if __name__ == "__main__":
    main()
