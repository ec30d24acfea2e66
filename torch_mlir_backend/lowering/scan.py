"""Inclusive scans along one dimension: cumsum, cumprod and logcumsumexp.

A scan carries a value from one position to the next, which a `linalg.generic` cannot express.
Each scan is a tensor-level `scf.for` over the scanned dimension: the loop carries the running
accumulator (the input's shape with the scanned dimension of size 1) and the result; each step
combines the accumulator with one slice of the input (a `linalg.generic` over all other
dimensions, so they stay parallel) and inserts it into the result. One-shot bufferization turns
the slices into views of the result's buffer.

Accumulators follow eager's CPU kernels (`at::acc_type<T, /*is_cuda=*/false>`): float32 and
float64 accumulate in float64, float16/bfloat16 in float32, integers in int64 (the result
dtype is already int64 for integer inputs unless `dtype=` says otherwise).
"""
from __future__ import annotations

from typing import Callable

import torch

from mlir import ir
from mlir.dialects import arith, linalg, math as math_d, scf, tensor

from . import builders as b
from .registry import LoweringContext, lowers
from .shape import _mixed, _norm_dim, _tensor_type
from ..types import FLOAT_DTYPES, INT_DTYPES

aten = torch.ops.aten

NUMERIC = FLOAT_DTYPES + INT_DTYPES + (torch.bool,)


def scan_accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    if dtype in FLOAT_DTYPES:
        return torch.float64
    return torch.int64


def _slice(value: ir.Value, dim: int, offset: ir.Value, sizes) -> ir.Value:
    """The size-1 slice of `value` at `offset` along `dim` (rank kept)."""
    offsets = [0] * len(sizes)
    offsets[dim] = offset
    slice_sizes = list(sizes)
    slice_sizes[dim] = 1
    off_dyn, off_static = _mixed(offsets)
    size_dyn, size_static = _mixed(slice_sizes)
    result_type = _tensor_type([s if isinstance(s, int) else None for s in slice_sizes],
                               ir.RankedTensorType(value.type).element_type)
    return tensor.ExtractSliceOp(result_type, value, off_dyn, size_dyn, [], off_static, size_static,
                                 [1] * len(sizes)).result


def _insert(piece: ir.Value, into: ir.Value, dim: int, offset: ir.Value, sizes) -> ir.Value:
    offsets = [0] * len(sizes)
    offsets[dim] = offset
    slice_sizes = list(sizes)
    slice_sizes[dim] = 1
    off_dyn, off_static = _mixed(offsets)
    size_dyn, size_static = _mixed(slice_sizes)
    return tensor.InsertSliceOp(piece, into, off_dyn, size_dyn, [], off_static, size_static,
                                [1] * len(sizes)).result


def scan(ctx: LoweringContext, x: ir.Value, dim, identity, combine: Callable[[ir.Value, ir.Value], ir.Value],
         acc_dtype: torch.dtype) -> ir.Value:
    """The scan of the op `ctx` describes; see `scan_along`."""
    src, out = ctx.in_specs[0].dtype, ctx.out_spec.dtype
    rank = ctx.in_specs[0].rank
    if rank == 0:  # a 0-d scan is the element itself
        _norm_dim(ctx, dim, rank)
        return b.cast_tensor(x, src, out)
    return scan_along(x, _norm_dim(ctx, dim, rank), src, out, identity, combine, acc_dtype)


def scan_along(x: ir.Value, dim: int, src: torch.dtype, out: torch.dtype, identity,
               combine: Callable[[ir.Value, ir.Value], ir.Value], acc_dtype: torch.dtype) -> ir.Value:
    """result[..., k, ...] = combine(result[..., k-1, ...], x[..., k, ...]), starting at `identity`;
    `combine(accumulator, element)` works on scalars of `acc_dtype`; x has rank >= 1."""
    sizes = b.sizes_of(x)
    rank = len(sizes)
    acc_sizes = list(sizes)
    acc_sizes[dim] = 1
    acc0 = b.full(acc_sizes, identity, acc_dtype)
    result0 = b.empty(sizes, out)
    loop = scf.ForOp(b.index_constant(0), b.as_index(sizes[dim]), b.index_constant(1), [acc0, result0])
    with ir.InsertionPoint(loop.body):
        k = loop.induction_variable
        acc, result = loop.inner_iter_args
        piece = _slice(x, dim, k, sizes)
        # Both generics write into the loop's own tensors (destination style), so bufferization
        # keeps the accumulator and the result in place across iterations.
        maps = [b.identity_map(rank)] * 2
        new_acc = b.generic([piece], [acc], maps, ["parallel"] * rank,
                            lambda e, a: combine(a, b.convert(e, src, acc_dtype)))
        converted = b.generic([new_acc], [_slice(result, dim, k, sizes)], maps, ["parallel"] * rank,
                              lambda a, _: b.convert(a, acc_dtype, out))
        scf.YieldOp([new_acc, _insert(converted, result, dim, k, sizes)])
    return loop.results[1]


