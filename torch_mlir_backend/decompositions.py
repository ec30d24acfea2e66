"""The decomposition table AOTAutograd applies before import: PyTorch's Core ATen table plus
the ops we prefer to see decomposed (each listed with why). Edit this one place to change what
the importer sees."""
from __future__ import annotations

import functools
import math

import torch
from torch._decomp import core_aten_decompositions, get_decompositions

aten = torch.ops.aten

# Ops outside Core ATen's own decompositions that we lower through PyTorch's reference
# decompositions rather than a rule of our own (the decomposition is already fused well by
# linalg elementwise fusion, or the op is rare).
EXTRA = [
    # p-norms as abs/pow/sum or amax/amin (reference decomposition; fuses into one reduction).
    aten.linalg_vector_norm,
    # repeat as unsqueeze/expand/clone/view (diagonal and unfold have rules in lowering/misc.py:
    # their reference decompositions are as_strided calls with the strides of the input view).
    aten.repeat,
    # Backward of max pooling as a scatter_add of the gradients at the saved indices
    # (rule in lowering/backward.py).
    aten.max_pool2d_with_indices_backward,
    # Dropout in training as a comparison of `rand` (rule in lowering/random.py) with p.
    aten.native_dropout,
    # ldexp as x * 2**e (new_full + pow + mul; the reference decomposition).
    aten.ldexp,
    # Copies of views and norms of differences, as the view/norm they copy (rules exist for
    # narrow/unbind/as_strided, vector norms); batch norm in training with the running stats
    # as results; grid_sample as gathers and arithmetic.
    aten.narrow_copy,
    aten.unbind_copy,
    aten.as_strided_copy,
    aten.dist,
    aten._batch_norm_with_update_functional,
    aten.grid_sampler_2d,
    # Core ATen overloads that PyTorch decomposes but its core table keeps: batch norm without
    # the functional wrapper (no running stats, or stats updated in place), and resizes given a
    # scale list (`.vec`), as index arithmetic and gathers.
    aten._native_batch_norm_legit.default,
    aten._native_batch_norm_legit.no_stats,
    aten.upsample_bilinear2d.vec,
    aten.upsample_nearest2d.vec,
    # addmv as mv + add; the *_copy forms of views as the view plus a copy; new_empty_strided as
    # empty (our results are contiguous).
    aten.addmv,
    aten.new_empty_strided,
    aten.permute_copy,
    aten.view_copy,
    aten.expand_copy,
    aten.transpose_copy,
    aten.t_copy,
    aten.squeeze_copy,
    aten.unsqueeze_copy,
    aten.alias_copy,
    aten.diagonal_copy,
    aten.split_with_sizes_copy,
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


@_own(aten.angle.default)
def angle(x):
    """The argument of a real number: pi for negatives, 0 otherwise, NaN stays NaN (eager's
    real-input kernel); integers give the default float dtype."""
    if x.is_complex():
        return torch.atan2(x.imag, x.real)
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    x = x.to(dtype)
    return torch.where(torch.isnan(x), x, torch.where(x < 0, torch.full_like(x, math.pi), torch.zeros_like(x)))


def _adaptive_pool_matrix(in_size: int, out_size: int, dtype) -> torch.Tensor:
    """[out, in]: row o averages input positions [floor(o*I/O), ceil((o+1)*I/O)) (eager's windows)."""
    o = torch.arange(out_size).unsqueeze(1)
    i = torch.arange(in_size).unsqueeze(0)
    start = torch.div(o * in_size, out_size, rounding_mode="floor")
    end = torch.div((o + 1) * in_size + out_size - 1, out_size, rounding_mode="floor")
    inside = (i >= start) & (i < end)
    return inside.to(dtype) / (end - start).to(dtype)


@_own(aten._adaptive_avg_pool2d_backward.default)
def adaptive_avg_pool2d_backward(grad_output, x):
    """The forward is out = P_h x P_w^T per plane (P: window-averaging matrices), so the
    gradient is P_h^T grad P_w: two small contractions, no scatter."""
    p_h = _adaptive_pool_matrix(x.shape[-2], grad_output.shape[-2], grad_output.dtype)
    p_w = _adaptive_pool_matrix(x.shape[-1], grad_output.shape[-1], grad_output.dtype)
    return torch.matmul(torch.matmul(p_h.t(), grad_output), p_w).to(x.dtype)


@_own(aten._native_multi_head_attention.default)
def native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias,
                                proj_weight, proj_bias, mask=None, need_weights=True,
                                average_attn_weights=True, mask_type=None):
    batch, q_len, _ = query.shape
    k_len = key.shape[1]
    head_dim = embed_dim // num_head
    w_q, w_k, w_v = qkv_weight.chunk(3)
    b_q, b_k, b_v = qkv_bias.chunk(3)

    def heads(t, length):
        # [B, T, E] -> [B*H, T, hd] through a copy: reshaping the transposed view instead makes
        # the decompositions guard `T != 1` (a view is only possible then), so a dynamic
        # sequence length would get a second graph for length 1.
        t = t.view(batch, length, num_head, head_dim).permute(0, 2, 1, 3)
        return t.clone(memory_format=torch.contiguous_format).view(batch * num_head, length, head_dim)

    q = heads(torch.nn.functional.linear(query, w_q, b_q), q_len)
    k = heads(torch.nn.functional.linear(key, w_k, b_k), k_len)
    v = heads(torch.nn.functional.linear(value, w_v, b_v), k_len)
    additive = _attention_mask(mask, mask_type, batch, num_head, q_len, k_len, q.dtype)
    if not need_weights:
        # the fused attention rule (lowering/reduction.py) where it applies: no scores copies
        def split(t, length):
            return t.view(batch, num_head, length, head_dim)

        # the CPU op itself: scaled_dot_product_attention's backend selection guards on sizes
        # (a dynamic sequence length then compiles a second graph)
        attn = aten._scaled_dot_product_flash_attention_for_cpu.default(
            split(q, q_len), split(k, k_len), split(v, k_len), 0.0, False, attn_mask=additive)[0]
    else:
        scores = torch.bmm(q, k.transpose(1, 2)).view(batch, num_head, q_len, k_len) * (1.0 / head_dim ** 0.5)
        if additive is not None:
            scores = scores + additive
        weights = torch.softmax(scores, dim=-1)
        attn = torch.bmm(weights.view(batch * num_head, q_len, k_len), v).view(batch, num_head, q_len, head_dim)
    attn = attn.permute(0, 2, 1, 3).clone(memory_format=torch.contiguous_format).view(batch, q_len, embed_dim)
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


