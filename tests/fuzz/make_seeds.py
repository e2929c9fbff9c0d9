#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Seeds are small, valid (or nearly valid) inputs that show the fuzzer each
format's structure: safetensors files built here byte by byte, the fixture
config.json files, the tokenizer fixture vocabularies and texts, the conf/
YAML, MIND rows of the mind-quirks and mind-tiny fixtures (the same seeds on
every machine) and one request per route. Files named seed-* are rewritten
on every run; crash-* files (regressions) are left alone.
Run from the repository root: python3 tests/fuzz/make_seeds.py
"""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
FIX = os.path.join(ROOT, "tests", "fixtures")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def clear(target):
    d = os.path.join(CORPUS, target)
    if os.path.isdir(d):
        for n in os.listdir(d):
            if n.startswith("seed-"):
                os.remove(os.path.join(d, n))


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


# ---- safetensors ---------------------------------------------------------------
def safetensors(tensors, metadata=None, pad_to=8):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % pad_to)
    return struct.pack("<Q", len(h)) + h + data


def seeds_safetensors():
    t = "safetensors"
    clear(t)
    f32 = struct.pack("<6f", 1, -2, 0.5, 3e38, -0.0, 1e-40)
    write(t, "f32", safetensors([("w", "F32", [2, 3], f32)]))
    write(t, "f16-bf16-meta", safetensors(
        [("embeddings.word_embeddings.weight", "F16", [2, 2], struct.pack("<4H", 0x3c00, 0x7c00, 0xfc00, 0x7e00)),
         ("classifier.bias", "BF16", [3], struct.pack("<3H", 0x3f80, 0x7f80, 0x0001))],
        metadata={"format": "pt"}))
    write(t, "scalar", safetensors([("s", "F32", [], struct.pack("<f", 7.0))]))
    write(t, "zero-size", safetensors([("z", "F32", [0, 4], b""), ("y", "BF16", [1], b"\x80\x3f")]))
    write(t, "empty-header", safetensors([]))
    write(t, "three-dims", safetensors([("a.b.c", "F32", [1, 2, 2], bytes(16)),
                                        ("a.b.d", "F16", [4, 1, 1, 1], bytes(8))]))
    # int8 embedding tables (README "int8 embeddings"): NAME I8 [V, D] + NAME_scale F32 [V, G].
    q = bytes([0, 0, 0, 0, 1, 0x7f, 0x80, 0xff, 5, 6, 7, 8])
    write(t, "i8-per-row", safetensors(
        [("word_embedding.weight_scale", "F32", [3, 1], struct.pack("<3f", 0, 0.5, 1e-3)),
         ("word_embedding.weight", "I8", [3, 4], q)]))
    write(t, "i8-blocks", safetensors(
        [("news_encoder.word_embedding.weight_scale", "F32", [3, 2], struct.pack("<6f", 0, 0, 1, 2, 3.4e38, 4)),
         ("news_encoder.word_embedding.weight", "I8", [3, 4], q)]))
    write(t, "i8-bad-scale", safetensors(
        [("w", "I8", [2, 2], bytes([1, 2, 3, 4])),
         ("w_scale", "F32", [2, 1], struct.pack("<2f", float("nan"), -1.0))]))
    write(t, "i8-no-scale", safetensors([("w", "I8", [2, 2], bytes([1, 2, 3, 4])),
                                         ("x_scale", "F16", [2, 1], bytes(4))]))
    # factored: NAME I8 [V, K] + NAME_scale F32 [V, G] + NAME_projection F32 [D, K]
    write(t, "i8-factored", safetensors(
        [("word_embedding.weight_projection", "F32", [3, 2], struct.pack("<6f", 1, 0, 0, -1, 0.5, 2)),
         ("word_embedding.weight_scale", "F32", [3, 1], struct.pack("<3f", 0, 0.5, 1e30)),
         ("word_embedding.weight", "I8", [3, 2], bytes([0, 0, 1, 0x80, 0x7f, 0xff]))]))


# ---- config.json --------------------------------------------------------------
def seeds_config():
    t = "config"
    clear(t)
    for d in ("classifier_f32", "classifier_bf16", "newsrec"):
        write(t, d, read(os.path.join(FIX, d, "config.json")))
    cfg = json.loads(read(os.path.join(FIX, "classifier_f32", "config.json")))
    cfg["tokenizer"] = {"type": "wordpiece", "lowercase": False}
    cfg["id2label"] = {"0": "a", "1": "b"}
    write(t, "wordpiece", json.dumps(cfg))
    minimal = {"architectures": ["FastformerForSequenceClassification"], "hidden_size": 4,
               "num_attention_heads": 2, "intermediate_size": 4, "num_hidden_layers": 1,
               "max_position_embeddings": 2, "vocab_size": 3, "id2label": {"0": "x"}}
    write(t, "minimal", json.dumps(minimal))


# ---- vocab.txt ------------------------------------------------------------------
def seeds_vocab():
    t = "vocab"
    clear(t)
    write(t, "word", read(os.path.join(FIX, "tokenizer", "word-vocab.txt"), "rb"))
    bert = read(os.path.join(FIX, "tokenizer", "bert-base-uncased-vocab.txt"), "rb").split(b"\n")
    write(t, "bert-head", b"\n".join(bert[:120]) + b"\n")
    write(t, "bert-tail", b"\n".join(bert[-80:]))
    write(t, "crlf-dups-empty", b"[PAD]\r\n[UNK]\r\nthe\r\n\r\nthe\r\n##s\r\nna\x00me\r\n")


# ---- YAML settings ----------------------------------------------------------------
def seeds_settings():
    t = "settings"
    clear(t)
    write(t, "default", read(os.path.join(ROOT, "conf", "fastformerd.yaml")))
    write(t, "every-key", """server:
  listen: "[::1]:9090"
  max_connections: 10
  max_body_bytes: 4096
  request_timeout_ms: 1500
  connection_timeout_s: 5
  drain_timeout_s: 0
  api_key: "s3cret key"
  cors_allow_origins: ["https://app.example.com", "*", "http://[::1]:3000"]
  model_control: true
