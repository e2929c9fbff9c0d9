"""The Open Inference Protocol's binary tensor data extension, against the real
daemon. No Triton or KServe client can be installed here (neither Debian nor
npm packages one, and PyPI cannot be reached), so every request is built
byte by byte with struct from the extension's published description
(Triton's docs/protocol/extension_binary_data.md, KServe's
binary_tensor_data_extension page) and the wire format of Triton's HTTP
clients (tritonclient.http's _get_inference_request: compact JSON, then each
input's raw bytes, Inference-Header-Content-Length only when there are some;
the C++ client: the header always, and Content-Type: application/octet-stream),
never by the daemon's own encoder. Answers are decoded the way
tritonclient.http's InferResult does: the JSON part is the first
Inference-Header-Content-Length bytes, then each output with
parameters.binary_data_size takes that many bytes, in output order.

Checked: binary and JSON requests give the same outputs (and the PyTorch
golden probabilities), binary outputs decode to the JSON outputs bit for bit
(float32 of the JSON value), the classification extension's top classes in
JSON and in binary, the versioned route, and every size error with its exact
400 (the protocol's error shape {"error": message, ...})."""
import json
import socket
import struct

import pytest

from conftest import assert_close, golden

I = "/v2/models/classifier/infer"
HL = "Inference-Header-Content-Length"
TEXTS = ["The market, the BANK and zzz-oil!", "team win first game of the season",
         "oil price up", "", "caf\u00e9 \u00fcber na\u00efve"]


def padded_ids(name="random_batch"):
    """The golden case's rows padded with 0 to one width, and its probabilities."""
    case = next(c for c in golden("classifier_f32")["cases"] if c["name"] == name)
    width = max(len(x) for x in case["input_ids"])
    rows = [ids + [0] * (width - len(ids)) for ids in case["input_ids"]]
    return rows, case["probabilities"]


def le_ints(values, fmt):
    """Little-endian integers: fmt 'q' (INT64) or 'i' (INT32)."""
    return struct.pack("<%d%s" % (len(values), fmt), *values)


def bytes_elements(strings):
    """BYTES tensor data: per element a 4-byte little-endian length, then the bytes."""
    out = b""
    for s in strings:
        b = s.encode() if isinstance(s, str) else s
        out += struct.pack("<I", len(b)) + b
    return out


def binary_request(header, *tensors):
    """Body = JSON header then the tensors' bytes; returns (body, json_length)."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return head + b"".join(tensors), len(head)


def post_binary(daemon, header, *tensors, path=I, headers=None):
    body, n = binary_request(header, *tensors)
    h = {HL: str(n), "Content-Type": "application/octet-stream"}
    h.update(headers or {})
    return daemon.request("POST", path, body=body, headers=h)


def decode(r):
    """(JSON part, {output name: raw bytes}) of an answer, as InferResult reads it."""
    if HL.lower() not in r.headers:
        return r.json(), {}
    n = int(r.headers[HL.lower()])
    head = json.loads(r.body[:n])
    raw, at = {}, n
    for o in head["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is not None:
            raw[o["name"]] = r.body[at:at + size]
            at += size
    assert at == len(r.body), "the binary outputs do not add up to the body"
    return head, raw


def floats(raw):
    return list(struct.unpack("<%df" % (len(raw) // 4), raw))


def f32(x):
    """x rounded to float32, as the daemon holds it."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def ids_tensor(rows, datatype="INT64", **params):
    return {"name": "input_ids", "shape": [len(rows), len(rows[0])], "datatype": datatype,
            "parameters": params}


def text_tensor(texts, **params):
    return {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "parameters": params}


def flat(rows):
    return [x for row in rows for x in row]


# ---- binary and JSON agree -----------------------------------------------------------------

@pytest.mark.parametrize("datatype,fmt", [("INT64", "q"), ("INT32", "i")])
def test_binary_ids_equal_json_and_pytorch(daemon, datatype, fmt):
    rows, want = padded_ids()
    raw = le_ints(flat(rows), fmt)
    r = post_binary(daemon, {"inputs": [ids_tensor(rows, datatype, binary_data_size=len(raw))]},
                    raw)
    assert r.status == 200, r
    assert r.headers["content-type"] == "application/json"  # no output asked in binary
    binary = r.json()["outputs"][0]
    j = daemon.post(I, {"inputs": [{"name": "input_ids", "shape": [len(rows), len(rows[0])],
                                    "datatype": datatype, "data": flat(rows)}]})
    assert j.status == 200, j
    assert binary == j.json()["outputs"][0]
    assert_close(binary["data"], flat(want), 1e-4, 1e-5)


