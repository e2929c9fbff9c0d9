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
from model_dir import model_config, write_model_dir  # noqa: E402


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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--valid", required=True)
    ap.add_argument("--test")
    ap.add_argument("--labels", required=True, help="comma-separated label names, id order")
    ap.add_argument("--out", required=True, help="model directory to write")
    ap.add_argument("--tokenizer", default="word", choices=["word", "wordpiece"])
    ap.add_argument("--vocab-file", help="wordpiece: the vocab.txt to use (e.g. BERT uncased); word: built")
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--min-count", type=int, default=5)
    ap.add_argument("--max-vocab", type=int, default=20000)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--intermediate", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-decay", default="none", choices=["none", "linear"],
                    help="linear: decay the learning rate to 0 over the run")
    ap.add_argument("--evals-per-epoch", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", default="F16", choices=["F32", "F16", "BF16"])
    ap.add_argument("--max-train", type=int, default=0, help="use only the first N training rows (tests)")
    ap.add_argument("--max-valid", type=int, default=0,
                    help="validate during training on the first N validation rows only (saves time)")
    ap.add_argument("--save-pt", help="also save the best state_dict here (.pt)")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    labels = a.labels.split(",")
    t0 = time.time()
    train_rows = read_rows(a.train)
    if a.max_train:
        train_rows = train_rows[:a.max_train]
    valid_rows = read_rows(a.valid)
    if a.max_valid:
        valid_rows = valid_rows[:a.max_valid]
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
        vocab = tokenize_word.build_vocab((t for t, _ in train_rows), a.min_count, a.max_vocab)
        index = {w: i for i, w in enumerate(vocab)}

        def encode(text):
            return tokenize_word.encode(text, index, a.max_len)
    train = encode_rows(train_rows, encode)
    valid = encode_rows(valid_rows, encode)
    for _, y in train + valid:
        if not 0 <= y < len(labels):
            sys.exit(f"label {y} is outside 0..{len(labels) - 1} (--labels has {len(labels)} names)")
    mean_len = sum(len(x) for x, _ in train) / len(train)
    print(f"vocab {len(vocab)}, train {len(train)}, valid {len(valid)}, mean tokens {mean_len:.1f} "
          f"(max {a.max_len}), prep {time.time() - t0:.1f}s", flush=True)

    cfg = FastformerConfig(hidden_size=a.hidden, num_attention_heads=a.heads, intermediate_size=a.intermediate,
                           num_hidden_layers=a.layers, max_position_embeddings=a.max_len,
                           hidden_dropout_prob=a.dropout)
    model = FastformerClassifier(cfg, len(vocab), len(labels))
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    conf = model_config(cfg, len(vocab), task="classification", id2label=labels, tokenizer=a.tokenizer)
    lossf = torch.nn.CrossEntropyLoss()
    steps_per_epoch = math.ceil(len(train) / a.batch)
    total_steps = int(round(a.epochs * steps_per_epoch))
    eval_every = max(1, steps_per_epoch // a.evals_per_epoch)
    best = (-1.0, None, 0)
    step, run_loss, run_n = 0, 0.0, 0
    model.train()
    while step < total_steps:
        for idx in batches(train, a.batch, rng):
            ids, y = collate(train, idx)
            loss = lossf(model(ids), y)
            opt.zero_grad()
            loss.backward()
            if a.lr_decay == "linear":
                for g in opt.param_groups:
                    g["lr"] = a.lr * (1.0 - step / total_steps)
            opt.step()
            step += 1
            run_loss += loss.item()
            run_n += 1
            if step % 50 == 0:
                print(f"step {step}/{total_steps} epoch {step / steps_per_epoch:.2f} loss {run_loss / run_n:.4f} "
                      f"{time.time() - t0:.0f}s", flush=True)
                run_loss, run_n = 0.0, 0
            if step % eval_every == 0 or step == total_steps:
                acc, f1 = evaluate(model, valid, 128, len(labels))
                print(f"valid step {step}: acc {acc:.4f} macro-F1 {f1:.4f} {time.time() - t0:.0f}s", flush=True)
                if acc > best[0]:
                    best = (acc, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
                    write_model_dir(a.out, best[1], conf, vocab, a.dtype)  # the best so far, in case of a stop
                    print(f"exported the best so far to {a.out}", flush=True)
            if step >= total_steps:
                break

    model.load_state_dict(best[1])
    print(f"best valid acc {best[0]:.4f} at step {best[2]}", flush=True)
    if a.save_pt:
        torch.save(best[1], a.save_pt)
    if a.test:
        test = encode_rows(read_rows(a.test), encode)
        acc, f1 = evaluate(model, test, 128, len(labels))
        print(f"test (PyTorch, F32): acc {acc:.4f} macro-F1 {f1:.4f}", flush=True)
    write_model_dir(a.out, model.state_dict(), conf, vocab, a.dtype)
    print(f"wrote {a.out} ({a.dtype}), total {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
