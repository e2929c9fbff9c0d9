"""Integration tests of the real `fastformer-cli` binary (env FASTFORMER_CLI,
default build/fastformer-cli) against the tiny fixture models and their
PyTorch golden outputs (tests/fixtures/{classifier_*,newsrec}/golden.json)
the tiny MIND dataset tests/fixtures/mind-tiny (tools/make_mind_tiny.py,
with PyTorch scores) and the MIND-like tests/fixtures/mind-quirks
(tools/make_mind_quirks.py); the real MIND sample only when data/ or
$DATA_SRC has it. Expected metrics are computed here in plain Python,
independently of the C code."""
import hashlib
import json
import math
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = os.environ.get("FASTFORMER_CLI", str(ROOT / "build" / "fastformer-cli"))
FIXTURES = ROOT / "tests" / "fixtures"
CLASSIFIERS = ["classifier_f32", "classifier_f16", "classifier_bf16"]
NEWSREC = FIXTURES / "newsrec"
MIND = FIXTURES / "mind-tiny"


def run(*args, stdin=None):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    return subprocess.run([CLI, *map(str, args)], input=stdin, capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def golden(name):
    with open(FIXTURES / name / "golden.json") as f:
        return json.load(f)


def close(got, want, rel, abs_):
    return all(abs(g - w) <= abs_ + rel * abs(w) for g, w in zip(got, want)) and len(got) == len(want)


# ---- help and usage errors -----------------------------------------------------

@pytest.mark.parametrize("cmd", [[], ["predict"], ["eval"], ["eval-mind"], ["bench"]])
def test_help(cmd):
    r = run(*cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: fastformer-cli")


def test_no_command_and_unknown_command():
    r = run()
    assert r.returncode == 2 and "usage: fastformer-cli COMMAND" in r.stderr
    r = run("predcit")
    assert r.returncode == 2 and "unknown command 'predcit'" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["predict"], "fastformer-cli predict: missing --model DIR"),
    (["predict", "--model"], "fastformer-cli predict: option '--model' needs a value"),
    (["predict", "--model", "x", "--frobnicate"], "fastformer-cli predict: unknown option '--frobnicate'"),
    (["predict", "--model", "x", "extra"], "fastformer-cli predict: unexpected argument 'extra'"),
    (["eval", "--model", "x"], "fastformer-cli eval: missing --data FILE"),
    (["eval", "--data", "x"], "fastformer-cli eval: missing --model DIR"),
    (["eval-mind", "--model", "x", "--behaviors", "b"], "fastformer-cli eval-mind: missing --news FILE"),
    (["eval-mind", "--model", "x", "--news", "n"], "fastformer-cli eval-mind: missing --behaviors FILE"),
    (["eval-mind", "--news", "n", "--behaviors", "b"], "missing --model DIR (or --baseline popularity|random)"),
    (["eval-mind", "--baseline", "best", "--news", "n", "--behaviors", "b"],
     "--baseline: expected 'popularity' or 'random', got 'best'"),
    (["eval-mind", "--baseline", "popularity", "--news", "n", "--behaviors", "b"],
     "--baseline popularity needs --train-behaviors FILE"),
    (["eval-mind", "--baseline", "random", "--model", "m", "--news", "n", "--behaviors", "b"],
     "--model and --baseline exclude each other"),
    (["eval-mind", "--baseline", "random", "--seed", "-1", "--news", "n", "--behaviors", "b"],
     "--seed: expected a non-negative integer, got '-1'"),
    (["eval-mind", "--model", "m", "--seed", "3", "--news", "n", "--behaviors", "b"],
     "--seed is only used by --baseline random"),
    (["bench"], "fastformer-cli bench: missing --model DIR"),
    (["bench", "--model", "x", "--threads", "zero"], "--threads: expected an integer from 1 to 256, got 'zero'"),
    (["bench", "--model", "x", "--min-seconds", "-1"], "--min-seconds: expected seconds from 0 to 3600"),
    (["bench", "--model", "x", "--kernels", "sse9"], "--kernels: expected plain, avx2 or avx512, got 'sse9'"),
])
def test_usage_errors(args, message):
    r = run(*args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert message in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("cmd", [["predict"], ["eval", "--data", "-"], ["bench"],
                                 ["eval-mind", "--news", "n", "--behaviors", "b"]])
def test_missing_model_dir(cmd, tmp_path):
    missing = tmp_path / "no-such-model"
    r = run(cmd[0], "--model", missing, *cmd[1:], stdin="")
    assert r.returncode == 1
    assert r.stderr.startswith(f"fastformer-cli {cmd[0]}: {missing}")
    assert "No such file or directory" in r.stderr


def test_model_load_error_is_reported(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ["config.json", "vocab.txt"]:
        (broken / name).write_bytes((FIXTURES / "classifier_f32" / name).read_bytes())
    (broken / "model.safetensors").write_bytes(b"\x08\x00\x00")
    r = run("predict", "--model", broken, stdin="")
    assert r.returncode == 1
    assert r.stderr.startswith("fastformer-cli predict: ")
    assert "model.safetensors" in r.stderr


# ---- predict --------------------------------------------------------------------

@pytest.mark.parametrize("name", CLASSIFIERS)
def test_predict_classifier_matches_pytorch(name):
    g = golden(name)
    seqs, probs, logits = [], [], []
    for case in g["cases"]:
        seqs += case["input_ids"]
        probs += case["probabilities"]
        logits += case["logits"]
    stdin = "".join(json.dumps({"input_ids": ids}) + "\n" for ids in seqs)
    r = run("predict", "--model", FIXTURES / name, stdin=stdin)
    assert r.returncode == 0, r.stderr
    out = json_lines(r.stdout)
    assert len(out) == len(seqs)
    for i, (o, p, z) in enumerate(zip(out, probs, logits)):
        assert close(o["probabilities"], p, 0.0, 1e-5), (i, o["probabilities"], p)
        assert close(o["logits"], z, 1e-4, 1e-6), (i, o["logits"], z)
        best = max(range(len(p)), key=lambda c: p[c])
        assert o["label_id"] == best
        assert o["label"] == g["labels"][best]
        assert "truncated" not in o


def classifier_vocab():
    with open(FIXTURES / "classifier_f32" / "vocab.txt", encoding="utf-8") as f:
        return {tok.rstrip("\n"): i for i, tok in reversed(list(enumerate(f)))}


def test_predict_text_equals_its_ids_and_truncates(tmp_path):
    vocab = classifier_vocab()
    text = "The market, the BANK and zzz-oil!"
    # The word tokenizer: lowercase, \w+|[^\w\s]+, unknown -> [UNK].
    words = ["the", "market", ",", "the", "bank", "and", "zzz", "-", "oil", "!"]
    ids = [vocab.get(w, vocab["[UNK]"]) for w in words]
    long_text = " ".join(["market"] * 40)
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(json.dumps(x) for x in [
        {"text": text, "id": "t1"}, {"input_ids": ids, "id": 2},
        {"text": long_text}, {"input_ids": [vocab["market"]] * 16}]) + "\n")
    r = run("predict", "--model", FIXTURES / "classifier_f32", "--input", inp)
    assert r.returncode == 0, r.stderr
    a, b, c, d = json_lines(r.stdout)
    assert a["id"] == "t1" and b["id"] == 2
    # Same ids, different rows of one batch: equal up to float rounding.
    assert close(a["logits"], b["logits"], 1e-5, 1e-6)
    assert c["truncated"] is True and "truncated" not in d
    assert close(c["logits"], d["logits"], 1e-5, 1e-6)
    assert not close(a["logits"], c["logits"], 1e-3, 1e-3)


def test_predict_recommender_embeddings_match_pytorch():
    g = golden("newsrec")
    ids, vecs = g["news"]["input_ids"], g["news"]["news_vectors"]
    stdin = "".join(json.dumps({"input_ids": x}) + "\n" for x in ids)
    r = run("predict", "--model", NEWSREC, stdin=stdin)
    assert r.returncode == 0, r.stderr
    out = json_lines(r.stdout)
    assert len(out) == len(ids)
    for o, v in zip(out, vecs):
        assert set(o) == {"embedding"}
        assert close(o["embedding"], v, 1e-4, 1e-5)


def test_predict_bad_lines_are_reported_and_the_rest_run():
    lines = [
        '{"input_ids": [2, 3]}',                      # 1 ok
        '{"input_ids": [2, 3, 99999]}',               # 2
        'not json',                                   # 3
        '',                                           # 4 blank: skipped, still counted
        '{"text": 5}',                                # 5
        '{"input_ids": [2, -1]}',                     # 6
        '{"input_ids": [2, 3.5]}',                    # 7
        '{"input_ids": "2 3"}',                       # 8
        '{"text": "a", "input_ids": [2]}',            # 9
        '{"id": 7}',                                  # 10
        '[1, 2]',                                     # 11
        json.dumps({"input_ids": [2] * 17}),          # 12
        '{"text": "the market"}',                     # 13 ok
        '{"a": 1, "a": 2}',                           # 14 duplicate key
    ]
    r = run("predict", "--model", FIXTURES / "classifier_f32", stdin="\n".join(lines) + "\n")
    assert r.returncode == 1
    assert "11 of 13 input lines failed" in r.stderr
    out = json_lines(r.stdout)
    assert len(out) == 13
    assert "probabilities" in out[0] and "probabilities" in out[11]
    errors = {o["line"]: o["error"] for o in out if "error" in o}
    assert errors[2] == "input_ids[2]: id 99999 >= vocab_size 60"
    assert errors[3].startswith("invalid JSON")
    assert errors[5] == "text: expected a string, got integer"
    assert errors[6] == "input_ids[1]: id -1 is negative"
    assert errors[7] == "input_ids[1]: expected an integer id, got number"
    assert errors[8] == "input_ids: expected an array of integers, got string"
    assert errors[9] == 'give "text" or "input_ids", not both'
    assert errors[10] == 'expected a "text" string or an "input_ids" array'
    assert errors[11] == "expected a JSON object, got array"
    assert errors[12] == "input_ids has 17 ids, more than the model's max_position_embeddings 16"
    assert errors[14].startswith("invalid JSON") and "duplicate" in errors[14]
    assert [o for o in out if o.get("line") == 10][0]["id"] == 7  # the id is echoed on errors


def test_predict_many_lines_span_batches():
    # 70 inputs: more than one batch of 32; outputs stay in input order.
    g = golden("classifier_f32")
    seqs = [ids for case in g["cases"] for ids in case["input_ids"]]
    probs = [p for case in g["cases"] for p in case["probabilities"]]
    order = [i % len(seqs) for i in range(70)]
    stdin = "".join(json.dumps({"input_ids": seqs[i], "id": k}) + "\n" for k, i in enumerate(order))
    r = run("predict", "--model", FIXTURES / "classifier_f32", stdin=stdin)
    assert r.returncode == 0, r.stderr
    out = json_lines(r.stdout)
    assert [o["id"] for o in out] == list(range(70))
    for o, i in zip(out, order):
        assert close(o["probabilities"], probs[i], 0.0, 1e-5)


def test_predict_missing_input_file(tmp_path):
    r = run("predict", "--model", FIXTURES / "classifier_f32", "--input", tmp_path / "nope.jsonl")
    assert r.returncode == 1
    assert f"{tmp_path / 'nope.jsonl'}: No such file or directory" in r.stderr


# ---- eval -----------------------------------------------------------------------

def sklearn_style_report(y_true, y_pred, n_classes):
    """accuracy, macro-F1 over the labels present in y_true or y_pred, per class (p, r, f1, n)."""
    per = []
    for c in range(n_classes):
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == c and p == c)
        n_pred = sum(1 for p in y_pred if p == c)
        n_true = sum(1 for t in y_true if t == c)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_true if n_true else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per.append((prec, rec, f1, n_true, n_pred))
    present = [p[2] for p in per if p[3] or p[4]]
    acc = sum(1 for t, p in zip(y_true, y_pred) if t == p) / len(y_true)
    return acc, sum(present) / len(present), per


