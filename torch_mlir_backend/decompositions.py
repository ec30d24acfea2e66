"""The decomposition table AOTAutograd applies before import: PyTorch's Core ATen table plus
the ops we prefer to see decomposed (each listed with why). Edit this one place to change what
the importer sees."""
from __future__ import annotations

import functools

import torch
from torch._decomp import core_aten_decompositions, get_decompositions

aten = torch.ops.aten

# Ops outside Core ATen's own decompositions that we lower through PyTorch's reference
# decompositions rather than a rule of our own (the decomposition is already fused well by
# linalg elementwise fusion, or the op is rare).
EXTRA = [
    # Backward of max pooling as a scatter_add of the gradients at the saved indices
    # (rule in lowering/backward.py).
    aten.max_pool2d_with_indices_backward,
    # Dropout in training as a comparison of `rand` (rule in lowering/random.py) with p.
    aten.native_dropout,
]


# Decompositions PyTorch does not have, written here: ATen ops with fused CPU kernels that
# modules reach on their inference fast paths (nn.TransformerEncoderLayer, nn.MultiheadAttention
# in eval mode without grad). Written with torch ops, so AOTAutograd traces them to Core ATen.
OWN: dict = {}


def _own(op):
    def register(fn):
        OWN[op] = fn
        return fn

    return register


def _attention_mask(mask, mask_type, batch, heads, q_len, k_len, dtype):
    """The additive mask [B|1, H|1, Tq, Tk] for `_native_multi_head_attention`'s mask types
    (0: [Tq, Tk] attention mask, 1: [B, Tk] key padding mask, 2: [B, H, Tq, Tk]); bool = masked."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=dtype).masked_fill(mask, float("-inf"))
    else:
        mask = mask.to(dtype)
    if mask.dim() == 2 and mask_type == 1:
        return mask.view(batch, 1, 1, k_len)
    if mask.dim() == 2:
        return mask.view(1, 1, q_len, k_len)
    if mask.dim() == 3:
        return mask.view(batch, -1, q_len, k_len)
    return mask


@_own(aten._native_multi_head_attention.default)
def native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias,
                                proj_weight, proj_bias, mask=None, need_weights=True,
                                average_attn_weights=True, mask_type=None):
    batch, q_len, _ = query.shape
    k_len = key.shape[1]
    head_dim = embed_dim // num_head
    w_q, w_k, w_v = qkv_weight.chunk(3)
    b_q, b_k, b_v = qkv_bias.chunk(3)
    q = torch.nn.functional.linear(query, w_q, b_q).view(batch, q_len, num_head, head_dim).transpose(1, 2)
    k = torch.nn.functional.linear(key, w_k, b_k).view(batch, k_len, num_head, head_dim).transpose(1, 2)
    v = torch.nn.functional.linear(value, w_v, b_v).view(batch, k_len, num_head, head_dim).transpose(1, 2)
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / head_dim ** 0.5)
    additive = _attention_mask(mask, mask_type, batch, num_head, q_len, k_len, scores.dtype)
    if additive is not None:
        scores = scores + additive
    weights = torch.softmax(scores, dim=-1)
    attn = torch.matmul(weights, v).transpose(1, 2).reshape(batch, q_len, embed_dim)
    out = torch.nn.functional.linear(attn, proj_weight, proj_bias)
    if need_weights:
        return out, (weights.mean(dim=1) if average_attn_weights else weights)
    return out, out.new_empty(0)


@_own(aten._transformer_encoder_layer_fwd.default)
def transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight,
                                  proj_bias, use_gelu, norm_first, eps, norm_weight_1, norm_bias_1,
                                  norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1, ffn_weight_2,
                                  ffn_bias_2, mask=None, mask_type=None):
    """The math of ATen's `transformer_encoder_layer_forward` (transformer.cpp)."""
    def norm(t, w, b):
        return torch.nn.functional.layer_norm(t, (embed_dim,), w, b, eps)

    x = norm(src, norm_weight_1, norm_bias_1) if norm_first else src
    x = native_multi_head_attention(x, x, x, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight,
                                    proj_bias, mask, False, True, mask_type)[0]
    x = x + src
    if not norm_first:
        x = norm(x, norm_weight_1, norm_bias_1)
    residual = x
    if norm_first:
        x = norm(x, norm_weight_2, norm_bias_2)
    hidden = torch.nn.functional.linear(x, ffn_weight_1, ffn_bias_1)
    hidden = torch.nn.functional.gelu(hidden) if use_gelu else torch.relu(hidden)
    x = torch.nn.functional.linear(hidden, ffn_weight_2, ffn_bias_2) + residual
    if not norm_first:
        x = norm(x, norm_weight_2, norm_bias_2)
    return x


@functools.lru_cache(maxsize=None)
def _table():
    table = dict(core_aten_decompositions())
    table.update(get_decompositions(EXTRA))
    table.update(OWN)
    # Backward-only ops PyTorch has no decomposition for (convolution_backward, ...).
    from .lowering.backward import DECOMPOSITIONS as BACKWARD_DECOMPOSITIONS

    table.update(BACKWARD_DECOMPOSITIONS)
    return table


def decomposition_table() -> dict:
    return _table()