batching: {max_batch_size: 64, max_batch_tokens: 16384, max_queue_delay_us: 0, max_queue: 7, workers: 1, blas_threads: 2}
logging:
  format: json
  level: debug
models:
  - name: review-sentiment
    path: ../models/review-sentiment
  - {name: mind_rec.v2, path: /abs/models/rec, max_batch_size: 8, max_batch_tokens: 512, news_catalog: data/news.tsv, news_cache_entries: 0}
""")
    write(t, "minimal", "models:\n  - name: a\n    path: m\n")
    write(t, "anchors", "x: &a 1\nserver:\n  max_queue: *a\n")
    write(t, "empty", "")


# ---- tokenizers ----------------------------------------------------------------------
def seeds_tokenizer(target, cases_file):
    clear(target)
    cases = json.loads(read(os.path.join(FIX, "tokenizer", cases_file)))["cases"]
    seen = set()
    for c in cases:
        text = c["text"]
        if text in seen or len(text.encode("utf-8", "surrogatepass")) > 600:
            continue
        seen.add(text)
        limit = min(c.get("max_ids", 64), 127)
        head = bytes([(limit << 1) | (1 if c.get("lowercase", True) else 0)])
        name = "".join(ch if ch.isalnum() else "-" for ch in c["name"])[:40]
        write(target, name, head + text.encode("utf-8", "surrogatepass"))
    write(target, "invalid-utf8", b"\x81ok \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80")


# ---- MIND ----------------------------------------------------------------------------------
def head_lines(path, n, skip=0):
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    return lines[skip:skip + n]


def seeds_mind():
    src = os.path.join(FIX, "mind-quirks")  # MIND-like rows: entities JSON, odd text
    t = "mind_news"
    clear(t)
    rows = head_lines(os.path.join(src, "news.tsv"), 3)
    rows = [r[:700] if len(r) > 700 else r for r in rows]  # keep seeds small; columns stay
    write(t, "quirks", b"\n".join(rows) + b"\n")
    write(t, "quirks-crlf", b"\r\n".join(rows[:2]))
    write(t, "tiny", b"\n".join(head_lines(os.path.join(FIX, "mind-tiny", "news.tsv"), 4)) + b"\n")
    write(t, "short-and-dup", b"N1\tc\ts\tT\nN2\tc\ts\tTitle two\tabs\n\nN1\tc\ts\tagain\n")
    t = "mind_behaviors"
    clear(t)
    rows = head_lines(os.path.join(src, "behaviors.tsv"), 3)
    out = []
    for r in rows:  # shorten long histories, keep the 5 columns
        cols = r.split(b"\t")
        if len(cols) == 5:
            cols[3] = b" ".join(cols[3].split(b" ")[:6])
            cols[4] = b" ".join(cols[4].split(b" ")[:6])
        out.append(b"\t".join(cols))
    write(t, "quirks", b"\n".join(out) + b"\n")
    write(t, "tiny", b"\n".join(head_lines(os.path.join(FIX, "mind-tiny", "behaviors.tsv"), 3)) + b"\n")
    write(t, "empty-history-crlf", b"1\tU1\t11/15/2019 8:55:22 AM\t\tN1-1 N2-0\r\n2\tU2\t\tN1  N3\tN4-0\r\n")


# ---- API requests (byte 0 picks the route, see fuzz_api.c) -------------------------------
def seeds_api():
    """One request per route of server/api_routes.def, as "METHOD PATH\\n" + body
    (fuzz_api.c). Models: cls (classifier), rec (recommender with a catalog and a
    news cache), bare (recommender without either); others are unknown."""
    t = "api"
    clear(t)
    seeds = {
        "classify-texts": ("POST /v1/models/cls/classify",
                           {"inputs": ["a great film", "terrible acting!", ""]}),
        "classify-ids": ("POST /v1/models/cls/classify",
                         {"inputs": [{"input_ids": [1, 2, 3, 0, 0]}, "ok"], "truncate": False}),
        "classify-wrong-task": ("POST /v1/models/rec/classify", {"inputs": ["x"]}),
        "embed-cls": ("POST /v1/models/cls/embed", {"inputs": ["one", {"input_ids": [5]}]}),
        "embed-rec": ("POST /v1/models/rec/embed", {"inputs": ["oil bank has bank to as says"]}),
        "recommend": ("POST /v1/models/rec/recommend",
                      {"history": [{"news_id": "N101"}, "oil bank says"],
                       "candidates": [{"news_id": "N102"}, {"input_ids": [3, 4]}, "report"],
                       "top_k": 2}),
        "recommend-empty-history": ("POST /v1/models/rec/recommend",
                                    {"history": [], "candidates": [{"news_id": "N103"}],
                                     "truncate": True}),
        "recommend-wrong-task": ("POST /v1/models/cls/recommend", {"history": [], "candidates": ["x"]}),
        "news-put": ("PUT /v1/models/rec/news/Nfz", {"title": "a new story about oil"}),
        "news-replace": ("PUT /v1/models/rec/news/N101", {"title": "To world league after from oil"}),
        "oip-text": ("POST /v2/models/cls/infer",
                     {"id": "r1", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2, 1],
                                              "data": [["hello"], ["world"]]}]}),
        "oip-ids": ("POST /v2/models/cls/infer",
                    {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [2, 3],
                                 "data": [1, 2, 3, 4, 5, 0]}],
                     "outputs": [{"name": "probabilities"}, {"name": "embeddings"}],
                     "parameters": {"truncate": False}}),
        "oip-rec-int32": ("POST /v2/models/rec/infer",
                          {"inputs": [{"name": "input_ids", "datatype": "INT32", "shape": [1, 2],
                                       "data": [[7, 8]]}]}),
        "oip-unknown-model": ("POST /v2/models/nope/infer", {"inputs": []}),
        "classify-unknown-model": ("POST /v1/models/nope/classify", {"inputs": ["x"]}),
        "news-put-bare": ("PUT /v1/models/bare/news/N1", {"title": "t"}),
        "news-put-category": ("PUT /v1/models/rec/news/Nfc", {"title": "oil", "category": "finance"}),
        "news-get": ("GET /v1/models/rec/news/N101", {}),
        "news-delete": ("DELETE /v1/models/rec/news/Nfz", {}),
        "news-bulk": ("POST /v1/models/rec/news",
                      {"items": [{"news_id": "Nb1", "title": "oil bank", "category": "c"},
                                 {"news_id": "N102", "title": "team league"}]}),
        "recommend-catalog": ("POST /v1/models/rec/recommend",
                              {"history": [{"news_id": "N101"}, "oil"], "top_k": 3,
                               "exclude_history": True, "since": "2020-01-01T00:00:00+01:00"}),
        "recommend-bare": ("POST /v1/models/bare/recommend",
                           {"history": ["a b c"], "candidates": ["d", "e f"], "top_k": 5}),
        "oip-metadata": ("GET /v2/models/cls", {}),
        "oip-ready": ("GET /v2/models/rec/ready", {}),
        "v1-model": ("GET /v1/models/rec", {}),
        "v1-models": ("GET /v1/models", {}),
        "v2": ("GET /v2", {}),
        "healthz": ("GET /healthz", {}),
        "metrics": ("GET /metrics", {}),
        "tokenize": ("POST /v1/models/cls/tokenize", {"inputs": ["a great film!", ""], "truncate": True}),
        "tokenize-one": ("POST /v1/models/rec/tokenize", {"inputs": "oil bank says"}),
        "openai-texts": ("POST /v1/embeddings", {"model": "cls", "input": ["a great film", "x"]}),
        "openai-ids-base64": ("POST /v1/embeddings", {"model": "rec", "input": [[1, 2], [3]],
                                                      "encoding_format": "base64"}),
        "openai-one-ids": ("POST /v1/embeddings", {"model": "cls", "input": [4, 5, 0],
                                                   "dimensions": 8, "user": "u"}),
        "openai-unknown-model": ("POST /v1/embeddings", {"model": "nope", "input": "x"}),
        "tei-embed": ("POST /tei/cls/embed", {"inputs": ["a great film", "x"], "normalize": False,
                                              "truncate": True, "truncation_direction": "right"}),
        "tei-predict": ("POST /tei/cls/predict", {"inputs": "a great film", "raw_scores": True}),
        "tei-predict-pairs": ("POST /tei/cls/predict", {"inputs": [["a", "b"]]}),
        "tei-hf": ("POST /tei/rec", {"inputs": ["oil bank says"], "parameters": {}}),
        "tei-info": ("GET /tei/cls/info", {}),
        "tei-health": ("GET /tei/rec/health", {}),
        "repository-index": ("POST /v2/repository/index", {"ready": True}),
        "repository-load": ("POST /v2/repository/models/cls/load", {}),
        "repository-unload": ("POST /v2/repository/models/cls/unload", {}),
    }
    seeds.update({
        "oip-versioned-metadata": ("GET /v2/models/cls/versions/1", {}),
        "oip-versioned-ready": ("GET /v2/models/rec/versions/2/ready", {}),
        "oip-versioned-infer": ("POST /v2/models/cls/versions/1/infer",
                                {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                                             "data": ["hello"]}]}),
    })
    for name, (line, body) in seeds.items():
        write(t, name, line.encode() + b"\n" + json.dumps(body, ensure_ascii=False).encode())
    write(t, "not-json", b"POST /v1/models/rec/recommend\n{\"history\": [}")
    # TorchServe's predictions: a raw text body (no Content-Type), or JSON.
    write(t, "torchserve-raw", "POST /predictions/cls\nA great film, w\u00f6rld".encode())
    write(t, "torchserve-raw-embed", b"PUT /predictions/rec/1\noil bank says")
    write(t, "torchserve-json", b"POST /predictions/cls/1\nContent-Type: application/json\n"
          b'{"data": "a great film"}')
    write(t, "torchserve-json-text", b"PUT /predictions/rec\nContent-Type: application/json\n"
          b'{"text": "oil"}')
    write(t, "torchserve-ping", b"GET /ping\n")
    # The binary tensor data extension: JSON, then the inputs' raw bytes.
    def binary(name, line, header, data, content_type="application/octet-stream"):
        head = json.dumps(header, separators=(",", ":")).encode()
        headers = b"Inference-Header-Content-Length: %d\n" % len(head)
        if content_type:
            headers = b"Content-Type: " + content_type.encode() + b"\n" + headers
        write(t, name, line.encode() + b"\n" + headers + head + data)
    ids = struct.pack("<6q", 1, 2, 3, 4, 5, 0)
    binary("oip-binary-int64", "POST /v2/models/cls/infer",
           {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [2, 3],
                        "parameters": {"binary_data_size": len(ids)}}],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}},
                        {"name": "embeddings"}]}, ids)
    ids32 = struct.pack("<2i", 7, 8)
    binary("oip-binary-int32", "POST /v2/models/rec/versions/1/infer",
           {"inputs": [{"name": "input_ids", "datatype": "INT32", "shape": [1, 2],
                        "parameters": {"binary_data_size": len(ids32)}}],
            "parameters": {"binary_data_output": True}}, ids32, content_type=None)
    texts = b"".join(struct.pack("<I", len(x)) + x for x in (b"hello", b"", b"w\xc3\xb6rld"))
    binary("oip-binary-bytes", "POST /v2/models/cls/infer",
           {"model_name": "cls", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [3, 1],
                                             "parameters": {"binary_data_size": len(texts)}}],
            "parameters": {"binary_data_output": True, "priority": 1}}, texts)
    binary("oip-binary-classification", "POST /v2/models/cls/infer",
           {"inputs": [{"name": "input_ids", "datatype": "INT64", "shape": [2, 3],
                        "parameters": {"binary_data_size": len(ids)}}],
            "outputs": [{"name": "probabilities",
                         "parameters": {"classification": 2, "binary_data": True}}]}, ids)
    binary("oip-binary-bytes-cut", "POST /v2/models/cls/infer",
           {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2],
                        "parameters": {"binary_data_size": 12}}]}, texts[:12])


def main():
    seeds_safetensors()
    seeds_config()
    seeds_vocab()
    seeds_settings()
    seeds_tokenizer("tokenizer_word", "word_cases.json")
    seeds_tokenizer("tokenizer_wordpiece", "wordpiece_cases.json")
    seeds_mind()
    seeds_api()
    return 0


if __name__ == "__main__":
    sys.exit(main())
