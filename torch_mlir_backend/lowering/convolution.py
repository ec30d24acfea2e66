"""Convolution: `aten.convolution` in 1-D, 2-D and 3-D (channels-first), forward and transposed,
with stride, padding, dilation, groups and an optional bias.

Every case is brought to one normal form -- a zero-padded input `[N, C, *spatial]`, a forward
weight `[F, C/G, *kernel]` (output channels group-major) and stride/dilation -- then lowered to a
named linalg op where one exists (`conv_{1,2,3}d_nc*_fc*`, `depthwise_conv_*` for one channel per
group, `conv_2d_ngchw_gfchw` for 2-D groups) and to an equivalent `linalg.generic` otherwise
(grouped 1-D/3-D). A transposed convolution is the forward convolution of the input dilated by
the stride and padded by `dilation * (kernel - 1) - padding` (plus `output_padding` at the end),
with the weight flipped spatially and its in/out channels swapped per group.

The accumulator is initialised with the bias. f16/bf16 accumulate in f32 and are rounded once
(as eager's CPU kernels); integer convolutions accumulate in their own dtype, which wraps exactly
as eager's integer kernels do. Bool convolution, and dilated or transposed convolution of integers
other than int64, do not exist in eager and are rejected.

`pad_tensor` and `insert_strided` are also used by pooling.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, linalg, tensor

from .. import layout  # noqa: F401  (defines the tmb:: ops lowered here)
from ..options import ENV_CONVOLUTION, convolution_policy
from ..types import FLOAT_DTYPES, INT_DTYPES
from . import builders as b
from .extern import lower_as_extern_kernel, outputs_can_be_allocated
from .registry import LoweringContext, lowers

aten = torch.ops.aten

CONV_DTYPES = FLOAT_DTYPES + INT_DTYPES

_DYN = ir.ShapedType.get_dynamic_size


# ----- helpers shared with pooling ---------------------------------------------------------------
def pad_tensor(value: ir.Value, low: Sequence[int], high: Sequence[b.Size], pad_value, dtype: torch.dtype) -> ir.Value:
    """`tensor.pad` with a constant; `low` are static per-dimension amounts (>= 0), `high` static
    or run-time (`index` values, for dynamic dimensions)."""
    if not any(low) and all(isinstance(h, int) and h == 0 for h in high):
        return value
    t = ir.RankedTensorType(value.type)
    shape = b.static_shape(value)
    out_shape = [_DYN() if d is None or not isinstance(hi, int) else d + lo + hi
                 for d, lo, hi in zip(shape, low, high)]
    result_type = ir.RankedTensorType.get(out_shape, t.element_type)
    high_dynamic, high_static = _mixed(high)
    op = tensor.PadOp(result_type, value, [], high_dynamic, list(low), high_static)
    block = op.regions[0].blocks.append(*([b.index_type()] * t.rank))
    with ir.InsertionPoint(block):
        tensor.YieldOp(b.constant(pad_value, dtype))
    return op.result


def _mixed(values: Sequence[b.Size]) -> tuple[list[ir.Value], list[int]]:
    """(dynamic operands, static list with the dynamic sentinel) for slice ops."""
    dynamic = [b.as_index(v) for v in values if not isinstance(v, int)]
    static = [v if isinstance(v, int) else _DYN() for v in values]
    return dynamic, static


def insert_strided(source: ir.Value, dest: ir.Value, offsets: Sequence[int], strides: Sequence[int]) -> ir.Value:
    """`tensor.insert_slice` of the whole `source` into `dest` at `offsets` with `strides`."""
    sizes = b.sizes_of(source)
    if 0 in b.static_shape(source) or 0 in b.static_shape(dest):
        return dest  # nothing to write (and MLIR rejects offsets into a size-0 dimension)
    dyn_sizes, static_sizes = _mixed(sizes)
    return tensor.InsertSliceOp(source, dest, [], dyn_sizes, [], list(offsets), static_sizes,
                                list(strides)).result


def extract_slice(source: ir.Value, offsets: Sequence[int], sizes: Sequence[b.Size]) -> ir.Value:
    dyn_sizes, static_sizes = _mixed(sizes)
    t = ir.RankedTensorType(source.type)
    result_type = ir.RankedTensorType.get(static_sizes, t.element_type)
    return tensor.ExtractSliceOp(result_type, source, [], dyn_sizes, [], list(offsets), static_sizes,
                                 [1] * len(sizes)).result


def spatial_list(ctx: LoweringContext, value, nd: int, what: str) -> list[int]:
    """An int[] argument with one entry per spatial dimension (a single entry is repeated)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) not in (1, nd):
        raise ctx.reject(f"{what} must have 1 or {nd} entries, got {value!r}")
    values = [ctx.static_int(v, what) for v in value]
    return values * nd if len(values) == 1 else values


