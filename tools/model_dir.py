"""Writes and reads fastformerd model directories: config.json +
model.safetensors + vocab.txt. The safetensors writer is self-contained
(8-byte little-endian header length, JSON header, raw little-endian data).

Word embedding tables may be stored in int8 (README "int8 embeddings"): the
table `NAME` as dtype I8 (V, D) plus `NAME_scale`, F32 (V, G), where G divides
D; element (r, j) is q[r, j] * scale[r, j // (D // G)]. quantize_int8 writes
one scale per row (G = 1) unless a block size is given.

A table whose rows all lie in the column space of a (D, K) matrix P with
orthonormal columns (e.g. frozen GloVe vectors through tools/glove.py's
projection) may be stored factored: `NAME` I8 (V, K) and `NAME_scale` (V, G)
quantize F = W @ P, and `NAME_projection`, F32 (D, K), holds P; the table
reads as dequant(q, scale) @ P^T (factored_int8 / dequantize_factored)."""
import json
import os
import struct

import numpy as np
import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
# The tensors that may be stored as I8 (the loader rejects any other I8 tensor).
EMBEDDING_TABLES = ("word_embedding.weight", "news_encoder.word_embedding.weight")
SCALE_SUFFIX = "_scale"
PROJECTION_SUFFIX = "_projection"
MAX_RANK = 1024  # model/embedding.h EMBEDDING_MAX_RANK: the largest K the engine reads
# factored_int8 refuses a table farther than this from the projection's column
# space, relative to max(1, max|W|).
SPAN_TOLERANCE = 1e-4