def test_binary_text_equals_json_text(daemon):
    raw = bytes_elements(TEXTS)
    r = post_binary(daemon, {"inputs": [text_tensor(TEXTS, binary_data_size=len(raw))],
                             "outputs": [{"name": "probabilities"}, {"name": "embeddings"}]}, raw)
    assert r.status == 200, r
    j = daemon.post(I, {"inputs": [{"name": "text", "shape": [len(TEXTS), 1],
                                    "datatype": "BYTES", "data": TEXTS}],
                        "outputs": [{"name": "probabilities"}, {"name": "embeddings"}]})
    assert r.json()["outputs"] == j.json()["outputs"]
    # and the REST route agrees
    rest = daemon.post("/v1/models/classifier/classify", {"inputs": TEXTS}).json()
    assert_close(r.json()["outputs"][0]["data"],
                 [p for pred in rest["predictions"] for p in pred["probabilities"]], 1e-5, 1e-6)


def test_text_with_nul_bytes_is_text(daemon):
    raw = bytes_elements([b"oil\x00price", b"oil price"])
    r = post_binary(daemon, {"inputs": [text_tensor(["", ""], binary_data_size=len(raw))]}, raw)
    assert r.status == 200, r


def test_binary_outputs_decode_to_the_json_outputs(daemon):
    rows, _ = padded_ids()
    raw = le_ints(flat(rows), "q")
    outputs = [{"name": "probabilities", "parameters": {"binary_data": True}},
               {"name": "embeddings", "parameters": {"binary_data": True}}]
    r = post_binary(daemon, {"id": "b1", "inputs": [ids_tensor(rows, binary_data_size=len(raw))],
                             "outputs": outputs}, raw)
    assert r.status == 200, r
    assert r.headers["content-type"] == "application/octet-stream"
    head, bins = decode(r)
    assert head["id"] == "b1" and head["model_name"] == "classifier"
    assert head["model_version"] == "1"
    j = daemon.post(I, {"inputs": [{"name": "input_ids", "shape": [len(rows), len(rows[0])],
                                    "datatype": "INT64", "data": flat(rows)}],
                        "outputs": [{"name": "probabilities"}, {"name": "embeddings"}]}).json()
    for got, want in zip(head["outputs"], j["outputs"]):
        n = want["shape"][0] * want["shape"][1]
        assert got == {"name": want["name"], "datatype": "FP32", "shape": want["shape"],
                       "parameters": {"binary_data_size": 4 * n}}
        assert floats(bins[want["name"]]) == [f32(x) for x in want["data"]]


def test_binary_data_output_and_its_override(daemon):
    raw = bytes_elements(TEXTS[:2])
    tensor = text_tensor(TEXTS[:2], binary_data_size=len(raw))
    # every output in binary: the default output of a classifier is probabilities
    r = post_binary(daemon, {"inputs": [tensor], "parameters": {"binary_data_output": True}}, raw)
    head, bins = decode(r)
    assert [o["name"] for o in head["outputs"]] == ["probabilities"]
    assert len(floats(bins["probabilities"])) == 2 * 3
    # ... unless an output says otherwise
    r = post_binary(daemon, {"inputs": [tensor], "parameters": {"binary_data_output": True},
                             "outputs": [{"name": "probabilities",
                                          "parameters": {"binary_data": False}},
                                         {"name": "embeddings"}]}, raw)
    head, bins = decode(r)
    assert "data" in head["outputs"][0] and list(bins) == ["embeddings"]
    assert len(floats(bins["embeddings"])) == 2 * 32


def test_binary_outputs_from_a_json_request(daemon):
    r = daemon.post(I, {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                    "data": ["oil"]}],
                        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]})
    head, bins = decode(r)
    p = floats(bins["probabilities"])
    assert len(p) == 3 and abs(sum(p) - 1) < 1e-5