def require_static(ctx: LoweringContext, value: ir.Value, dims: Sequence[int], what: str) -> list[int]:
    shape = b.static_shape(value)
    for d in dims:
        ctx.require(shape[d] is not None, f"{what} must have static size (dimension {d} is dynamic)")
    return [shape[d] for d in dims]


def _mul(dt: torch.dtype, x: ir.Value, y: ir.Value) -> ir.Value:
    return arith.MulFOp(x, y).result if b.is_float(dt) else arith.MulIOp(x, y).result


def _add(dt: torch.dtype, x: ir.Value, y: ir.Value) -> ir.Value:
    return arith.AddFOp(x, y).result if b.is_float(dt) else arith.AddIOp(x, y).result


def _dim(i: int) -> ir.AffineExpr:
    return ir.AffineDimExpr.get(i)


# ----- convolution -------------------------------------------------------------------------------
def _accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _transposed_weight(w: ir.Value, groups: int, kernel: Sequence[int], dtype: torch.dtype) -> ir.Value:
    """Transposed weight `[G*Cg, Fg, *k]` -> forward weight `[G*Fg, Cg, *k]`, flipped spatially:
    fwd[g*Fg + f, c, k] = w[g*Cg + c, f, K-1-k]."""
    cin, fg = b.static_shape(w)[:2]
    cg = cin // groups
    nd = len(kernel)
    rank = nd + 2
    out = b.empty([groups * fg, cg, *kernel], dtype)
    o, c = _dim(0), _dim(1)
    exprs = [ir.AffineExpr.get_floor_div(o, fg) * cg + c, o % fg]
    exprs += [(_dim(2 + i) * -1) + (k - 1) for i, k in enumerate(kernel)]
    in_map = ir.AffineMap.get(rank, 0, exprs)
    return b.generic([w], [out], [in_map, b.identity_map(rank)], ["parallel"] * rank, lambda x, _: x)


def _dilate_and_pad_input(x: ir.Value, stride: Sequence[int], low: Sequence[int], high: Sequence[int],
                          dtype: torch.dtype) -> ir.Value:
    """Insert `stride-1` zeros between input elements and pad by `low`/`high` (may be negative:
    then the result is cropped)."""
    sizes = b.sizes_of(x)
    spatial = sizes[2:]
    full_spatial = [(n - 1) * s + 1 + max(lo, 0) + max(hi, 0) for n, s, lo, hi in zip(spatial, stride, low, high)]
    zero = b.full(sizes[:2] + full_spatial, 0, dtype)
    result = insert_strided(x, zero, [0, 0] + [max(lo, 0) for lo in low], [1, 1] + list(stride))
    if any(lo < 0 for lo in low) or any(hi < 0 for hi in high):
        want = [(n - 1) * s + 1 + lo + hi for n, s, lo, hi in zip(spatial, stride, low, high)]
        result = extract_slice(result, [0, 0] + [max(-lo, 0) for lo in low], sizes[:2] + want)
    return result


def _conv_init(bias: Optional[ir.Value], sizes: Sequence[b.Size], channel_dims: Sequence[int],
               bias_shape: Sequence[int], in_dtype: torch.dtype, acc: torch.dtype) -> ir.Value:
    """The accumulator: zeros, or the bias broadcast along `channel_dims` of the output layout."""
    if bias is None:
        return b.full(sizes, 0, acc)
    if list(b.static_shape(bias)) != list(bias_shape):
        bias = b.expand_shape(bias, ir.RankedTensorType.get(list(bias_shape), ir.RankedTensorType(bias.type).element_type),
                              [list(range(len(bias_shape)))], list(bias_shape))
    rank = len(sizes)
    bias_map = ir.AffineMap.get(rank, 0, [_dim(d) for d in channel_dims])
    return b.generic([bias], [b.empty(sizes, acc)], [bias_map, b.identity_map(rank)], ["parallel"] * rank,
                     lambda v, _: b.convert(v, in_dtype, acc))


_NAMED_CONV = {1: linalg.conv_1d_ncw_fcw, 2: linalg.conv_2d_nchw_fchw, 3: linalg.conv_3d_ncdhw_fcdhw}
_DEPTHWISE_CONV = {1: linalg.depthwise_conv_1d_ncw_cw, 2: linalg.depthwise_conv_2d_nchw_chw,
                   3: linalg.depthwise_conv_3d_ncdhw_cdhw}


