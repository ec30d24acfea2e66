"""Pooling over the trailing 2 (or 3) spatial dimensions of a channels-first tensor, batched or
not: max pooling with indices, average pooling, adaptive average and adaptive max pooling.
`F.max_pool1d`/`avg_pool1d`/`adaptive_*_pool1d` reach us as their 2-D forms on an unsqueezed
input, so only the 2-D and 3-D overloads have rules.

Max pooling is one `linalg.generic` computing the value and its index together, with eager's
CPU semantics: windows are scanned in row-major order, an element replaces the running max when
it is greater or NaN, and the running max starts at the window's first in-bounds element
(padding never wins, even against -inf). Indices are flat offsets into the input's spatial plane.

Average pooling sums a zero-padded window (`linalg.pooling_nchw_sum` for batched 2-D) and
divides by eager's divisor (`count_include_pad`, `divisor_override`, windows cut by ceil_mode).
Adaptive average pooling sums each variable window `[floor(o*I/O), ceil((o+1)*I/O))` with a mask
and divides by the window extents one dimension at a time, as eager's kernel does.
f16/bf16 sums accumulate in f32 and are rounded once; int64 average pooling truncates as eager.

Every rule follows eager's CPU dtype support (eager has no integer adaptive pooling and no
half-precision avg_pool3d). An empty batch gives empty results without padding anything.

`DECOMPOSITIONS` (end of the module) resizes with anti-aliased bilinear interpolation
(`_upsample_bilinear2d_aa`) as two contractions with weight matrices built like eager's, and
samples volumes (`grid_sampler_3d`) by gathering the corners of each grid point.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, linalg

from .. import layout  # noqa: F401  (defines the tmb:: ops lowered here)
from ..types import FLOAT_DTYPES
from . import builders as b
from .convolution import pad_tensor, spatial_list
from .registry import LoweringContext, lowers

aten = torch.ops.aten

# Eager CPU support: max pooling takes every numeric dtype; avg_pool2d floats and int64.
MAX_POOL_DTYPES = FLOAT_DTYPES + (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
AVG_POOL2D_DTYPES = FLOAT_DTYPES + (torch.int64,)
AVG_POOL3D_DTYPES = (torch.float32, torch.float64, torch.int64)
ADAPTIVE_DTYPES = FLOAT_DTYPES
# The `dtypes=` check also covers the int64 indices result; the input dtype is checked in the rule.
ADAPTIVE_MAX_DTYPES = FLOAT_DTYPES + (torch.int64,)


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _dim(i: int) -> ir.AffineExpr:
    return ir.AffineDimExpr.get(i)


def _idx(v: b.Size) -> ir.Value:
    """An `index` value of a static size or a dynamic one (already a Value)."""
    return b.as_index(v)


def _imul(x, y):
    return arith.MulIOp(x, y).result


def _iadd(x, y):
    return arith.AddIOp(x, y).result


def _isub(x, y):
    return arith.SubIOp(x, y).result


def _imin(x, y):
    return arith.MinSIOp(x, y).result


def _imax(x, y):
    return arith.MaxSIOp(x, y).result


def _icmp(pred, x, y):
    return arith.CmpIOp(pred, x, y).result


def _and(x, y):
    return arith.AndIOp(x, y).result


def _or(x, y):
    return arith.OrIOp(x, y).result


def pooled_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """ATen's `pooling_output_shape`."""
    numerator = size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def _pooled_size_at_run_time(size: ir.Value, kernel: int, stride: int, pad: int, dilation: int,
                             ceil_mode: bool) -> ir.Value:
    """`pooled_size` of a dynamic dimension, as `index` arithmetic (Dynamo has guarded that the
    window fits, so the numerator is not negative)."""
    numerator = _iadd(size, _idx(2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)))
    out = _iadd(arith.DivSIOp(numerator, _idx(stride)).result, _idx(1))
    if ceil_mode:
        starts_outside = _icmp(arith.CmpIPredicate.sge, _imul(_isub(out, _idx(1)), _idx(stride)),
                               _iadd(size, _idx(pad)))
        out = arith.SelectOp(starts_outside, _isub(out, _idx(1)), out).result
    return out