def test_recommender_embeddings_in_binary(daemon):
    g = golden("newsrec")
    ids = g["news"]["input_ids"][:3]
    width = max(len(x) for x in ids)
    rows = [x + [0] * (width - len(x)) for x in ids]
    raw = le_ints(flat(rows), "q")
    r = post_binary(daemon, {"inputs": [ids_tensor(rows, binary_data_size=len(raw))],
                             "parameters": {"binary_data_output": True}}, raw,
                    path="/v2/models/newsrec/versions/1/infer")
    head, bins = decode(r)
    assert head["outputs"][0]["shape"] == [3, 32]
    assert_close(floats(bins["embeddings"]), flat(g["news"]["news_vectors"][:3]), 1e-4, 1e-5)


# ---- the classification extension -------------------------------------------------------------

def bytes_decode(raw):
    """BYTES tensor data -> list of bytes elements (4-byte little-endian length, then bytes)."""
    out, at = [], 0
    while at < len(raw):
        (n,) = struct.unpack_from("<I", raw, at)
        out.append(raw[at + 4:at + 4 + n])
        at += 4 + n
    return out


def classes_want(probs, k, labels):
    """Triton's "<value>:<index>:<label>" of the k largest, value as C's %f, ties to the lower index."""
    order = sorted(range(len(probs)), key=lambda c: (-probs[c], c))[:k]
    return ["%f:%d:%s" % (f32(probs[c]), c, labels[c]) for c in order]


@pytest.mark.parametrize("binary", [False, True])
def test_classification_top_k(daemon, binary):
    labels = daemon.get("/v1/models/classifier").json()["labels"]
    rows, _ = padded_ids()
    raw = le_ints(flat(rows), "q")
    want = daemon.post(I, {"inputs": [{"name": "input_ids", "shape": [len(rows), len(rows[0])],
                                       "datatype": "INT64", "data": flat(rows)}]}).json()
    probs = want["outputs"][0]["data"]
    for k, got_k in [(2, 2), (1, 1), (7, 3)]:  # more than the 3 labels: all of them
        r = post_binary(daemon, {"inputs": [ids_tensor(rows, binary_data_size=len(raw))],
                                 "outputs": [{"name": "probabilities", "parameters": {
                                     "classification": k, "binary_data": binary}}]}, raw)
        assert r.status == 200, r
        head, bins = decode(r)
        out = head["outputs"][0]
        assert out["datatype"] == "BYTES" and out["shape"] == [len(rows), got_k]
        got = ([b.decode() for b in bytes_decode(bins["probabilities"])] if binary
               else out["data"])
        assert len(got) == len(rows) * got_k
        for i in range(len(rows)):
            assert got[i * got_k:(i + 1) * got_k] == classes_want(probs[3 * i:3 * i + 3], got_k,
                                                                  labels)


# ---- the bytes Triton's clients send ---------------------------------------------------------

