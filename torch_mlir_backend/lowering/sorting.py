"""Sorting along one dimension: sort (default and stable overloads) and topk (argsort reaches us
as sort).

Odd-even transposition sort: pass p compares the neighbours (i, i+1) for every i of parity
p % 2 and swaps them when strictly out of order; n passes sort n elements. Each pass is one
`linalg.generic` over the whole tensor (all other dimensions and all pairs in parallel) that
reads its partner with `tensor.extract`, and carries the values and their int64 indices. The
passes run in a tensor-level `scf.for` whose loop-carried tensors are each pass's destinations,
so they are updated in place; partners are read from a copy taken before the pass. Work is O(n^2) per sorted row: fine for the row lengths models sort (top-k
over vocabularies of a few thousand is the upper end).

Only strictly out-of-order neighbours are swapped, so equal elements keep their order: the
sort is stable, as eager's CPU sort is. NaN compares greater than every number (eager puts NaN
last in ascending order and first in descending order, and topk counts NaN as the largest).
"""
from __future__ import annotations

import torch

from mlir import ir
from mlir.dialects import arith, linalg, scf, tensor

from . import builders as b
from .registry import LoweringContext, lowers
from .shape import _norm_dim, extract_slice
from ..types import FLOAT_DTYPES, INT_DTYPES

aten = torch.ops.aten

SORT_DTYPES = FLOAT_DTYPES + INT_DTYPES + (torch.bool,)


def _greater(a: ir.Value, c: ir.Value, dtype: torch.dtype) -> ir.Value:
    """a > c in sort order: NaN is greater than every number and equal to NaN."""
    if b.is_float(dtype):
        ordered = arith.CmpFOp(arith.CmpFPredicate.OGT, a, c).result
        a_nan = arith.CmpFOp(arith.CmpFPredicate.UNO, a, a).result
        c_num = arith.CmpFOp(arith.CmpFPredicate.ORD, c, c).result
        return arith.OrIOp(ordered, arith.AndIOp(a_nan, c_num).result).result
    pred = arith.CmpIPredicate.ugt if b.is_unsigned(dtype) else arith.CmpIPredicate.sgt
    return arith.CmpIOp(pred, a, c).result


def _iv(d: int) -> ir.Value:
    return linalg.IndexOp(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), d)).result


def _pass(values: ir.Value, indices, dim: int, size: b.Size, parity: ir.Value, dtype: torch.dtype,
          descending: bool):
    """One transposition pass. `indices` None: the first pass, reading the input `values` and
    the identity permutation and writing new tensors; otherwise the pass updates `values` and
    `indices` in place."""
    rank = ir.RankedTensorType(values.type).rank
    one, zero = b.index_constant(1), b.index_constant(0)
    n = b.as_index(size)
    sizes = b.sizes_of(values)
    first = indices is None
    i64 = b.element_type(torch.int64)
    if first:
        # Fresh destinations: a shared initial tensor (CSE merges equal ones across sorts) as
        # the in-place destination of two loops is mis-bufferized today (see the report of
        # the op-coverage work), so no loop starts from a shared tensor.
        read_v, read_i = values, None
        outs = [b.empty(sizes, dtype), b.empty(sizes, torch.int64)]
    else:
        # Partners are read from a snapshot: the pass overwrites `values` in place. `linalg.copy`
        # (not an identity generic, which canonicalization would fold away) takes it.
        read_v = linalg.copy(values, outs=[b.empty(sizes, dtype)])
        read_i = linalg.copy(indices, outs=[b.empty(sizes, torch.int64)])
        outs = [values, indices]

    def body(out_v, out_i):
        pos = [_iv(d) for d in range(rank)]
        i = pos[dim]
        is_left = arith.CmpIOp(arith.CmpIPredicate.eq,
                               arith.RemUIOp(arith.AddIOp(i, parity).result, b.index_constant(2)).result,
                               zero).result
        right_of_me = arith.AddIOp(i, one).result
        has_partner = b.select(is_left, arith.CmpIOp(arith.CmpIPredicate.ult, right_of_me, n).result,
                               arith.CmpIOp(arith.CmpIPredicate.uge, i, one).result)
        partner = b.select(is_left, right_of_me, arith.SubIOp(i, one).result)
        partner = b.select(has_partner, partner, i)  # never read outside the dimension
        partner_pos = list(pos)
        partner_pos[dim] = partner
        if first:
            mine_v = tensor.ExtractOp(read_v, pos).result
            mine_i = arith.IndexCastOp(i64, i).result
            other_i = arith.IndexCastOp(i64, partner).result
        else:
            mine_v, mine_i = out_v, out_i
            other_i = tensor.ExtractOp(read_i, partner_pos).result
        other_v = tensor.ExtractOp(read_v, partner_pos).result
        left_v = b.select(is_left, mine_v, other_v)
        right_v = b.select(is_left, other_v, mine_v)
        out_of_order = _greater(right_v, left_v, dtype) if descending else _greater(left_v, right_v, dtype)
        swap = arith.AndIOp(has_partner, out_of_order).result
        return [b.select(swap, other_v, mine_v), b.select(swap, other_i, mine_i)]

    return b.generic([], outs, [b.identity_map(rank)] * 2, ["parallel"] * rank, body)