def _grouped_conv_generic(x: ir.Value, w: ir.Value, init: ir.Value, groups: int, cg: int, fg: int,
                          kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                          in_dtype: torch.dtype, acc: torch.dtype) -> ir.Value:
    """Grouped convolution where no named op exists. Loops (n, g, f, *o, c, *k); the input
    `[N, G*Cg, *s]` and weight `[G*Fg, Cg, *k]` are read in place, the result is `[N, G, Fg, *o]`."""
    nd = len(kernel)
    rank = 4 + 2 * nd
    n, g, f, c = _dim(0), _dim(1), _dim(2), _dim(3 + nd)
    outs = [_dim(3 + i) for i in range(nd)]
    ks = [_dim(4 + nd + i) for i in range(nd)]
    x_map = ir.AffineMap.get(rank, 0, [n, g * cg + c] + [o * s + k * d for o, k, s, d in zip(outs, ks, stride, dilation)])
    w_map = ir.AffineMap.get(rank, 0, [g * fg + f, c] + ks)
    out_map = ir.AffineMap.get(rank, 0, [n, g, f] + outs)
    iterators = ["parallel"] * (3 + nd) + ["reduction"] * (1 + nd)

    def body(xv, wv, a):
        return _add(acc, a, _mul(acc, b.convert(xv, in_dtype, acc), b.convert(wv, in_dtype, acc)))

    return b.generic([x, w], [init], [x_map, w_map, out_map], iterators, body)


def _forward_conv(x: ir.Value, w: ir.Value, bias: Optional[ir.Value], groups: int, stride: Sequence[int],
                  dilation: Sequence[int], in_dtype: torch.dtype, acc: torch.dtype) -> ir.Value:
    """Convolution of an already padded input `[N, C, *s]` with a forward weight `[F, C/G, *k]`;
    returns `[N, F, *o]` in the accumulator dtype."""
    nd = len(stride)
    xs, ws = b.sizes_of(x), b.static_shape(w)
    f, cg, kernel = ws[0], ws[1], ws[2:]
    fg = f // groups
    out_spatial = [_conv_out_size(p, k, s, d) for p, k, s, d in zip(xs[2:], kernel, stride, dilation)]
    sizes = [xs[0], f] + out_spatial
    attrs = dict(strides=list(stride), dilations=list(dilation))
    if groups == 1:
        init = _conv_init(bias, sizes, [1], [f], in_dtype, acc)
        return _NAMED_CONV[nd](x, w, outs=[init], **attrs)
    if cg == 1 and fg == 1:  # depthwise: one input and one output channel per group
        init = _conv_init(bias, sizes, [1], [f], in_dtype, acc)
        w = b.collapse_shape(w, [[0, 1]] + [[2 + i] for i in range(nd)])
        return _DEPTHWISE_CONV[nd](x, w, outs=[init], **attrs)
    grouped_sizes = [xs[0], groups, fg] + out_spatial
    init = _conv_init(bias, grouped_sizes, [1, 2], [groups, fg], in_dtype, acc)
    if nd == 2:
        xt = ir.RankedTensorType(x.type)
        x_shape = b.static_shape(x)
        x5 = b.expand_shape(
            x, ir.RankedTensorType.get([_DYN() if d is None else d for d in [x_shape[0], groups, cg, *x_shape[2:]]],
                                       xt.element_type),
            [[0], [1, 2], [3], [4]], [xs[0], groups, cg, *xs[2:]])
        wt = ir.RankedTensorType(w.type)
        w5 = b.expand_shape(w, ir.RankedTensorType.get([groups, fg, cg, *kernel], wt.element_type),
                            [[0, 1], [2], [3], [4]], [groups, fg, cg, *kernel])
        result = linalg.conv_2d_ngchw_gfchw(x5, w5, outs=[init], **attrs)
    else:
        result = _grouped_conv_generic(x, w, init, groups, cg, fg, kernel, stride, dilation, in_dtype, acc)
    return b.collapse_shape(result, [[0], [1, 2]] + [[3 + i] for i in range(nd)])


def _conv_out_size(size: b.Size, kernel: int, stride: int, dilation: int) -> b.Size:
    """`(size - dilation * (kernel - 1) - 1) // stride + 1`, folded when `size` is static; a
    dynamic (already padded) size is at least the dilated kernel, so the division is exact
    floor division of a non-negative value."""
    if isinstance(size, int):
        return (size - dilation * (kernel - 1) - 1) // stride + 1
    span = arith.SubIOp(b.as_index(size), b.index_constant(dilation * (kernel - 1) + 1)).result
    return arith.AddIOp(arith.DivUIOp(span, b.index_constant(stride)).result, b.index_constant(1)).result


