#!/usr/bin/python3
"""Writes tests/fixtures/ranking_cases.json: golden per-impression AUC, MRR,
nDCG@5 and nDCG@10 for tests/unit/test_ranking_metrics.c, computed the way the
MIND benchmark's evaluate.py computes them (numpy + sklearn's roc_auc_score),
independently of our C code.

    /usr/bin/python3 tools/make_ranking_fixtures.py [tests/fixtures/ranking_cases.json]

Needs numpy and sklearn (Debian: python3-numpy python3-sklearn).

Tie order: evaluate.py ranks with np.argsort(y_score)[::-1]. numpy's default
argsort is stable for arrays of up to 16 elements (insertion sort), so among
equal scores the later candidate ranks first; for longer arrays with ties its
order is an implementation detail. We record such cases with the stable order
(kind="stable"), mark them "tie_order": "stable", and check that the default
agrees everywhere else.
"""
import json
import sys

import numpy as np
from sklearn.metrics import roc_auc_score


# ---- evaluate.py's metrics, with the argsort kind made a parameter ----------

def dcg_score(y_true, y_score, k=10, kind="quicksort"):
    order = np.argsort(y_score, kind=kind)[::-1]
    y_true = np.take(y_true, order[:k])
    gains = 2 ** y_true - 1
    discounts = np.log2(np.arange(len(y_true)) + 2)
    return np.sum(gains / discounts)


def ndcg_score(y_true, y_score, k=10, kind="quicksort"):
    best = dcg_score(y_true, y_true, k, kind)
    actual = dcg_score(y_true, y_score, k, kind)
    return actual / best


def mrr_score(y_true, y_score, kind="quicksort"):
    order = np.argsort(y_score, kind=kind)[::-1]
    y_true = np.take(y_true, order)
    rr_score = y_true / (np.arange(len(y_true)) + 1)
    return np.sum(rr_score) / np.sum(y_true)


def metrics(labels, scores, kind):
    y_true = np.asarray(labels, dtype=np.int64)
    y_score = np.asarray(scores, dtype=np.float64)
    return {
        "auc": float(roc_auc_score(y_true, y_score)),
        "mrr": float(mrr_score(y_true, y_score, kind)),
        "ndcg5": float(ndcg_score(y_true, y_score, 5, kind)),
        "ndcg10": float(ndcg_score(y_true, y_score, 10, kind)),
    }


def f32(values):
    """Scores as float32 values (what the model produces), stored exactly."""
    return [float(v) for v in np.asarray(values, dtype=np.float32)]


def cases():
    rng = np.random.default_rng(20191112)
    out = [
        ("perfect", [0.9, 0.8, 0.1, 0.05], [1, 1, 0, 0]),
        ("reversed", [0.1, 0.2, 0.3, 0.4], [1, 1, 0, 0]),
        ("single_positive_first", [3.0, 1.0, 2.0, 0.5, -1.0], [1, 0, 0, 0, 0]),
        ("single_positive_last", [3.0, 1.0, 2.0, 0.5, -1.0], [0, 0, 0, 0, 1]),
        ("single_positive_middle", [0.5, 0.25, 0.75, 0.125], [0, 1, 0, 0]),
        ("single_negative", [0.5, 0.25, 0.75, 0.125], [1, 1, 0, 1]),
        ("two_candidates", [1.0, 2.0], [1, 0]),
        ("all_same_scores", [0.5] * 6, [0, 1, 0, 0, 1, 0]),
        ("all_same_positive_first", [0.0] * 4, [1, 0, 0, 0]),
        ("all_same_positive_last", [0.0] * 4, [0, 0, 0, 1]),
        ("tie_pos_neg", [0.7, 0.7, 0.2, 0.9], [1, 0, 0, 0]),
        ("tie_neg_pos", [0.7, 0.7, 0.2, 0.9], [0, 1, 0, 0]),
        ("ties_mixed", [2, 1, 2, 1, 3, 2, 1, 3, 0, 2], [1, 0, 0, 1, 0, 1, 0, 0, 0, 1]),
        ("negative_scores", [-1.5, -0.25, -3.0, -0.25, -2.0], [0, 1, 1, 0, 0]),
        ("ndcg5_cut", [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, -1, -2], [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]),
        ("ndcg10_cut", list(range(15, 0, -1)), [0] * 10 + [1] + [0] * 4),
        ("many_positives", [0.1 * i for i in range(12)], [1, 0] * 6),
    ]
    for i, n in enumerate([3, 5, 8, 13, 16, 20, 37, 60, 120]):
        labels = [0] * n
        for j in rng.choice(n, size=max(1, n // 8), replace=False):
            labels[int(j)] = 1
        if all(labels):
            labels[0] = 0
        out.append((f"random_{n}", rng.normal(size=n), labels))
    for n in [14, 25, 48]:  # heavy ties on a coarse grid
        labels = [int(v) for v in rng.random(n) < 0.3]
        labels[0], labels[1] = 1, 0
        out.append((f"coarse_ties_{n}", rng.integers(0, 4, size=n) * 0.5, labels))
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/ranking_cases.json"
    rows, sums = [], {"auc": 0.0, "mrr": 0.0, "ndcg5": 0.0, "ndcg10": 0.0}
    for name, scores, labels in cases():
        scores = f32(scores)
        default = metrics(labels, scores, "quicksort")
        stable = metrics(labels, scores, "stable")
        row = {"name": name, "scores": scores, "labels": labels, **stable}
        if default != stable:
            assert len(scores) > 16, f"{name}: default argsort differs from stable at n <= 16"
            row["tie_order"] = "stable"
        rows.append(row)
        for key in sums:
            sums[key] += stable[key]
    mean = {key: value / len(rows) for key, value in sums.items()}
    doc = {
        "source": "tools/make_ranking_fixtures.py (numpy %s, sklearn roc_auc_score)" % np.__version__,
        "cases": rows,
        "mean": mean,
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{path}: {len(rows)} cases")


if __name__ == "__main__":
    main()