def _embedding_bag(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                   per_sample_weights=None, include_last_offset=False, padding_idx=-1):
    """ATen's embedding_bag (mode 0 sum, 1 mean, 2 max) as a gather and a scatter by bag.
    Returns (output, offset2bag, bag_size, max_indices) as eager's CPU kernel does; empty bags
    give zeros. Autograd differentiates through the gather/scatter, so training works too."""
    n = indices.shape[0]
    num_bags = offsets.shape[0] - (1 if include_last_offset else 0)
    position = torch.arange(n, device=indices.device)
    starts = offsets[:num_bags]
    bag = (starts.unsqueeze(0) <= position.unsqueeze(1)).sum(1) - 1  # offsets are sorted
    used = indices != padding_idx
    if include_last_offset:
        used = used & (position < offsets[num_bags])
    rows = weight[indices]
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.unsqueeze(1).to(rows.dtype)
    counts = torch.zeros(num_bags, dtype=indices.dtype, device=indices.device).index_add(
        0, bag.clamp(min=0), used.to(indices.dtype))
    dim = weight.shape[1]
    if mode == 2:
        # Entries that do not count go to bag `num_bags`, which the scatter drops.
        target = torch.where(used & (bag >= 0), bag, num_bags).unsqueeze(1).expand(n, dim)
        out = torch.zeros(num_bags, dim, dtype=weight.dtype, device=weight.device).scatter_reduce(
            0, target, rows, "amax", include_self=False)
        # max_indices: the weight row of the first entry of each bag holding the maximum.
        is_max = (rows == out[bag.clamp(min=0)]) & (target < num_bags)
        first = torch.where(is_max, position.unsqueeze(1).expand(n, dim), n)
        first = torch.full((num_bags, dim), n, dtype=first.dtype, device=first.device).scatter_reduce(
            0, target, first, "amin", include_self=True)
        max_indices = torch.where(first < n, indices[first.clamp(max=n - 1)], 0)
        return out, bag, counts, max_indices
    rows = torch.where(used.unsqueeze(1), rows, 0)
    out = torch.zeros(num_bags, dim, dtype=weight.dtype, device=weight.device).index_add(0, bag.clamp(min=0), rows)
    if mode == 1:
        out = out / counts.clamp(min=1).unsqueeze(1).to(out.dtype)
        return out, bag, counts, counts
    zeros = torch.zeros_like(counts)
    if padding_idx < 0 and per_sample_weights is None:  # eager's fast path leaves offset2bag empty
        bag = bag.new_empty(0)
    return out, bag, zeros, zeros


OWN[aten._embedding_bag_forward_only.default] = _embedding_bag
OWN[aten._embedding_bag.default] = _embedding_bag


def _linear_cross_entropy_terms(input, linear_weight, target, linear_bias, weight, ignore_index, acc_dtype):
    """Logits (in the op's accumulation dtype), per-row weights (class weight, 0 for ignored
    rows) and the clamped targets of `F.linear_cross_entropy`'s chunked ops."""
    dtype = acc_dtype if acc_dtype is not None else input.dtype
    logits = torch.nn.functional.linear(input.to(dtype), linear_weight.to(dtype),
                                        None if linear_bias is None else linear_bias.to(dtype))
    valid = target != ignore_index
    safe_target = torch.where(valid, target, 0)
    row_weight = valid.to(dtype) if weight is None else torch.where(valid, weight.to(dtype)[safe_target], 0)
    return logits, row_weight, safe_target


