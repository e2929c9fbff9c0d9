"""Writes and reads fastformerd model directories: config.json +
model.safetensors + vocab.txt. The safetensors writer is self-contained
(8-byte little-endian header length, JSON header, raw little-endian data)."""
import json
import os
import struct

import numpy as np
import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def _raw_bytes(t, dtype):
    t = t.detach().to("cpu").contiguous().to(DTYPES[dtype])
    if dtype == "BF16":  # numpy has no bfloat16: reinterpret the bits
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype("<f4" if dtype == "F32" else "<f2").tobytes()


def save_safetensors(tensors, path, dtype="F32", metadata=None):
    """tensors: {name: torch.Tensor}, written in name order, all as `dtype`."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        raw = _raw_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
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


def load_safetensors(path):
    """Returns {name: float32 torch.Tensor}."""
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
        else:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
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


def write_model_dir(path, state_dict, config, vocab, dtype="F32"):
    """vocab: list of tokens, index = id (vocab[0] is the padding token)."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
        for tok in vocab:
            f.write(tok + "\n")
    save_safetensors(state_dict, os.path.join(path, "model.safetensors"), dtype)
