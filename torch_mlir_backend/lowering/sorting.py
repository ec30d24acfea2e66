"""Sorting along one dimension and what is built on it: sort (default and stable overloads),
topk (argsort and msort reach us as sort); kthvalue, median, nanmedian, mode; searches of sorted
sequences (bucketize, searchsorted); histograms (histc, histogram).

Stable sort: odd-even transposition sort. Pass p compares the neighbours (i, i+1) for every i of
parity p % 2 and swaps them when strictly out of order; n passes sort n elements. Each pass is
one `linalg.generic` over the whole tensor (all other dimensions and all pairs in parallel) that
reads its partner with `tensor.extract`, and carries the values and their int64 indices. The
passes run in a tensor-level `scf.for` whose loop-carried tensors are each pass's destinations,
so they are updated in place; partners are read from a copy taken before the pass. Work is
O(n^2) per sorted row: fine for the row lengths models sort (top-k over vocabularies of a few
thousand is the upper end). Only strictly out-of-order neighbours are swapped, so equal elements
keep their order.

Unstable sort (`stable=False`, the default): eager runs libstdc++'s std::sort, whose order of
equal keys is not the stable one for rows longer than 16; we replay it (`std_sort_along`, see
there) so indices match eager's, and likewise eager's topk (std::nth_element + std::sort when
k * 64 > n) and kthvalue (ATen's quickselect). NaN compares greater than every number (eager puts NaN last in
ascending order and first in descending order, and topk counts NaN as the largest).
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


def _sort(ctx: LoweringContext, x: ir.Value, dim, descending, k=None, stable=True):
    dtype = ctx.in_specs[0].dtype
    rank = ctx.in_specs[0].rank
    dim = _norm_dim(ctx, dim, rank)
    ctx.require(isinstance(descending, bool), "descending must be a compile-time bool")
    if rank == 0:
        zero = b.full([], 0, torch.int64)
        copy = b.generic([x], [b.empty([], dtype)], [b.identity_map(0)] * 2, [], lambda e, _: e)
        return copy, zero
    shape = ctx.in_specs[0].shape
    # Rows of at most 16 elements: std::sort is an insertion sort there, so stable.
    replay_std_sort = not stable and all(s is not None for s in shape) and shape[dim] > _STD_SORT_THRESHOLD
    along = std_sort_along if replay_std_sort else sort_along
    if dtype == torch.bool:  # sort bytes: bool temporaries cannot live in buffers
        values, indices = along(b.cast_tensor(x, torch.bool, torch.uint8), dim, torch.uint8, descending)
        values = b.cast_tensor(values, torch.uint8, torch.bool)
    else:
        values, indices = along(x, dim, dtype, descending)
    if k is None:
        return values, indices
    sizes = b.sizes_of(values)
    sizes[dim] = k
    return (extract_slice(values, [0] * rank, sizes, [1] * rank),
            extract_slice(indices, [0] * rank, sizes, [1] * rank))


@lowers(aten.sort.default, dtypes=SORT_DTYPES)
def sort(ctx, x, dim=-1, descending=False):
    return _sort(ctx, x, dim, descending, stable=False)


@lowers(aten.sort.stable, dtypes=SORT_DTYPES)
def sort_stable(ctx, x, stable=None, dim=-1, descending=False):
    # `stable=None` is eager's unstable sort (std::sort), as `stable=False`.
    ctx.require(stable is None or isinstance(stable, bool), "stable must be a compile-time bool")
    return _sort(ctx, x, dim, descending, stable=bool(stable))


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
    ctx.require(isinstance(sorted, bool), "sorted must be a compile-time bool")
    if rank and k >= 1 and k * 64 > size and all(s is not None for s in ctx.in_specs[0].shape):
        # Eager's own algorithm on this path (nth_element + sort), so equal values keep eager's
        # indices. With k * 64 <= n eager uses std::partial_sort (a heap), which we do not
        # replay: the stable order below may then pick other indices among equal values.
        dtype = ctx.in_specs[0].dtype
        src, sort_dtype = _sortable(x, dtype)
        values, indices = std_topk_along(src, d, k, sort_dtype, largest, sorted)
        return b.cast_tensor(values, sort_dtype, dtype), indices
    return _sort(ctx, x, dim, largest, k if rank else None)


# ----- selection by rank: kthvalue, median, nanmedian, mode ----------------------------------
# median and nanmedian sort (stably, NaN last) and read one position per row: eager's
# comparators order by (value, index), so ties give the smallest index, as a stable sort does.
# mode replays eager's std::sort (static shapes; see `_RowOps`) and kthvalue eager's quickselect
# (`quickselect_along`), so their indices among equal values are eager's.

def _sortable(x: ir.Value, dtype: torch.dtype) -> tuple[ir.Value, torch.dtype]:
    """Bool rows are sorted as bytes (bool temporaries cannot live in buffers)."""
    if dtype == torch.bool:
        return b.cast_tensor(x, torch.bool, torch.uint8), torch.uint8
    return x, dtype


def _flat(x: ir.Value) -> ir.Value:
    """A tensor as 1-D (row-major)."""
    rank = ir.RankedTensorType(x.type).rank
    if rank == 1:
        return x
    if rank == 0:
        t = ir.RankedTensorType(x.type)
        return b.expand_shape(x, ir.RankedTensorType.get([1], t.element_type), [], [1])
    return b.collapse_shape(x, [list(range(rank))])


def _is_nan(v: ir.Value) -> ir.Value:
    return arith.CmpFOp(arith.CmpFPredicate.UNO, v, v).result


def _row_static_size(ctx: LoweringContext, dim: int) -> int:
    spec = ctx.in_specs[0]
    size = spec.shape[dim] if spec.rank else 1
    ctx.require(size is not None, f"{ctx.target} over a dynamic dimension is not supported")
    return size


@lowers(aten.kthvalue.default, dtypes=FLOAT_DTYPES + INT_DTYPES)  # eager has no bool kthvalue
def kthvalue(ctx, x, k, dim=-1, keepdim=False):
    dtype, rank = ctx.in_specs[0].dtype, ctx.in_specs[0].rank
    k = ctx.static_int(k, "k")
    d = _norm_dim(ctx, dim, rank)
    size = _row_static_size(ctx, d)
    ctx.require(1 <= k <= size, f"k={k} is out of range for a dimension of size {size}")
    if rank == 0:
        return _copy(x, dtype), b.full([], 0, torch.int64)
    ctx.require(all(s is not None for s in ctx.in_specs[0].shape), "kthvalue of a dynamic shape is not supported")
    src, sort_dtype = _sortable(x, dtype)
    v, i = quickselect_along(src, d, k - 1, sort_dtype)
    if keepdim:
        v, i = b.expand_dims(v, [d], rank), b.expand_dims(i, [d], rank)
    return b.cast_tensor(v, sort_dtype, dtype), i


def _copy(x: ir.Value, dtype: torch.dtype) -> ir.Value:
    rank = ir.RankedTensorType(x.type).rank
    return b.generic([x], [b.empty(b.sizes_of(x), dtype)], [b.identity_map(rank)] * 2, ["parallel"] * rank,
                     lambda e, _: e)


def _median_rows(x: ir.Value, dim: int, dtype: torch.dtype, ignore_nan: bool, keepdim: bool):
    """(values, indices) of the median of each row along `dim`, as eager's median_with_indices:
    median returns the first NaN of a row that has one; nanmedian takes the lower median of the
    non-NaN values (position (n - nans - 1) / 2, truncated toward zero as C++ does)."""
    rank = ir.RankedTensorType(x.type).rank
    src, sort_dtype = _sortable(x, dtype)
    values, indices = sort_along(src, dim, sort_dtype, False)
    sizes = b.sizes_of(values)
    n = b.as_index(sizes[dim])
    i64 = ir.IntegerType.get_signless(64)
    kept = [i for i in range(rank) if i != dim]
    out_sizes = [sizes[i] for i in kept]
    row_map = ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(i) for i in kept])
    if b.is_float(dtype):
        # NaNs per row; stable sorting put them last, in their original order.
        count = b.full(out_sizes, 0, torch.int64)
        nans = b.generic([values], [count], [b.identity_map(rank), row_map],
                         ["reduction" if i == dim else "parallel" for i in range(rank)],
                         lambda v, acc: arith.AddIOp(acc, arith.ExtUIOp(i64, _is_nan(v)).result).result)
    else:
        nans = None
    out_rank = len(kept)
    one, two, zero = b.index_constant(1), b.index_constant(2), b.index_constant(0)

    def body(*args):
        out_pos = [_iv(j) for j in range(out_rank)]
        if nans is not None:
            num_nan = arith.IndexCastOp(b.index_type(), args[0]).result
        else:
            num_nan = zero
        if ignore_nan:
            # (n - nans - 1) / 2 truncates toward zero: an all-NaN row reads position 0.
            rest = arith.SubIOp(arith.SubIOp(n, num_nan).result, one).result
            rest = arith.MaxSIOp(rest, zero).result
            pos = arith.DivUIOp(rest, two).result
        else:
            median_pos = arith.DivUIOp(arith.SubIOp(n, one).result, two).result
            has_nan = arith.CmpIOp(arith.CmpIPredicate.ne, num_nan, zero).result
            pos = b.select(has_nan, arith.SubIOp(n, num_nan).result, median_pos)
        src_pos = out_pos[:dim] + [pos] + out_pos[dim:]
        return [tensor.ExtractOp(values, src_pos).result, tensor.ExtractOp(indices, src_pos).result]

    outs = [b.empty(out_sizes, sort_dtype), b.empty(out_sizes, torch.int64)]
    ins = [nans] if nans is not None else []
    v, i = b.generic(ins, outs, [b.identity_map(out_rank)] * (len(ins) + 2), ["parallel"] * out_rank, body)
    v = b.cast_tensor(v, sort_dtype, dtype)
    if keepdim:
        v, i = b.expand_dims(v, [dim], rank), b.expand_dims(i, [dim], rank)
    return v, i


def _median_dim(ctx, x, dim, keepdim, ignore_nan):
    dtype, rank = ctx.in_specs[0].dtype, ctx.in_specs[0].rank
    d = _norm_dim(ctx, dim, rank)
    ctx.require(_row_static_size(ctx, d) > 0, "the median of an empty dimension is undefined")
    ctx.require(isinstance(keepdim, bool), "keepdim must be a compile-time bool")
    if rank == 0:
        return _copy(x, dtype), b.full([], 0, torch.int64)
    return _median_rows(x, d, dtype, ignore_nan, keepdim)


def _median_all(ctx, x, ignore_nan):
    spec = ctx.in_specs[0]
    ctx.require(all(s is not None for s in spec.shape), f"{ctx.target} of a dynamic shape is not supported")
    ctx.require(all(spec.shape), "the median of an empty tensor is undefined")
    v, _ = _median_rows(_flat(x), 0, spec.dtype, ignore_nan, False)
    return v


MEDIAN_DTYPES = FLOAT_DTYPES + INT_DTYPES


@lowers(aten.median.default, dtypes=MEDIAN_DTYPES)
def median(ctx, x):
    return _median_all(ctx, x, False)


@lowers(aten.nanmedian.default, dtypes=MEDIAN_DTYPES)
def nanmedian(ctx, x):
    return _median_all(ctx, x, True)


@lowers(aten.median.dim, dtypes=MEDIAN_DTYPES)
def median_dim(ctx, x, dim, keepdim=False):
    return _median_dim(ctx, x, dim, keepdim, False)


@lowers(aten.nanmedian.dim, dtypes=MEDIAN_DTYPES)
def nanmedian_dim(ctx, x, dim, keepdim=False):
    return _median_dim(ctx, x, dim, keepdim, True)


@lowers(aten.mode.default, dtypes=SORT_DTYPES)
def mode(ctx, x, dim=-1, keepdim=False):
    """Eager's mode kernel: sort the row, walk its runs of equal values, keep the first run
    (the smallest value) of strictly greatest length and the source index of its last element."""
    dtype, rank = ctx.in_specs[0].dtype, ctx.in_specs[0].rank
    d = _norm_dim(ctx, dim, rank)
    size = _row_static_size(ctx, d)
    ctx.require(size > 0, "the mode of an empty dimension is undefined")
    ctx.require(isinstance(keepdim, bool), "keepdim must be a compile-time bool")
    if rank == 0:
        return _copy(x, dtype), b.full([], 0, torch.int64)
    src, sort_dtype = _sortable(x, dtype)
    if all(s is not None for s in ctx.in_specs[0].shape):
        # Eager's std::sort with `a < b` on the values (NaN unordered), replayed: the index of
        # the mode among equal values is then eager's.
        ops = _RowOps(lambda a, c: _plain_less(a, c, sort_dtype))
        values, indices = _per_row(src, d, size, lambda row: ops.sort(row, _iota_row(size), size))
    else:
        values, indices = sort_along(src, d, sort_dtype, False)
    sizes = b.sizes_of(values)
    kept = [i for i in range(rank) if i != d]
    out_sizes = [sizes[i] for i in kept]
    out_rank = len(kept)
    i64 = ir.IntegerType.get_signless(64)
    n = b.index_constant(size)
    one = b.index_constant(1)

    # The walk carries (run length, best length, best value, best index) from one position to
    # the next: an scf.for over the row, as scans are, each step one parallel generic over the
    # other dimensions that updates the carried tensors in place.
    state0 = [b.full(out_sizes, 0, torch.int64), b.full(out_sizes, 0, torch.int64),
              b.full(out_sizes, 0, sort_dtype), b.full(out_sizes, 0, torch.int64)]
    loop = scf.ForOp(b.index_constant(0), n, one, state0)
    with ir.InsertionPoint(loop.body):
        k = loop.induction_variable
        run, best, best_v, best_i = loop.inner_iter_args
        last = arith.CmpIOp(arith.CmpIPredicate.eq, arith.AddIOp(k, one).result, n).result
        nxt = b.select(last, k, arith.AddIOp(k, one).result)

        def step(run_e, best_e, best_v_e, best_i_e):
            pos = [_iv(j) for j in range(out_rank)]
            here = pos[:d] + [k] + pos[d:]
            there = pos[:d] + [nxt] + pos[d:]
            v = tensor.ExtractOp(values, here).result
            w = tensor.ExtractOp(values, there).result
            if b.is_float(sort_dtype):
                differs = arith.CmpFOp(arith.CmpFPredicate.UNE, v, w).result
            else:
                differs = arith.CmpIOp(arith.CmpIPredicate.ne, v, w).result
            run_end = arith.OrIOp(last, differs).result
            length = arith.AddIOp(run_e, _i64c(1)).result
            better = arith.AndIOp(run_end, arith.CmpIOp(arith.CmpIPredicate.sgt, length, best_e).result).result
            return [b.select(run_end, _i64c(0), length), b.select(better, length, best_e),
                    b.select(better, v, best_v_e),
                    b.select(better, tensor.ExtractOp(indices, here).result, best_i_e)]

        new = b.generic([], [run, best, best_v, best_i], [b.identity_map(out_rank)] * 4,
                        ["parallel"] * out_rank, step)
        scf.YieldOp(new)
    v, i = loop.results[2], loop.results[3]
    v = b.cast_tensor(v, sort_dtype, dtype)
    if keepdim:
        v, i = b.expand_dims(v, [d], rank), b.expand_dims(i, [d], rank)
    return v, i


def _plain_less(a: ir.Value, c: ir.Value, dtype: torch.dtype) -> ir.Value:
    if b.is_float(dtype):
        return arith.CmpFOp(arith.CmpFPredicate.OLT, a, c).result
    pred = arith.CmpIPredicate.ult if b.is_unsigned(dtype) else arith.CmpIPredicate.slt
    return arith.CmpIOp(pred, a, c).result


def _i64c(value: int) -> ir.Value:
    return arith.ConstantOp(ir.IntegerType.get_signless(64), value).result


# ----- searching sorted sequences: bucketize, searchsorted -------------------------------------
SEARCH_DTYPES = FLOAT_DTYPES + INT_DTYPES


def _below(bound: ir.Value, x: ir.Value, dtype: torch.dtype, right: bool) -> ir.Value:
    """Whether eager's binary search moves past `bound` looking for `x`: `!(bound >= x)` for the
    lower bound, `!(bound > x)` for the upper one (`right`); so a NaN `x` lands after every bound."""
    if b.is_float(dtype):
        pred = arith.CmpFPredicate.ULE if right else arith.CmpFPredicate.ULT
        return arith.CmpFOp(pred, bound, x).result
    if b.is_unsigned(dtype):
        pred = arith.CmpIPredicate.ule if right else arith.CmpIPredicate.ult
    else:
        pred = arith.CmpIPredicate.sle if right else arith.CmpIPredicate.slt
    return arith.CmpIOp(pred, bound, x).result


def _search(ctx: LoweringContext, seq: ir.Value, seq_dtype: torch.dtype, x, x_dtype: torch.dtype,
            right: bool, sorter=None) -> ir.Value:
    """For each element of `x` (a tensor, or a scalar giving a 0-d result), the number of
    elements of its row of `seq` (sorted along the last dimension; 1-D, or with `x`'s leading
    dimensions) that the binary search passes: a counting reduction over the row, which equals
    the search's answer on a sorted row."""
    out = ctx.out_spec.dtype
    compute = torch.promote_types(seq_dtype, x_dtype)
    seq_rank = ir.RankedTensorType(seq.type).rank
    x_is_tensor = isinstance(x, ir.Value) and isinstance(x.type, ir.RankedTensorType)
    x_rank = ir.RankedTensorType(x.type).rank if x_is_tensor else 0
    ctx.require(seq_rank == 1 or seq_rank == x_rank,
                "the sorted sequence must be 1-D or have the input's leading dimensions")
    if sorter is not None:
        seq = _gather_last(seq, sorter)
    rank = x_rank + 1
    out_sizes = b.sizes_of(x) if x_is_tensor else []
    x_map = ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(i) for i in range(x_rank)])
    seq_dims = [x_rank] if seq_rank == 1 else list(range(x_rank - 1)) + [x_rank]
    seq_map = ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(i) for i in seq_dims])
    zero = b.full(out_sizes, 0, out)
    scalar = None if x_is_tensor else b.scalar_operand(x, compute)

    def body(*args):
        if x_is_tensor:
            e, bound, acc = args
            e = b.convert(e, x_dtype, compute)
        else:
            bound, acc = args
            e = scalar
        passed = _below(b.convert(bound, seq_dtype, compute), e, compute, right)
        return arith.AddIOp(acc, b.convert(passed, torch.bool, out)).result

    ins = ([x] if x_is_tensor else []) + [seq]
    maps = ([x_map] if x_is_tensor else []) + [seq_map, x_map]
    return b.generic(ins, [zero], maps, ["parallel"] * x_rank + ["reduction"], body)