# Convolutions ATen's oneDNN kernel runs faster than our generated code (benchmarks/run.py:
# conv2d 3x3 64->64 at 56x56 ran at 0.39x eager generated), called as an extern kernel
# (lowering/extern.py) unless $TORCH_MLIR_BACKEND_CONVOLUTION=generated.
ATEN_CONV_DTYPES = (torch.float32, torch.float64)


@lowers(aten.convolution.default, dtypes=CONV_DTYPES)
def convolution(ctx, x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    operands = (x, w, bias, stride, padding, dilation, transposed, output_padding, groups)
    if convolution_policy() == "aten" and ctx.in_specs[0].dtype in ATEN_CONV_DTYPES and \
            outputs_can_be_allocated(ctx, *operands):
        return lower_as_extern_kernel(ctx, *operands)
    return generated_convolution(ctx, *operands)


@lowers(torch.ops.tmb.convolution_channels_last.default, dtypes=ATEN_CONV_DTYPES)
def convolution_channels_last(ctx, *operands):
    """NHWC convolution (torch_mlir_backend/layout.py): always ATen's oneDNN kernel, which gets
    channels-last views of the buffers."""
    ctx.require(outputs_can_be_allocated(ctx, *operands), "the output's sizes must be static")
    return lower_as_extern_kernel(ctx, *operands)


@lowers(aten.convolution_backward.default, dtypes=ATEN_CONV_DTYPES)
def convolution_backward(ctx, *operands):
    """Under the `aten` policy (f32/f64) backward graphs keep `convolution_backward` (see
    backward.DECOMPOSITIONS) and call ATen's oneDNN kernel; otherwise it is decomposed into
    convolutions before it gets here."""
    ctx.require(convolution_policy() == "aten", f"convolution_backward is decomposed into convolutions when "
                f"{ENV_CONVOLUTION}=generated; called directly it needs the aten policy")
    ctx.require(outputs_can_be_allocated(ctx, *operands), "the gradients' sizes must be static or the inputs'")
    return lower_as_extern_kernel(ctx, *operands)


def generated_convolution(ctx, x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    in_spec, w_spec = ctx.in_specs[0], ctx.in_specs[1]
    nd = in_spec.rank - 2
    ctx.require(nd in (1, 2, 3), f"only 1-D, 2-D and 3-D convolutions are supported (input rank {in_spec.rank})")
    ctx.require(w_spec.rank == in_spec.rank, "weight rank must match the input rank")
    ctx.require(in_spec.dtype == w_spec.dtype and (bias is None or ctx.in_specs[2].dtype == in_spec.dtype),
                "input, weight and bias must have the same dtype")
    ctx.require(isinstance(transposed, bool), "transposed must be a compile-time bool")
    stride = spatial_list(ctx, stride, nd, "stride")
    padding = spatial_list(ctx, padding, nd, "padding")
    dilation = spatial_list(ctx, dilation, nd, "dilation")
    groups = ctx.static_int(groups, "groups")
    ctx.require(groups >= 1, "groups must be positive")
    # Spatial dims may be dynamic for forward convolutions (their output size is computed at
    # run time); channels always, and spatial dims of transposed ones, must be static.
    require_static(ctx, x, range(1, in_spec.rank) if transposed else [1],
                   "input channels and spatial dimensions" if transposed else "input channels")
    w_shape = require_static(ctx, w, range(w_spec.rank), "weight")
    kernel = w_shape[2:]

    dt = in_spec.dtype
    if dt in INT_DTYPES and dt != torch.int64:
        # Eager's CPU kernels for these (slow_conv_dilated, slow_conv_transpose) exist for int64 only.
        ctx.require(not transposed and all(d == 1 for d in dilation),
                    f"dilated or transposed convolution of {dt} is not supported (eager supports only int64)")
    acc = _accumulator_dtype(ctx.out_spec.dtype)
    if transposed:
        output_padding = spatial_list(ctx, output_padding, nd, "output_padding")
        ctx.require(w_shape[0] % groups == 0, "weight's first dimension must be divisible by groups")
        low = [d * (k - 1) - p for k, p, d in zip(kernel, padding, dilation)]
        high = [lo + op for lo, op in zip(low, output_padding)]
        x = _dilate_and_pad_input(x, stride, low, high, dt)
        w = _transposed_weight(w, groups, kernel, dt)
        stride = [1] * nd
    else:
        x = pad_tensor(x, [0, 0] + padding, [0, 0] + padding, 0, dt)
    result = _forward_conv(x, w, bias, groups, stride, dilation, dt, acc)
    return b.cast_tensor(result, acc, ctx.out_spec.dtype)