def sort_along(x: ir.Value, dim: int, dtype: torch.dtype, descending: bool) -> tuple[ir.Value, ir.Value]:
    """(sorted values, int64 source positions) of a rank >= 1 tensor along `dim` (stable)."""
    sizes = b.sizes_of(x)
    values, indices = _pass(x, None, dim, sizes[dim], b.index_constant(0), dtype, descending)
    loop = scf.ForOp(b.index_constant(1), b.as_index(sizes[dim]), b.index_constant(1), [values, indices])
    with ir.InsertionPoint(loop.body):
        vals, idx = loop.inner_iter_args
        parity = arith.RemUIOp(loop.induction_variable, b.index_constant(2)).result
        scf.YieldOp(_pass(vals, idx, dim, sizes[dim], parity, dtype, descending))
    return loop.results[0], loop.results[1]


def _sort(ctx: LoweringContext, x: ir.Value, dim, descending, k=None):
    dtype = ctx.in_specs[0].dtype
    rank = ctx.in_specs[0].rank
    dim = _norm_dim(ctx, dim, rank)
    ctx.require(isinstance(descending, bool), "descending must be a compile-time bool")
    if rank == 0:
        zero = b.full([], 0, torch.int64)
        copy = b.generic([x], [b.empty([], dtype)], [b.identity_map(0)] * 2, [], lambda e, _: e)
        return copy, zero
    if dtype == torch.bool:  # sort bytes: bool temporaries cannot live in buffers
        values, indices = sort_along(b.cast_tensor(x, torch.bool, torch.uint8), dim, torch.uint8, descending)
        values = b.cast_tensor(values, torch.uint8, torch.bool)
    else:
        values, indices = sort_along(x, dim, dtype, descending)
    if k is None:
        return values, indices
    sizes = b.sizes_of(values)
    sizes[dim] = k
    return (extract_slice(values, [0] * rank, sizes, [1] * rank),
            extract_slice(indices, [0] * rank, sizes, [1] * rank))


@lowers(aten.sort.default, dtypes=SORT_DTYPES)
def sort(ctx, x, dim=-1, descending=False):
    return _sort(ctx, x, dim, descending)


@lowers(aten.sort.stable, dtypes=SORT_DTYPES)
def sort_stable(ctx, x, stable=None, dim=-1, descending=False):
    # Every sort here is stable, so `stable` changes nothing.
    return _sort(ctx, x, dim, descending)


@lowers(aten.topk.default, dtypes=SORT_DTYPES)
def topk(ctx, x, k, dim=-1, largest=True, sorted=True):
    # `sorted=False` leaves the order unspecified; sorted order is one valid answer.
    k = ctx.static_int(k, "k")
    rank = ctx.in_specs[0].rank
    d = _norm_dim(ctx, dim, rank)
    size = ctx.in_specs[0].shape[d] if rank else 1
    ctx.require(size is not None, "topk over a dynamic dimension is not supported")
    ctx.require(0 <= k <= size, f"k={k} is out of range for a dimension of size {size}")
    ctx.require(isinstance(largest, bool), "largest must be a compile-time bool")
    return _sort(ctx, x, dim, largest, k if rank else None)