def _check_dtype_arg(ctx: LoweringContext, dtype) -> None:
    # The importer gives `dtype=` as its ScalarType number; the result spec already holds it.
    ctx.require(ctx.out_spec.dtype in NUMERIC, f"unsupported result dtype {ctx.out_spec.dtype}")


@lowers(aten.cumsum.default, dtypes=NUMERIC)
def cumsum(ctx, x, dim, dtype=None):
    _check_dtype_arg(ctx, dtype)
    acc = scan_accumulator_dtype(ctx.out_spec.dtype)
    add = (lambda a, e: arith.AddFOp(a, e).result) if b.is_float(acc) else (lambda a, e: arith.AddIOp(a, e).result)
    return scan(ctx, x, dim, 0, add, acc)


@lowers(aten.cumprod.default, dtypes=NUMERIC)
def cumprod(ctx, x, dim, dtype=None):
    _check_dtype_arg(ctx, dtype)
    acc = scan_accumulator_dtype(ctx.out_spec.dtype)
    mul = (lambda a, e: arith.MulFOp(a, e).result) if b.is_float(acc) else (lambda a, e: arith.MulIOp(a, e).result)
    return scan(ctx, x, dim, 1, mul, acc)


@lowers(aten.logcumsumexp.default, dtypes=FLOAT_DTYPES)
def logcumsumexp(ctx, x, dim):
    acc = scan_accumulator_dtype(ctx.out_spec.dtype)

    def log_add_exp(a, e):
        # As ATen's _log_add_exp_helper: max + log1p(exp(min - max)), except that two equal
        # infinities give that infinity (their difference would be NaN).
        hi = arith.MaximumFOp(a, e).result
        lo = arith.MinimumFOp(a, e).result
        inf = b.constant(float("inf"), acc)
        same_infinite = arith.AndIOp(arith.CmpFOp(arith.CmpFPredicate.OEQ, lo, hi).result,
                                     arith.CmpFOp(arith.CmpFPredicate.OEQ, math_d.AbsFOp(hi).result, inf).result).result
        tail = math_d.Log1pOp(math_d.ExpOp(arith.SubFOp(lo, hi).result).result).result
        return b.select(same_infinite, hi, arith.AddFOp(hi, tail).result)

    return scan(ctx, x, dim, float("-inf"), log_add_exp, acc)


# ----- cummax / cummin: a scan carrying the running extreme and its index --------------------
def _scan_extreme(x: ir.Value, dim: int, dtype: torch.dtype, largest: bool) -> tuple[ir.Value, ir.Value]:
    """As eager's cummax_cummin_helper: position k takes x[k] when it is NaN or, while the running
    value is not NaN, when x[k] >= running (cummax) / <= running (cummin); `>=` makes the last of
    equal extremes win. Starting from -inf/+inf (the dtype's lowest/highest for integers), the
    first position always takes."""
    sizes = b.sizes_of(x)
    rank = len(sizes)
    acc_sizes = list(sizes)
    acc_sizes[dim] = 1
    start = b.lowest(dtype) if largest else b.highest(dtype)
    state0 = [b.full(acc_sizes, start, dtype), b.full(acc_sizes, 0, torch.int64),
              b.empty(sizes, dtype), b.empty(sizes, torch.int64)]
    i64 = ir.IntegerType.get_signless(64)
    loop = scf.ForOp(b.index_constant(0), b.as_index(sizes[dim]), b.index_constant(1), state0)
    with ir.InsertionPoint(loop.body):
        k = loop.induction_variable
        acc_v, acc_i, res_v, res_i = loop.inner_iter_args
        piece = _slice(x, dim, k, sizes)
        k64 = arith.IndexCastOp(i64, k).result

        def take(e, v, i):
            if b.is_float(dtype):
                pred = arith.CmpFPredicate.OGE if largest else arith.CmpFPredicate.OLE
                e_nan = arith.CmpFOp(arith.CmpFPredicate.UNO, e, e).result
                v_num = arith.CmpFOp(arith.CmpFPredicate.ORD, v, v).result
                better = arith.CmpFOp(pred, e, v).result
                taken = arith.OrIOp(e_nan, arith.AndIOp(v_num, better).result).result
            else:
                if b.is_unsigned(dtype):
                    pred = arith.CmpIPredicate.uge if largest else arith.CmpIPredicate.ule
                else:
                    pred = arith.CmpIPredicate.sge if largest else arith.CmpIPredicate.sle
                taken = arith.CmpIOp(pred, e, v).result
            return [b.select(taken, e, v), b.select(taken, k64, i)]

        maps = [b.identity_map(rank)] * 3
        new_v, new_i = b.generic([piece], [acc_v, acc_i], maps, ["parallel"] * rank, take)
        ident = [b.identity_map(rank)] * 2
        out_v = b.generic([new_v], [_slice(res_v, dim, k, sizes)], ident, ["parallel"] * rank, lambda a, _: a)
        out_i = b.generic([new_i], [_slice(res_i, dim, k, sizes)], ident, ["parallel"] * rank, lambda a, _: a)
        scf.YieldOp([new_v, new_i, _insert(out_v, res_v, dim, k, sizes), _insert(out_i, res_i, dim, k, sizes)])
    return loop.results[2], loop.results[3]


