"""Golden fixtures for the C engine: tiny random Fastformer models written as
model directories, each with golden.json holding inputs and the outputs that
PyTorch (tools/fastformer.py) computes for them.

  /usr/bin/python3 tools/make_fixtures.py tests/fixtures     (= make fixtures)

Writes tests/fixtures/{classifier_f32,classifier_f16,classifier_bf16,newsrec,
classifier_i8,newsrec_i8,classifier_long,classifier_factored}/. The F16/BF16 directories hold the
F32 model's weights rounded to that dtype, and their expected outputs are computed from
the rounded weights. The _i8 directories store the word embedding table in
int8 (README "int8 embeddings"): classifier_i8 is the F16 classifier with
one scale per row, newsrec_i8 an F32 recommender with blocks of 8; their
expected outputs are computed by PyTorch on the dequantized table.
classifier_factored is the F32 classifier with a word embedding table of
rank K = 12 < D (random F (V, K) times a random orthonormal P (D, K),
transposed), stored factored: int8 (V, K) in blocks of 6 plus P; its
expected outputs are computed by PyTorch on dequant(q, scale) @ P^T.
classifier_long is an F32 classifier of P = 64 positions whose sequences run
up to 64 tokens, on both sides of the lengths where the engine changes how it
computes a layer (model/fastformer.c: the key side folded from about H + 1
tokens, transform folded into dense from 20). Every
parameter is random, including biases and LayerNorm weights, so that a tensor
bound to the wrong place changes the outputs. Every case is also computed by
tests/reference/official_style.py (a separate implementation following the
official notebook's structure); both references run in float64 for that check
and must agree to 1e-6 (in float32 they differ by rounding noise, ~1e-6).
"""
import copy
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

import official_style  # noqa: E402
from fastformer import FastformerClassifier, FastformerConfig, FastformerNewsRec  # noqa: E402
from model_dir import (dequantize_factored, dequantize_int8, factored_int8,  # noqa: E402
                       load_safetensors, model_config, quantize_int8, write_model_dir)

SEED = 20240611
D, H, I, L, P = 32, 4, 48, 2, 16
P_LONG = 64  # classifier_long's max_position_embeddings
RANK, RANK_BLOCK = 12, 6  # classifier_factored's K and its int8 block (two scales a row)
LABELS = ["negative", "neutral", "positive"]
MAX_HISTORY = 6
AGREE_ABS = 1e-6  # tools/fastformer.py vs tests/reference/official_style.py, both float64

WORDS = """the a of to and in is for on that with as by at from it an be this are was has
have new says after over will more about up its not but he his they who one two world
market game team win first year people report league price oil deal bank stocks
season coach shares profit election court police city film music""".split()


def vocab_list(size):
    words = list(dict.fromkeys(WORDS))
    assert len(words) >= size - 2, "extend WORDS"
    return ["[PAD]", "[UNK]"] + words[:size - 2]


