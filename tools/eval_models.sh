#!/usr/bin/env bash
# eval_models.sh: measures the three default models with the C CLI on their
# test splits and prints each metric next to the value recorded in the model
# card (the `<!-- metrics: ... -->` line of models/X/README.md)
# (owner: models helper, issue 4). Exit status 1 if a measured value differs
# from the card by more than 0.0005, or a run fails.
#   tools/eval_models.sh [CLI=build/fastformer-cli] [MODELS=models] [DATA=data]
set -uo pipefail
cli=${1:-build/fastformer-cli}
models=${2:-models}
data=${3:-data}
status=0

card() { # card MODEL KEY -> recorded value
    sed -n 's/.*<!-- metrics:\(.*\)-->.*/\1/p' "$models/$1/README.md" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}
json_get() { # json_get KEY < json -> number
    python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)[sys.argv[1]])' "$1"
}
row() { # row MODEL METRIC KEY-IN-CARD MEASURED
    local rec
    rec=$(card "$1" "$3")
    local verdict
    verdict=$(python3 -c 'import sys
r, m = sys.argv[1], sys.argv[2]
print("ok" if r and abs(float(r) - float(m)) <= 0.0005 else "DIFFERS")' "${rec:-}" "$4")
    [ "$verdict" = ok ] || status=1
    printf '%-16s %-24s %10s %10s  %s\n' "$1" "$2" "$4" "${rec:-?}" "$verdict"
}

printf '%-16s %-24s %10s %10s\n' model metric "measured" "card"
for m in imdb-sentiment agnews-topic; do
    d=$([ "$m" = imdb-sentiment ] && echo imdb || echo agnews)
    if ! out=$("$cli" eval --model "$models/$m" --data "$data/$d/test.jsonl" --json); then
        echo "$m: eval failed" >&2; status=1; continue
    fi
    row "$m" accuracy accuracy "$(json_get accuracy <<<"$out")"
    row "$m" macro-F1 macro_f1 "$(json_get macro_f1 <<<"$out")"
done

ml=$data/movielens
m=movielens-rec
runs=("model:--model $models/$m" "popularity:--baseline popularity --train-behaviors $ml/train_behaviors.tsv"
      "random:--baseline random")
for r in "${runs[@]}"; do
    name=${r%%:*}
    # shellcheck disable=SC2086
    if ! out=$("$cli" eval-mind ${r#*:} --news "$ml/news.tsv" --behaviors "$ml/test_behaviors.tsv" --json); then
        echo "$m ($name): eval-mind failed" >&2; status=1; continue
    fi
    for k in auc mrr ndcg5 ndcg10; do
        row "$m" "$name $k" "${name}_$k" "$(json_get $k <<<"$out")"
    done
done
exit $status
