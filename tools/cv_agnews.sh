#!/usr/bin/env bash
# cv_agnews.sh: chooses the topic model's training recipe by k-fold cross-validation (k = $CV_K,
# default 2) over AG News train + validation (tools/agnews_folds.py; the test rows are never read)
# (owner: training helper, issue 13).
#
# Recipes (the card's command, each fold's files in place of the model's):
#   once   titles once: --train full,titles,crops (the model's recipe before issue 13's third session)
#   twice  titles counted twice: --train full,titles,titles,crops
#   factored  once + the descriptions' later sentences (train_sentences.jsonl), --label-smoothing 0.1 and
#          --glove-factored --max-vocab 75000 (the model's recipe since issue 13's seventh session)
# Seeds: $CV_SEEDS (default 1234); a run with another seed than 1234 is named RECIPE-foldI-sSEED.
# Fold by fold, each (recipe, fold) trains 5 epochs from GloVe and writes its curve (held-out accuracy on the
# fold's full texts and titles every half epoch) to data/agnews-cvK/RECIPE-foldI.curve; a finished
# run is not run again, a cut one resumes from its checkpoint. The summary prints, per recipe, the held-out accuracies
# at the last step (the recipe's end point: no choice made on the held-out rows) and at each half
# epoch, averaged over the folds. Decision rule, fixed before any run: the recipe with the higher
# mean of the two accuracies at the last step; "once" unless "twice" is higher by more than 0.001.
# Seventh session's rule (fixed before its runs): "factored" replaces "once" if, over 2 folds x seeds 1234,
# 1235 and 1236, its mean is higher by more than 0.001 and its full-text accuracy lower by at most 0.003.
#   OPENBLAS_NUM_THREADS=1 nice -n 19 tools/cv_agnews.sh [RECIPE...]
set -euo pipefail
cd "$(dirname "$0")/.."
k=${CV_K:-2}
cv=data/agnews-cv$k
[ -f $cv/fold$((k - 1))/valid.jsonl ] || python3 tools/agnews_folds.py data/agnews-test/test.csv $cv --k "$k" >/dev/null
recipes=("$@")
[ "${#recipes[@]}" -gt 0 ] || recipes=(once twice)
for seed in ${CV_SEEDS:-1234}; do
for fold in $(seq 0 $((k - 1))); do
    for recipe in "${recipes[@]}"; do
        d=$cv/fold$fold
        extra=()
        case $recipe in
        once) train=$d/train.jsonl,$d/train_titles.jsonl,$d/train_crops.jsonl ;;
        twice) train=$d/train.jsonl,$d/train_titles.jsonl,$d/train_titles.jsonl,$d/train_crops.jsonl ;;
        factored)
            train=$d/train.jsonl,$d/train_titles.jsonl,$d/train_crops.jsonl,$d/train_sentences.jsonl
            extra=(--label-smoothing 0.1 --glove-factored --max-vocab 75000) ;;
        *) echo "cv_agnews.sh: unknown recipe $recipe" >&2; exit 2 ;;
        esac
        run=$recipe-fold$fold
        [ "$seed" = 1234 ] || run=$run-s$seed
        [ ! -f "$cv/$run.done" ] || continue
        /usr/bin/python3 tools/train_classifier.py --train "$train" \
            --valid $d/valid.jsonl,$d/valid_titles.jsonl --labels World,Sports,Business,Sci/Tech \
            --max-len 128 --min-count 2 --max-vocab 30000 --glove data/glove --freeze-embedding --epochs 5 \
            --batch 64 --lr 1e-3 --lr-decay linear --evals-per-epoch 2 --seed "$seed" --dtype F16 \
            --embedding-dtype I8 --checkpoint "$cv/$run.ckpt" --curve "$cv/$run.curve" \
            --out "$cv/$run.model" "${extra[@]}" | grep --line-buffered -E '^(vocab|valid|best|resumed)'
        touch "$cv/$run.done"
    done
done
done
python3 - "$cv" <<'EOF'
import collections, glob, os, sys
cv = sys.argv[1]
for recipe in ("once", "twice", "factored"):
    curves = sorted(glob.glob(os.path.join(cv, recipe + "-fold*.curve")))
    if not curves:
        continue
    by_epoch = collections.defaultdict(list)
    last = []
    for path in curves:
        rows = [line.split("\t") for line in open(path) if line.strip()]
        for r in rows:
            by_epoch[float(r[1])].append((float(r[4]), float(r[5])))
        last.append((float(rows[-1][4]), float(rows[-1][5]), os.path.basename(path), rows[-1][1]))
    full = sum(x[0] for x in last) / len(last)
    titles = sum(x[1] for x in last) / len(last)
    print(f"{recipe}: {len(last)} folds, last step: full {full:.4f} titles {titles:.4f} mean {(full + titles) / 2:.4f}")
    for x in last:
        print(f"  {x[2]} (epoch {x[3]}): full {x[0]:.4f} titles {x[1]:.4f}")
    for e in sorted(by_epoch):
        v = by_epoch[e]
        f, t = sum(x[0] for x in v) / len(v), sum(x[1] for x in v) / len(v)
        print(f"  epoch {e:.2f} ({len(v)} folds): full {f:.4f} titles {t:.4f} mean {(f + t) / 2:.4f}")
EOF