def test_eval_accuracy_and_macro_f1(tmp_path):
    g = golden("classifier_f32")
    labels = g["labels"]
    seqs = [ids for case in g["cases"] for ids in case["input_ids"]]
    probs = [p for case in g["cases"] for p in case["probabilities"]]
    y_pred = [max(range(3), key=lambda c: p[c]) for p in probs]
    y_true = [(i * 7) % 3 for i in range(len(seqs))]
    data = tmp_path / "data.jsonl"
    with open(data, "w") as f:
        for i, (ids, y) in enumerate(zip(seqs, y_true)):
            f.write(json.dumps({"input_ids": ids, "label": labels[y] if i % 2 else y}) + "\n")
        f.write("\n")
    acc, macro, per = sklearn_style_report(y_true, y_pred, 3)
    assert 0.0 < acc < 1.0  # the data is not trivially all right or all wrong

    r = run("eval", "--model", FIXTURES / "classifier_f32", "--data", data, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["count"] == len(seqs)
    assert out["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert out["macro_f1"] == pytest.approx(macro, abs=1e-12)
    for c, row in enumerate(out["classes"]):
        assert row["label"] == labels[c] and row["label_id"] == c
        assert row["precision"] == pytest.approx(per[c][0], abs=1e-12)
        assert row["recall"] == pytest.approx(per[c][1], abs=1e-12)
        assert row["f1"] == pytest.approx(per[c][2], abs=1e-12)
        assert row["support"] == per[c][3]

    r = run("eval", "--model", FIXTURES / "classifier_f32", "--data", data)
    assert r.returncode == 0, r.stderr
    assert f"examples: {len(seqs)}\n" in r.stdout
    assert f"accuracy: {acc:.6f}\n" in r.stdout
    assert f"macro-F1: {macro:.6f}\n" in r.stdout
    assert "negative" in r.stdout and "positive" in r.stdout


@pytest.mark.parametrize("line, message", [
    ('{"input_ids": [2], "label": "angry"}',
     "label 'angry' is not one of the model's labels (negative, neutral, positive)"),
    ('{"input_ids": [2], "label": 3}', "label 3 is out of range: the model has labels 0..2"),
    ('{"input_ids": [2], "label": 1.0}', "label: expected an integer id or a label name, got number"),
    ('{"input_ids": [2]}', 'missing "label"'),
    ('{"input_ids": [99], "label": 0}', "input_ids[0]: id 99 >= vocab_size 60"),
    ('{"input_ids": [2], "label": 0', "invalid JSON"),
])
def test_eval_bad_line_names_the_line(line, message):
    stdin = '{"input_ids": [2], "label": 0}\n' + line + "\n"
    r = run("eval", "--model", FIXTURES / "classifier_f32", "--data", "-", stdin=stdin)
    assert r.returncode == 1
    assert r.stderr.startswith("fastformer-cli eval: stdin:2: ")
    assert message in r.stderr


def test_eval_rejects_recommender_and_empty_data():
    r = run("eval", "--model", NEWSREC, "--data", "-", stdin="")
    assert r.returncode == 1
    assert "is a news-recommendation model; eval needs a classifier" in r.stderr
    r = run("eval", "--model", FIXTURES / "classifier_f32", "--data", "-", stdin="\n")
    assert r.returncode == 1
    assert "stdin: no examples" in r.stderr


# ---- eval-mind ------------------------------------------------------------------

def mind_order(scores):
    # evaluate.py: np.argsort(scores)[::-1]; its argsort is stable at these sizes
    return sorted(range(len(scores)), key=lambda i: scores[i])[::-1]


def mind_metrics(labels, scores):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    auc = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))
    ranked = [labels[i] for i in mind_order(scores)]
    mrr = sum(y / (r + 1) for r, y in enumerate(ranked)) / sum(ranked)

    def dcg(ys, k):
        return sum((2 ** y - 1) / math.log2(r + 2) for r, y in enumerate(ys[:k]))

    ideal = sorted(labels, reverse=True)
    return [auc, mrr, dcg(ranked, 5) / dcg(ideal, 5), dcg(ranked, 10) / dcg(ideal, 10)]


