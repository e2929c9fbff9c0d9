"""BERT uncased WordPiece tokenizer in Python (owner: models helper, issue 4),
with Hugging Face's BertNormalizer + BertPreTokenizer + WordPiece semantics:
clean text (drop NUL, U+FFFD and control characters, whitespace -> space),
spaces around CJK ideographs, when lowercasing also strip accents (NFD, drop
Mn) and lowercase each character, split on whitespace and on every
punctuation character, then greedy longest-match WordPiece with `##`
continuations ([UNK] for a word with no match or longer than 100 chars).
Used by train_classifier.py --tokenizer wordpiece; checked against the
Hugging Face fixtures in tests/fixtures/tokenizer/."""
import unicodedata

_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def _is_control(c):
    return c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs")  # not Cn (kept)


def _is_punct(c):
    o = ord(c)
    return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126 or \
        unicodedata.category(c).startswith("P")


def _is_cjk(c):
    o = ord(c)
    return any(a <= o <= b for a, b in _CJK)


def normalize(text, lowercase=True):
    out = []
    for c in text:
        if c == "\0" or c == "\ufffd" or _is_control(c):
            continue
        if _is_whitespace(c):
            out.append(" ")
        elif _is_cjk(c):
            out.append(" " + c + " ")
        else:
            out.append(c)
    text = "".join(out)
    if lowercase:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        text = "".join(c.lower() for c in text)
    return text


def pre_tokenize(text):
    words = []
    for chunk in text.split():
        cur = []
        for c in chunk:
            if _is_punct(c):
                if cur:
                    words.append("".join(cur))
                    cur = []
                words.append(c)
            else:
                cur.append(c)
        if cur:
            words.append("".join(cur))
    return words


class WordPiece:
    def __init__(self, vocab, unk="[UNK]", max_chars=100):
        self.index = {w: i for i, w in enumerate(vocab)}
        self.unk = unk
        self.max_chars = max_chars

    def word_pieces(self, word):
        if len(word) > self.max_chars:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                sub = ("##" if start else "") + word[start:end]
                if sub in self.index:
                    break
                end -= 1
            if end == start:
                return [self.unk]
            pieces.append(("##" if start else "") + word[start:end])
            start = end
        return pieces

    def tokenize(self, text, lowercase=True):
        return [p for w in pre_tokenize(normalize(text, lowercase)) for p in self.word_pieces(w)]

    def encode(self, text, max_len, lowercase=True):
        return [self.index[p] for p in self.tokenize(text, lowercase)[:max_len]]
