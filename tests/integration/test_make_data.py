"""tools/make_data.sh (`make data`): the committed MovieLens data set
reproduces the split the movielens-rec card records, and every way a data set
can be missing or wrong stops with a message that names what to download and
from where. Runs offline (DATA_OFFLINE=1) into temporary directories
(DATA_DIR), never into the checkout's data/."""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "make_data.sh"
CARD = ROOT / "models" / "movielens-rec" / "README.md"


def make_data(tmp_path, *names, src=None):
    env = {k: v for k, v in os.environ.items() if k != "DATA_SRC"}
    env.update(DATA_DIR=str(tmp_path / "data"), DATA_OFFLINE="1")
    if src is not None:
        env["DATA_SRC"] = str(src)
    return subprocess.run([str(SCRIPT), *names], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)


def test_committed_movielens_gives_the_split_in_its_card(tmp_path):
    r = make_data(tmp_path, "movielens")
    assert r.returncode == 0, r.stderr
    assert "make data: movielens: datasets/movielens-small (committed)" in r.stdout
    card = CARD.read_text()
    split = (tmp_path / "data" / "movielens" / "SPLITS.txt").read_text()
    for name in ["news.tsv", "train_behaviors.tsv", "valid_behaviors.tsv", "test_behaviors.tsv"]:
        want = re.search(rf"{re.escape(name)} `([0-9a-f]{{64}})`", card).group(1)
        assert re.search(rf"^{want}  {re.escape(name)}  ", split, re.M), name


def test_committed_pros_cons_gives_the_split_in_the_sentiment_card(tmp_path):
    r = make_data(tmp_path, "pros-cons")
    assert r.returncode == 0, r.stderr
    assert "make data: pros-cons: datasets/pros-cons (committed)" in r.stdout
    card = (ROOT / "models" / "review-sentiment" / "README.md").read_text()
    card = card[card.index("**Pros and cons**"):card.index("**Amazon Fine Foods**")]
    split = (tmp_path / "data" / "pros-cons" / "SPLITS.txt").read_text()
    for name in ["train.jsonl", "valid.jsonl", "test.jsonl"]:
        want = re.search(rf"{re.escape(name)} `([0-9a-f]{{64}})`", card).group(1)
        assert re.search(rf"^{want}  {re.escape(name)}  ", split, re.M), name


def test_unknown_data_set(tmp_path):
    r = make_data(tmp_path, "bogus")
    assert r.returncode == 1
    assert "make data: unknown data set 'bogus' (known: imdb agnews movielens mind-sample mind pros-cons fine-foods glove negations sentences)" \
        in r.stderr


def test_no_source_names_what_to_download_and_where(tmp_path):
    r = make_data(tmp_path, "agnews")
    assert r.returncode == 1
    assert ("make data: agnews: no source has it (not in %s/agnews-test/, DATA_SRC not set; "
            "download failed)." % (tmp_path / "data")) in r.stderr
    assert "https://drive.google.com/file/d/0Bz8a_Dbh9QhbUDNpeUdjb0wxRms/view" in r.stderr
    assert ("Put test.csv, classes.txt, readme.txt in DIR/agnews-test/ and run: "
            "make data DATA_SRC=DIR") in r.stderr
    assert not (tmp_path / "data" / "agnews").exists()


def test_local_copy_that_does_not_match_the_pins(tmp_path):
    src = tmp_path / "src" / "agnews-test"
    src.mkdir(parents=True)
    for name in ["test.csv", "classes.txt", "readme.txt"]:
        (src / name).write_text("not the real file\n")
    r = make_data(tmp_path, "agnews", src=src.parent)
    assert r.returncode == 1
    assert "test.csv: FAILED" in r.stderr and "classes.txt: FAILED" in r.stderr
    assert f"make data: agnews: {src}/ does not match the pinned sha256 sums (above)." in r.stderr
    assert "Xiang Zhang's AG News files" in r.stderr
    assert not (tmp_path / "data" / "agnews").exists()  # nothing was prepared


def test_local_copy_missing_a_file(tmp_path):
    src = tmp_path / "src" / "mind-sample"
    src.mkdir(parents=True)
    (src / "news.tsv").write_text("N1\tc\ts\tT\n")
    r = make_data(tmp_path, "mind-sample", src=src.parent)
    assert r.returncode == 1
    assert f"make data: mind-sample: {src}/ has no behaviors.tsv." in r.stderr


def test_optional_sample_without_a_source_is_skipped(tmp_path):
    r = make_data(tmp_path, "mind-sample")
    assert r.returncode == 0, r.stderr
    assert "make data: mind-sample: skipped (not in" in r.stdout
    assert "it has no public source" in r.stdout


def test_mind_without_a_source_or_a_stand_in(tmp_path):
    r = make_data(tmp_path, "mind", src=tmp_path / "empty")
    assert r.returncode == 1
    assert "make data: mind: no source has it (" in r.stderr
    assert "https://mind201910small.blob.core.windows.net/release/MINDsmall_train.zip" in r.stderr
    assert "Put news.tsv, behaviors.tsv in DIR/mind-small/" in r.stderr


@pytest.mark.parametrize("bad_row", [False, True])
def test_mind_from_a_local_copy_is_checked_by_known_rows(tmp_path, bad_row):
    """A full MIND small cannot be pinned by sha256 here; its news.tsv must hold
    three known rows. Without them it is rejected; the rows are not in this
    repository, so only the rejection can be tested offline."""
    src = tmp_path / "src" / "mind-small"
    src.mkdir(parents=True)
    (src / "news.tsv").write_text("N34700\tnews\tnewspolitics\tSome other title\n" if bad_row else "")
    (src / "behaviors.tsv").write_text("")
    r = make_data(tmp_path, "mind", src=src.parent)
    assert r.returncode == 1
    assert "news.tsv: the row of N34700 is missing or differs" in r.stderr
    assert "news.tsv: the row of N47171 is missing or differs" in r.stderr
    assert f"make data: mind: {src}/ does not match the pinned sha256 sums (above)." in r.stderr