def _gather_last(seq: ir.Value, sorter: ir.Value) -> ir.Value:
    """seq[..., sorter[..., j]]: the sequence in the order `sorter` gives."""
    rank = ir.RankedTensorType(seq.type).rank

    def body(s, _):
        pos = [_iv(i) for i in range(rank)]
        pos[-1] = arith.IndexCastOp(b.index_type(), s).result
        return tensor.ExtractOp(seq, pos).result

    out = b.empty(b.sizes_of(sorter), _dtype_of(seq))
    return b.generic([sorter], [out], [b.identity_map(rank)] * 2, ["parallel"] * rank, body)


def _dtype_of(value: ir.Value) -> torch.dtype:
    text = str(ir.RankedTensorType(value.type).element_type)
    return {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16,
            "i64": torch.int64, "i32": torch.int32, "i16": torch.int16, "i8": torch.int8}[text]


def _right_side(ctx: LoweringContext, right, side) -> bool:
    ctx.require(isinstance(right, bool), "right must be a compile-time bool")
    ctx.require(side in (None, "left", "right"), f"side must be 'left' or 'right', got {side!r}")
    ctx.require(not (right and side == "left"), "side='left' contradicts right=True")
    return right or side == "right"


def _scalar_search_dtype(seq_dtype: torch.dtype, value) -> torch.dtype:
    """Eager searches a scalar as a 0-d double/long tensor (not a wrapped number), promoted with
    the 1-D sequence by the usual rule for 0-d operands."""
    if isinstance(value, ir.Value):
        scalar = b._dtype_of_scalar_type(value.type)
    else:
        scalar = torch.float64 if isinstance(value, float) else torch.int64
    return torch.result_type(torch.empty(1, dtype=seq_dtype), torch.empty((), dtype=scalar))