def _cum_extreme(ctx: LoweringContext, x: ir.Value, dim, largest: bool):
    dtype, rank = ctx.in_specs[0].dtype, ctx.in_specs[0].rank
    d = _norm_dim(ctx, dim, rank)
    if rank == 0:
        return _copy0d(x, dtype), b.full([], 0, torch.int64)
    # Bool runs as bytes: the carried tensors are buffers, and bool buffers are not allowed.
    work = torch.uint8 if dtype == torch.bool else dtype
    values, indices = _scan_extreme(b.cast_tensor(x, dtype, work), d, work, largest)
    return b.cast_tensor(values, work, dtype), indices


def _copy0d(x: ir.Value, dtype: torch.dtype) -> ir.Value:
    return b.generic([x], [b.empty([], dtype)], [b.identity_map(0)] * 2, [], lambda e, _: e)


@lowers(aten.cummax.default, dtypes=NUMERIC)
def cummax(ctx, x, dim):
    return _cum_extreme(ctx, x, dim, True)


@lowers(aten.cummin.default, dtypes=NUMERIC)
def cummin(ctx, x, dim):
    return _cum_extreme(ctx, x, dim, False)


# ----- nonzero_static: positions of the first `size` nonzero elements -------------------------
@lowers(aten.nonzero_static.default, dtypes=NUMERIC)
def nonzero_static(ctx, x, size, fill_value=-1):
    """Row r of the result holds the coordinates of the nonzero element whose inclusive running
    count of nonzeros (a scan over the row-major elements) is r + 1; rows past the number of
    nonzeros hold `fill_value`, as eager pads them."""
    spec = ctx.in_specs[0]
    size = ctx.static_int(size, "size")
    fill = ctx.static_int(fill_value, "fill_value")
    ctx.require(size >= 0, f"size must be non-negative, got {size}")
    ctx.require(all(s is not None for s in spec.shape), "nonzero_static of a dynamic shape is not supported")
    rank = spec.rank
    numel = 1
    for s in spec.shape:
        numel *= s
    if size == 0 or rank == 0 or numel == 0:
        return b.full([size, rank], fill, torch.int64)
    i64 = ir.IntegerType.get_signless(64)
    # Nonzero flags as int64 (a bool buffer is not allowed), flattened row-major.
    flags = b.generic([x], [b.empty(list(spec.shape), torch.int64)], [b.identity_map(rank)] * 2,
                      ["parallel"] * rank,
                      lambda e, _: b.convert(b.convert(e, spec.dtype, torch.bool), torch.bool, torch.int64))
    flat = b.collapse_shape(flags, [list(range(rank))]) if rank > 1 else flags
    running = scan_along(flat, 0, torch.int64, torch.int64, 0, lambda a, e: arith.AddIOp(a, e).result, torch.int64)
    strides = [1] * rank
    for d in range(rank - 2, -1, -1):
        strides[d] = strides[d + 1] * spec.shape[d + 1]

    def body(flag, count, acc):
        row = arith.IndexCastOp(i64, linalg.IndexOp(ir.IntegerAttr.get(i64, 0)).result).result
        coord_dim = linalg.IndexOp(ir.IntegerAttr.get(i64, 1)).result
        elem = arith.IndexCastOp(i64, linalg.IndexOp(ir.IntegerAttr.get(i64, 2)).result).result
        hit = arith.AndIOp(arith.CmpIOp(arith.CmpIPredicate.ne, flag, b.constant(0, torch.int64)).result,
                           arith.CmpIOp(arith.CmpIPredicate.eq, count,
                                        arith.AddIOp(row, b.constant(1, torch.int64)).result).result).result
        # The coordinate along dimension `coord_dim` of row-major element `elem`.
        coord = b.constant(0, torch.int64)
        for d in range(rank):
            value = arith.RemSIOp(arith.DivSIOp(elem, b.constant(strides[d], torch.int64)).result,
                                  b.constant(spec.shape[d], torch.int64)).result
            is_d = arith.CmpIOp(arith.CmpIPredicate.eq, coord_dim, b.index_constant(d)).result
            coord = b.select(is_d, value, coord)
        return b.select(hit, coord, acc)

    elem_map = ir.AffineMap.get(3, 0, [ir.AffineDimExpr.get(2)])
    out_map = ir.AffineMap.get(3, 0, [ir.AffineDimExpr.get(0), ir.AffineDimExpr.get(1)])
    return b.generic([flat, running], [b.full([size, rank], fill, torch.int64)], [elem_map, elem_map, out_map],
                     ["parallel", "parallel", "reduction"], body)