class _Pool:
    """Normalised arguments of a (non-adaptive) pooling op over the last `nd` dimensions."""

    def __init__(self, ctx: LoweringContext, x: ir.Value, nd: int, kernel, stride, padding, dilation,
                 ceil_mode: bool):
        spec = ctx.in_specs[0]
        ctx.require(spec.rank in (nd + 1, nd + 2), f"expected a {nd + 1}-D or {nd + 2}-D input, got rank {spec.rank}")
        self.nd = nd
        self.lead = spec.rank - nd
        self.kernel = spatial_list(ctx, kernel, nd, "kernel_size")
        self.stride = spatial_list(ctx, stride, nd, "stride") if stride else list(self.kernel)
        self.padding = spatial_list(ctx, padding, nd, "padding")
        self.dilation = spatial_list(ctx, dilation, nd, "dilation")
        ctx.require(isinstance(ceil_mode, bool), "ceil_mode must be a compile-time bool")
        for k, s, p, d in zip(self.kernel, self.stride, self.padding, self.dilation):
            ctx.require(k > 0 and s > 0 and d > 0 and 0 <= p <= ((k - 1) * d + 1) // 2,
                        f"invalid pooling window (kernel {k}, stride {s}, padding {p}, dilation {d})")
        # Spatial sizes are ints when static, `index` values when dynamic (computed per call).
        self.in_spatial: list[b.Size] = b.sizes_of(x)[self.lead:]
        self.out_spatial: list[b.Size] = [
            pooled_size(n, k, s, p, d, ceil_mode) if isinstance(n, int) else _pooled_size_at_run_time(n, k, s, p, d, ceil_mode)
            for n, k, s, p, d in zip(self.in_spatial, self.kernel, self.stride, self.padding, self.dilation)]
        ctx.require(all(not isinstance(o, int) or o > 0 for o in self.out_spatial),
                    f"output size {self.out_spatial} is too small")
        self.lead_sizes = b.sizes_of(x)[: self.lead]

    def padded(self, x: ir.Value, pad_value, dtype: torch.dtype) -> ir.Value:
        """`x` padded by `padding` on the left and enough on the right for every window."""
        high: list[b.Size] = []
        for o, s, d, k, n, p in zip(self.out_spatial, self.stride, self.dilation, self.kernel, self.in_spatial,
                                    self.padding):
            if isinstance(o, int) and isinstance(n, int):
                high.append(max(0, (o - 1) * s + d * (k - 1) + 1 - n - p))
            else:  # (o - 1) * s + d * (k - 1) + 1 - n - p, at least 0, at run time
                need = _iadd(_imul(_isub(_idx(o), _idx(1)), _idx(s)), _idx(d * (k - 1) + 1 - p))
                high.append(_imax(_isub(need, _idx(n)), _idx(0)))
        return pad_tensor(x, [0] * self.lead + self.padding, [0] * self.lead + high, pad_value, dtype)

    def window_exprs(self) -> list[ir.AffineExpr]:
        nd, lead = self.nd, self.lead
        return [_dim(lead + i) * s + _dim(lead + nd + i) * d for i, (s, d) in enumerate(zip(self.stride, self.dilation))]


def _window_reduce(x: ir.Value, lead: int, nd: int, window: Sequence[int], in_exprs: Sequence[ir.AffineExpr],
                   inits: Sequence[ir.Value], body: Callable) -> ir.Value:
    """A generic over (lead..., out..., win...) reading `x` at (lead..., in_exprs...) and reducing
    over the window into `inits` (shaped (lead..., out...)). `body(x, accs, outs, wins)` gets the
    output and window positions as `index` values and returns the new accumulators."""
    rank = lead + 2 * nd
    x_map = ir.AffineMap.get(rank, 0, [_dim(i) for i in range(lead)] + list(in_exprs))
    # A shape-only operand that gives the window loops their extent (as linalg's pooling ops do).
    extent = b.empty(list(window), torch.int8)
    win_map = ir.AffineMap.get(rank, 0, [_dim(lead + nd + i) for i in range(nd)])
    out_map = ir.AffineMap.get(rank, 0, [_dim(i) for i in range(lead + nd)])
    iterators = ["parallel"] * (lead + nd) + ["reduction"] * nd

    def _body(xv, _w, *accs):
        outs = [linalg.IndexOp(lead + i).result for i in range(nd)]
        wins = [linalg.IndexOp(lead + nd + i).result for i in range(nd)]
        return body(xv, list(accs), outs, wins)

    return b.generic([x, extent], list(inits), [x_map, win_map] + [out_map] * len(inits), iterators, _body)


