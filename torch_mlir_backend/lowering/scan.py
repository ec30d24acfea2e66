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
from mlir.dialects import arith, math as math_d, scf, tensor

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