def randomize(model, gen):
    """Random values for every parameter (biases and LayerNorm too), scaled so
    that activations stay O(1) and the attention softmaxes are far from uniform."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
            elif name.endswith("word_embedding.weight"):
                p.copy_(torch.randn(p.shape, generator=gen))
                p[0].zero_()  # padding_idx=0, as the official Embedding starts
            elif name.endswith("position_embeddings.weight"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            else:  # Linear weight [out, in]
                fan_in = p.shape[1]
                gain = 2.0 if ("_att." in name or "att_fc2" in name) else 1.0
                p.copy_(torch.randn(p.shape, generator=gen) * gain / math.sqrt(fan_in))


def rounded_state(model, dtype):
    return {k: v.detach().to(dtype).to(torch.float32) for k, v in model.state_dict().items()}


def pad_batch(seqs):
    n = max(len(s) for s in seqs)
    return torch.tensor([s + [0] * (n - len(s)) for s in seqs], dtype=torch.long)


def floats(t):
    return [[float(v) for v in row] for row in t.tolist()] if t.dim() == 2 else \
        [float(v) for v in t.tolist()]


def dump_json(obj, path):
    """JSON with one line per case/vector: lists of numbers (or of lists of
    numbers) stay on one line, everything else is indented."""
    def flat(v):
        return isinstance(v, list) and all(
            isinstance(x, (int, float)) or (isinstance(x, list) and
                                             all(isinstance(y, (int, float)) for y in x))
            for x in v)

    def write(v, ind):
        pad = " " * ind
        if isinstance(v, dict):
            items = [f'{pad} {json.dumps(k)}: {write(x, ind + 1).lstrip()}' for k, x in v.items()]
            return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(v, list) and not flat(v):
            return pad + "[\n" + ",\n".join(write(x, ind + 1) for x in v) + "\n" + pad + "]"
        return pad + json.dumps(v, separators=(",", ":"))

    with open(path, "w") as f:
        f.write(write(obj, 0) + "\n")


def check_agree(what, a, b):
    diff = (a - b).abs().max().item() if a.numel() else 0.0
    if not diff <= AGREE_ABS:
        raise SystemExit(f"make_fixtures: {what}: tools/fastformer.py and "
                         f"tests/reference/official_style.py differ by {diff:.3g}")


# ---- classifier -----------------------------------------------------------
def classifier_cases(gen, vocab_size, P=P):  # noqa: N803 (the module's P by default)
    def rand_ids(n, zeros=0):
        ids = torch.randint(2, vocab_size, (n,), generator=gen).tolist()
        for _ in range(zeros):
            ids[int(torch.randint(0, n, (1,), generator=gen))] = 0
        return ids

    base = rand_ids(5)
    random_batch = [rand_ids(int(torch.randint(1, P + 1, (1,), generator=gen)), zeros=k % 3)
                    for k in range(6)]
    return [
        ("length_1", [[7]]),
        ("length_2", [[7, 23]]),
        ("max_length", [rand_ids(P)]),
        ("mixed_batch", [[5, 9, 14], rand_ids(P), [42], [3, 0, 8, 11, 0, 0, 2, 17, 30]]),
        ("all_padding", [[0, 0, 0, 0, 0]]),
        ("all_padding_single", [[0]]),
        ("all_padding_in_batch", [[0, 0, 0], [12, 13], [0]]),
        ("internal_and_leading_zeros", [[0, 0, 5, 9, 0, 3, 0, 8]]),
        ("unknown_tokens", [[1, 1, 20, 1]]),
        ("right_padding_base", [base]),
        ("right_padding", [base + [0] * (P - len(base))]),
        ("random_batch", random_batch),
    ]


def long_cases(gen, vocab_size):
    """classifier_long's cases: classifier_cases at P_LONG, and sequences of
    19, 20 and 21 tokens (one with padding inside) in one batch and alone."""
    def rand_ids(n, zeros=0):
        ids = torch.randint(2, vocab_size, (n,), generator=gen).tolist()
        for k in range(zeros):
            ids[3 + 5 * k] = 0
        return ids

    edges = [rand_ids(19), rand_ids(20, zeros=2), rand_ids(21)]
    return classifier_cases(gen, vocab_size, P_LONG) + [
        ("fold_edges", edges),
        ("fold_edge_20", [edges[1]]),
        ("long_and_short", [rand_ids(64, zeros=3), [4, 9], rand_ids(40), rand_ids(7)]),
    ]


def classifier_expected(model, seqs):
    with torch.no_grad():
        ids = pad_batch(seqs)
        pooled = model.encode(ids)
        logits = model.dense_linear(pooled)
        probs = torch.softmax(logits, dim=-1)
    return pooled, logits, probs


def write_checked(path, state, config, vocab, dtype, model, embedding_block=None, int8=False,
                  projection=None):
    """Writes the model directory and checks that the file reads back (through
    tools/model_dir.py, which dequantizes an int8 table) as exactly the
    weights `model` computes with."""
    write_model_dir(path, state, config, vocab, dtype=dtype, embedding_dtype="I8" if int8 else None,
                    embedding_block=embedding_block, embedding_projection=projection)
    back = load_safetensors(os.path.join(path, "model.safetensors"))
    for k, v in model.state_dict().items():
        assert torch.equal(back[k], v.float()), f"{path}: {k} does not read back as written"


def int8_embedding(model, name, block=None):
    """Replaces model's table `name` by its int8 round trip; returns the
    original (what the writer quantizes again, to the same q and scales)."""
    table = dict(model.named_parameters())[name]
    orig = table.detach().clone()
    with torch.no_grad():
        table.copy_(dequantize_int8(*quantize_int8(orig, block)))
    return orig


def factored_embedding(model, name, projection, block):
    """Replaces model's table `name` by its factored int8 round trip through
    `projection`; returns the original (what the writer factors again, to
    the same q, scales and projection)."""
    table = dict(model.named_parameters())[name]
    orig = table.detach().clone()
    with torch.no_grad():
        table.copy_(dequantize_factored(*factored_int8(orig, projection, block, name)))
    return orig


def write_classifier(out_dir, name, model, state, vocab, cfg, dtype, cases, int8=False,
                     embedding_block=None, projection=None):
    path = os.path.join(out_dir, name)
    config = model_config(cfg, len(vocab), task="classification", id2label=LABELS)
    write_checked(path, state, config, vocab, dtype, model, embedding_block, int8=int8,
                  projection=projection)
    other = official_style.load_model_dir(path).double()
    model64 = copy.deepcopy(model).double()
    golden_cases = []
    for case_name, seqs in cases:
        pooled, logits, probs = classifier_expected(model, seqs)
        pooled64, logits64, _ = classifier_expected(model64, seqs)
        with torch.no_grad():
            o_ids = pad_batch(seqs)
            o_pooled = other.pooled(o_ids)
            o_logits = other.dense_linear(o_pooled)
        check_agree(f"{name}/{case_name} pooled", pooled64, o_pooled)
        check_agree(f"{name}/{case_name} logits", logits64, o_logits)
        case = {"name": case_name, "input_ids": seqs, "pooled": floats(pooled),
                "logits": floats(logits), "probabilities": floats(probs)}
        if case_name == "right_padding":
            case["same_as"] = "right_padding_base"
        golden_cases.append(case)
    # Official semantics, checked here rather than trusted: all padding -> bias.
    bias = model.dense_linear.bias.detach()
    for c in golden_cases:
        if c["name"].startswith("all_padding"):
            for row, seq in zip(c["logits"], c["input_ids"]):
                if not any(seq):
                    assert torch.allclose(torch.tensor(row), bias, atol=0, rtol=0), c["name"]
    golden = {"task": "classification", "dtype": dtype, "labels": LABELS,
              "generator": "tools/make_fixtures.py", "cases": golden_cases}
    if int8:
        golden["embedding_dtype"] = "I8"
    if embedding_block:
        golden["embedding_block"] = embedding_block
    if projection is not None:
        golden["embedding_rank"] = int(projection.shape[1])
    dump_json(golden, os.path.join(path, "golden.json"))


def factored_fixture(out_dir, model, vocab, cfg, cases):
    """classifier_factored: `model` (the F32 classifier) with a table of rank
    RANK, F @ P^T for random F (row 0 zero: padding) and a random P with
    orthonormal columns, stored factored through P with blocks of RANK_BLOCK."""
    gen = torch.Generator().manual_seed(SEED + 2)
    p, r = torch.linalg.qr(torch.randn(D, RANK, generator=gen, dtype=torch.float64))
    p = (p * torch.sign(torch.diagonal(r)).unsqueeze(0)).float()
    f = torch.randn(len(vocab), RANK, generator=gen, dtype=torch.float64) * math.sqrt(D / RANK)
    f[0] = 0
    factored = copy.deepcopy(model)
    name = "word_embedding.weight"
    with torch.no_grad():
        dict(factored.named_parameters())[name].copy_((f @ p.double().t()).float())
    state = {**factored.state_dict(), name: factored_embedding(factored, name, p, RANK_BLOCK)}
    write_classifier(out_dir, "classifier_factored", factored, state, vocab, cfg, "F32", cases,
                     int8=True, embedding_block=RANK_BLOCK, projection=p)


# ---- news recommender -----------------------------------------------------
def newsrec_fixture(out_dir, gen, vocab, cfg, name="newsrec", int8_block=None):
    """int8_block: store the news table in int8 with blocks of that many
    elements (None: F32)."""
    model = FastformerNewsRec(cfg, len(vocab), user_num_hidden_layers=1, max_history=MAX_HISTORY)
    randomize(model, gen)
    model.eval()
    path = os.path.join(out_dir, name)
    config = model_config(cfg, len(vocab), task="news", user_num_hidden_layers=1,
                          max_history=MAX_HISTORY)
    state = model.state_dict()
    if int8_block:
        emb = "news_encoder.word_embedding.weight"
        state = {**state, emb: int8_embedding(model, emb, int8_block)}
    write_checked(path, state, config, vocab, "F32", model, int8_block, int8=bool(int8_block))
    other = official_style.load_model_dir(path).double()
    model64 = copy.deepcopy(model).double()

    def title(n, zeros=0):
        ids = torch.randint(2, len(vocab), (n,), generator=gen).tolist()
        for k in range(zeros):
            ids[(2 * k + 1) % n] = 0
        return ids

    titles = [title(1), title(2), title(5), title(P), title(9, zeros=2), [0, 0, 0],
              title(7), title(3), title(11, zeros=1), title(4), title(6), title(8),
              [0, 4, 9, 0]]

    def news_vecs(seqs):
        with torch.no_grad():
            ids = pad_batch(seqs)
            a = model.news_encoder(ids)
            check_agree("newsrec news vectors", model64.news_encoder(ids), other.news_vectors(ids))
        return a

    all_news = news_vecs(titles)
    for row, seq in zip(all_news, titles):
        if not any(seq):
            assert torch.equal(row, torch.zeros_like(row)), "all-padding title must pool to 0"

    def user_vec(history):
        kept = history[-MAX_HISTORY:]
        if not kept:  # the official pooling over an all-masked history gives exactly 0
            vecs = torch.zeros(1, 1, D)
            mask = torch.zeros(1, 1)
        else:
            vecs = news_vecs(kept).unsqueeze(0)
            mask = torch.ones(1, len(kept))
        with torch.no_grad():
            a = model.user_encoder(vecs, mask)[0]
            check_agree("newsrec user vector", model64.user_encoder(vecs.double(), mask)[0],
                        other.user_vector(vecs.double(), mask)[0])
        return a

    users = [
        ("history_1", [titles[2]], [titles[0], titles[3], titles[6]]),
        ("history_3", [titles[1], titles[4], titles[7]], [titles[2], titles[8]]),
        ("history_full", titles[0:MAX_HISTORY], [titles[9], titles[10], titles[11], titles[12]]),
        ("history_longer_than_max", titles[0:9], [titles[0], titles[5]]),
        ("history_with_padding_title", [titles[5], titles[3]], [titles[4]]),
        ("history_empty", [], [titles[1], titles[2]]),
    ]
    user_cases = []
    for name, history, cands in users:
        u = user_vec(history)
        c = news_vecs(cands)
        scores = c @ u
        user_cases.append({"name": name, "history": history, "candidates": cands,
                           "user_vector": floats(u), "candidate_vectors": floats(c),
                           "scores": floats(scores)})

    # The same users as one right-padded PyTorch batch must agree (padding is inert).
    with torch.no_grad():
        kept = [h[-MAX_HISTORY:] for _, h, _ in users]
        n = max(1, max(len(k) for k in kept))
        vecs = torch.zeros(len(users), n, D)
        mask = torch.zeros(len(users), n)
        for i, k in enumerate(kept):
            if k:
                vecs[i, :len(k)] = news_vecs(k)
                mask[i, :len(k)] = 1
        batch = model.user_encoder(vecs, mask)
    for i, case in enumerate(user_cases):
        diff = (batch[i] - torch.tensor(case["user_vector"])).abs().max().item()
        assert diff < 1e-5, f"user batch vs single: {diff}"

    golden = {"task": "news-recommendation", "dtype": "F32", "max_history": MAX_HISTORY,
              "generator": "tools/make_fixtures.py",
              "news": {"input_ids": titles, "news_vectors": floats(all_news)},
              "users": user_cases}
    if int8_block:
        golden["embedding_dtype"] = "I8"
        golden["embedding_block"] = int8_block
    dump_json(golden, os.path.join(path, "golden.json"))


def main(argv):
    if len(argv) != 2:
        raise SystemExit("usage: make_fixtures.py OUT_DIR")
    out_dir = argv[1]
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(SEED)
    cfg = FastformerConfig(hidden_size=D, num_attention_heads=H, intermediate_size=I,
                           num_hidden_layers=L, max_position_embeddings=P)
    vocab = vocab_list(60)

    model = FastformerClassifier(cfg, len(vocab), len(LABELS))
    randomize(model, gen)
    model.eval()
    cases = classifier_cases(gen, len(vocab))
    write_classifier(out_dir, "classifier_f32", model, model.state_dict(), vocab, cfg, "F32",
                     cases)
    for dtype, tdtype in (("F16", torch.float16), ("BF16", torch.bfloat16)):
        state = rounded_state(model, tdtype)
        rounded = FastformerClassifier(cfg, len(vocab), len(LABELS))
        rounded.load_state_dict(state)
        rounded.eval()
        write_classifier(out_dir, f"classifier_{dtype.lower()}", rounded, state, vocab, cfg,
                         dtype, cases)

    newsrec_fixture(out_dir, gen, vocab, cfg)

    # int8 word embeddings: after every other fixture, so that theirs keep their random draws.
    state = rounded_state(model, torch.float16)
    rounded = FastformerClassifier(cfg, len(vocab), len(LABELS))
    rounded.load_state_dict(state)
    rounded.eval()
    state["word_embedding.weight"] = int8_embedding(rounded, "word_embedding.weight")
    write_classifier(out_dir, "classifier_i8", rounded, state, vocab, cfg, "F16", cases, int8=True)
    newsrec_fixture(out_dir, gen, vocab, cfg, "newsrec_i8", int8_block=8)

    # Long sequences: a generator of its own, so that the fixtures above keep their draws.
    gen_long = torch.Generator().manual_seed(SEED + 1)
    cfg_long = FastformerConfig(hidden_size=D, num_attention_heads=H, intermediate_size=I,
                                num_hidden_layers=L, max_position_embeddings=P_LONG)
    long_model = FastformerClassifier(cfg_long, len(vocab), len(LABELS))
    randomize(long_model, gen_long)
    long_model.eval()
    write_classifier(out_dir, "classifier_long", long_model, long_model.state_dict(), vocab,
                     cfg_long, "F32", long_cases(gen_long, len(vocab)))

    # A factored int8 table (a generator of its own too) on the F32 classifier, same cases.
    factored_fixture(out_dir, model, vocab, cfg, cases)
    print(f"make_fixtures: wrote classifier_f32, classifier_f16, classifier_bf16, newsrec, "
          f"classifier_i8, newsrec_i8, classifier_long, classifier_factored under {out_dir}")


if __name__ == "__main__":
    main(sys.argv)
