#!/usr/bin/python3
"""Measures what storing a model's word embedding table in int8 costs: the
table's bytes in F32, F16 and int8, the quantization error, and the model's
metrics with its own table and with the int8 one, both run through the C CLI
(README "int8 embeddings").

    /usr/bin/python3 tools/int8_compare.py --model DIR --data data/imdb/test.jsonl
    /usr/bin/python3 tools/int8_compare.py --model DIR --news data/movielens/news.tsv \\
        --behaviors data/movielens/test_behaviors.tsv

DIR is the model as trained (F32 or F16, not already int8). Its int8 twin
(the same files, with the table stored by tools/model_dir.py as export.py
--embedding-dtype I8 stores it, every other tensor in DIR's dtype) is
written to --out (default: a temporary directory). A classifier is scored
with `fastformer-cli eval` on --data, a recommender with `eval-mind` on
--news and --behaviors. Prints one table; --json prints one object instead.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_dir import (EMBEDDING_TABLES, dequantize_int8, load_safetensors, quantize_int8,  # noqa: E402
                       save_safetensors)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def header_dtypes(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return {k: v["dtype"] for k, v in header.items() if k != "__metadata__"}


def table_report(w, block):
    """Sizes and errors of w (V, D) stored as int8 with blocks of `block`."""
    V, D = w.shape
    q, scale = quantize_int8(w, block)
    err = dequantize_int8(q, scale) - w
    row_norm = w.norm(dim=1)
    nonzero = row_norm > 0
    rel = err.norm(dim=1)[nonzero] / row_norm[nonzero]
    return {"rows": V, "dim": D, "block": block or D,
            "f32_bytes": V * D * 4, "f16_bytes": V * D * 2,
            "i8_bytes": V * D + scale.numel() * 4,
            "max_abs_error": err.abs().max().item(),
            "rms_error": err.pow(2).mean().sqrt().item(),
            "rms_value": w.pow(2).mean().sqrt().item(),
            "mean_row_rel_error": rel.mean().item() if rel.numel() else 0.0,
            "max_row_rel_error": rel.max().item() if rel.numel() else 0.0}


def write_twin(src, out, table, dtype, block):
    """src's model directory with `table` in int8 and the rest as `dtype`."""
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(src):
        if name != "model.safetensors" and os.path.isfile(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(out, name))
    tensors = load_safetensors(os.path.join(src, "model.safetensors"))
    save_safetensors(tensors, os.path.join(out, "model.safetensors"), dtype, int8=[table], int8_block=block)


def run_cli(cli, args):
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "2")
    p = subprocess.run([cli, *args, "--json"], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"int8_compare.py: {cli} {' '.join(args)} failed:\n{p.stderr}")
    return json.loads(p.stdout)


def metrics(cli, model_dir, a):
    if a.data:
        out = run_cli(cli, ["eval", "--model", model_dir, "--data", a.data])
        return {k: out[k] for k in ("accuracy", "macro_f1")}
    out = run_cli(cli, ["eval-mind", "--model", model_dir, "--news", a.news, "--behaviors", a.behaviors])
    return {k: out[k] for k in ("auc", "mrr", "ndcg5", "ndcg10")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model directory (F32 or F16 table)")
    ap.add_argument("--data", help="classifier: labelled JSON lines for fastformer-cli eval")
    ap.add_argument("--news", help="recommender: news.tsv for fastformer-cli eval-mind")
    ap.add_argument("--behaviors", help="recommender: behaviors.tsv for fastformer-cli eval-mind")
    ap.add_argument("--block", type=int, help="int8 block size (default: one scale per row)")
    ap.add_argument("--out", help="where to write the int8 twin (default: a temporary directory)")
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "fastformer-cli"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    if not a.data and not (a.news and a.behaviors):
        ap.error("give --data (classifier) or --news and --behaviors (recommender)")
    torch.set_num_threads(1)

    dtypes = header_dtypes(os.path.join(a.model, "model.safetensors"))
    table = next((t for t in EMBEDDING_TABLES if t in dtypes), None)
    if table is None:
        sys.exit(f"int8_compare.py: {a.model}: no word embedding table")
    if dtypes[table] == "I8":
        sys.exit(f"int8_compare.py: {a.model}: the table is int8 already; give the F32 or F16 model")
    rest = sorted({d for t, d in dtypes.items() if t != table})
    dtype = rest[0] if len(rest) == 1 else "F32"

    w = load_safetensors(os.path.join(a.model, "model.safetensors"))[table]
    report = {"model": a.model, "table": table, "table_dtype": dtypes[table], "other_dtype": dtype,
              **table_report(w, a.block)}
    tmp = None
    out = a.out or (tmp := tempfile.mkdtemp(prefix="int8_compare_"))
    try:
        write_twin(a.model, out, table, dtype, a.block)
        report["file_bytes"] = os.path.getsize(os.path.join(a.model, "model.safetensors"))
        report["i8_file_bytes"] = os.path.getsize(os.path.join(out, "model.safetensors"))
        report["metrics"] = metrics(a.cli, a.model, a)
        report["i8_metrics"] = metrics(a.cli, out, a)
    finally:
        if tmp:
            shutil.rmtree(tmp)
    if a.json:
        print(json.dumps(report, indent=2))
        return
    r = report
    print(f"{r['model']}: {r['table']} {r['rows']} x {r['dim']} ({r['table_dtype']}), "
          f"int8 with one scale per {r['block']} elements")
    print(f"  table bytes   F32 {r['f32_bytes']:,}   F16 {r['f16_bytes']:,}   I8 {r['i8_bytes']:,} "
          f"({r['i8_bytes'] / (r['rows'] * r['dim']):.4f} B/element)")
    print(f"  file bytes    {r['file_bytes']:,} -> {r['i8_file_bytes']:,}")
    print(f"  error         max |err| {r['max_abs_error']:.3g}   rms {r['rms_error']:.3g} "
          f"(rms value {r['rms_value']:.3g})   row |err|/|row| mean {r['mean_row_rel_error']:.4f} "
          f"max {r['max_row_rel_error']:.4f}")
    print(f"  {'metric':<10} {r['table_dtype'] + ' table':>12} {'I8 table':>12} {'delta':>10}")
    for k, v in r["metrics"].items():
        v8 = r["i8_metrics"][k]
        print(f"  {k:<10} {v:>12.4f} {v8:>12.4f} {v8 - v:>+10.4f}")


if __name__ == "__main__":
    main()
