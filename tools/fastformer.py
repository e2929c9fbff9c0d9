"""Reference Fastformer in PyTorch, written from the official code's math
(wuch15/Fastformer, Fastformer.ipynb) with its module and parameter names, so
that state_dict() keys are exactly the names the C engine loads.

Models:
  FastformerClassifier  word_embedding + fastformer_model + dense_linear
  FastformerNewsRec     news_encoder.{word_embedding, fastformer_model}
                        + user_encoder.fastformer_model, dot-product scores
"""
from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass
class FastformerConfig:
    hidden_size: int = 256
    num_attention_heads: int = 16
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    max_position_embeddings: int = 256
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.2
    initializer_range: float = 0.02


class FastSelfAttention(nn.Module):
    """Additive attention with query-value sharing (V = Q)."""

    def __init__(self, cfg):
        super().__init__()
        d, h = cfg.hidden_size, cfg.num_attention_heads
        if d % h != 0:
            raise ValueError(f"hidden_size {d} is not a multiple of num_attention_heads {h}")
        self.num_heads = h
        self.head_dim = d // h
        self.query = nn.Linear(d, d)
        self.query_att = nn.Linear(d, h)
        self.key = nn.Linear(d, d)
        self.key_att = nn.Linear(d, h)
        self.transform = nn.Linear(d, d)

    def _split(self, x):
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)  # (B,H,N,dh)

    def forward(self, x, ext_mask):
        b, n, d = x.shape
        scale = self.head_dim ** 0.5
        q = self.query(x)
        k = self.key(x)
        alpha = torch.softmax(self.query_att(q).transpose(1, 2) / scale + ext_mask, dim=-1)  # (B,H,N)
        q_global = torch.matmul(alpha.unsqueeze(2), self._split(q))  # (B,H,1,dh)
        q_global = q_global.transpose(1, 2).reshape(b, 1, d)
        p = k * q_global
        beta = torch.softmax(self.key_att(p).transpose(1, 2) / scale + ext_mask, dim=-1)
        k_global = torch.matmul(beta.unsqueeze(2), self._split(p)).transpose(1, 2).reshape(b, 1, d)
        u = k_global * q
        return self.transform(u) + q


class DenseLayerNorm(nn.Module):
    """HF BertSelfOutput / BertOutput: LayerNorm(dropout(dense(x)) + residual)."""

    def __init__(self, d_in, d_out, cfg):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class FastAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self = FastSelfAttention(cfg)
        self.output = DenseLayerNorm(cfg.hidden_size, cfg.hidden_size, cfg)

    def forward(self, x, ext_mask):
        return self.output(self.self(x, ext_mask), x)


class Intermediate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))  # exact erf form


class FastformerLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = FastAttention(cfg)
        self.intermediate = Intermediate(cfg)
        self.output = DenseLayerNorm(cfg.intermediate_size, cfg.hidden_size, cfg)

    def forward(self, x, ext_mask):
        a = self.attention(x, ext_mask)
        return self.output(self.intermediate(a), a)


class AttentionPooling(nn.Module):
    """w = exp(att_fc2(tanh(att_fc1(x)))) * mask; w /= sum(w) + 1e-8; sum_i w_i x_i."""

    def __init__(self, cfg):
        super().__init__()
        self.att_fc1 = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.att_fc2 = nn.Linear(cfg.hidden_size, 1)

    def forward(self, x, mask):
        w = torch.exp(self.att_fc2(torch.tanh(self.att_fc1(x))))
        w = w * mask.unsqueeze(2)
        w = w / (torch.sum(w, dim=1, keepdim=True) + 1e-8)
        return torch.bmm(x.permute(0, 2, 1), w).squeeze(-1)


class FastformerEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.encoders = nn.ModuleList([FastformerLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        self.poolers = nn.ModuleList([AttentionPooling(cfg)])

    def forward(self, embs, mask, pooler_index=0):
        """embs (B,N,D) float, mask (B,N) float 1/0 -> pooled (B,D)."""
        ext = (1.0 - mask.unsqueeze(1).to(embs.dtype)) * -10000.0  # (B,1,N)
        n = embs.shape[1]
        pos = self.position_embeddings(torch.arange(n, dtype=torch.long, device=embs.device))
        x = self.dropout(self.LayerNorm(embs + pos.unsqueeze(0)))
        for layer in self.encoders:
            x = layer(x, ext)
        return self.poolers[pooler_index](x, mask)


def init_weights(module, cfg):
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            m.weight.data.normal_(mean=0.0, std=cfg.initializer_range)
        if isinstance(m, nn.Linear) and m.bias is not None:
            m.bias.data.zero_()
        if isinstance(m, nn.LayerNorm):
            m.weight.data.fill_(1.0)
            m.bias.data.zero_()
        if isinstance(m, nn.Embedding) and m.padding_idx is not None:
            m.weight.data[m.padding_idx].zero_()


class FastformerClassifier(nn.Module):
    """The AG News notebook's Model: logits = dense_linear(pool(encoder(emb(ids))))."""

    def __init__(self, cfg, vocab_size, num_labels):
        super().__init__()
        self.word_embedding = nn.Embedding(vocab_size, cfg.hidden_size, padding_idx=0)
        self.fastformer_model = FastformerEncoder(cfg)
        self.dense_linear = nn.Linear(cfg.hidden_size, num_labels)
        init_weights(self, cfg)

    def encode(self, input_ids):
        mask = input_ids.bool().float()
        return self.fastformer_model(self.word_embedding(input_ids), mask)

    def forward(self, input_ids):
        return self.dense_linear(self.encode(input_ids))


class NewsEncoder(nn.Module):
    def __init__(self, cfg, vocab_size):
        super().__init__()
        self.word_embedding = nn.Embedding(vocab_size, cfg.hidden_size, padding_idx=0)
        self.fastformer_model = FastformerEncoder(cfg)

    def forward(self, title_ids):
        mask = title_ids.bool().float()
        return self.fastformer_model(self.word_embedding(title_ids), mask)


class UserEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.fastformer_model = FastformerEncoder(cfg)

    def forward(self, news_vecs, hist_mask):
        """news_vecs (B,Hn,D), oldest first, real items first; hist_mask (B,Hn) 1/0."""
        return self.fastformer_model(news_vecs, hist_mask)


class FastformerNewsRec(nn.Module):
    """News encoder over titles, user encoder over clicked-news vectors, dot-product score."""

    def __init__(self, cfg, vocab_size, user_num_hidden_layers=1, max_history=50):
        super().__init__()
        user_cfg = FastformerConfig(**{**cfg.__dict__,
                                       "num_hidden_layers": user_num_hidden_layers,
                                       "max_position_embeddings": max_history})
        self.news_encoder = NewsEncoder(cfg, vocab_size)
        self.user_encoder = UserEncoder(user_cfg)
        init_weights(self, cfg)

    def user_vector(self, hist_ids, hist_mask):
        b, h, n = hist_ids.shape
        vecs = self.news_encoder(hist_ids.reshape(b * h, n)).reshape(b, h, -1)
        return self.user_encoder(vecs, hist_mask)

    def forward(self, hist_ids, hist_mask, cand_ids):
        """hist_ids (B,Hn,N), hist_mask (B,Hn), cand_ids (B,K,N) -> scores (B,K)."""
        b, k, n = cand_ids.shape
        user = self.user_vector(hist_ids, hist_mask)
        cands = self.news_encoder(cand_ids.reshape(b * k, n)).reshape(b, k, -1)
        return torch.bmm(cands, user.unsqueeze(-1)).squeeze(-1)