@lowers(aten.bucketize.Tensor, dtypes=SEARCH_DTYPES)
def bucketize(ctx, x, boundaries, out_int32=False, right=False):
    ctx.require(ctx.in_specs[1].rank == 1, "boundaries must be 1-D")
    return _search(ctx, boundaries, ctx.in_specs[1].dtype, x, ctx.in_specs[0].dtype, _right_side(ctx, right, None))


@lowers(aten.bucketize.Scalar, dtypes=SEARCH_DTYPES)
def bucketize_scalar(ctx, x, boundaries, out_int32=False, right=False):
    seq_spec = ctx.in_specs[1]
    ctx.require(seq_spec.rank == 1, "boundaries must be 1-D")
    x_dtype = _scalar_search_dtype(seq_spec.dtype, x)
    return _search(ctx, boundaries, seq_spec.dtype, x, x_dtype, _right_side(ctx, right, None))


@lowers(aten.searchsorted.Tensor, dtypes=SEARCH_DTYPES)
def searchsorted(ctx, seq, x, out_int32=False, right=False, side=None, sorter=None):
    return _search(ctx, seq, ctx.in_specs[0].dtype, x, ctx.in_specs[1].dtype, _right_side(ctx, right, side), sorter)


@lowers(aten.searchsorted.Scalar, dtypes=SEARCH_DTYPES)
def searchsorted_scalar(ctx, seq, x, out_int32=False, right=False, side=None, sorter=None):
    seq_spec = ctx.in_specs[0]
    ctx.require(seq_spec.rank == 1, "a scalar is searched in a 1-D sorted sequence only")
    x_dtype = _scalar_search_dtype(seq_spec.dtype, x)
    return _search(ctx, seq, seq_spec.dtype, x, x_dtype, _right_side(ctx, right, side), sorter)