def _flat_index(coords: Sequence[ir.Value], sizes: Sequence[int]) -> ir.Value:
    flat = coords[0]
    for c, n in zip(coords[1:], sizes[1:]):
        flat = _iadd(_imul(flat, _idx(n)), c)
    return arith.IndexCastOp(ir.IntegerType.get_signless(64), flat).result


def _max_with_index(x: ir.Value, dtype: torch.dtype, lead: int, lead_sizes, in_spatial: Sequence[int],
                    out_spatial: Sequence[int], window: Sequence[int], in_exprs,
                    coord: Callable[[int, ir.Value, ir.Value], tuple[ir.Value, ir.Value]]):
    """(values, int64 indices) of a max over windows. `coord(i, o, k)` gives the input coordinate
    along spatial dim i of window element k of output o, and whether it is inside the window."""
    nd = len(window)
    sizes = list(lead_sizes) + list(out_spatial)
    values = b.full(sizes, b.lowest(dtype), dtype)
    indices = b.full(sizes, -1, torch.int64)

    def body(xv, accs, outs, wins):
        acc_v, acc_i = accs
        coords, valid = [], None
        for i in range(nd):
            c, ok = coord(i, outs[i], wins[i])
            coords.append(c)
            valid = ok if valid is None else _and(valid, ok)
        if b.is_float(dtype):
            better = _or(arith.CmpFOp(arith.CmpFPredicate.OGT, xv, acc_v).result,
                         arith.CmpFOp(arith.CmpFPredicate.UNO, xv, xv).result)
        else:
            pred = arith.CmpIPredicate.ugt if b.is_unsigned(dtype) else arith.CmpIPredicate.sgt
            better = _icmp(pred, xv, acc_v)
        first = _icmp(arith.CmpIPredicate.eq, acc_i, b.constant(-1, torch.int64))
        take = _and(valid, _or(first, better))
        return [b.select(take, xv, acc_v), b.select(take, _flat_index(coords, in_spatial), acc_i)]

    return tuple(_window_reduce(x, lead, nd, window, in_exprs, [values, indices], body))


def _max_pool(ctx, x, nd, kernel, stride, padding, dilation, ceil_mode):
    dtype = ctx.in_specs[0].dtype
    pool = _Pool(ctx, x, nd, kernel, stride, padding, dilation, ceil_mode)
    empty = _empty_results(ctx)
    if empty is not None:
        return empty
    padded = pool.padded(x, b.lowest(dtype), dtype)
    if not ctx.result_used(1):
        # Inference reads the values only: a plain max over the padded windows (the padding is
        # the dtype's lowest value, so it never wins; NaN propagates as in eager).
        return _max_values(padded, dtype, pool), None

    def coord(i, o, k):
        c = _isub(_iadd(_imul(o, _idx(pool.stride[i])), _imul(k, _idx(pool.dilation[i]))), _idx(pool.padding[i]))
        ok = _and(_icmp(arith.CmpIPredicate.sge, c, _idx(0)), _icmp(arith.CmpIPredicate.slt, c, _idx(pool.in_spatial[i])))
        return c, ok

    return _max_with_index(padded, dtype, pool.lead, pool.lead_sizes, pool.in_spatial, pool.out_spatial,
                           pool.kernel, pool.window_exprs(), coord)


