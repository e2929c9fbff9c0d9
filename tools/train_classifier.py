#!/usr/bin/python3
"""Trains a Fastformer text classifier and exports a model directory
(owner: models helper, issue 4).

Data: JSONL rows {"text": str, "label": int id} (or TSV `label<TAB>text`),
already split into train / valid / test files (see prepare_*.py). With
--tokenizer wordpiece the given --vocab-file is used (BERT uncased semantics,
tools/tokenize_wordpiece.py); with the default `word` tokenizer the vocab
is built from the training split only ([PAD]=0, [UNK]=1, count >= --min-count,
at most --max-vocab entries). The `word` tokenizer is tools/tokenize_word.py;
texts are truncated to --max-len tokens (kept first), which becomes
max_position_embeddings, so the C engine truncates the same way.

Training: Adam, cross-entropy, fixed seed, batches of similar lengths (less
padding; padding does not change results). The checkpoint with the best
validation accuracy is exported (--dtype F16 by default).

    /usr/bin/python3 tools/train_classifier.py --train data/agnews/train.jsonl \\
        --valid data/agnews/valid.jsonl --test data/agnews/test.jsonl \\
        --labels World,Sports,Business,Sci/Tech --max-len 128 --out models/agnews-topic
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenize_word  # noqa: E402
from tokenize_wordpiece import WordPiece  # noqa: E402
from fastformer import FastformerClassifier, FastformerConfig  # noqa: E402
from model_dir import load_safetensors, model_config, write_model_dir  # noqa: E402
import glove  # noqa: E402


def read_rows(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        if path.endswith(".tsv"):
            for line in f:
                if line.strip():
                    label, text = line.rstrip("\n").split("\t", 1)
                    rows.append((text, int(label)))
        else:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    rows.append((r["text"], int(r["label"])))
    return rows


def encode_rows(rows, encode):
    return [(encode(text), label) for text, label in rows]


def batches(data, batch_size, rng, shuffle=True):
    """Groups examples of similar length: sort chunks of 50 batches by length."""
    order = list(range(len(data)))
    if shuffle:
        rng.shuffle(order)
    chunk = batch_size * 50
    out = []
    for s in range(0, len(order), chunk):
        part = sorted(order[s:s + chunk], key=lambda i: len(data[i][0]))
        out.extend(part[j:j + batch_size] for j in range(0, len(part), batch_size))
    if shuffle:
        rng.shuffle(out)
    return out


def collate(data, idx):
    n = max(1, max(len(data[i][0]) for i in idx))
    ids = torch.zeros(len(idx), n, dtype=torch.long)
    for r, i in enumerate(idx):
        seq = data[i][0]
        if seq:
            ids[r, :len(seq)] = torch.tensor(seq, dtype=torch.long)
    labels = torch.tensor([data[i][1] for i in idx], dtype=torch.long)
    return ids, labels


def drop_words(data, idx, p, rng):
    """--word-dropout: a copy of the batch's examples with each token left out with probability p (at least
    one kept), so that the model learns from what remains of a text, as of a headline without its story."""
    out = []
    for i in idx:
        seq, label = data[i]
        kept = [t for t in seq if rng.random() >= p]
        out.append((kept or seq[:1], label))
    return out


@torch.no_grad()
def evaluate(model, data, batch_size, num_labels):
    model.eval()
    correct, total = 0, 0
    conf = [[0] * num_labels for _ in range(num_labels)]
    for idx in batches(data, batch_size, None, shuffle=False):
        ids, labels = collate(data, idx)
        pred = model(ids).argmax(-1)
        for p, y in zip(pred.tolist(), labels.tolist()):
            conf[y][p] += 1
        correct += (pred == labels).sum().item()
        total += len(idx)
    model.train()
    f1s = []
    for c in range(num_labels):
        tp = conf[c][c]
        fp = sum(conf[y][c] for y in range(num_labels)) - tp
        fn = sum(conf[c]) - tp
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return correct / max(total, 1), sum(f1s) / num_labels


def read_sets(paths, limit=0):
    """paths: comma-separated files -> [(name, rows)], each cut to `limit` rows (0: all)."""
    out = []
    for path in paths.split(","):
        rows = read_rows(path)
        out.append((path, rows[:limit] if limit else rows))
    return out


def load_init(path):
    """--init: a model directory (model.safetensors + vocab.txt) or a checkpoint .pt -> (state_dict, vocab)."""
    if os.path.isdir(path):
        return (load_safetensors(os.path.join(path, "model.safetensors")),
                tokenize_word.read_vocab(os.path.join(path, "vocab.txt")))
    ck = torch.load(path, map_location="cpu")
    return ck["best_state"] or ck["model"], ck["vocab"]


POSITIONS = "fastformer_model.position_embeddings.weight"


def extend_positions(state_dict, max_len):
    """--init with a longer --max-len: the new position rows repeat the trained ones (row i starts as row
    i mod the trained count), so a longer text starts out read as its parts are; returns the old count."""
    pos = state_dict[POSITIONS]
    n = pos.shape[0]
    if n < max_len:
        state_dict[POSITIONS] = pos.repeat(math.ceil(max_len / n), 1)[:max_len].clone()
    return n


def trim_positions(state_dict, max_len):
    """--init with a shorter --max-len: keeps the first max_len position rows, so that a model read at
    more positions than it was trained at (tools/extend_positions.py copies rows, it trains none) trains
    again at its trained length; returns the old count."""
    pos = state_dict[POSITIONS]
    n = pos.shape[0]
    if n > max_len:
        state_dict[POSITIONS] = pos[:max_len].clone()
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True, help="training file(s), comma-separated (concatenated)")
    ap.add_argument("--valid", required=True,
                    help="validation file(s), comma-separated; the checkpoint metric is their mean accuracy")
    ap.add_argument("--test", help="test file(s), comma-separated (PyTorch figures at the end)")
    ap.add_argument("--labels", required=True, help="comma-separated label names, id order")
    ap.add_argument("--out", required=True, help="model directory to write")
    ap.add_argument("--tokenizer", default="word", choices=["word", "wordpiece"])
    ap.add_argument("--vocab-file", help="wordpiece: the vocab.txt to use (e.g. BERT uncased); word: built")
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--max-vocab", type=int, default=20000)
    ap.add_argument("--glove", help="GloVe 100d (data/glove): build the vocabulary from the training words "
                    "and GloVe's most frequent words (tools/glove.py) and start the word embedding from GloVe")
    ap.add_argument("--init", help="warm start: a model directory or a --checkpoint file (its vocabulary too); "
                    "a --max-len above its max_position_embeddings repeats its position rows")
    ap.add_argument("--glove-center", action="store_true",
                    help="subtract the mean GloVe vector before projecting (tools/glove.py)")
    ap.add_argument("--glove-factored", action="store_true",
                    help="with --glove and --freeze-embedding: the rows of words GloVe lacks start in GloVe's "
                         "span too, so the frozen table is exactly (V, 100) @ projection^T, and it is stored "
                         "that way (int8 (V, 100) and the F32 projection: about 104 bytes a row, not 260)")
    ap.add_argument("--sparse-embedding", action="store_true",
                    help="sparse gradients and SparseAdam for the word embedding (fast with large vocabularies)")
    ap.add_argument("--embedding-lr", type=float, help="learning rate of the word embedding (default: --lr)")
    ap.add_argument("--freeze-embedding", action="store_true",
                    help="keep the word embedding as it starts (e.g. GloVe), so that words the training data "
                         "lacks keep their place among the words it has")
    ap.add_argument("--label-smoothing", type=float, default=0.0,
                    help="cross-entropy against (1 - e) * the label + e / classes")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--intermediate", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--word-dropout", type=float, default=0.0,
                    help="leave each training token out with this probability (a new draw every batch)")
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-decay", default="none", choices=["none", "linear"],
                    help="linear: decay the learning rate to 0 over the run")
    ap.add_argument("--evals-per-epoch", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=0, help="validate every N steps (overrides --evals-per-epoch)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="F16", choices=["F32", "F16", "BF16"])
    ap.add_argument("--embedding-dtype", choices=["I8"], help="store the word embedding as int8 (model_dir.py)")
    ap.add_argument("--embedding-block", type=int, help="with --embedding-dtype I8: one scale per block")
    ap.add_argument("--max-train", type=int, default=0, help="use only the first N training rows (tests)")
    ap.add_argument("--max-valid", type=int, default=0,
                    help="validate during training on the first N rows of each validation file only")
    ap.add_argument("--save-pt", help="also save the best state_dict here (.pt)")
    ap.add_argument("--checkpoint", help="save the training state here at every validation and resume from "
                    "it when it exists (the batch order after a resume is reshuffled)")
    ap.add_argument("--curve", help="append the learning curve here (TSV: step epoch seconds metric per-set...)")
    ap.add_argument("--keep-states", metavar="DIR",
                    help="also save the model's state at every validation as DIR/step-N.pt (F32), for "
                         "averaging checkpoints along the run (tools/average_states.py)")
    a = ap.parse_args(argv)
    if a.glove_factored and not (a.glove and a.freeze_embedding and a.embedding_dtype == "I8"):
        ap.error("--glove-factored needs --glove, --freeze-embedding and --embedding-dtype I8")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    labels = a.labels.split(",")
    t0 = time.time()
    train_rows = [r for _, rows in read_sets(a.train) for r in rows]
    if a.max_train:
        train_rows = train_rows[:a.max_train]
    valid_sets = read_sets(a.valid, a.max_valid)
    init_sd = None
    if a.init:
        init_sd, vocab = load_init(a.init)
        if POSITIONS in init_sd and extend_positions(init_sd, a.max_len) < a.max_len:
            print(f"position rows extended to {a.max_len} by repeating the trained ones", flush=True)
        if POSITIONS in init_sd and trim_positions(init_sd, a.max_len) > a.max_len:
            print(f"position rows cut to the first {a.max_len}", flush=True)
    if a.tokenizer == "wordpiece":
        if not a.vocab_file:
            sys.exit("--tokenizer wordpiece needs --vocab-file (a WordPiece vocab.txt)")
        vocab = tokenize_word.read_vocab(a.vocab_file)
        if vocab[0] != "[PAD]" or "[UNK]" not in vocab:
            sys.exit(f"{a.vocab_file}: needs [PAD] as its first token and an [UNK] token")
        wp = WordPiece(vocab)

        def encode(text):
            return wp.encode(text, a.max_len)
    else:
        glove_words = glove_mat = None
        if a.glove:
            glove_words, glove_mat = glove.load(a.glove)
        if init_sd is None:
            if a.glove:
                vocab = glove.build_vocab((t for t, _ in train_rows), glove_words, a.min_count, a.max_vocab)
            else:
                vocab = tokenize_word.build_vocab((t for t, _ in train_rows), a.min_count, a.max_vocab)
        index = {w: i for i, w in enumerate(vocab)}

        def encode(text):
            return tokenize_word.encode(text, index, a.max_len)
    train = encode_rows(train_rows, encode)
    valid = [(name, encode_rows(rows, encode)) for name, rows in valid_sets]
    for _, y in train + [r for _, rows in valid for r in rows]:
        if not 0 <= y < len(labels):
            sys.exit(f"label {y} is outside 0..{len(labels) - 1} (--labels has {len(labels)} names)")
    mean_len = sum(len(x) for x, _ in train) / len(train)
    unk = sum(x.count(1) for x, _ in train) / max(1, sum(len(x) for x, _ in train))
    print(f"vocab {len(vocab)}, train {len(train)}, valid {'+'.join(str(len(v)) for _, v in valid)}, "
          f"mean tokens {mean_len:.1f} (max {a.max_len}), [UNK] {unk:.2%} of train tokens, "
          f"prep {time.time() - t0:.1f}s", flush=True)

    cfg = FastformerConfig(hidden_size=a.hidden, num_attention_heads=a.heads, intermediate_size=a.intermediate,
                           num_hidden_layers=a.layers, max_position_embeddings=a.max_len,
                           hidden_dropout_prob=a.dropout)
    model = FastformerClassifier(cfg, len(vocab), len(labels))
    if init_sd is not None:
        model.load_state_dict(init_sd)
        print(f"warm start from {a.init}", flush=True)
    elif a.glove:
        n = glove.init_embedding(model.word_embedding.weight, vocab, glove_words, glove_mat, a.seed,
                                 a.glove_center, in_span=a.glove_factored)
        print(f"word embedding: {n} of {len(vocab)} rows from GloVe", flush=True)
    emb = model.word_embedding.weight
    rest = [p for p in model.parameters() if p is not emb]
    emb_lr = a.embedding_lr if a.embedding_lr is not None else a.lr
    if a.freeze_embedding:
        emb.requires_grad_(False)
        opts = [torch.optim.Adam(rest, lr=a.lr)]
    elif a.sparse_embedding:
        model.word_embedding.sparse = True
        opts = [torch.optim.Adam(rest, lr=a.lr), torch.optim.SparseAdam([emb], lr=emb_lr)]
    else:
        opts = [torch.optim.Adam([{"params": rest}, {"params": [emb], "lr": emb_lr}], lr=a.lr)]
    base_lrs = [[g["lr"] for g in o.param_groups] for o in opts]
    conf = model_config(cfg, len(vocab), task="classification", id2label=labels, tokenizer=a.tokenizer)
    lossf = torch.nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
    steps_per_epoch = math.ceil(len(train) / a.batch)
    total_steps = int(round(a.epochs * steps_per_epoch))
    eval_every = a.eval_every or max(1, steps_per_epoch // a.evals_per_epoch)
    best = (-1.0, None, 0)
    step, run_loss, run_n, elapsed0 = 0, 0.0, 0, 0.0
    if a.checkpoint and os.path.exists(a.checkpoint):
        ck = torch.load(a.checkpoint, map_location="cpu")
        if ck["vocab"] != vocab:
            sys.exit(f"{a.checkpoint}: made with another vocabulary; remove it or use the same settings")
        model.load_state_dict(ck["model"])
        for o, s in zip(opts, ck["opts"]):
            o.load_state_dict(s)
        step, elapsed0 = ck["step"], ck["elapsed"]
        best = (ck["best_metric"], ck["best_state"], ck["best_step"])
        rng = random.Random(a.seed + step)
        torch.manual_seed(a.seed + step)
        print(f"resumed from {a.checkpoint} at step {step} (best {best[0]:.4f} at step {best[2]})", flush=True)
    t_start = time.time()

    def clock():
        return elapsed0 + time.time() - t_start

    def save_checkpoint():
        tmp = a.checkpoint + ".tmp"
        torch.save({"model": model.state_dict(), "opts": [o.state_dict() for o in opts], "step": step,
                    "elapsed": clock(), "best_metric": best[0], "best_state": best[1], "best_step": best[2],
                    "vocab": vocab}, tmp)
        os.replace(tmp, a.checkpoint)

    projection = glove.projection(a.hidden, a.seed) if a.glove_factored else None

    def export(sd):
        write_model_dir(a.out, sd, conf, vocab, a.dtype, a.embedding_dtype, a.embedding_block,
                        embedding_projection=projection)

    model.train()
    while step < total_steps:
        for idx in batches(train, a.batch, rng):
            if a.word_dropout:
                ids, y = collate(drop_words(train, idx, a.word_dropout, rng), range(len(idx)))
            else:
                ids, y = collate(train, idx)
            loss = lossf(model(ids), y)
            for o in opts:
                o.zero_grad()
            loss.backward()
            if a.lr_decay == "linear":
                for o, lrs in zip(opts, base_lrs):
                    for g, lr in zip(o.param_groups, lrs):
                        g["lr"] = lr * (1.0 - step / total_steps)
            for o in opts:
                o.step()
            step += 1
            run_loss += loss.item()
            run_n += 1
            if step % 50 == 0:
                print(f"step {step}/{total_steps} epoch {step / steps_per_epoch:.2f} loss {run_loss / run_n:.4f} "
                      f"{clock():.0f}s", flush=True)
                run_loss, run_n = 0.0, 0
            if step % eval_every == 0 or step == total_steps:
                accs = [evaluate(model, v, 128, len(labels))[0] for _, v in valid]
                acc = sum(accs) / len(accs)
                per = " ".join(f"{os.path.basename(os.path.dirname(n)) or n}/{os.path.basename(n)} {x:.4f}"
                               for (n, _), x in zip(valid, accs))
                print(f"valid step {step}: mean acc {acc:.4f} ({per}) {clock():.0f}s", flush=True)
                if a.curve:
                    with open(a.curve, "a") as f:
                        f.write(f"{step}\t{step / steps_per_epoch:.3f}\t{clock():.0f}\t{acc:.4f}\t"
                                + "\t".join(f"{x:.4f}" for x in accs) + "\n")
                if acc > best[0]:
                    best = (acc, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
                    export(best[1])  # the best so far, in case of a stop
                    print(f"exported the best so far to {a.out}", flush=True)
                if a.keep_states:
                    os.makedirs(a.keep_states, exist_ok=True)
                    torch.save(model.state_dict(), os.path.join(a.keep_states, f"step-{step}.pt"))
                if a.checkpoint:
                    save_checkpoint()
            if step >= total_steps:
                break

    model.load_state_dict(best[1])
    print(f"best valid acc {best[0]:.4f} at step {best[2]} (mean over the validation files), {clock():.0f}s",
          flush=True)
    if a.save_pt:
        torch.save(best[1], a.save_pt)
    if a.test:
        for name, rows in read_sets(a.test):
            acc, f1 = evaluate(model, encode_rows(rows, encode), 128, len(labels))
            print(f"test {name} (PyTorch, F32): acc {acc:.4f} macro-F1 {f1:.4f}", flush=True)
    export(model.state_dict())
    print(f"wrote {a.out} ({a.dtype}, embedding {a.embedding_dtype or a.dtype}), total {clock():.0f}s", flush=True)


if __name__ == "__main__":
    main()