def test_the_mind_sample_stands_in_for_mind_small(tmp_path):
    """With the test sample in DATA_SRC (or data/), make data copies it, checks
    it against its pins and lets it stand in for MIND small, which it never
    replaces: data/mind-small stays empty. Needs the sample."""
    roots = [ROOT / "data"] + ([Path(os.environ["DATA_SRC"])] if os.environ.get("DATA_SRC") else [])
    roots = [r if r.is_absolute() else ROOT / r for r in roots]
    root = next((r for r in roots if (r / "mind-sample").is_dir()), None)
    if root is None:
        pytest.skip("no MIND sample: run make data or set DATA_SRC")
    r = make_data(tmp_path, "mind", src=root)
    assert r.returncode == 0, r.stderr
    # the script names DATA_SRC as `cd DIR && pwd` does: absolute, with no `..`
    assert f"make data: mind-sample: copied {os.path.normpath(root)}/mind-sample/ to " in r.stdout
    assert "make data: mind: not made (download failed); the mind-sample data set stands in" in r.stdout
    assert (tmp_path / "data" / "mind-sample" / "behaviors.tsv").is_file()
    assert not (tmp_path / "data" / "mind-small").exists()


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sentences_are_made_from_the_prepared_imdb_and_fine_foods_splits(tmp_path):
    """`sentences` downloads nothing: it cuts the prepared IMDB and Fine Foods splits (here small
    made-up ones, more positive than negative) into short texts, one per review, balanced by label."""
    def review(tag, i):  # two sentences of 4-25 words, one of 3 and one of 30; each names its review
        return (f"The film {tag}{i} had a plot I could follow. Then {tag}{i} ended! "
                + " ".join(["long"] * 29) + f" {tag}{i}. The cast of {tag}{i} was fine, and the music too?")
    data = tmp_path / "data"
    imdb_train = [{"text": review("t", i), "label": int(i % 4 != 0)} for i in range(40)]
    imdb_valid = [{"text": review("v", i), "label": int(i % 3 != 0)} for i in range(10)]
    foods = [{"text": f"f{i} " + " ".join(f"w{j}" for j in range(19)), "label": int(i % 3 != 0)} for i in range(21)]
    foods += [{"text": f"f{i} too short here", "label": 0} for i in range(21, 25)]  # under 6 words: no crop
    write_rows(data / "imdb" / "train.jsonl", imdb_train)
    write_rows(data / "imdb" / "valid.jsonl", imdb_valid)
    write_rows(data / "fine-foods" / "train.jsonl", foods)
    r = make_data(tmp_path, "sentences")
    assert r.returncode == 0, r.stderr
    assert "make data: sentences: made from other data sets" in r.stdout
    train = read_rows(data / "sentences" / "train.jsonl")
    valid = read_rows(data / "sentences" / "valid.jsonl")
    by_tag = {f"t{i}": r for i, r in enumerate(imdb_train)} | {f"v{i}": r for i, r in enumerate(imdb_valid)}
    by_tag |= {f"f{i}": r for i, r in enumerate(foods)}

    def source(text):
        tags = set(re.findall(r"\b[tvf]\d+\b", text))
        assert len(tags) == 1, text
        return tags.pop()

    imdb = [(source(x["text"]), x) for x in train if not x["text"].startswith("f")]
    crops = [(source(x["text"]), x) for x in train if x["text"].startswith("f")]
    # IMDB: one sentence of 4 to 25 words per review, its review's label, balanced (10 negative reviews)
    assert len(imdb) == 20 and sorted(x["label"] for _, x in imdb) == [0] * 10 + [1] * 10
    assert len({t for t, _ in imdb}) == 20 and all(t.startswith("t") for t, _ in imdb)
    for t, x in imdb:
        assert x["text"] in by_tag[t]["text"] and x["label"] == by_tag[t]["label"]
        assert x["text"] in (f"The film {t} had a plot I could follow.",
                             f"The cast of {t} was fine, and the music too?")
    # Fine Foods: one crop of 6 to 16 words from each review's start, balanced (7 negative reviews)
    assert len(crops) == 14 and sorted(x["label"] for _, x in crops) == [0] * 7 + [1] * 7
    for t, x in crops:
        assert by_tag[t]["text"].startswith(x["text"] + " ") and 6 <= len(x["text"].split()) <= 16
        assert x["label"] == by_tag[t]["label"] and int(t[1:]) < 21
    # validation: one sentence of each of the sampled validation reviews, balanced, none trained on
    assert len(valid) == 8 and sorted(x["label"] for x in valid) == [0] * 4 + [1] * 4
    assert all(source(x["text"]).startswith("v") for x in valid) and len({source(x["text"]) for x in valid}) == 8
    assert "20 IMDB sentences + 14 Fine Foods crops" in (data / "sentences" / "SPLITS.txt").read_text()
    # seeded: made again, the files are the same, byte for byte
    first = {n: (data / "sentences" / n).read_bytes() for n in ("train.jsonl", "valid.jsonl")}
    r = make_data(tmp_path, "sentences")
    assert r.returncode == 0, r.stderr
    assert {n: (data / "sentences" / n).read_bytes() for n in first} == first


def test_sentences_without_imdb_stops_where_imdb_is_missing(tmp_path):
    r = make_data(tmp_path, "sentences")
    assert r.returncode == 1
    assert "make data: imdb: no source has it (" in r.stderr
    assert not (tmp_path / "data" / "sentences").exists()