def _linear_cross_entropy_chunked(input, linear_weight, target, linear_bias, weight, reduction, ignore_index,
                                  label_smoothing, batch_chunk_size, acc_policy, acc_dtype, allow_retain_graph,
                                  compute_input_grad, compute_linear_weight_grad, compute_linear_bias_grad):
    """`torch_nn::_linear_cross_entropy_batch_chunked` (F.linear_cross_entropy with chunking
    options, reduction mean/sum): the loss and, when asked at trace time, its gradients, which
    the op precomputes in forward. PyTorch's implementation is a chunked loop of in-place and
    `out=` ops (not traceable into a functional graph); this is the same math unchunked: softmax
    cross entropy of the linear's logits, gradients (softmax - one_hot) * row weight through the
    linear. The chunked path requires label_smoothing == 0 (F.linear_cross_entropy's gate)."""
    logits, row_weight, safe_target = _linear_cross_entropy_terms(input, linear_weight, target, linear_bias,
                                                                   weight, ignore_index, acc_dtype)
    log_probs = torch.log_softmax(logits, 1)
    picked = log_probs.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    if reduction == "mean":
        row_weight = row_weight / row_weight.sum()
    loss = -(picked * row_weight).sum()
    grad = (torch.exp(log_probs) - torch.nn.functional.one_hot(safe_target, logits.shape[1]).to(logits.dtype)) \
        * row_weight.unsqueeze(1)
    dtype = input.dtype
    grad_input = (grad @ linear_weight.to(grad.dtype)).to(dtype) if compute_input_grad \
        else input.new_empty((0, 0))
    grad_linear_weight = (grad.t() @ input.to(grad.dtype)).to(dtype) if compute_linear_weight_grad \
        else input.new_empty((0, 0))
    grad_linear_bias = grad.sum(0).to(dtype) if compute_linear_bias_grad else input.new_empty((0,))
    return loss.to(dtype), grad_input, grad_linear_weight, grad_linear_bias


def _linear_cross_entropy_chunked_no_reduction(input, linear_weight, target, linear_bias, weight, ignore_index,
                                               batch_chunk_size, acc_policy, acc_dtype):
    """`torch_nn::_linear_cross_entropy_batch_chunked_no_reduction`: the per-row loss
    (0 for ignored rows), unchunked (see above)."""
    logits, row_weight, safe_target = _linear_cross_entropy_terms(input, linear_weight, target, linear_bias,
                                                                   weight, ignore_index, acc_dtype)
    picked = torch.log_softmax(logits, 1).gather(1, safe_target.unsqueeze(1)).squeeze(1)
    return (-(picked * row_weight)).to(input.dtype)


def _register_linear_cross_entropy():
    # The custom ops are defined when torch.nn.modules.linear_cross_entropy is imported (lazily,
    # by F.linear_cross_entropy); older PyTorch has no such module.
    try:
        import torch.nn.modules.linear_cross_entropy  # noqa: F401
    except ImportError:
        return
    ops = torch.ops.torch_nn
    OWN[ops._linear_cross_entropy_batch_chunked.default] = _linear_cross_entropy_chunked
    OWN[ops._linear_cross_entropy_batch_chunked_no_reduction.default] = _linear_cross_entropy_chunked_no_reduction


_register_linear_cross_entropy()

@functools.lru_cache(maxsize=None)
def _table():
    table = dict(core_aten_decompositions())
    table.update(get_decompositions(EXTRA))
    table.update(OWN)
    # Backward-only ops PyTorch has no decomposition for (convolution_backward, ...).
    from .lowering.backward import DECOMPOSITIONS as BACKWARD_DECOMPOSITIONS

    table.update(BACKWARD_DECOMPOSITIONS)
    # Scatter-like ops (index_put brought to the rule's form, put, index_reduce,
    # as_strided_scatter, segment_reduce) and contraction-like ops (addbmm, cdist, pdist,
    # _trilinear).
    from .lowering.linear_algebra import DECOMPOSITIONS as LINEAR_ALGEBRA_DECOMPOSITIONS
    from .lowering.scatter import DECOMPOSITIONS as SCATTER_DECOMPOSITIONS

    from .lowering.pooling import DECOMPOSITIONS as RESAMPLING_DECOMPOSITIONS

    table.update(SCATTER_DECOMPOSITIONS)
    table.update(RESAMPLING_DECOMPOSITIONS)
    table.update(LINEAR_ALGEBRA_DECOMPOSITIONS)
    # CPU attention stays whole where its fused rule applies (lowering/reduction.py: two BLAS
    # contractions around one in-place softmax); PyTorch's decomposition takes the rest.
    sdpa = aten._scaled_dot_product_flash_attention_for_cpu.default
    if sdpa in table:
        table[sdpa] = functools.partial(_attention_unless_fused, table[sdpa])
    return table


def _attention_unless_fused(reference, query, key, value, dropout_p=0.0, is_causal=False, *,
                            attn_mask=None, scale=None):
    from .lowering.reduction import attention_is_fused

    if attention_is_fused(query, key, value, dropout_p, attn_mask):
        return NotImplemented  # traced as the op itself
    return reference(query, key, value, dropout_p, is_causal, attn_mask=attn_mask, scale=scale)


def decomposition_table() -> dict:
    return _table()