def quantize_int8(w, block=None):
    """Symmetric round-to-nearest int8 of a (V, D) table: per row (block=None)
    or per block of `block` elements along each row (block divides D),
    scale = max|x| / 127 and q = round(x / scale) in [-127, 127]. A block of
    zeros gets scale 0 and stays exactly zero (row 0, the padding, too).
    Returns (q int8 (V, D), scale float32 (V, G))."""
    w = w.detach().to("cpu", torch.float32)
    V, D = w.shape
    block = D if block is None else block
    if block <= 0 or D % block:
        raise ValueError(f"int8 block size {block} does not divide the row length {D}")
    blocks = w.reshape(V, D // block, block)
    scale = blocks.abs().amax(dim=2) / 127.0
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(blocks / safe.unsqueeze(2)).clamp(-127, 127).to(torch.int8)
    return q.reshape(V, D), scale.contiguous()


def dequantize_int8(q, scale):
    """(V, D) float32 from an int8 table and its (V, G) scales, computed as the
    C loader does: one float32 multiply per element."""
    V, D = q.shape
    G = scale.shape[1]
    return (q.to(torch.float32).reshape(V, G, D // G) * scale.to(torch.float32).unsqueeze(2)).reshape(V, D)


def factored_int8(w, p, block=None, name="table"):
    """The factored int8 form of a (V, D) table W through P (D, K), K <= D,
    whose columns are orthonormal: F = W @ P (computed in float64) quantized
    by quantize_int8 (per row, or per block of `block` of the K values).
    Raises ValueError naming the table when P is not (D, K) with 1 <= K <=
    min(D, MAX_RANK) or not finite, or when W is not in P's column space:
    max|F @ P^T - W| > SPAN_TOLERANCE * max(1, max|W|). Returns (q int8 (V,
    K), scale float32 (V, G), P as float32 (D, K))."""
    w64 = w.detach().to("cpu", torch.float64)
    p32 = torch.as_tensor(p).detach().to("cpu", torch.float32).contiguous()
    V, D = w64.shape
    if p32.dim() != 2 or p32.shape[0] != D or not 1 <= p32.shape[1] <= min(D, MAX_RANK):
        raise ValueError(f"{name}: projection has shape {list(p32.shape)}, expected [{D}, K] with "
                         f"1 <= K <= {min(D, MAX_RANK)}")
    if not torch.isfinite(p32).all():
        raise ValueError(f"{name}: projection has values that are not finite")
    p64 = p32.to(torch.float64)
    f = w64 @ p64
    err = (f @ p64.t() - w64).abs().max().item() if w64.numel() else 0.0
    limit = SPAN_TOLERANCE * max(1.0, w64.abs().max().item() if w64.numel() else 0.0)
    if not err <= limit:
        raise ValueError(f"{name}: not in the projection's column space: the factored table is "
                         f"off by up to {err:.3g} (limit {limit:.3g})")
    q, scale = quantize_int8(f.to(torch.float32), block)
    return q, scale, p32


def dequantize_factored(q, scale, p):
    """(V, D) float32 from a factored int8 table: dequantize_int8(q, scale) @
    P^T, in float64 and rounded once to float32 (the C engine sums in float32,
    within a few float32 roundings of this)."""
    deq = dequantize_int8(q, scale).to(torch.float64)
    return (deq @ p.to(torch.float64).t()).to(torch.float32)


def _raw_bytes(t, dtype):
    if dtype == "I8":
        return t.detach().to("cpu").contiguous().to(torch.int8).numpy().tobytes()
    t = t.detach().to("cpu").contiguous().to(DTYPES[dtype])
    if dtype == "BF16":  # numpy has no bfloat16: reinterpret the bits
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype("<f4" if dtype == "F32" else "<f2").tobytes()


def save_safetensors(tensors, path, dtype="F32", metadata=None, int8=(), int8_block=None,
                     int8_projection=None):
    """tensors: {name: torch.Tensor}, written in name order, all as `dtype`
    except the names in `int8`, which are quantized (quantize_int8 with
    int8_block) and written as I8 plus NAME_scale (F32). int8_projection maps
    some of those names to a (D, K) projection P with orthonormal columns: the
    table is then stored factored (factored_int8: I8 (V, K) of W @ P, its
    scales, and NAME_projection = P as F32), or refused with ValueError when it
    is not in P's column space. In the data area the scales and projections
    come first and the I8 tables last, so that every tensor is aligned for its
    dtype (the C loader reads aligned F32 tensors in place) with no padding
    between tensors."""
    int8_projection = int8_projection or {}
    stray = sorted(set(int8_projection) - set(int8))
    if stray:
        raise ValueError(f"a projection for {stray[0]!r}, which is not stored as I8")
    typed = {}
    for name, t in tensors.items():
        if name in int8_projection:
            q, scale, p = factored_int8(t, int8_projection[name], int8_block, name)
            typed[name] = (q, "I8")
            typed[name + SCALE_SUFFIX] = (scale, "F32")
            typed[name + PROJECTION_SUFFIX] = (p, "F32")
        elif name in int8:
            q, scale = quantize_int8(t, int8_block)
            typed[name] = (q, "I8")
            typed[name + SCALE_SUFFIX] = (scale, "F32")
        else:
            typed[name] = (t, dtype)
    missing = set(int8) - set(tensors)
    if missing:
        raise ValueError(f"no tensor {sorted(missing)[0]!r} to store as I8")
    header, blobs, offset = {}, [], 0
    scales = {n + SCALE_SUFFIX for n in int8} | {n + PROJECTION_SUFFIX for n in int8_projection}
    for name in sorted(typed, key=lambda n: (1 - (n in scales) + (typed[n][1] == "I8"), n)):
        t, tdtype = typed[name]
        raw = _raw_bytes(t, tdtype)
        header[name] = {"dtype": tdtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep the data area 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def load_safetensors(path, dequantize=True):
    """Returns {name: torch.Tensor}: float32 for F32/F16/BF16 tensors. An I8
    table comes back dequantized (dequantize_int8, or dequantize_factored
    when it has a NAME_projection) under its own name, with its NAME_scale
    and NAME_projection tensors dropped, so that the result loads into the
    PyTorch model; with dequantize=False, the raw tensors (int8 plus float32
    scales and projection)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[base + b:base + e]
        if info["dtype"] == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif info["dtype"] == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] == "I8":
            arr = np.frombuffer(raw, dtype="i1")
        else:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    if dequantize:
        for name in [k for k, v in out.items() if v.dtype == torch.int8]:
            if name + SCALE_SUFFIX not in out:
                raise ValueError(f"{path}: I8 tensor {name!r} has no {name + SCALE_SUFFIX!r}")
            scale = out.pop(name + SCALE_SUFFIX)
            if name + PROJECTION_SUFFIX in out:
                out[name] = dequantize_factored(out[name], scale, out.pop(name + PROJECTION_SUFFIX))
            else:
                out[name] = dequantize_int8(out[name], scale)
        stray = [k for k in out if k.endswith(PROJECTION_SUFFIX)]
        if stray:
            raise ValueError(f"{path}: {stray[0]!r} is not the projection of an I8 table")
    return out


def model_config(cfg, vocab_size, *, task, id2label=None, tokenizer="word", lowercase=True,
                 user_num_hidden_layers=None, max_history=None):
    """config.json contents for a FastformerConfig."""
    out = {
        "architectures": ["FastformerForSequenceClassification" if task == "classification"
                          else "FastformerForNewsRecommendation"],
        "hidden_size": cfg.hidden_size,
        "num_attention_heads": cfg.num_attention_heads,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "max_position_embeddings": cfg.max_position_embeddings,
        "vocab_size": vocab_size,
        "layer_norm_eps": cfg.layer_norm_eps,
        "hidden_act": "gelu",
        "pooler_type": "weightpooler",
        "tokenizer": {"type": tokenizer, "lowercase": lowercase},
    }
    if task == "classification":
        out["id2label"] = {str(i): label for i, label in enumerate(id2label)}
    else:
        out["user_num_hidden_layers"] = user_num_hidden_layers
        out["max_history"] = max_history
    return out


def write_model_dir(path, state_dict, config, vocab, dtype="F32", embedding_dtype=None,
                    embedding_block=None, embedding_projection=None):
    """vocab: list of tokens, index = id (vocab[0] is the padding token).
    Every tensor is written as `dtype`, except the word embedding table when
    embedding_dtype is "I8" (int8 with a scale per row, or per block of
    embedding_block elements). With embedding_projection, a (D, K) matrix
    with orthonormal columns, the int8 table is stored factored through it
    (save_safetensors' int8_projection; ValueError when the table is not in
    its column space)."""
    if embedding_dtype not in (None, dtype, "I8"):
        raise ValueError(f"embedding dtype {embedding_dtype!r}: use I8 or the model's dtype")
    if embedding_projection is not None and embedding_dtype != "I8":
        raise ValueError("an embedding projection needs embedding dtype I8")
    int8 = [n for n in EMBEDDING_TABLES if n in state_dict] if embedding_dtype == "I8" else []
    projection = {n: embedding_projection for n in int8} if embedding_projection is not None else None
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        for tok in vocab:
            f.write(tok + "\n")
    save_safetensors(state_dict, os.path.join(path, "model.safetensors"), dtype, int8=int8,
                     int8_block=embedding_block, int8_projection=projection)
