"""A second, deliberately separate PyTorch reference for the golden fixtures.

It follows the structure of the official notebook (wuch15/Fastformer,
Fastformer.ipynb) rather than tools/fastformer.py: a padded (B, N) batch, the
extended additive mask (1 - mask) * -10000 of shape (B, 1, N), heads as a
(B, H, N, dh) tensor, a repeated global query, and HF-BERT-style
SelfOutput / Intermediate / Output blocks. It is written from the math in
docs/fastformer.md (no code was copied from the notebook, which has no
licence) and reads model.safetensors with its own small parser, so that a bug
in tools/fastformer.py or tools/model_dir.py cannot hide in both references.

tools/make_fixtures.py asserts that this module and tools/fastformer.py agree
to 1e-6 on every golden case.
"""
import json
import math
import struct

import numpy as np
import torch
from torch import nn


# ---- safetensors (independent reader) --------------------------------------
def read_safetensors(path):
    """{name: float32 tensor} from a safetensors file (F32, F16 or BF16, and
    int8 tables: an I8 tensor NAME of shape (V, W) with NAME_scale, F32 (V, G),
    read as q * scale with each scale covering W/G consecutive elements; with
    NAME_projection, F32 (D, K), the table is factored (W = K) and reads as
    (q * scale) @ projection^T, in float64 rounded once to float32)."""
    with open(path, "rb") as f:
        blob = f.read()
    header_len = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    data = blob[8 + header_len:]
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        raw = data[start:end]
        if meta["dtype"] == "F32":
            values = np.frombuffer(raw, dtype="<f4")
        elif meta["dtype"] == "F16":
            values = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif meta["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            values = bits.view(np.float32)
        elif meta["dtype"] == "I8":
            values = np.frombuffer(raw, dtype=np.int8).astype(np.float32)
        else:
            raise ValueError(f"unknown dtype {meta['dtype']} for {name}")
        tensors[name] = torch.tensor(values.copy(), dtype=torch.float32).reshape(meta["shape"])
    for name in [n for n, m in header.items() if n != "__metadata__" and m["dtype"] == "I8"]:
        scale = tensors.pop(name + "_scale")
        rows, dim = tensors[name].shape
        per = dim // scale.shape[1]
        tensors[name] = tensors[name] * scale.repeat_interleave(per, dim=1)
        projection = tensors.pop(name + "_projection", None)
        if projection is not None:
            rows = tensors[name].numpy().astype(np.float64) @ projection.numpy().astype(np.float64).T
            tensors[name] = torch.tensor(rows.astype(np.float32))
    return tensors


# ---- the notebook's module structure --------------------------------------
class Settings:
    def __init__(self, hidden_size, num_attention_heads, intermediate_size, num_hidden_layers,
                 max_position_embeddings, layer_norm_eps=1e-12):
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.max_position_embeddings = max_position_embeddings
        self.layer_norm_eps = layer_norm_eps


class FastSelfAttention(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.n_heads = s.num_attention_heads
        self.head_size = s.hidden_size // s.num_attention_heads
        self.all_head_size = self.n_heads * self.head_size
        self.query = nn.Linear(s.hidden_size, self.all_head_size)
        self.query_att = nn.Linear(self.all_head_size, self.n_heads)
        self.key = nn.Linear(s.hidden_size, self.all_head_size)
        self.key_att = nn.Linear(self.all_head_size, self.n_heads)
        self.transform = nn.Linear(self.all_head_size, self.all_head_size)
        self.softmax = nn.Softmax(dim=-1)

    def heads(self, t):  # (B, N, D) -> (B, H, N, dh)
        b, n, _ = t.shape
        return t.view(b, n, self.n_heads, self.head_size).permute(0, 2, 1, 3)

    def forward(self, hidden, extended_mask):
        b, n, _ = hidden.shape
        root = self.head_size ** 0.5
        mixed_query = self.query(hidden)
        mixed_key = self.key(hidden)
        # global query: one softmax over tokens per head
        query_scores = self.query_att(mixed_query).transpose(1, 2) / root  # (B, H, N)
        query_scores = query_scores + extended_mask
        query_weight = self.softmax(query_scores).unsqueeze(2)  # (B, H, 1, N)
        query_heads = self.heads(mixed_query)  # (B, H, N, dh)
        global_query = torch.matmul(query_weight, query_heads)  # (B, H, 1, dh)
        global_query = global_query.transpose(1, 2).reshape(b, 1, self.all_head_size)
        mixed_query_key = mixed_key * global_query.repeat(1, n, 1)  # p_i
        # global key from p
        key_scores = (self.key_att(mixed_query_key) / root).transpose(1, 2)
        key_scores = key_scores + extended_mask
        key_weight = self.softmax(key_scores).unsqueeze(2)
        global_key = torch.matmul(key_weight, self.heads(mixed_query_key))  # (B, H, 1, dh)
        weighted = (global_key * query_heads).transpose(1, 2)  # u_i = k * q_i, (B, N, H, dh)
        weighted = weighted.reshape(b, n, self.all_head_size)
        return self.transform(weighted) + mixed_query


class SelfOutput(nn.Module):  # HF BertSelfOutput
    def __init__(self, s):
        super().__init__()
        self.dense = nn.Linear(s.hidden_size, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)

    def forward(self, hidden, input_tensor):
        return self.LayerNorm(self.dense(hidden) + input_tensor)


class FastAttention(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.self = FastSelfAttention(s)
        self.output = SelfOutput(s)

    def forward(self, x, extended_mask):
        return self.output(self.self(x, extended_mask), x)


class Intermediate(nn.Module):  # HF BertIntermediate, hidden_act "gelu" (erf)
    def __init__(self, s):
        super().__init__()
        self.dense = nn.Linear(s.hidden_size, s.intermediate_size)

    def forward(self, x):
        y = self.dense(x)
        return y * 0.5 * (1.0 + torch.erf(y / math.sqrt(2.0)))


class Output(nn.Module):  # HF BertOutput
    def __init__(self, s):
        super().__init__()
        self.dense = nn.Linear(s.intermediate_size, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)

    def forward(self, hidden, input_tensor):
        return self.LayerNorm(self.dense(hidden) + input_tensor)


class FastformerLayer(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.attention = FastAttention(s)
        self.intermediate = Intermediate(s)
        self.output = Output(s)

    def forward(self, x, extended_mask):
        attention_output = self.attention(x, extended_mask)
        return self.output(self.intermediate(attention_output), attention_output)


class AttentionPooling(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.att_fc1 = nn.Linear(s.hidden_size, s.hidden_size)
        self.att_fc2 = nn.Linear(s.hidden_size, 1)

    def forward(self, x, mask):
        b = x.shape[0]
        e = torch.tanh(self.att_fc1(x))
        alpha = torch.exp(self.att_fc2(e))  # no max-subtraction, as in the notebook
        alpha = alpha * mask.unsqueeze(2)
        alpha = alpha / (torch.sum(alpha, dim=1, keepdim=True) + 1e-8)
        pooled = torch.bmm(x.permute(0, 2, 1), alpha)
        return pooled.reshape(b, -1)


class FastformerEncoder(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.encoders = nn.ModuleList([FastformerLayer(s) for _ in range(s.num_hidden_layers)])
        self.position_embeddings = nn.Embedding(s.max_position_embeddings, s.hidden_size)
        self.LayerNorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.poolers = nn.ModuleList([AttentionPooling(s)])

    def forward(self, input_embs, attention_mask, pooler_index=0):
        extended_mask = attention_mask.unsqueeze(1).to(dtype=input_embs.dtype)
        extended_mask = (1.0 - extended_mask) * -10000.0  # (B, 1, N)
        b, n, _ = input_embs.shape
        position_ids = torch.arange(n, dtype=torch.long).unsqueeze(0).expand(b, -1)
        embeddings = self.LayerNorm(input_embs + self.position_embeddings(position_ids))
        layer_outputs = [embeddings]
        for layer in self.encoders:
            layer_outputs.append(layer(layer_outputs[-1], extended_mask))
        return self.poolers[pooler_index](layer_outputs[-1], attention_mask)


def _settings(config, layers=None, positions=None):
    return Settings(config["hidden_size"], config["num_attention_heads"],
                    config["intermediate_size"],
                    config["num_hidden_layers"] if layers is None else layers,
                    config["max_position_embeddings"] if positions is None else positions,
                    config.get("layer_norm_eps", 1e-12))


def _load(module, tensors, prefix):
    wanted = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing, unexpected = module.load_state_dict(wanted, strict=False)
    if missing:
        raise KeyError(f"tensors missing under {prefix!r}: {missing}")
    return module


class ClassifierModel(nn.Module):
    """The AG News notebook's Model: embedding, encoder, dense_linear."""

    def __init__(self, config, tensors):
        super().__init__()
        s = _settings(config)
        self.word_embedding = nn.Embedding(config["vocab_size"], s.hidden_size, padding_idx=0)
        self.fastformer_model = FastformerEncoder(s)
        self.dense_linear = nn.Linear(s.hidden_size, len(config["id2label"]))
        _load(self, tensors, "")
        self.eval()

    def pooled(self, input_ids):
        mask = input_ids.bool().float()
        return self.fastformer_model(self.word_embedding(input_ids), mask)

    def forward(self, input_ids):
        return self.dense_linear(self.pooled(input_ids))


class NewsRecModel(nn.Module):
    def __init__(self, config, tensors):
        super().__init__()
        s = _settings(config)
        u = _settings(config, config["user_num_hidden_layers"], config["max_history"])
        self.word_embedding = nn.Embedding(config["vocab_size"], s.hidden_size, padding_idx=0)
        self.news_model = FastformerEncoder(s)
        self.user_model = FastformerEncoder(u)
        _load(self.word_embedding, tensors, "news_encoder.word_embedding.")
        _load(self.news_model, tensors, "news_encoder.fastformer_model.")
        _load(self.user_model, tensors, "user_encoder.fastformer_model.")
        self.eval()

    def news_vectors(self, title_ids):
        """(B, N) padded ids -> (B, D)."""
        mask = title_ids.bool().float()
        return self.news_model(self.word_embedding(title_ids), mask)

    def user_vector(self, news_vecs, hist_mask):
        """(B, Hn, D), (B, Hn) -> (B, D)."""
        return self.user_model(news_vecs, hist_mask)


def load_model_dir(path):
    with open(f"{path}/config.json") as f:
        config = json.load(f)
    tensors = read_safetensors(f"{path}/model.safetensors")
    if config["architectures"][0] == "FastformerForSequenceClassification":
        return ClassifierModel(config, tensors)
    return NewsRecModel(config, tensors)