# ----- histograms: histc, histogram -------------------------------------------------------------
# As eager's histogramdd kernel: an element outside [first edge, last edge] (or NaN) is skipped;
# its bin is found by linear interpolation between the outer edges (histc), refined by a search
# among the neighbouring edges (histogram with a bin count) or by a search of all edges
# (histogram with given edges); the last bin includes its right edge. Each element's bin is one
# parallel generic, the counts a reduction over the elements per bin.
HIST_DTYPES = (torch.float32, torch.float64)


def _scalar_of(t: ir.Value) -> ir.Value:
    return tensor.ExtractOp(t, []).result


def _data_range(x: ir.Value, dtype: torch.dtype) -> tuple[ir.Value, ir.Value]:
    """(min, max) of all elements as f64 scalars (NaN if any element is NaN, as aminmax)."""
    rank = ir.RankedTensorType(x.type).rank
    lo = b.reduce(x, list(range(rank)), False, float("inf"), dtype, lambda e, a: b.min_value(e, a, dtype))
    hi = b.reduce(x, list(range(rank)), False, float("-inf"), dtype, lambda e, a: b.max_value(e, a, dtype))
    return (b.convert(_scalar_of(lo), dtype, torch.float64), b.convert(_scalar_of(hi), dtype, torch.float64))


def _widen_if_equal(lo: ir.Value, hi: ir.Value, by: float) -> tuple[ir.Value, ir.Value]:
    same = arith.CmpFOp(arith.CmpFPredicate.OEQ, lo, hi).result
    d = b.constant(by, torch.float64)
    return (b.select(same, arith.SubFOp(lo, d).result, lo), b.select(same, arith.AddFOp(hi, d).result, hi))