def mean_metrics(impressions):
    rows = [mind_metrics(labels, scores) for labels, scores in impressions
            if 0 < sum(labels) < len(labels)]
    return [sum(col) / len(rows) for col in zip(*rows)], len(rows)


def eval_mind(*args):
    r = run("eval-mind", "--news", MIND / "news.tsv", "--behaviors", MIND / "behaviors.tsv",
            "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_eval_mind_matches_pytorch_scores():
    g = json.loads((MIND / "golden.json").read_text())
    assert (FIXTURES / g["model"]).resolve() == NEWSREC.resolve()
    weights = hashlib.sha256((NEWSREC / "model.safetensors").read_bytes()).hexdigest()
    assert weights == g["model_sha256"], \
        "tests/fixtures/newsrec changed: rerun tools/make_mind_tiny.py --model tests/fixtures/newsrec"
    want, n_eval = mean_metrics([(imp["labels"], imp["scores"]) for imp in g["impressions"]])
    out = eval_mind("--model", NEWSREC)
    assert out["scorer"] == "model"
    got = [out["auc"], out["mrr"], out["ndcg5"], out["ndcg10"]]
    assert got == pytest.approx(want, abs=1e-12)
    c = g["counts"]
    assert out["impressions"] == c["impressions"] == 16
    assert out["evaluated"] == n_eval == 15
    assert out["undefined"] == 1
    for key in ["history_ids", "history_skipped", "candidates", "candidates_skipped"]:
        assert out[key] == c[key], key


def test_eval_mind_text_report():
    r = run("eval-mind", "--model", NEWSREC, "--news", MIND / "news.tsv",
            "--behaviors", MIND / "behaviors.tsv")
    assert r.returncode == 0, r.stderr
    out = eval_mind("--model", NEWSREC)
    assert f"AUC:     {out['auc']:.4f}\n" in r.stdout
    assert f"nDCG@10: {out['ndcg10']:.4f}\n" in r.stdout
    assert "impressions: 16 (evaluated 15, undefined 1" in r.stdout
    assert (f"history ids skipped (not in news.tsv): {out['history_skipped']} of "
            f"{out['history_ids']}") in r.stdout


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def test_eval_mind_popularity_baseline():
    news = {row[0] for row in read_tsv(MIND / "news.tsv")}
    clicks = {}
    for row in read_tsv(MIND / "train_behaviors.tsv"):
        for nid in row[3].split():
            clicks[nid] = clicks.get(nid, 0) + 1
        for item in row[4].split():
            nid, y = item.rsplit("-", 1)
            if y == "1":
                clicks[nid] = clicks.get(nid, 0) + 1
    impressions = []
    for row in read_tsv(MIND / "behaviors.tsv"):
        kept = [item.rsplit("-", 1) for item in row[4].split()]
        kept = [(nid, int(y)) for nid, y in kept if nid in news]
        impressions.append(([y for _, y in kept], [clicks.get(nid, 0) for nid, _ in kept]))
    want, n_eval = mean_metrics(impressions)
    out = eval_mind("--baseline", "popularity", "--train-behaviors", MIND / "train_behaviors.tsv")
    assert out["scorer"] == "popularity"
    assert [out["auc"], out["mrr"], out["ndcg5"], out["ndcg10"]] == pytest.approx(want, abs=1e-12)
    assert out["evaluated"] == n_eval
    model_out = eval_mind("--model", NEWSREC)
    for key in ["history_ids", "history_skipped", "candidates", "candidates_skipped", "undefined"]:
        assert out[key] == model_out[key], key


def test_eval_mind_random_baseline_is_seeded():
    a = eval_mind("--baseline", "random")
    b = eval_mind("--baseline", "random", "--seed", "42")
    c = eval_mind("--baseline", "random", "--seed", "7")
    assert a == b
    assert a["scorer"] == "random" and a["evaluated"] == 15
    assert (a["auc"], a["mrr"]) != (c["auc"], c["mrr"])
    for out in (a, c):
        assert all(0.0 <= out[k] <= 1.0 for k in ["auc", "mrr", "ndcg5", "ndcg10"])


def test_eval_mind_errors(tmp_path):
    bad = tmp_path / "behaviors.tsv"
    bad.write_text("1\tU1\tt\tN101\tN101-1 N102-0\n2\tU2\tt\t\tN123-x\n")
    r = run("eval-mind", "--model", NEWSREC, "--news", MIND / "news.tsv", "--behaviors", bad)
    assert r.returncode == 1
    assert f"fastformer-cli eval-mind: {bad}:2: impression 'N123-x': label must be 0 or 1" in r.stderr

    bad_news = tmp_path / "news.tsv"
    bad_news.write_text("N1\tnews\tsub\ttitle\nN2\tnews\n")
    r = run("eval-mind", "--baseline", "random", "--news", bad_news, "--behaviors", MIND / "behaviors.tsv")
    assert r.returncode == 1
    assert f"{bad_news}:2: column 4 (title) is missing" in r.stderr

    r = run("eval-mind", "--model", NEWSREC, "--news", tmp_path / "none.tsv",
            "--behaviors", MIND / "behaviors.tsv")
    assert r.returncode == 1
    assert f"{tmp_path / 'none.tsv'}: No such file or directory" in r.stderr

    r = run("eval-mind", "--model", FIXTURES / "classifier_f32", "--news", MIND / "news.tsv",
            "--behaviors", MIND / "behaviors.tsv")
    assert r.returncode == 1
    assert "is a classification model; eval-mind needs a news recommendation model" in r.stderr

    # Nothing left to evaluate: every candidate is missing from news.tsv.
    lone = tmp_path / "lone.tsv"
    lone.write_text("1\tU1\tt\tN101\tN9999-1 N9998-0\n")
    r = run("eval-mind", "--model", NEWSREC, "--news", MIND / "news.tsv", "--behaviors", lone)
    assert r.returncode == 1
    assert "no impression could be evaluated" in r.stderr


# ---- bench ----------------------------------------------------------------------

def test_bench_prints_a_table_with_capped_lengths():
    r = run("bench", "--model", FIXTURES / "classifier_f32", "--threads", "1", "--min-seconds", "0")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = lines.index("| batch | length | ms/batch | docs/s | tokens/s | GFLOP/s |")
    rows = [line.split("|")[1:-1] for line in lines[header + 2:header + 7]]
    assert [(c[0].strip(), c[1].strip()) for c in rows] == [
        ("1", "16*"), ("1", "16*"), ("32", "16*"), ("32", "16*"), ("64", "16*")]
    for cells in rows:
        assert all(float(x) > 0 for x in cells[2:])
    assert "* length capped at the model's max_position_embeddings (16)" in r.stdout
    assert "engine threads: 1 (OpenBLAS threads: 1)" in r.stdout
    assert re.search(r"^cpu flags: ", r.stdout, re.M)
    assert re.search(r"^kernel path: (plain|avx2|avx512) ", r.stdout, re.M)


def cpu_supports(flag):
    with open("/proc/cpuinfo") as f:
        return flag in f.read().split()


@pytest.mark.parametrize("path,flags", [("plain", []), ("avx2", ["avx2", "fma"]),
                                        ("avx512", ["avx512f", "fma"])])
def test_bench_forces_each_kernel_path_on_two_threads(path, flags):
    if not all(cpu_supports(f) for f in flags):
        pytest.skip(f"this CPU cannot run the {path} kernels")
    r = run("bench", "--model", FIXTURES / "classifier_f32", "--threads", "2", "--kernels", path,
            "--min-seconds", "0")
    assert r.returncode == 0, r.stderr
    assert f"kernel path: {path} " in r.stdout and "forced" in r.stdout
    assert "engine threads: 2 (OpenBLAS threads: 1)" in r.stdout


def test_forced_kernel_path_the_cpu_lacks_or_misspelt_is_an_error(tmp_path):
    env = dict(os.environ, FASTFORMER_KERNELS="avx9000")
    r = subprocess.run([CLI, "bench", "--model", FIXTURES / "classifier_f32", "--min-seconds", "0"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1
    assert "FASTFORMER_KERNELS=avx9000: expected plain, avx2 or avx512" in r.stderr


# ---- MIND-like data: tests/fixtures/mind-quirks, and the real sample if present -----

QUIRKS = FIXTURES / "mind-quirks"
NO_SAMPLE = "no MIND sample: run make data or set DATA_SRC"


def mind_sample_dir():
    """The real MIND sample (2,000 news, 5,000 impressions of MINDsmall_train)
    in data/mind-sample or $DATA_SRC/mind-sample, or None: MIND's licence keeps
    it out of the repository."""
    roots = [ROOT / "data"] + ([Path(os.environ["DATA_SRC"])] if os.environ.get("DATA_SRC") else [])
    for root in roots:
        d = root if root.is_absolute() else ROOT / root
        if (d / "mind-sample").is_dir():
            return d / "mind-sample"
    return None


def popularity_reference(news_tsv, behaviors_tsv):
    """eval-mind --baseline popularity with --train-behaviors = the behaviors
    themselves, in plain Python: a news item's score is its clicks (history
    entries and clicked candidates); ids missing from news.tsv are counted and
    dropped."""
    news = {row[0] for row in read_tsv(news_tsv)}
    behaviors = read_tsv(behaviors_tsv)
    clicks, counts = {}, dict(history_ids=0, history_skipped=0, candidates=0, candidates_skipped=0)
    for row in behaviors:
        for nid in row[3].split():
            clicks[nid] = clicks.get(nid, 0) + 1
            counts["history_ids"] += 1
            counts["history_skipped"] += nid not in news
        for item in row[4].split():
            nid, y = item.rsplit("-", 1)
            clicks[nid] = clicks.get(nid, 0) + (y == "1")
    impressions = []
    for row in behaviors:
        items = [item.rsplit("-", 1) for item in row[4].split()]
        counts["candidates"] += len(items)
        kept = [(nid, int(y)) for nid, y in items if nid in news]
        counts["candidates_skipped"] += len(items) - len(kept)
        impressions.append(([y for _, y in kept], [clicks.get(nid, 0) for nid, _ in kept]))
    metrics, n_eval = mean_metrics(impressions)
    return metrics, n_eval, len(behaviors), counts


def check_popularity(directory):
    want, n_eval, n_imp, counts = popularity_reference(directory / "news.tsv",
                                                       directory / "behaviors.tsv")
    r = run("eval-mind", "--baseline", "popularity", "--train-behaviors", directory / "behaviors.tsv",
            "--news", directory / "news.tsv", "--behaviors", directory / "behaviors.tsv", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["impressions"] == n_imp
    assert out["evaluated"] == n_eval and out["undefined"] == n_imp - n_eval
    for key, value in counts.items():
        assert out[key] == value, key
    assert [out["auc"], out["mrr"], out["ndcg5"], out["ndcg10"]] == pytest.approx(want, abs=1e-12)
    return out


def test_eval_mind_popularity_on_mind_like_quirks():
    out = check_popularity(QUIRKS)
    assert out["impressions"] == 250 and out["undefined"] >= 1  # one only-click is not in news.tsv
    assert out["history_skipped"] > 0 and out["candidates_skipped"] > 0


def test_eval_mind_model_on_mind_like_quirks():
    """The recommender over odd titles (a zero-width space, U+FEFF, emoji, quotes,
    a title longer than the model's positions) and long histories: it runs,
    and counts what it skips as Python does."""
    _, n_eval, n_imp, counts = popularity_reference(QUIRKS / "news.tsv", QUIRKS / "behaviors.tsv")
    r = run("eval-mind", "--model", NEWSREC, "--news", QUIRKS / "news.tsv",
            "--behaviors", QUIRKS / "behaviors.tsv", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["impressions"], out["evaluated"]) == (n_imp, n_eval)
    for key, value in counts.items():
        assert out[key] == value, key
    assert all(0.0 <= out[k] <= 1.0 for k in ["auc", "mrr", "ndcg5", "ndcg10"])


def test_mind_quirks_fixture_is_what_its_generator_writes(tmp_path):
    subprocess.run(["python3", str(ROOT / "tools" / "make_mind_quirks.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=120)
    for name in ["news.tsv", "behaviors.tsv", "expected.json"]:
        assert (tmp_path / name).read_bytes() == (QUIRKS / name).read_bytes(), name


def test_eval_mind_popularity_on_the_real_sample():
    sample = mind_sample_dir()
    if sample is None:
        pytest.skip(NO_SAMPLE)
    out = check_popularity(sample)
    assert out["impressions"] == 5000