def _max_values(padded: ir.Value, dtype: torch.dtype, pool: "_Pool") -> ir.Value:
    init = b.full(list(pool.lead_sizes) + list(pool.out_spatial), b.lowest(dtype), dtype)

    def body(xv, accs, outs, wins):
        (acc,) = accs
        if b.is_float(dtype):
            better = _or(arith.CmpFOp(arith.CmpFPredicate.OGT, xv, acc).result,
                         arith.CmpFOp(arith.CmpFPredicate.UNO, xv, xv).result)
        else:
            better = _icmp(arith.CmpIPredicate.ugt if b.is_unsigned(dtype) else arith.CmpIPredicate.sgt, xv, acc)
        return [b.select(better, xv, acc)]

    return _window_reduce(padded, pool.lead, pool.nd, pool.kernel, pool.window_exprs(), [init], body)


@lowers(aten.max_pool2d_with_indices.default, dtypes=MAX_POOL_DTYPES)
def max_pool2d_with_indices(ctx, x, kernel_size, stride=(), padding=(0,), dilation=(1,), ceil_mode=False):
    return _max_pool(ctx, x, 2, kernel_size, stride, padding, dilation, ceil_mode)


@lowers(torch.ops.tmb.max_pool2d_channels_last.default, dtypes=MAX_POOL_DTYPES)
def max_pool2d_channels_last(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
    """Max pooling of an NHWC tensor (torch_mlir_backend/layout.py): loops (n, oh, ow, kh, kw, c),
    the innermost along the contiguous channels, which LLVM vectorizes."""
    spec = ctx.in_specs[0]
    ctx.require(spec.rank == 4 and spec.is_static, "expects a static [N, H, W, C] input")
    dtype = spec.dtype
    n, h, w, c = spec.shape
    kernel = spatial_list(ctx, kernel_size, 2, "kernel_size")
    stride = spatial_list(ctx, stride, 2, "stride")
    padding = spatial_list(ctx, padding, 2, "padding")
    dilation = spatial_list(ctx, dilation, 2, "dilation")
    out = [pooled_size(size, k, s, p, d, ceil_mode) for size, k, s, p, d in zip((h, w), kernel, stride, padding, dilation)]
    ctx.require(all(o > 0 for o in out), f"output size {out} is too small")
    high = [max(0, (o - 1) * s + d * (k - 1) + 1 - size - p)
            for o, s, d, k, size, p in zip(out, stride, dilation, kernel, (h, w), padding)]
    padded = pad_tensor(x, [0, padding[0], padding[1], 0], [0, high[0], high[1], 0], b.lowest(dtype), dtype)
    # iteration dims: n, oh, ow, kh, kw, c
    x_map = ir.AffineMap.get(6, 0, [_dim(0), _dim(1) * stride[0] + _dim(3) * dilation[0],
                                    _dim(2) * stride[1] + _dim(4) * dilation[1], _dim(5)])
    win_map = ir.AffineMap.get(6, 0, [_dim(3), _dim(4)])
    out_map = ir.AffineMap.get(6, 0, [_dim(0), _dim(1), _dim(2), _dim(5)])
    init = b.full([n, out[0], out[1], c], b.lowest(dtype), dtype)
    extent = b.empty(kernel, torch.int8)  # gives the window loops their extent

    def body(xv, _w, acc):
        if b.is_float(dtype):  # NaN propagates, as eager's max pooling
            return arith.MaximumFOp(xv, acc).result
        return (arith.MaxUIOp if b.is_unsigned(dtype) else arith.MaxSIOp)(xv, acc).result

    iterators = ["parallel"] * 3 + ["reduction"] * 2 + ["parallel"]
    return b.generic([padded, extent], [init], [x_map, win_map, out_map], iterators, body)


@lowers(aten.max_pool3d_with_indices.default, dtypes=MAX_POOL_DTYPES)
def max_pool3d_with_indices(ctx, x, kernel_size, stride=(), padding=(0,), dilation=(1,), ceil_mode=False):
    return _max_pool(ctx, x, 3, kernel_size, stride, padding, dilation, ceil_mode)


# ----- average pooling ---------------------------------------------------------------------------
def _window_sum(x: ir.Value, dtype: torch.dtype, acc: torch.dtype, pool: _Pool) -> ir.Value:
    sizes = list(pool.lead_sizes) + pool.out_spatial
    init = b.full(sizes, 0, acc)
    if pool.lead == 2 and pool.nd == 2:
        window = b.empty(pool.kernel, acc)
        return linalg.pooling_nchw_sum(x, window, outs=[init], strides=pool.stride, dilations=pool.dilation)
    add = (lambda u, v: arith.AddFOp(u, v).result) if b.is_float(acc) else (lambda u, v: arith.AddIOp(u, v).result)
    return _window_reduce(x, pool.lead, pool.nd, pool.kernel, pool.window_exprs(), [init],
                          lambda xv, accs, outs, wins: [add(accs[0], b.convert(xv, dtype, acc))])


def _index_as(value: ir.Value, dtype: torch.dtype) -> ir.Value:
    i64 = arith.IndexCastOp(ir.IntegerType.get_signless(64), value).result
    return b.convert(i64, torch.int64, dtype)


def _divide(total: ir.Value, acc: torch.dtype, out_dtype: torch.dtype, lead: int, nd: int,
            divisors: Callable[[list[ir.Value]], tuple[list[ir.Value], Optional[ir.Value]]],
            sequential: bool) -> ir.Value:
    """`total / divisor` per output element, in the accumulator dtype, rounded to `out_dtype`.
    `divisors(outs)` gives the index-typed divisor factors and an `i1` "empty window" flag (the
    result is then 0); factors divide one after the other when `sequential`, else their product."""
    shape = b.static_shape(total)
    rank = len(shape)
    init = b.empty(b.sizes_of(total), out_dtype)

    def div(u, v):
        return arith.DivFOp(u, v).result if b.is_float(acc) else arith.DivSIOp(u, v).result

    def body(s, _):
        outs = [linalg.IndexOp(lead + i).result for i in range(nd)]
        factors, empty = divisors(outs)
        if sequential:
            value = s
            for f in factors:
                value = div(value, _index_as(f, acc))
        else:
            prod = factors[0]
            for f in factors[1:]:
                prod = _imul(prod, f)
            value = div(s, _index_as(prod, acc))
        if empty is not None:
            value = b.select(empty, b.constant(0, acc), value)
        return b.convert(value, acc, out_dtype)

    return b.generic([total], [init], [b.identity_map(rank)] * 2, ["parallel"] * rank, body)


def _avg_pool(ctx, x, nd, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    dtype = ctx.in_specs[0].dtype
    acc = _acc_dtype(dtype)
    pool = _Pool(ctx, x, nd, kernel_size, stride, padding, [1], ceil_mode)
    empty = _empty_results(ctx)
    if empty is not None:
        return empty
    ctx.require(isinstance(count_include_pad, bool), "count_include_pad must be a compile-time bool")
    if divisor_override is not None:
        divisor_override = ctx.static_int(divisor_override, "divisor_override")
        ctx.require(divisor_override != 0, "divisor_override must not be zero")
    total = _window_sum(pool.padded(x, 0, dtype), dtype, acc, pool)

    def divisors(outs):
        padded_sizes, sizes, empty = [], [], None
        for i in range(nd):
            n, k, s, p = pool.in_spatial[i], pool.kernel[i], pool.stride[i], pool.padding[i]
            start = _isub(_imul(outs[i], _idx(s)), _idx(p))
            end = _imin(_iadd(start, _idx(k)), _iadd(_idx(n), _idx(p)))
            padded_sizes.append(_isub(end, start))
            count = _isub(_imin(end, _idx(n)), _imax(start, _idx(0)))
            sizes.append(count)
            e = _icmp(arith.CmpIPredicate.sle, count, _idx(0))
            empty = e if empty is None else _or(empty, e)
        if divisor_override is not None:
            return [_idx(divisor_override)], empty
        return (padded_sizes if count_include_pad else sizes), empty

    return _divide(total, acc, ctx.out_spec.dtype, pool.lead, nd, divisors, sequential=False)


@lowers(aten.avg_pool2d.default, dtypes=AVG_POOL2D_DTYPES)
def avg_pool2d(ctx, x, kernel_size, stride=(), padding=(0,), ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool(ctx, x, 2, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


@lowers(aten.avg_pool3d.default, dtypes=AVG_POOL3D_DTYPES)
def avg_pool3d(ctx, x, kernel_size, stride=(), padding=(0,), ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    return _avg_pool(ctx, x, 3, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


# ----- adaptive pooling --------------------------------------------------------------------------
def _empty_results(ctx: LoweringContext):
    """Uninitialized results when every result has a static zero-size dimension (a batch of 0),
    else None: padding an empty tensor bufferizes into a subview at offset 0 of a size-0
    dimension, which MLIR's verifier rejects, and there is nothing to compute anyway."""
    if not all(spec is not None and 0 in spec.shape for spec in ctx.out_specs):
        return None
    results = [b.empty(list(spec.shape), spec.dtype) for spec in ctx.out_specs]
    return results[0] if len(results) == 1 else results


class _Adaptive:
    """Windows of adaptive pooling: output o of a dimension of size I -> O covers
    [floor(o*I/O), ceil((o+1)*I/O))."""

    def __init__(self, ctx: LoweringContext, x: ir.Value, nd: int, output_size):
        spec = ctx.in_specs[0]
        ctx.require(spec.rank in (nd + 1, nd + 2), f"expected a {nd + 1}-D or {nd + 2}-D input, got rank {spec.rank}")
        self.nd = nd
        self.lead = spec.rank - nd
        self.in_spatial: list[b.Size] = b.sizes_of(x)[self.lead:]
        self.out_spatial = spatial_list(ctx, output_size, nd, "output_size")
        ctx.require(all(o > 0 for o in self.out_spatial), f"output_size {self.out_spatial} must be positive")
        self.window: list[b.Size] = []
        high: list[b.Size] = []
        for n, o in zip(self.in_spatial, self.out_spatial):
            if not isinstance(n, int):
                # A dynamic dimension pools to one output covering all of it (global pooling,
                # as CNN heads do); other output sizes need windows known at compile time.
                ctx.require(o == 1, f"adaptive pooling of a dynamic dimension to {o} outputs is not supported")
                self.window.append(n)
                high.append(0)
                continue
            starts = [(j * n) // o for j in range(o)]
            ends = [-((-(j + 1) * n) // o) for j in range(o)]
            k = max(e - s for s, e in zip(starts, ends))
            self.window.append(k)
            high.append(max(0, max(s + k for s in starts) - n))
        self.high = high
        self.lead_sizes = b.sizes_of(x)[: self.lead]

    def padded(self, x: ir.Value, pad_value, dtype: torch.dtype) -> ir.Value:
        return pad_tensor(x, [0] * (self.lead + self.nd), [0] * self.lead + self.high, pad_value, dtype)

    def window_exprs(self) -> list[ir.AffineExpr]:
        nd, lead = self.nd, self.lead
        return [(ir.AffineExpr.get_floor_div(_dim(lead + i) * n, o) if isinstance(n, int) else _dim(lead + i))
                + _dim(lead + nd + i) for i, (n, o) in enumerate(zip(self.in_spatial, self.out_spatial))]

    def bounds(self, i: int, o: ir.Value) -> tuple[ir.Value, ir.Value]:
        n, out = _idx(self.in_spatial[i]), _idx(self.out_spatial[i])
        start = arith.FloorDivSIOp(_imul(o, n), out).result
        end = arith.CeilDivSIOp(_imul(_iadd(o, _idx(1)), n), out).result
        return start, end


def _adaptive_avg_pool(ctx, x, nd, output_size):
    empty = _empty_results(ctx)
    if empty is not None:
        return empty
    dtype = ctx.in_specs[0].dtype
    acc = _acc_dtype(dtype)
    pool = _Adaptive(ctx, x, nd, output_size)
    init = b.full(list(pool.lead_sizes) + pool.out_spatial, 0, acc)

    def body(xv, accs, outs, wins):
        inside = None
        for i in range(nd):
            start, end = pool.bounds(i, outs[i])
            ok = _icmp(arith.CmpIPredicate.slt, _iadd(start, wins[i]), end)
            inside = ok if inside is None else _and(inside, ok)
        return [b.select(inside, arith.AddFOp(accs[0], b.convert(xv, dtype, acc)).result, accs[0])]

    total = _window_reduce(pool.padded(x, 0, dtype), pool.lead, nd, pool.window, pool.window_exprs(), [init], body)

    def divisors(outs):
        factors = []
        for i in range(nd):
            start, end = pool.bounds(i, outs[i])
            factors.append(_isub(end, start))
        return factors, None

    return _divide(total, acc, ctx.out_spec.dtype, pool.lead, nd, divisors, sequential=True)


@lowers(aten._adaptive_avg_pool2d.default, dtypes=ADAPTIVE_DTYPES)
def adaptive_avg_pool2d(ctx, x, output_size):
    return _adaptive_avg_pool(ctx, x, 2, output_size)


@lowers(aten._adaptive_avg_pool3d.default, dtypes=ADAPTIVE_DTYPES)
def adaptive_avg_pool3d(ctx, x, output_size):
    return _adaptive_avg_pool(ctx, x, 3, output_size)


def _adaptive_max_pool(ctx, x, nd, output_size):
    empty = _empty_results(ctx)
    if empty is not None:
        return empty
    dtype = ctx.in_specs[0].dtype
    ctx.require(dtype in ADAPTIVE_DTYPES, f"dtype {dtype} is not supported (eager has no integer adaptive max pooling)")
    pool = _Adaptive(ctx, x, nd, output_size)

    def coord(i, o, k):
        start, end = pool.bounds(i, o)
        c = _iadd(start, k)
        return c, _icmp(arith.CmpIPredicate.slt, c, end)

    return _max_with_index(pool.padded(x, b.lowest(dtype), dtype), dtype, pool.lead, pool.lead_sizes,
                           pool.in_spatial, pool.out_spatial, pool.window, pool.window_exprs(), coord)


@lowers(aten.adaptive_max_pool2d.default, dtypes=ADAPTIVE_MAX_DTYPES)
def adaptive_max_pool2d(ctx, x, output_size):
    return _adaptive_max_pool(ctx, x, 2, output_size)


@lowers(aten.adaptive_max_pool3d.default, dtypes=ADAPTIVE_MAX_DTYPES)
def adaptive_max_pool3d(ctx, x, output_size):
    return _adaptive_max_pool(ctx, x, 3, output_size)


# ----- decompositions ------------------------------------------------------------------------------
# Resampling ops PyTorch has no decomposition for, written with torch ops;
# `decompositions.decomposition_table()` merges them in.
DECOMPOSITIONS: dict = {}


def _aa_bilinear_weights(in_size: int, out_size: int, align_corners: bool, scale, dtype) -> torch.Tensor:
    """[out_size, in_size] interpolation weights of anti-aliased bilinear resampling along one
    dimension, as ATen's `_compute_indices_min_size_weights_aa` (UpSampleKernel.cpp): a triangle
    filter widened by the downscaling factor, over [xmin, xmin + xsize), normalized per output."""
    if align_corners:
        ratio = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    else:
        ratio = 1.0 / scale if scale is not None and scale > 0 else in_size / out_size
    support = ratio if ratio >= 1.0 else 1.0
    invscale = 1.0 / ratio if ratio >= 1.0 else 1.0
    center = (torch.arange(out_size, dtype=dtype) + 0.5) * ratio
    # static_cast<int64_t> truncates toward zero; xmin is then clamped at 0 anyway.
    xmin = torch.clamp(torch.trunc(center - support + 0.5), min=0)
    xmax = torch.clamp(torch.trunc(center + support + 0.5), max=in_size)
    j = torch.arange(in_size, dtype=dtype)
    distance = ((j.unsqueeze(0) - center.unsqueeze(1) + 0.5) * invscale).abs()
    inside = (j.unsqueeze(0) >= xmin.unsqueeze(1)) & (j.unsqueeze(0) < xmax.unsqueeze(1))
    weights = torch.where(inside & (distance < 1.0), 1.0 - distance, 0.0)
    total = weights.sum(1, keepdim=True)
    return torch.where(total != 0, weights / torch.where(total != 0, total, 1.0), weights)


def _upsample_bilinear2d_aa(x, output_size, align_corners, scales_h=None, scales_w=None):
    """Anti-aliased bilinear resize of the last two dims as two contractions with per-dim weight
    matrices (built from `arange`, so the graph holds no constants)."""
    if not x.dtype.is_floating_point:
        return NotImplemented
    out_h, out_w = output_size
    in_h, in_w = x.shape[-2:]
    weights_h = _aa_bilinear_weights(in_h, out_h, align_corners, scales_h, x.dtype)
    weights_w = _aa_bilinear_weights(in_w, out_w, align_corners, scales_w, x.dtype)
    rows = torch.matmul(x, weights_w.t())  # [.., in_h, out_w]: the horizontal pass first, as eager
    return torch.matmul(weights_h, rows)


DECOMPOSITIONS[aten._upsample_bilinear2d_aa.default] = _upsample_bilinear2d_aa


def _grid_sampler_3d(x, grid, interpolation_mode=0, padding_mode=0, align_corners=False):
    """Volumetric grid_sample (trilinear or nearest; zeros, border or reflection padding) as
    PyTorch's `grid_sampler_2d` decomposition does it in 2-D: grid coordinates (x, y, z index W,
    H, D) unnormalized and padded, then each corner gathered by advanced indexing and weighted;
    corners outside the input weigh 0."""
    if interpolation_mode not in (0, 1) or padding_mode not in (0, 1, 2) or not x.dtype.is_floating_point:
        return NotImplemented
    n, c, in_d, in_h, in_w = x.shape
    _, out_d, out_h, out_w, _ = grid.shape

    def unnormalize(coords, size):
        scale = (size * 0.5 - 0.5) if align_corners else size * 0.5
        return coords * scale + (size * 0.5 - 0.5)

    def reflect(coords, twice_low, twice_high):
        if twice_low == twice_high:
            return torch.zeros_like(coords)
        low, span = twice_low / 2, (twice_high - twice_low) / 2
        distance = (coords - low).abs()
        extra = torch.fmod(distance, span)
        flips = (distance / span).floor().to(torch.int8)
        return torch.where(flips & 1 == 0, extra + low, span + low - extra)

    def source_index(coords, size):
        coords = unnormalize(coords, size)
        if padding_mode == 1:
            return torch.clamp(coords, 0, size - 1)
        if padding_mode == 2:
            coords = reflect(coords, 0, 2 * (size - 1)) if align_corners else reflect(coords, -1, 2 * size - 1)
            return torch.clamp(coords, 0, size - 1)
        return coords

    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1, 1)
    channel = torch.arange(c, device=x.device).view(1, c, 1, 1, 1)
    shape = (n, 1, out_d, out_h, out_w)

    def corner(ix, iy, iz, weight):
        inside = (ix >= 0) & (ix < in_w) & (iy >= 0) & (iy < in_h) & (iz >= 0) & (iz < in_d)
        ix, iy, iz = (torch.where(inside, t, 0).to(torch.int64).view(shape) for t in (ix, iy, iz))
        return x[batch, channel, iz, iy, ix] * torch.where(inside, weight, 0).view(shape)

    ix = source_index(grid[..., 0], in_w)
    iy = source_index(grid[..., 1], in_h)
    iz = source_index(grid[..., 2], in_d)
    if interpolation_mode == 1:
        return corner(ix.round(), iy.round(), iz.round(), torch.ones_like(ix))
    x0, y0, z0 = ix.floor(), iy.floor(), iz.floor()
    fx, fy, fz = ix - x0, iy - y0, iz - z0
    total = None
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                weight = (fx if dx else 1 - fx) * (fy if dy else 1 - fy) * (fz if dz else 1 - fz)
                term = corner(x0 + dx, y0 + dy, z0 + dz, weight)
                total = term if total is None else total + term
    return total


DECOMPOSITIONS[aten.grid_sampler_3d.default] = _grid_sampler_3d
