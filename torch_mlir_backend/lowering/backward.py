"""Ops that appear only in AOTAutograd's backward graphs.

Most backward ops (`threshold_backward`, `native_layer_norm_backward`, `native_batch_norm_backward`,
`_softmax_backward_data`, `_log_softmax_backward_data`, `gelu_backward`, `sigmoid_backward`,
`tanh_backward`, `embedding_dense_backward`, `native_dropout_backward`) are decomposed by PyTorch's
Core ATen table; `max_pool2d_with_indices_backward` by PyTorch's decomposition through
`scatter_add` (listed in `decompositions.EXTRA`). This module owns what is left:

- `DECOMPOSITIONS`: backward ops PyTorch has no decomposition for, written with torch ops so
  AOTAutograd traces them to Core ATen (`convolution_backward` as two convolutions and a sum,
  `avg_pool2d_backward` as a depthwise transposed convolution, the CPU flash-attention backward as
  the attention math). `decompositions.decomposition_table()` merges them in.
- Rules for the scatters those decompositions produce (`index_put` with or without accumulation,
  `scatter_add`): `scf.for` loops over the source elements that read-modify-write the destination
  with `tensor.extract`/`tensor.insert` (a scatter is not a `linalg.generic`: the written position
  is data dependent). Indices are wrapped and clamped like the gathers in `indexing.py`: compiled
  code cannot raise, so a bad index writes a wrong element instead of crashing the process.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, math, scf, tensor

from ..options import convolution_policy
from . import builders as b
from .indexing import INDEX_DTYPES, _position
from .registry import lowers

aten = torch.ops.aten

SCATTER_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16,
                  torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


# ----- decompositions -------------------------------------------------------------------------
DECOMPOSITIONS: dict = {}


def _decomposes(op):
    def register(fn):
        DECOMPOSITIONS[op] = fn
        return fn

    return register


@_decomposes(aten.convolution_backward.default)
def convolution_backward(grad_output, input, weight, bias_sizes, stride, padding, dilation,
                         transposed, output_padding, groups, output_mask):
    """grad_input: the transposed convolution of grad_output with the same weight; grad_weight:
    a convolution of the input with grad_output as the kernel (batch and channels swapped,
    stride and dilation swapped); grad_bias: grad_output summed over all but channels."""
    if transposed:
        return NotImplemented
    if convolution_policy() == "aten" and input.dtype in (torch.float32, torch.float64):
        return NotImplemented  # ATen's kernel, called from the graph (lowering/convolution.py)
    nd = input.dim() - 2
    stride, padding, dilation = (list(p) * nd if len(p) == 1 else list(p)
                                 for p in (stride, padding, dilation))
    grad_input = grad_weight = grad_bias = None
    spatial_in, spatial_out, kernel = input.shape[2:], grad_output.shape[2:], weight.shape[2:]
    if output_mask[0]:
        # Positions past the last window get no gradient; output_padding restores the input size.
        extra = [spatial_in[i] - ((spatial_out[i] - 1) * stride[i] - 2 * padding[i]
                                  + dilation[i] * (kernel[i] - 1) + 1) for i in range(nd)]
        grad_input = aten.convolution.default(grad_output, weight, None, stride, padding, dilation,
                                              True, extra, groups)
    if output_mask[1]:
        n, c_in = input.shape[:2]
        c_out = grad_output.shape[1]
        cin_g, cout_g = c_in // groups, c_out // groups
        # [N, G*Cin_g, ...] -> [Cin_g, G*N, ...]; [N, G*Cout_g, ...] -> [G*Cout_g, N, ...]
        x = input.reshape(n, groups, cin_g, *spatial_in).movedim(2, 0).movedim(2, 1)
        x = x.reshape(cin_g, groups * n, *spatial_in)
        g = grad_output.reshape(n, groups, cout_g, *spatial_out).movedim(0, 2)
        g = g.reshape(groups * cout_g, n, *spatial_out)
        w = aten.convolution.default(x, g, None, dilation, padding, stride, False, [0] * nd, groups)
        # [Cin_g, G*Cout_g, k'...]: the swapped convolution may see a few extra positions.
        w = w[(slice(None), slice(None)) + tuple(slice(0, k) for k in kernel)]
        grad_weight = w.transpose(0, 1).contiguous()
    if output_mask[2]:
        grad_bias = grad_output.sum([0] + list(range(2, grad_output.dim())))
    return grad_input, grad_weight, grad_bias


@_decomposes(aten.avg_pool2d_backward.default)
def avg_pool2d_backward(grad_output, input, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
    """Each output's gradient divided by its window's divisor, spread over its window: a
    depthwise transposed convolution with a kernel of ones, cropped or zero-extended to the input
    (windows of ceil_mode may hang over the end; trailing rows no window covers get zero)."""
    kh, kw = (kernel_size * 2 if len(kernel_size) == 1 else kernel_size)
    stride = stride or (kh, kw)
    sh, sw = stride * 2 if len(stride) == 1 else stride
    ph, pw = padding * 2 if len(padding) == 1 else padding
    h, w = input.shape[-2:]
    oh, ow = grad_output.shape[-2:]
    if divisor_override:
        divisor = float(divisor_override)
    else:
        # The divisor of every window, computed like the forward: the window clipped to the
        # padded input (count_include_pad) or to the input itself.
        rows = torch.arange(oh, dtype=torch.int64) * sh - ph
        cols = torch.arange(ow, dtype=torch.int64) * sw - pw
        if count_include_pad:
            rh = (torch.clamp(rows + kh, max=h + ph) - rows)
            rw = (torch.clamp(cols + kw, max=w + pw) - cols)
        else:
            rh = torch.clamp(rows + kh, max=h) - torch.clamp(rows, min=0)
            rw = torch.clamp(cols + kw, max=w) - torch.clamp(cols, min=0)
        divisor = (rh[:, None] * rw[None, :]).to(grad_output.dtype)
    scaled = grad_output / divisor
    lead = scaled.shape[:-2]
    channels = 1
    for s in lead:
        channels *= s
    scaled = scaled.reshape(1, channels, oh, ow)
    ones = torch.ones(channels, 1, kh, kw, dtype=grad_output.dtype)
    full = aten.convolution.default(scaled, ones, None, [sh, sw], [ph, pw], [1, 1], True, [0, 0],
                                    channels)
    fh, fw = full.shape[-2:]
    full = full[..., :min(fh, h), :min(fw, w)]
    if fh < h or fw < w:
        full = torch.nn.functional.pad(full, (0, max(0, w - fw), 0, max(0, h - fh)))
    return full.reshape(input.shape)


@_decomposes(aten._scaled_dot_product_flash_attention_for_cpu_backward.default)
def flash_attention_cpu_backward(grad_out, query, key, value, out, logsumexp, dropout_p,
                                 is_causal, attn_mask=None, scale=None):
    """The attention backward from the saved probabilities. PyTorch's decomposition of the
    forward (`_scaled_dot_product_flash_attention_for_cpu`, Core ATen table) returns the attention
    probabilities [.., L, S] in the log-sum-exp slot, so that is what autograd saves; a real
    log-sum-exp [.., L] (forward not decomposed) recomputes them."""
    if dropout_p != 0.0:
        return NotImplemented
    scale = scale if scale is not None else 1.0 / (query.shape[-1] ** 0.5)
    if logsumexp.dim() == query.dim():
        probs = logsumexp
    else:
        scores = torch.matmul(query, key.transpose(-2, -1)) * scale
        if is_causal:
            causal = torch.ones(query.shape[-2], key.shape[-2], dtype=torch.bool).tril()
            scores = scores.masked_fill(~causal, float("-inf"))
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf")) \
                if attn_mask.dtype == torch.bool else scores + attn_mask
        probs = torch.exp(scores - logsumexp.unsqueeze(-1))
    grad_value = torch.matmul(probs.transpose(-2, -1), grad_out)
    grad_probs = torch.matmul(grad_out, value.transpose(-2, -1))
    row = (grad_out * out).sum(-1, keepdim=True)
    grad_scores = probs * (grad_probs - row) * scale
    grad_query = torch.matmul(grad_scores, key)
    grad_key = torch.matmul(grad_scores.transpose(-2, -1), query)
    return grad_query, grad_key, grad_value


# ----- scatters -------------------------------------------------------------------------------
def _loop_nest(sizes: Sequence[int], carried: ir.Value,
               body: Callable[[list[ir.Value], ir.Value], ir.Value]) -> ir.Value:
    """Nested `scf.for` loops over `sizes` carrying one tensor; `body(ivs, tensor) -> tensor`."""
    if not sizes:
        return body([], carried)
    zero, one = b.index_constant(0), b.index_constant(1)

    def level(depth: int, ivs: list, value: ir.Value) -> ir.Value:
        loop = scf.ForOp(zero, b.index_constant(sizes[depth]), one, [value])
        with ir.InsertionPoint(loop.body):
            inner_ivs = ivs + [loop.induction_variable]
            current = loop.inner_iter_args[0]
            if depth + 1 == len(sizes):
                new = body(inner_ivs, current)
            else:
                new = level(depth + 1, inner_ivs, current)
            scf.YieldOp([new])
        return loop.results[0]

    return level(0, [], carried)


def _add(x: ir.Value, y: ir.Value, dtype: torch.dtype) -> ir.Value:
    return (arith.AddFOp(x, y) if dtype.is_floating_point else arith.AddIOp(x, y)).result


def _broadcast_position(ivs: Sequence[ir.Value], shape: Sequence[int], target_rank: int) -> list:
    """Where `ivs` (over a shape of `target_rank`) read an operand of `shape` broadcast to it."""
    offset = target_rank - len(shape)
    zero = b.index_constant(0)
    return [zero if s == 1 else ivs[offset + j] for j, s in enumerate(shape)]


@lowers(aten.index_put.default, dtypes=SCATTER_DTYPES + INDEX_DTYPES)
def index_put(ctx, x, indices, values, accumulate=False):
    spec = ctx.in_specs[0]
    ctx.require(spec.is_static, "dynamic shapes are not supported by index_put yet")
    ctx.require(bool(indices) and all(v is not None for v in indices),
                "only leading index tensors are supported (x[i, j] = v, not x[:, i] = v)")
    shape = list(spec.shape)
    idx_shapes = [b.static_shape(v) for v in indices]
    for v in indices:
        elem = str(ir.RankedTensorType(v.type).element_type)
        ctx.require(elem in ("i64", "i32"), "only int64/int32 index tensors are supported "
                    "(bool masks give data-dependent shapes)")
    ctx.require(all(s == idx_shapes[0] for s in idx_shapes) and None not in idx_shapes[0],
                "index tensors must have one static shape")
    k = len(indices)
    loop_shape = list(idx_shapes[0]) + shape[k:]
    values_shape = b.static_shape(values)
    ctx.require(len(values_shape) <= len(loop_shape) and None not in values_shape and all(
        s in (1, loop_shape[len(loop_shape) - len(values_shape) + j])
        for j, s in enumerate(values_shape)), "values must broadcast to the indexed shape")
    dtype = spec.dtype
    n_idx = len(idx_shapes[0])

    def body(ivs, dest):
        pos = [_position(tensor.ExtractOp(v, ivs[:n_idx]).result, shape[d], True)
               for d, v in enumerate(indices)] + ivs[n_idx:]
        new = tensor.ExtractOp(values, _broadcast_position(ivs, values_shape, len(loop_shape))).result
        if accumulate:
            new = _add(tensor.ExtractOp(dest, pos).result, new, dtype)
        return tensor.InsertOp(new, dest, pos).result

    return _loop_nest(loop_shape, x, body)


@lowers(aten.scatter_add.default, dtypes=SCATTER_DTYPES + INDEX_DTYPES)
def scatter_add(ctx, x, dim, index, src):
    spec = ctx.in_specs[0]
    ctx.require(spec.is_static and ctx.in_specs[2].is_static and ctx.in_specs[3].is_static,
                "dynamic shapes are not supported by scatter_add yet")
    ctx.require(ctx.in_specs[2].dtype in INDEX_DTYPES, "the index must be int64 or int32")
    rank = spec.rank
    dim = ctx.static_int(dim, "dim") % max(rank, 1)
    shape = list(spec.shape)
    dtype = spec.dtype

    def body(ivs, dest):
        target = _position(tensor.ExtractOp(index, ivs).result, shape[dim], True)
        pos = ivs[:dim] + [target] + ivs[dim + 1:]
        new = _add(tensor.ExtractOp(dest, pos).result, tensor.ExtractOp(src, ivs).result, dtype)
        return tensor.InsertOp(new, dest, pos).result

    return _loop_nest(list(ctx.in_specs[2].shape), x, body)


# ----- optimizer steps ------------------------------------------------------------------------
@lowers(torch.ops.prims.fma.default, dtypes=(torch.float32, torch.float64, torch.float16, torch.bfloat16),
        wrapped_scalars=True)
def fma(ctx, x, y, z):
    """`x * y + z` with one rounding, as eager computes the `lerp` of `torch.optim.Adam(W)`'s
    moment updates (PyTorch's lerp decomposition emits `prims.fma`)."""
    dtypes = [spec.dtype if spec is not None else ctx.out_spec.dtype for spec in ctx.in_specs]
    return b.elementwise([x, y, z], dtypes, ctx.out_spec, lambda a, c, d: math.FmaOp(a, c, d).result)
