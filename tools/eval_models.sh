#!/usr/bin/env bash
# eval_models.sh (make eval): measures the three default models with the C CLI
# on their held-out test splits and prints, per metric, the measured value, the
# value recorded in the model card (the `<!-- metrics: ... -->` line of
# models/X/README.md) and the issue 13 target with its verdict
# (owners: models helper, issue 4; training helper, issue 13).
# Exit status 1 if a measured value differs from its card by more than 0.0005,
# a run fails, or a target is missed.
#   tools/eval_models.sh [CLI=build/fastformer-cli] [MODELS=models] [DATA=data]
set -uo pipefail
cli=${1:-build/fastformer-cli}
models=${2:-models}
data=${3:-data}
status=0
missed=0
SENTIMENT=review-sentiment
TOPIC=agnews-topic
RECOMMENDER=movielens-rec

card() { # card MODEL KEY -> recorded value
    sed -n 's/.*<!-- metrics:\(.*\)-->.*/\1/p' "$models/$1/README.md" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
json_get() { # json_get KEY < json -> number
    python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)[sys.argv[1]])' "$1"
}
# row MODEL METRIC KEY-IN-CARD MEASURED [TARGET]: TARGET is ">=X" (a floor),
# ">A,B" (above each of these measured values), or empty (reported only).
row() {
    local rec verdict target=${5:-}
    rec=$(card "$1" "$3")
    verdict=$(python3 -c 'import sys
r, m, t = sys.argv[1], float(sys.argv[2]), sys.argv[3]
card = "ok" if r and abs(float(r) - m) <= 0.0005 else "DIFFERS"
if not t:
    goal = "reported"
elif t.startswith(">="):
    goal = "met" if m >= float(t[2:]) else "MISSED"
else:
    goal = "met" if all(m > float(x) for x in t[1:].split(",")) else "MISSED"
print(card, goal)' "${rec:-}" "$4" "$target")
    [ "${verdict% *}" = ok ] || status=1
    [ "${verdict#* }" != MISSED ] || missed=$((missed + 1))
    printf '%-16s %-40s %9s %9s  %-5s %-14s %s\n' "$1" "$2" "$4" "${rec:-?}" "${verdict% *}" \
        "${target:-(report)}" "${verdict#* }"
}
classify() { # classify MODEL LABEL FILE CARD-PREFIX TARGET
    local out
    if ! out=$("$cli" eval --model "$models/$1" --data "$data/$3" --json); then
        echo "$1: eval on $3 failed" >&2
        status=1
        return
    fi
    row "$1" "$2 accuracy" "${4}accuracy" "$(json_get accuracy <<<"$out")" "$5"
    row "$1" "$2 macro-F1" "${4}macro_f1" "$(json_get macro_f1 <<<"$out")"
}

printf '%-16s %-40s %9s %9s  %-5s %-14s %s\n' model metric measured card "" target verdict
classify "$SENTIMENT" "IMDB test" imdb/test.jsonl imdb_ ">=0.90"
classify "$SENTIMENT" "pros/cons held-out" pros-cons/test.jsonl proscons_ ">=0.90"
classify "$SENTIMENT" "Fine Foods test (cross-dom.)" fine-foods/test.jsonl finefoods_ ""
classify "$TOPIC" "AG News test" agnews/test.jsonl "" ">=0.89"
classify "$TOPIC" "AG News test, titles only" agnews/test_titles.jsonl titles_ ">=0.85"

ml=$data/movielens
runs=("random:--baseline random" "popularity:--baseline popularity --train-behaviors $ml/train_behaviors.tsv"
      "model:--model $models/$RECOMMENDER")
declare -A got
for r in "${runs[@]}"; do
    name=${r%%:*}
    # shellcheck disable=SC2086
    if ! out=$("$cli" eval-mind ${r#*:} --news "$ml/news.tsv" --behaviors "$ml/test_behaviors.tsv" --json); then
        echo "$RECOMMENDER ($name): eval-mind failed" >&2
        status=1
        continue
    fi
    for k in auc mrr ndcg5 ndcg10; do
        got[$name.$k]=$(json_get $k <<<"$out")
        target=""
        if [ "$name" = model ]; then # beats popularity and random on every metric; AUC >= 0.78 too
            target=">${got[popularity.$k]:-1},${got[random.$k]:-1}"
            [ $k != auc ] || row "$RECOMMENDER" "model auc, absolute" model_auc "${got[model.auc]}" ">=0.78"
        fi
        row "$RECOMMENDER" "$name $k" "${name}_$k" "${got[$name.$k]}" "$target"
    done
done
if [ $missed -gt 0 ]; then
    echo "make eval: $missed target(s) missed"
    status=1
fi
exit $status