def raw_post(daemon, head_lines, body):
    """One request from literal bytes; returns (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", daemon.port), timeout=20)
    s.sendall(head_lines + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    data = b""
    while True:
        got = s.recv(65536)
        if not got:
            break
        data += got
    s.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {k.strip().lower().decode(): v.strip().decode()
               for k, _, v in (h.partition(b":") for h in lines[1:])}
    return int(lines[0].split()[1]), headers, payload


def test_replay_triton_python_client_request(daemon):
    # What tritonclient.http sends for InferInput("input_ids", [2, 3], "INT64") with
    # set_data_from_numpy(binary_data=True) and no outputs given: rapidjson's compact
    # JSON with "binary_data_output", the header, no Content-Type, then 48 bytes.
    head = (b'{"inputs":[{"name":"input_ids","shape":[2,3],"datatype":"INT64",'
            b'"parameters":{"binary_data_size":48}}],"parameters":{"binary_data_output":true}}')
    data = (b"\x07\x00\x00\x00\x00\x00\x00\x00" b"\x08\x00\x00\x00\x00\x00\x00\x00"
            b"\x09\x00\x00\x00\x00\x00\x00\x00" b"\x0a\x00\x00\x00\x00\x00\x00\x00"
            b"\x00\x00\x00\x00\x00\x00\x00\x00" b"\x00\x00\x00\x00\x00\x00\x00\x00")
    status, headers, body = raw_post(
        daemon, b"POST /v2/models/classifier/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Accept-Encoding: identity\r\nInference-Header-Content-Length: %d\r\n" % len(head),
        head + data)
    assert status == 200, body
    n = int(headers[HL.lower()])
    out = json.loads(body[:n])["outputs"][0]
    assert out["parameters"] == {"binary_data_size": 24} and len(body) == n + 24
    want = daemon.post(I, {"inputs": [{"name": "input_ids", "shape": [2, 3], "datatype": "INT64",
                                       "data": [[7, 8, 9], [10, 0, 0]]}]}).json()
    assert floats(body[n:]) == [f32(x) for x in want["outputs"][0]["data"]]


def test_replay_triton_cpp_client_and_documented_example(daemon):
    # The extension's documented request layout (pretty-printed JSON with
    # "model_name", Content-Type: application/octet-stream), on the versioned
    # route Triton's clients use with model_version="1"; BYTES text as the
    # C++ client serialises it (length-prefixed elements).
    head = (b'{\n  "model_name" : "classifier",\n  "inputs" : [\n    {\n'
            b'      "name" : "text",\n      "shape" : [ 2, 1 ],\n      "datatype" : "BYTES",\n'
            b'      "parameters" : {\n        "binary_data_size" : 23\n      }\n    }\n  ],\n'
            b'  "outputs" : [\n    {\n      "name" : "probabilities",\n'
            b'      "parameters" : {\n        "binary_data" : true\n      }\n    }\n  ]\n}')
    data = b"\x0c\x00\x00\x00oil price up" b"\x03\x00\x00\x00oil"
    status, headers, body = raw_post(
        daemon, b"POST /v2/models/classifier/versions/1/infer HTTP/1.1\r\nHost: localhost\r\n"
        b"User-Agent: libcurl-agent/1.0\r\nAccept: */*\r\nInference-Header-Content-Length: %d\r\n"
        b"Content-Type: application/octet-stream\r\n" % len(head), head + data)
    assert status == 200, body
    assert headers["content-type"] == "application/octet-stream"
    n = int(headers[HL.lower()])
    assert json.loads(body[:n])["outputs"][0]["parameters"] == {"binary_data_size": 24}
    want = daemon.post(I, {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                                       "data": ["oil price up", "oil"]}]}).json()
    assert floats(body[n:]) == [f32(x) for x in want["outputs"][0]["data"]]


def test_cpp_client_all_json_body_with_the_header(daemon):
    # Triton's C++ client sends the header even when no input is binary.
    body = json.dumps({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                   "data": ["oil"]}]}).encode()
    r = daemon.request("POST", I, body=body, headers={HL: str(len(body)),
                                                       "Content-Type": "application/octet-stream"})
    assert r.status == 200, r


# ---- every size error gets its 400 -----------------------------------------------------------

IDS = [[7, 8, 9], [10, 11, 0]]
IDS_RAW = le_ints(flat(IDS), "q")


def body_and_length(header, tail):
    head = json.dumps(header, separators=(",", ":")).encode()
    return head + tail, len(head)


def ids_header(size=len(IDS_RAW), datatype="INT64", **extra):
    return {"inputs": [{**ids_tensor(IDS, datatype, binary_data_size=size), **extra}]}


def text_header(size, n=2, shape=None):
    return {"inputs": [{"name": "text", "shape": shape or [n], "datatype": "BYTES",
                        "parameters": {"binary_data_size": size}}]}


B_IDS, N_IDS = body_and_length(ids_header(), IDS_RAW)

# (id, body, headers (None: Inference-Header-Content-Length of the JSON part), status, message)
ERRORS = [
    ("length_not_a_number", B_IDS, {HL: "12a"}, 400,
     "header Inference-Header-Content-Length: expected a byte count, got '12a'"),
    ("length_negative", B_IDS, {HL: "-1"}, 400,
     "header Inference-Header-Content-Length: expected a byte count, got '-1'"),
    ("length_empty", B_IDS, {HL: ""}, 400,
     "header Inference-Header-Content-Length: expected a byte count, got ''"),
    ("length_past_the_body", B_IDS, {HL: str(len(B_IDS) + 1)}, 400,
     f"header Inference-Header-Content-Length: {len(B_IDS) + 1} is more than the body's "
     f"{len(B_IDS)} bytes"),
    ("length_huge", B_IDS, {HL: "99999999999999999999999"}, 400,
     f"header Inference-Header-Content-Length: 99999999999999999999999 is more than the body's "
     f"{len(B_IDS)} bytes"),
    ("length_cuts_the_json", B_IDS, {HL: str(N_IDS - 1)}, 400,
     f"invalid JSON at line 1, column {N_IDS - 1}: '}}' expected near end of file"),
    ("length_takes_binary_as_json", B_IDS, {HL: str(N_IDS + 1)}, 400,
     f"invalid JSON at line 1, column {N_IDS + 1}: end of file expected near '\x07'"),
    ("size_past_the_body", *body_and_length(ids_header(size=56), IDS_RAW), 400,
     "inputs[0].parameters.binary_data_size: 56 bytes, but the body has only 48 binary bytes "
     "left"),
    ("size_without_binary_data", json.dumps(ids_header()).encode(), {}, 400,
     "inputs[0].parameters.binary_data_size: 48 bytes, but the body has no binary data (its JSON "
     "part's length goes in the header Inference-Header-Content-Length)"),
    ("bytes_after_the_inputs", *body_and_length(ids_header(), IDS_RAW + b"\0" * 8), 400,
     "binary data: 8 bytes after the inputs' data (their binary_data_size add up to 48)"),
    ("tail_without_binary_inputs",
     *body_and_length({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES",
                                   "data": ["oil"]}]}, b"\x01\x02"), 400,
     "binary data: 2 bytes after the inputs' data (their binary_data_size add up to 0)"),
    ("int64_size_not_the_shape", *body_and_length(ids_header(size=40), IDS_RAW[:40]), 400,
     "inputs[0]: shape [2,3] of INT64 needs 48 bytes, but binary_data_size is 40"),
    ("int32_size_not_the_shape", *body_and_length(ids_header(datatype="INT32"), IDS_RAW), 400,
     "inputs[0]: shape [2,3] of INT32 needs 24 bytes, but binary_data_size is 48"),
    ("size_and_data", *body_and_length(ids_header(data=flat(IDS)), IDS_RAW), 400,
     "inputs[0]: give either 'data' or parameters.binary_data_size, not both"),
    ("size_negative", *body_and_length(ids_header(size=-48), IDS_RAW), 400,
     "inputs[0].parameters.binary_data_size: expected an integer >= 0"),
    ("size_string", *body_and_length(ids_header(size="48"), IDS_RAW), 400,
     "inputs[0].parameters.binary_data_size: expected an integer >= 0"),
    ("parameters_not_object",
     *body_and_length({"inputs": [{**ids_tensor(IDS), "parameters": [48]}]}, IDS_RAW), 400,
     "inputs[0].parameters: expected an object, got array"),
    ("id_out_of_range", *body_and_length(ids_header(), le_ints([7, 8, 9, 10, 60, 0], "q")), 400,
     "inputs[0].data[4]: id 60 >= vocab_size 60"),
    ("id_negative_int32",
     *body_and_length(ids_header(size=24, datatype="INT32"), le_ints([7, -1, 0, 1, 2, 3], "i")),
     400, "inputs[0].data[1]: id -1 is negative"),
    ("id_beyond_int32_in_int64",
     *body_and_length(ids_header(), le_ints([7, 1 << 40, 0, 1, 2, 3], "q")), 400,
     "inputs[0].data[1]: id 1099511627776 >= vocab_size 60"),
    ("bytes_length_cut_off", *body_and_length(text_header(9), bytes_elements(["oil"]) + b"\x05\x00"),
     400, "inputs[0]: BYTES element 1 at byte 7: its 4-byte length is cut off (2 bytes left)"),
    ("bytes_element_past_the_tensor",
     *body_and_length(text_header(10), struct.pack("<I", 300) + b"oil pr"), 400,
     "inputs[0]: BYTES element 0 at byte 0: its length 300 runs past the tensor's 10 bytes"),
    ("bytes_length_huge",
     *body_and_length(text_header(14, n=1), struct.pack("<I", 0xFFFFFFFF) + b"oil price "), 400,
     "inputs[0]: BYTES element 0 at byte 0: its length 4294967295 runs past the tensor's 14 "
     "bytes"),
    ("bytes_fewer_elements_than_the_shape", *body_and_length(text_header(7, n=2),
                                                              bytes_elements(["oil"])), 400,
     "inputs[0]: BYTES element 1 at byte 7: its 4-byte length is cut off (0 bytes left)"),
    ("bytes_more_than_the_shape", *body_and_length(text_header(14, n=1),
                                                   bytes_elements(["oil", "tea"])), 400,
     "inputs[0]: 7 bytes after the last of its 1 BYTES elements"),
    ("bytes_invalid_utf8", *body_and_length(text_header(8, n=1), bytes_elements([b"caf\xe9"])),
     400, None),
    ("binary_data_output_not_bool",
     *body_and_length({**ids_header(), "parameters": {"binary_data_output": 1}}, IDS_RAW), 400,
     "parameters.binary_data_output: expected a boolean, got integer"),
    ("binary_data_not_bool",
     *body_and_length({**ids_header(), "outputs": [{"name": "probabilities",
                                                     "parameters": {"binary_data": "yes"}}]},
                      IDS_RAW), 400,
     "outputs[0].parameters.binary_data: expected a boolean, got string"),
    ("output_parameters_not_object",
     *body_and_length({**ids_header(), "outputs": [{"name": "embeddings", "parameters": 1}]},
                      IDS_RAW), 400, "outputs[0].parameters: expected an object, got integer"),
    ("classification_on_embeddings",
     *body_and_length({**ids_header(), "outputs": [{"name": "embeddings",
                                                     "parameters": {"classification": 2}}]},
                      IDS_RAW), 400,
     "outputs[0].parameters.classification: only 'probabilities' can be answered as classes"),
    ("classification_zero",
     *body_and_length({**ids_header(), "outputs": [{"name": "probabilities",
                                                     "parameters": {"classification": 0}}]},
                      IDS_RAW), 400,
     "outputs[0].parameters.classification: expected an integer >= 1 (how many classes)"),
    ("model_name_not_string", *body_and_length({**ids_header(), "model_name": 3}, IDS_RAW), 400,
     "model_name: expected a string, got integer"),
    ("content_type_text_plain", B_IDS, {HL: str(N_IDS), "Content-Type": "text/plain"}, 415,
     "Content-Type 'text/plain' is not allowed with binary tensor data (use "
     "application/octet-stream)"),
]


def fix_case(case):
    """Cases built with body_and_length carry (body, json_length) in place of (body, headers)."""
    name, body, headers, status, message = case
    if isinstance(headers, int):
        headers = {HL: str(headers)}
    return name, body, headers, status, message


CASES = [fix_case(c) for c in ERRORS]
TYPES = {400: "invalid_argument", 415: "unsupported_media_type"}


def test_error_catalogue_is_big_enough():
    assert len(CASES) >= 25 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_binary_error(daemon, case):
    _, body, headers, status, message = case
    h = {"Content-Type": "application/octet-stream"} if HL in headers else {}
    h.update(headers)
    r = daemon.request("POST", I, body=body, headers=h)
    assert r.status == status, r
    got = r.json()
    assert set(got) == {"error", "code", "type"} and isinstance(got["error"], str)
    assert got["code"] == status and got["type"] == TYPES[status]
    if message is not None:
        assert got["error"] == message
    else:
        assert got["error"].startswith("inputs[0].data[0]: "), got
    # the daemon still serves a good binary request
    ok = post_binary(daemon, ids_header(), IDS_RAW)
    assert ok.status == 200, ok


def test_415_needs_the_header_only_for_binary(daemon):
    # Without Inference-Header-Content-Length the body is JSON as on every route.
    r = daemon.request("POST", I, body=json.dumps(ids_header()).encode(),
                       headers={"Content-Type": "application/json"})
    assert r.status == 400  # binary_data_size without binary data, not 415


def test_content_types_of_a_binary_request(daemon):
    body, n = body_and_length(ids_header(), IDS_RAW)
    for ct in [None, "application/octet-stream", "application/json",
               "application/octet-stream; charset=binary", "Application/JSON;charset=utf-8"]:
        h = {HL: str(n)}
        if ct:
            h["Content-Type"] = ct
        r = daemon.request("POST", I, body=body, headers=h)
        assert r.status == 200, (ct, r)
    r = daemon.request("POST", I, body=body, headers={HL: str(n),
                                                       "Content-Type": "application/json-seq"})
    assert r.status == 415, r