def _linspace_edges(lo: ir.Value, hi: ir.Value, bins: int, dtype: torch.dtype) -> ir.Value:
    """bins + 1 edges as eager's linspace: start + step * i for the first half, end - step *
    (steps - 1 - i) for the second, in the result dtype."""
    steps = bins + 1
    start, end = b.convert(lo, torch.float64, dtype), b.convert(hi, torch.float64, dtype)
    step = arith.DivFOp(arith.SubFOp(end, start).result, b.constant(float(bins), dtype)).result
    i64 = ir.IntegerType.get_signless(64)

    def body(_):
        i = arith.IndexCastOp(i64, _iv(0)).result
        first_half = arith.CmpIOp(arith.CmpIPredicate.slt, i, _i64c(steps // 2)).result
        from_start = arith.AddFOp(start, arith.MulFOp(step, b.convert(i, torch.int64, dtype)).result).result
        back = arith.SubIOp(_i64c(steps - 1), i).result
        from_end = arith.SubFOp(end, arith.MulFOp(step, b.convert(back, torch.int64, dtype)).result).result
        return b.select(first_half, from_start, from_end)

    return b.generic([], [b.empty([steps], dtype)], [b.identity_map(1)], ["parallel"], body)


def _bins_by_interpolation(x: ir.Value, dtype: torch.dtype, edges: ir.Value, bins: int,
                           local_search: bool) -> ir.Value:
    """Each element's bin (int64; -1 when skipped)."""
    rank = ir.RankedTensorType(x.type).rank
    first = tensor.ExtractOp(edges, [b.index_constant(0)]).result
    last = tensor.ExtractOp(edges, [b.index_constant(bins)]).result
    width = arith.SubFOp(last, first).result
    nbins = b.constant(float(bins), dtype)

    def body(e, _):
        inside = arith.AndIOp(arith.CmpFOp(arith.CmpFPredicate.OGE, e, first).result,
                              arith.CmpFOp(arith.CmpFPredicate.OLE, e, last).result).result
        scaled = arith.DivFOp(arith.MulFOp(arith.SubFOp(e, first).result, nbins).result, width).result
        # Skipped elements may scale to anything (NaN, huge): clamp before converting.
        scaled = b.select(inside, scaled, b.constant(0.0, dtype))
        pos = b.convert(scaled, dtype, torch.int64)
        if local_search:
            # upper_bound over edges[max(0, pos - 1) : min(pos + 2, bins + 1)], minus one.
            lo = arith.MaxSIOp(arith.SubIOp(pos, _i64c(1)).result, _i64c(0)).result
            found = arith.SubIOp(lo, _i64c(1)).result
            for j in range(3):
                at = arith.AddIOp(lo, _i64c(j)).result
                valid = arith.CmpIOp(arith.CmpIPredicate.slt, at, arith.MinSIOp(arith.AddIOp(pos, _i64c(2)).result, _i64c(bins + 1)).result).result
                safe = b.select(valid, at, _i64c(0))
                edge = tensor.ExtractOp(edges, [arith.IndexCastOp(b.index_type(), safe).result]).result
                not_above = arith.AndIOp(valid, arith.CmpFOp(arith.CmpFPredicate.OLE, edge, e).result).result
                found = arith.AddIOp(found, arith.ExtUIOp(ir.IntegerType.get_signless(64), not_above).result).result
            pos = found
        at_end = arith.CmpIOp(arith.CmpIPredicate.eq, pos, _i64c(bins)).result
        pos = b.select(at_end, _i64c(bins - 1), pos)
        return b.select(inside, pos, _i64c(-1))

    return b.generic([x], [b.empty(b.sizes_of(x), torch.int64)], [b.identity_map(rank)] * 2,
                     ["parallel"] * rank, body)


def _bins_by_search(x: ir.Value, dtype: torch.dtype, edges: ir.Value, n_edges: int) -> ir.Value:
    """Each element's bin among arbitrary sorted edges: upper_bound(edges, x) - 1 (int64; -1 when
    skipped), the upper bound as a count of edges <= x."""
    rank = ir.RankedTensorType(x.type).rank
    count = b.generic([x, edges], [b.full(b.sizes_of(x), 0, torch.int64)],
                      [ir.AffineMap.get(rank + 1, 0, [ir.AffineDimExpr.get(i) for i in range(rank)]),
                       ir.AffineMap.get(rank + 1, 0, [ir.AffineDimExpr.get(rank)]),
                       ir.AffineMap.get(rank + 1, 0, [ir.AffineDimExpr.get(i) for i in range(rank)])],
                      ["parallel"] * rank + ["reduction"],
                      lambda e, edge, acc: arith.AddIOp(acc, arith.ExtUIOp(
                          ir.IntegerType.get_signless(64),
                          arith.CmpFOp(arith.CmpFPredicate.OLE, edge, e).result).result).result)
    first = tensor.ExtractOp(edges, [b.index_constant(0)]).result
    last = tensor.ExtractOp(edges, [b.index_constant(n_edges - 1)]).result

    def body(e, c, _):
        inside = arith.AndIOp(arith.CmpFOp(arith.CmpFPredicate.OGE, e, first).result,
                              arith.CmpFOp(arith.CmpFPredicate.OLE, e, last).result).result
        pos = arith.SubIOp(c, _i64c(1)).result
        pos = b.select(arith.CmpIOp(arith.CmpIPredicate.eq, pos, _i64c(n_edges - 1)).result,
                       _i64c(n_edges - 2), pos)
        return b.select(inside, pos, _i64c(-1))

    return b.generic([x, count], [b.empty(b.sizes_of(x), torch.int64)], [b.identity_map(rank)] * 3,
                     ["parallel"] * rank, body)


def _count_bins(positions: ir.Value, bins: int, dtype: torch.dtype, weight=None) -> ir.Value:
    """hist[k] = number (or total weight) of elements whose bin is k, in the input dtype."""
    rank = ir.RankedTensorType(positions.type).rank
    elems = ir.AffineMap.get(rank + 1, 0, [ir.AffineDimExpr.get(i + 1) for i in range(rank)])
    out_map = ir.AffineMap.get(rank + 1, 0, [ir.AffineDimExpr.get(0)])
    i64 = ir.IntegerType.get_signless(64)

    def body(pos, *rest):
        acc = rest[-1]
        w = rest[0] if weight is not None else b.constant(1.0, dtype)
        here = arith.CmpIOp(arith.CmpIPredicate.eq, pos, arith.IndexCastOp(i64, _iv(0)).result).result
        return b.select(here, arith.AddFOp(acc, w).result, acc)

    ins = [positions] + ([weight] if weight is not None else [])
    return b.generic(ins, [b.full([bins], 0.0, dtype)], [elems] * len(ins) + [out_map],
                     ["parallel"] + ["reduction"] * rank, body)


def _density(hist: ir.Value, edges: ir.Value, bins: int, dtype: torch.dtype) -> ir.Value:
    """hist / sum(hist) / bin width, as eager's histogramdd with density=True."""
    total = _scalar_of(b.reduce(hist, [0], False, 0.0, dtype, lambda e, a: arith.AddFOp(e, a).result))

    def body(h, _):
        k = _iv(0)
        left = tensor.ExtractOp(edges, [k]).result
        right = tensor.ExtractOp(edges, [arith.AddIOp(k, b.index_constant(1)).result]).result
        return arith.DivFOp(arith.DivFOp(h, total).result, arith.SubFOp(right, left).result).result

    return b.generic([hist], [b.empty([bins], dtype)], [b.identity_map(1)] * 2, ["parallel"], body)


def _static_number(ctx: LoweringContext, value, what: str) -> float:
    ctx.require(isinstance(value, (int, float)) and not isinstance(value, bool),
                f"{what} must be a compile-time number, got {value!r}")
    return float(value)


@lowers(aten.histc.default, dtypes=HIST_DTYPES)
def histc(ctx, x, bins=100, min=0, max=0):
    dtype = ctx.in_specs[0].dtype
    bins = ctx.static_int(bins, "bins")
    ctx.require(bins > 0, f"bins must be positive, got {bins}")
    lo, hi = _static_number(ctx, min, "min"), _static_number(ctx, max, "max")
    ctx.require(all(s is not None for s in ctx.in_specs[0].shape), "histc of a dynamic shape is not supported")
    ctx.require(lo <= hi, "max must be larger than min")
    numel = 1
    for s in ctx.in_specs[0].shape:
        numel *= s
    # Eager checks the range is finite when it is known here; one taken from the data is not
    # checked (a NaN or infinite element then gives a histogram of zeros instead of an error).
    if lo == hi and numel > 0:
        lo_v, hi_v = _data_range(x, dtype)
    else:
        ctx.require(lo == hi or (abs(lo) != float("inf") and abs(hi) != float("inf")),
                    f"range of [{lo}, {hi}] is not finite")
        lo_v, hi_v = b.constant(lo, torch.float64), b.constant(hi, torch.float64)
    lo_v, hi_v = _widen_if_equal(lo_v, hi_v, 1.0)
    edges = _linspace_edges(lo_v, hi_v, bins, dtype)
    return _count_bins(_bins_by_interpolation(x, dtype, edges, bins, False), bins, dtype)


def _weight_spec_ok(ctx, weight, operand: int) -> None:
    if weight is not None:
        spec = ctx.in_specs[operand]
        ctx.require(spec is not None and spec.shape == ctx.in_specs[0].shape and spec.dtype == ctx.in_specs[0].dtype,
                    "weight must have the input's shape and dtype")


@lowers(aten.histogram.bin_ct, dtypes=HIST_DTYPES)
def histogram_bin_ct(ctx, x, bins=100, range=None, weight=None, density=False):
    dtype = ctx.in_specs[0].dtype
    bins = ctx.static_int(bins, "bins")
    ctx.require(bins > 0, f"bins must be positive, got {bins}")
    ctx.require(isinstance(density, bool), "density must be a compile-time bool")
    ctx.require(all(s is not None for s in ctx.in_specs[0].shape), "histogram of a dynamic shape is not supported")
    _weight_spec_ok(ctx, weight, 3)
    numel = 1
    for s in ctx.in_specs[0].shape:
        numel *= s
    if range is not None:
        ctx.require(len(range) == 2, "range must hold two numbers")
        lo, hi = (_static_number(ctx, r, "range") for r in range)
        ctx.require(lo <= hi and abs(lo) != float("inf") and abs(hi) != float("inf"),
                    f"range of [{lo}, {hi}] is not finite or not increasing")
        lo_v, hi_v = b.constant(lo, torch.float64), b.constant(hi, torch.float64)
    elif numel > 0:
        lo_v, hi_v = _data_range(x, dtype)
    else:
        lo_v, hi_v = b.constant(0.0, torch.float64), b.constant(0.0, torch.float64)
    # numpy's rule: an empty range becomes one unit wide.
    lo_v, hi_v = _widen_if_equal(lo_v, hi_v, 0.5)
    edges = _linspace_edges(lo_v, hi_v, bins, dtype)
    hist = _count_bins(_bins_by_interpolation(x, dtype, edges, bins, True), bins, dtype, weight)
    if density:
        hist = _density(hist, edges, bins, dtype)
    return hist, edges


@lowers(aten.histogram.bins_tensor, dtypes=HIST_DTYPES)
def histogram_bins_tensor(ctx, x, bins, weight=None, density=False):
    dtype = ctx.in_specs[0].dtype
    edge_spec = ctx.in_specs[1]
    ctx.require(edge_spec.rank == 1 and edge_spec.shape[0] is not None and edge_spec.shape[0] >= 2,
                "bins must be a 1-D tensor of at least two edges with a static size")
    ctx.require(edge_spec.dtype == dtype, "bins must have the input's dtype")
    ctx.require(isinstance(density, bool), "density must be a compile-time bool")
    _weight_spec_ok(ctx, weight, 2)
    n_edges = edge_spec.shape[0]
    hist = _count_bins(_bins_by_search(x, dtype, bins, n_edges), n_edges - 1, dtype, weight)
    if density:
        hist = _density(hist, bins, n_edges - 1, dtype)
    return hist, _copy(bins, dtype)


# ----- eager's unstable sort: libstdc++'s std::sort, replayed ---------------------------------
# `sort(stable=False)` (and argsort) runs std::sort on (key, index) pairs comparing keys only, so
# the order of equal keys is whatever introsort leaves: not the stable order once a row has more
# than 16 elements (up to 16, std::sort is an insertion sort, hence stable). To give eager's
# indices we replay the algorithm per row: introsort's partitioning (median of three moved to
# the front, then Hoare's unguarded partition; the right part of a cut is pushed on a stack, the
# left continues) down to ranges of 16 elements, then one insertion sort over the row. The replay
# leaves out the heapsort introsort switches to after 2*log2(n) levels of bad pivots: on such
# (adversarial) rows the values are still sorted, the order of equal keys may differ from eager's.
_STD_SORT_THRESHOLD = 16


def _while(inits, cond_fn, body_fn) -> list:
    types = [v.type for v in inits]
    loop = scf.WhileOp(types, inits)
    before = loop.before.blocks.append(*types)
    with ir.InsertionPoint(before):
        scf.ConditionOp(cond_fn(*before.arguments), list(before.arguments))
    after = loop.after.blocks.append(*types)
    with ir.InsertionPoint(after):
        scf.YieldOp(list(body_fn(*after.arguments)))
    return list(loop.results)


def _std_less(x: ir.Value, y: ir.Value, dtype: torch.dtype, descending: bool) -> ir.Value:
    """ATen's KeyValueCompAsc / KeyValueCompDesc on keys: NaN is largest."""
    return _greater(y, x, dtype) if not descending else _greater(x, y, dtype)


class _RowOps:
    """libstdc++'s sorting building blocks on one 1-D row of keys and its int64 source indices
    (the pairs std::sort moves together), comparing keys with `less`; positions are `index`
    values, ranges half-open."""

    def __init__(self, less):
        self.less = less

    @staticmethod
    def get(t, p):
        return tensor.ExtractOp(t, [p]).result

    @staticmethod
    def put(t, p, v):
        return tensor.InsertOp(v, t, [p]).result

    def swap(self, k, i, p, q):
        kp, kq, ip, iq = self.get(k, p), self.get(k, q), self.get(i, p), self.get(i, q)
        return self.put(self.put(k, p, kq), q, kp), self.put(self.put(i, p, iq), q, ip)

    def pivot_partition(self, k, i, first, last):
        """std::__unguarded_partition_pivot on [first, last): (keys, indices, cut)."""
        c, less, get = b.index_constant, self.less, self.get
        mid = arith.AddIOp(first, arith.DivUIOp(arith.SubIOp(last, first).result, c(2)).result).result
        a_, m = arith.AddIOp(first, c(1)).result, arith.SubIOp(last, c(1)).result
        ka, kb, km = get(k, a_), get(k, mid), get(k, m)
        ab, bm, am = less(ka, kb), less(kb, km), less(ka, km)
        # std::__move_median_to_first(first, first + 1, mid, last - 1)
        pick_if_ab = b.select(bm, mid, b.select(am, m, a_))
        pick_else = b.select(am, a_, b.select(bm, m, mid))
        k, i = self.swap(k, i, first, b.select(ab, pick_if_ab, pick_else))
        pivot = get(k, first)
        true = b.constant(True, torch.bool)

        def step(k, i, lo, hi, done):
            lo = _while([lo], lambda p: less(get(k, p), pivot), lambda p: [arith.AddIOp(p, c(1)).result])[0]
            hi = arith.SubIOp(hi, c(1)).result
            hi = _while([hi], lambda p: less(pivot, get(k, p)), lambda p: [arith.SubIOp(p, c(1)).result])[0]
            crossing = arith.CmpIOp(arith.CmpIPredicate.slt, lo, hi).result
            k, i = self.swap(k, i, lo, b.select(crossing, hi, lo))  # a self-swap changes nothing
            lo = b.select(crossing, arith.AddIOp(lo, c(1)).result, lo)
            return [k, i, lo, hi, arith.XOrIOp(crossing, true).result]

        k, i, cut, _, _ = _while([k, i, arith.AddIOp(first, c(1)).result, last, b.constant(False, torch.bool)],
                                 lambda k, i, lo, hi, done: arith.XOrIOp(done, true).result, step)
        return k, i, cut

    def insertion_sort(self, k, i, first, last):
        """std::__insertion_sort on [first, last) (a stable insertion sort)."""
        c, get, put = b.index_constant, self.get, self.put
        loop = scf.ForOp(arith.AddIOp(first, c(1)).result, last, c(1), [k, i])
        with ir.InsertionPoint(loop.body):
            k, i = loop.inner_iter_args
            pos = loop.induction_variable
            v, vi = get(k, pos), get(i, pos)

            def keeps_moving(k, i, j):
                before = arith.MaxSIOp(arith.SubIOp(j, c(1)).result, first).result
                return arith.AndIOp(arith.CmpIOp(arith.CmpIPredicate.sgt, j, first).result,
                                    self.less(v, get(k, before))).result

            def shift(k, i, j):
                before = arith.SubIOp(j, c(1)).result
                return [put(k, j, get(k, before)), put(i, j, get(i, before)), before]

            k, i, j = _while([k, i, pos], keeps_moving, shift)
            scf.YieldOp([put(k, j, v), put(i, j, vi)])
        return loop.results[0], loop.results[1]

    def sort(self, k, i, length: int):
        """std::sort of positions [0, length) (length static): introsort's partitioning down to
        ranges of 16 (right parts on a stack), then one insertion sort (heapsort fallback left
        out: see the section comment)."""
        c = b.index_constant
        i64 = ir.IntegerType.get_signless(64)
        if length > _STD_SORT_THRESHOLD:
            def longer(first, last):
                return arith.CmpIOp(arith.CmpIPredicate.sgt, arith.SubIOp(last, first).result,
                                    c(_STD_SORT_THRESHOLD)).result

            capacity = length // (_STD_SORT_THRESHOLD + 1) + 2
            # The stack of ranges still to partition, (first, last) per row; it starts with [0, length).
            stack = tensor.InsertOp(arith.ConstantOp(i64, 0).result, b.empty([capacity, 2], torch.int64),
                                    [c(0), c(0)]).result
            stack = tensor.InsertOp(arith.ConstantOp(i64, length).result, stack, [c(0), c(1)]).result

            def process(k, i, s, sp):
                sp = arith.SubIOp(sp, c(1)).result
                first = arith.IndexCastOp(b.index_type(), tensor.ExtractOp(s, [sp, c(0)]).result).result
                last = arith.IndexCastOp(b.index_type(), tensor.ExtractOp(s, [sp, c(1)]).result).result

                def loop_body(k, i, s, sp, first, last):
                    k, i, cut = self.pivot_partition(k, i, first, last)
                    s = tensor.InsertOp(arith.IndexCastOp(i64, cut).result, s, [sp, c(0)]).result
                    s = tensor.InsertOp(arith.IndexCastOp(i64, last).result, s, [sp, c(1)]).result
                    sp = b.select(longer(cut, last), arith.AddIOp(sp, c(1)).result, sp)
                    return [k, i, s, sp, first, cut]

                k, i, s, sp, _, _ = _while([k, i, s, sp, first, last],
                                           lambda k, i, s, sp, first, last: longer(first, last), loop_body)
                return [k, i, s, sp]

            k, i, _, _ = _while([k, i, stack, c(1)],
                                lambda k, i, s, sp: arith.CmpIOp(arith.CmpIPredicate.ugt, sp, c(0)).result, process)
        if length > 1:
            k, i = self.insertion_sort(k, i, c(0), c(length))
        return k, i

    def nth_element(self, k, i, nth: int, length: int):
        """std::nth_element(0, nth, length): introselect's partitioning while the range holds more
        than 3 elements (heapsort fallback left out), then an insertion sort of what is left."""
        c = b.index_constant

        def larger_than_three(k, i, first, last):
            return arith.CmpIOp(arith.CmpIPredicate.sgt, arith.SubIOp(last, first).result, c(3)).result

        def narrow(k, i, first, last):
            k, i, cut = self.pivot_partition(k, i, first, last)
            right_of_nth = arith.CmpIOp(arith.CmpIPredicate.sle, cut, c(nth)).result
            return [k, i, b.select(right_of_nth, cut, first), b.select(right_of_nth, last, cut)]

        k, i, first, last = _while([k, i, c(0), c(length)], larger_than_three, narrow)
        return self.insertion_sort(k, i, first, last)


def _iota_row(n: int) -> ir.Value:
    i64 = ir.IntegerType.get_signless(64)
    return b.generic([], [b.empty([n], torch.int64)], [b.identity_map(1)], ["parallel"],
                     lambda _: arith.IndexCastOp(i64, _iv(0)).result)


def _std_sort_row(keys: ir.Value, n: int, dtype: torch.dtype, descending: bool):
    """(keys, source indices) of one 1-D row of static length n, ordered as std::sort."""
    ops = _RowOps(lambda x, y: _std_less(x, y, dtype, descending))
    return ops.sort(keys, _iota_row(n), n)


def std_sort_along(x: ir.Value, dim: int, dtype: torch.dtype, descending: bool) -> tuple[ir.Value, ir.Value]:
    """As eager's unstable sort, for a static shape."""
    n = b.static_shape(x)[dim]
    return _per_row(x, dim, n, lambda row: _std_sort_row(row, n, dtype, descending))


def std_topk_along(x: ir.Value, dim: int, k: int, dtype: torch.dtype, largest: bool, sorted_: bool):
    """As eager's topk when k * 64 > n (static shape): std::nth_element at k - 1, then (sorted)
    std::sort of the first k - 1, on (key, index) pairs; the first k pairs are the result."""
    n = b.static_shape(x)[dim]
    ops = _RowOps(lambda a, c: _std_less(a, c, dtype, largest))

    def row_fn(row):
        keys, idx = ops.nth_element(row, _iota_row(n), k - 1, n)
        if sorted_:
            keys, idx = ops.sort(keys, idx, k - 1)
        return extract_slice(keys, [0], [k], [1]), extract_slice(idx, [0], [k], [1])

    return _per_row(x, dim, k, row_fn)


def _per_row(x: ir.Value, dim: int, out_len: int, row_fn) -> tuple[ir.Value, ir.Value]:
    """Apply `row_fn` (1-D row -> (keys, indices) of length out_len) to every row along `dim` of
    a static-shape tensor, one row after the other."""
    shape = b.static_shape(x)
    rank = len(shape)
    n = shape[dim]
    others = [d for d in range(rank) if d != dim]
    rows = 1
    for d in others:
        rows *= shape[d]
    out_shape = list(shape)
    out_shape[dim] = out_len
    loop = scf.ForOp(b.index_constant(0), b.index_constant(rows), b.index_constant(1),
                     [tensor.EmptyOp(out_shape, ir.RankedTensorType(x.type).element_type).result,
                      b.empty(out_shape, torch.int64)])
    with ir.InsertionPoint(loop.body):
        out_v, out_i = loop.inner_iter_args
        r = loop.induction_variable
        offsets: list = [0] * rank
        rest = r
        for d in reversed(others):
            offsets[d] = arith.RemUIOp(rest, b.index_constant(shape[d])).result
            rest = arith.DivUIOp(rest, b.index_constant(shape[d])).result
        sizes = [1] * rank
        sizes[dim] = n
        row = extract_slice(x, offsets, sizes, [1] * rank, tuple(others))
        keys, idx = row_fn(row)
        sizes[dim] = out_len
        scf.YieldOp([_insert_row(keys, out_v, offsets, sizes), _insert_row(idx, out_i, offsets, sizes)])
    return loop.results[0], loop.results[1]


def _insert_row(row: ir.Value, into: ir.Value, offsets, sizes) -> ir.Value:
    from .shape import _mixed

    off_dyn, off_static = _mixed(offsets)
    size_dyn, size_static = _mixed(sizes)
    return tensor.InsertSliceOp(row, into, off_dyn, size_dyn, [], off_static, size_static, [1] * len(sizes)).result


# ----- eager's kthvalue: ATen's quick_select_template, replayed --------------------------------
def _if(cond: ir.Value, types, then_fn, else_fn) -> list:
    op = scf.IfOp(cond, list(types), has_else=True)
    with ir.InsertionPoint(op.then_block):
        scf.YieldOp(list(then_fn()))
    with ir.InsertionPoint(op.else_block):
        scf.YieldOp(list(else_fn()))
    return list(op.results)


def _quickselect_row(keys: ir.Value, n: int, k: int, dtype: torch.dtype) -> tuple[ir.Value, ir.Value]:
    """(value, source index) at position k (0-based) after ATen's quickselect (Sedgewick's
    median-of-three partitioning, NaN largest) of one 1-D row: the element eager's kthvalue
    returns, including which of several equal ones."""
    c = b.index_constant
    i64 = ir.IntegerType.get_signless(64)
    true = b.constant(True, torch.bool)
    kk = c(k)
    indices = b.generic([], [b.empty([n], torch.int64)], [b.identity_map(1)], ["parallel"],
                        lambda _: arith.IndexCastOp(i64, _iv(0)).result)

    def get(t, p):
        return tensor.ExtractOp(t, [p]).result

    def put(t, p, v):
        return tensor.InsertOp(v, t, [p]).result

    def swap(kt, it, p, q):
        kp, kq, ip, iq = get(kt, p), get(kt, q), get(it, p), get(it, q)
        return put(put(kt, p, kq), q, kp), put(put(it, p, iq), q, ip)

    def gt(x, y):
        return _greater(x, y, dtype)

    def swap_if(kt, it, cond, p, q):
        return swap(kt, it, p, b.select(cond, q, p))  # a position swapped with itself: no change

    def add(a, d):
        return arith.AddIOp(a, c(d)).result if d >= 0 else arith.SubIOp(a, c(-d)).result

    def cmp(pred, a, b_):
        return arith.CmpIOp(pred, a, b_).result

    def small(kt, it, lo, hi):
        two = cmp(arith.CmpIPredicate.eq, hi, add(lo, 1))
        other = b.select(two, hi, lo)
        kt, it = swap_if(kt, it, arith.AndIOp(two, gt(get(kt, lo), get(kt, other))).result, lo, hi)
        return [kt, it, lo, hi, true]

    def partition(kt, it, lo, hi):
        mid = arith.ShRUIOp(arith.AddIOp(lo, hi).result, c(1)).result
        kt, it = swap(kt, it, mid, add(lo, 1))
        kt, it = swap_if(kt, it, gt(get(kt, add(lo, 1)), get(kt, hi)), add(lo, 1), hi)
        kt, it = swap_if(kt, it, gt(get(kt, lo), get(kt, hi)), lo, hi)
        kt, it = swap_if(kt, it, gt(get(kt, add(lo, 1)), get(kt, lo)), add(lo, 1), lo)
        piv = get(kt, lo)

        def scan(kt, it, i, j, done):
            i = _while([add(i, 1)], lambda p: gt(piv, get(kt, p)), lambda p: [add(p, 1)])[0]
            j = _while([add(j, -1)], lambda p: gt(get(kt, p), piv), lambda p: [add(p, -1)])[0]
            crossed = cmp(arith.CmpIPredicate.slt, j, i)
            kt, it = swap_if(kt, it, arith.XOrIOp(crossed, true).result, i, j)
            return [kt, it, i, j, crossed]

        kt, it, i, j, _ = _while([kt, it, add(lo, 1), hi, b.constant(False, torch.bool)],
                                 lambda kt, it, i, j, done: arith.XOrIOp(done, true).result, scan)
        kt, it = swap(kt, it, lo, j)
        lo = b.select(cmp(arith.CmpIPredicate.sle, j, kk), i, lo)
        hi = b.select(cmp(arith.CmpIPredicate.sge, j, kk), add(j, -1), hi)
        return [kt, it, lo, hi, b.constant(False, torch.bool)]

    def step(kt, it, lo, hi, done):
        types = [kt.type, it.type, lo.type, hi.type, done.type]
        return _if(cmp(arith.CmpIPredicate.sle, hi, add(lo, 1)), types,
                   lambda: small(kt, it, lo, hi), lambda: partition(kt, it, lo, hi))

    kt, it, _, _, _ = _while([keys, indices, c(0), c(n - 1), b.constant(n <= 1, torch.bool)],
                             lambda kt, it, lo, hi, done: arith.XOrIOp(done, true).result, step)
    return get(kt, kk), get(it, kk)


def quickselect_along(x: ir.Value, dim: int, k: int, dtype: torch.dtype) -> tuple[ir.Value, ir.Value]:
    """Per row along `dim` of a static-shape tensor: eager kthvalue's (value, index) of rank k
    (0-based), the dimension dropped."""
    shape = b.static_shape(x)
    rank = len(shape)
    n = shape[dim]
    others = [d for d in range(rank) if d != dim]
    out_shape = [shape[d] for d in others]
    rows = 1
    for d in others:
        rows *= shape[d]
    loop = scf.ForOp(b.index_constant(0), b.index_constant(rows), b.index_constant(1),
                     [b.empty(out_shape, dtype), b.empty(out_shape, torch.int64)])
    with ir.InsertionPoint(loop.body):
        out_v, out_i = loop.inner_iter_args
        rest = loop.induction_variable
        offsets: list = [0] * rank
        for d in reversed(others):
            offsets[d] = arith.RemUIOp(rest, b.index_constant(shape[d])).result
            rest = arith.DivUIOp(rest, b.index_constant(shape[d])).result
        sizes = [1] * rank
        sizes[dim] = n
        row = extract_slice(x, offsets, sizes, [1] * rank, tuple(others))
        value, index = _quickselect_row(row, n, k, dtype)
        at = [b.as_index(offsets[d]) for d in others]
        scf.YieldOp([tensor.InsertOp(value, out_v, at).result, tensor.InsertOp(index, out_i, at).result])
    return loop.results[0], loop.results[1]
