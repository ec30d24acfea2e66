"""Reductions: sum, mean, prod, amax/amin, max/min (whole tensor and with indices),
argmax/argmin, any, var/var_mean, hash_tensor (xor of the bits), and the fused softmax/log_softmax.

Each reduction is one `linalg.generic` with "reduction" iterators over the reduced dims and an
accumulator of the kept dims (never keepdim: size-1 dims are inserted with `expand_shape` after).
Semantics follow eager's CPU kernels:
- accumulator dtype: integer/bool sums and products are computed in the result dtype (int64
  unless `dtype=` says otherwise, from `ctx.out_spec`); float16/bfloat16 accumulate in float32
  and round once; float32/float64 accumulate in their own dtype;
- complex sum/mean/prod accumulate with `complex.add`/`complex.mul` in their own dtype (complex32
  in complex64); mean divides each part by the real element count;
- an empty dim list (or None) reduces every dim, except for `any.dims` where it reduces none;
- a size-0 reduced dim gives the identity (0 for sum, 1 for prod, False for any) and NaN for
  mean and var (0/0);
- amax/amin/max/min propagate NaN; argmax/argmin (and the indices of max.dim/min.dim) pick the
  first index among ties, and a NaN counts as the extreme value. The index combiner is written
  to be independent of iteration order, so tiling or parallel reduction stays correct.

`reduce_generic` and `kept_map` are shared with normalization.py.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, complex as complex_d, linalg, math as math_d

from ..types import FLOAT_DTYPES, SUPPORTED_AND_COMPLEX_DTYPES, SUPPORTED_DTYPES, TensorSpec
from . import builders as b
from . import complex as cx
from .registry import LoweringContext, lowers

aten = torch.ops.aten

NUMERIC = tuple(d for d in SUPPORTED_DTYPES if d != torch.bool)


# ----- shared helpers ---------------------------------------------------------------------------
def accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype eager's CPU reduction kernels accumulate `dtype` results in."""
    if dtype == torch.complex32:
        return torch.complex64
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def reduced_dims(ctx: LoweringContext, dim, rank: int, empty_means_all: bool = True) -> list[int]:
    """Sorted non-negative dims from an int / int list / None operand (PyTorch's wrapping rules:
    a 0-d tensor accepts dim 0 and -1 and reduces nothing)."""
    if dim is None:
        dims = list(range(rank))
    else:
        dims = [dim] if not isinstance(dim, (list, tuple)) else list(dim)
        dims = [ctx.static_int(d, "dim") for d in dims]
        if not dims and empty_means_all:
            dims = list(range(rank))
    bound = max(rank, 1)
    for d in dims:
        ctx.require(-bound <= d < bound, f"dim {d} out of range for a rank-{rank} tensor")
    if rank == 0:
        return []
    return sorted({d % rank for d in dims})


def kept_map(rank: int, dims: Sequence[int]) -> ir.AffineMap:
    """Map from a rank-`rank` iteration space to the tensor of its non-reduced dims."""
    return ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(i) for i in range(rank) if i not in dims])


def reduce_generic(inputs: Sequence[ir.Value], rank: int, dims: Sequence[int], sizes: Sequence[b.Size],
                   inits: Sequence[tuple[b.Scalar, torch.dtype]],
                   body: Callable[..., Sequence[ir.Value]]) -> list[ir.Value]:
    """One `linalg.generic` over a rank-`rank` iteration space of `sizes`, reducing `dims`.

    Inputs of rank `rank` are read at every point; lower-rank inputs are kept-dims tensors (e.g.
    a mean computed by an earlier reduction). One accumulator per `inits` entry (initial value,
    dtype), of the kept dims. `body(*input_elems, *acc_elems)` returns the new accumulators.
    """
    kept = [i for i in range(rank) if i not in dims]
    # Bool accumulators live in i8 buffers (the pipeline cannot lower i1 temporaries); the body
    # still sees and yields i1, and the results are i1 tensors again.
    stored = [torch.uint8 if dtype == torch.bool else dtype for _, dtype in inits]
    accs = [linalg.fill(cx.scalar_operand(value, dt), outs=[b.empty([sizes[i] for i in kept], dt)])
            for (value, _), dt in zip(inits, stored)]
    in_maps = [b.identity_map(rank) if ir.RankedTensorType(v.type).rank == rank else kept_map(rank, dims)
               for v in inputs]
    maps = in_maps + [kept_map(rank, dims)] * len(accs)
    iterators = ["reduction" if i in dims else "parallel" for i in range(rank)]
    n = len(inputs)

    def wrapped(*xs):
        acc_elems = [cx.convert(a, st, dt) for a, st, (_, dt) in zip(xs[n:], stored, inits)]
        new = list(body(*xs[:n], *acc_elems))
        return [cx.convert(v, dt, st) for v, st, (_, dt) in zip(new, stored, inits)]

    result = b.generic(list(inputs), accs, maps, iterators, wrapped)
    results = result if isinstance(result, list) else [result]
    return [cx.cast_tensor(r, st, dt) for r, st, (_, dt) in zip(results, stored, inits)]


def finish(value: ir.Value, src: torch.dtype, dst: torch.dtype, dims: Sequence[int], rank: int,
           keepdim: bool) -> ir.Value:
    """Convert an accumulator to the result dtype and re-insert the reduced dims if keepdim."""
    value = cx.cast_tensor(value, src, dst)
    if keepdim and dims:
        value = b.expand_dims(value, dims, rank)
    return value


def element_count(sizes: Sequence[b.Size], dims: Sequence[int], dtype: torch.dtype) -> ir.Value:
    """The number of reduced elements as a scalar of a float `dtype` (runtime if dims are dynamic)."""
    static = 1
    dynamic: Optional[ir.Value] = None
    for d in dims:
        if isinstance(sizes[d], int):
            static *= sizes[d]
        else:
            s = b.as_index(sizes[d])
            dynamic = s if dynamic is None else arith.MulIOp(dynamic, s).result
    if dynamic is None:
        return b.constant(static, dtype)
    count = b.convert(dynamic, torch.int64, dtype)
    return arith.MulFOp(count, b.constant(static, dtype)).result if static != 1 else count


def add(dtype: torch.dtype, x: ir.Value, y: ir.Value) -> ir.Value:
    if cx.is_complex(dtype):
        return complex_d.AddOp(x, y).result
    if b.is_float(dtype):
        return arith.AddFOp(x, y).result
    if dtype == torch.bool:  # a bool accumulator saturates (C++ bool arithmetic)
        return arith.OrIOp(x, y).result
    return arith.AddIOp(x, y).result


def mul(dtype: torch.dtype, x: ir.Value, y: ir.Value) -> ir.Value:
    if cx.is_complex(dtype):
        return complex_d.MulOp(x, y).result
    if b.is_float(dtype):
        return arith.MulFOp(x, y).result
    if dtype == torch.bool:
        return arith.AndIOp(x, y).result
    return arith.MulIOp(x, y).result


def _load(x: ir.Value, src: torch.dtype, out: torch.dtype, acc: torch.dtype) -> ir.Value:
    # `dtype=` casts the input to the result dtype first (x.to(dtype).sum()), then accumulates.
    return cx.convert(cx.convert(x, src, out), out, acc)


def _fold(ctx: LoweringContext, x: ir.Value, dim, keepdim: bool, identity, combine) -> ir.Value:
    """sum/prod-like reduction: `combine(acc_dtype, elem, acc)` from `identity`."""
    src, out = ctx.in_specs[0].dtype, ctx.out_spec.dtype
    acc = accumulator_dtype(out)
    sizes = b.sizes_of(x)
    rank = len(sizes)
    dims = reduced_dims(ctx, dim, rank)
    (result,) = reduce_generic([x], rank, dims, sizes, [(identity, acc)],
                               lambda e, a: [combine(acc, _load(e, src, out, acc), a)])
    return finish(result, acc, out, dims, rank, keepdim)


# ----- hash_tensor --------------------------------------------------------------------------------
@lowers(aten.hash_tensor.default, dtypes=SUPPORTED_DTYPES + (torch.uint64,))
def hash_tensor(ctx, x, dim=(), keepdim=False, mode=0):
    """mode 0: the xor of the elements' 64-bit patterns, a uint64 (floats widened to float64 and
    bitcast, integers sign- or zero-extended to 64 bits, bool as 0/1), as eager's xor_sum
    reduction; an empty dim list reduces every dim. Reducing a size-0 dim is an error in eager
    (its meta function raises while tracing)."""
    ctx.require(mode == 0, f"hash_tensor mode {mode!r} (only mode 0, xor of the bits, exists)")
    src = ctx.in_specs[0].dtype
    i64 = ir.IntegerType.get_signless(64)
    sizes = b.sizes_of(x)
    rank = len(sizes)
    dims = reduced_dims(ctx, dim, rank)

    def bits(e):
        if b.is_float(src):
            return arith.BitcastOp(i64, b.convert(e, src, torch.float64)).result
        if src in (torch.uint8, torch.bool):
            return arith.ExtUIOp(i64, e).result
        return b.convert(e, src, torch.int64)  # sign-extends (uint64: the same bits)

    (result,) = reduce_generic([x], rank, dims, sizes, [(0, torch.int64)],
                               lambda e, a: [arith.XOrIOp(bits(e), a).result])
    return finish(result, torch.int64, torch.int64, dims, rank, keepdim)  # i64 is uint64's element type


# ----- sum, mean, prod --------------------------------------------------------------------------
@lowers(aten.sum.dim_IntList, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def sum_dim(ctx, x, dim, keepdim=False, dtype=None):
    return _fold(ctx, x, dim, keepdim, 0, add)


@lowers(aten.prod.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def prod(ctx, x, dtype=None):
    return _fold(ctx, x, None, False, 1, mul)


@lowers(aten.prod.dim_int, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def prod_dim(ctx, x, dim, keepdim=False, dtype=None):
    return _fold(ctx, x, dim, keepdim, 1, mul)


def _mean(ctx: LoweringContext, x: ir.Value, dim, keepdim: bool) -> ir.Value:
    # Eager (CPU): float32 sum for half types, divide, round once. Integer inputs only reach
    # here with a float `dtype=`.
    src, out = ctx.in_specs[0].dtype, ctx.out_spec.dtype
    ctx.require(b.is_float(out) or cx.is_complex(out), f"mean needs a floating or complex result dtype, got {out}")
    acc = accumulator_dtype(out)
    sizes = b.sizes_of(x)
    rank = len(sizes)
    dims = reduced_dims(ctx, dim, rank)
    (total,) = reduce_generic([x], rank, dims, sizes, [(0, acc)],
                              lambda e, a: [add(acc, _load(e, src, out, acc), a)])
    spec = TensorSpec(tuple(b.static_shape(total)), out)
    if cx.is_complex(acc):
        # Each part divided by the (real) count, as eager divides by a real scalar.
        part = cx.part_dtype(acc)
        n = element_count(sizes, dims, part)
        mean = cx.elementwise([total], [acc], spec, lambda s: cx.make(
            arith.DivFOp(cx.real_part(s), n).result, arith.DivFOp(cx.imag_part(s), n).result, acc), [acc])
        return finish(mean, out, out, dims, rank, keepdim)
    count = element_count(sizes, dims, acc)
    kept = [sizes[i] for i in range(rank) if i not in dims]
    mean = b.elementwise([total], [acc], spec, lambda s: arith.DivFOp(s, count).result,
                         compute_dtype=acc, sizes=kept)
    return finish(mean, out, out, dims, rank, keepdim)


@lowers(aten.mean.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def mean(ctx, x, dtype=None):
    return _mean(ctx, x, None, False)


@lowers(aten.mean.dim, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def mean_dim(ctx, x, dim, keepdim=False, dtype=None):
    return _mean(ctx, x, dim, keepdim)


# ----- any -----------------------------------------------------------------------------------
def _any(ctx: LoweringContext, x: ir.Value, dim, keepdim: bool, empty_means_all: bool = True) -> ir.Value:
    # The result is bool, except uint8 inputs give uint8 (0/1), as eager does.
    src, out = ctx.in_specs[0].dtype, ctx.out_spec.dtype
    sizes = b.sizes_of(x)
    rank = len(sizes)
    dims = reduced_dims(ctx, dim, rank, empty_means_all)
    (result,) = reduce_generic([x], rank, dims, sizes, [(False, torch.bool)],
                               lambda e, a: [arith.OrIOp(b.convert(e, src, torch.bool), a).result])
    return finish(result, torch.bool, out, dims, rank, keepdim)


@lowers(aten.any.default)
def any_(ctx, x):
    return _any(ctx, x, None, False)


@lowers(aten.any.dim)
def any_dim(ctx, x, dim, keepdim=False):
    return _any(ctx, x, dim, keepdim)


@lowers(aten.any.dims)
def any_dims(ctx, x, dim=None, keepdim=False):
    # any.dims with an empty list reduces nothing (it only converts to bool), unlike sum.
    return _any(ctx, x, dim, keepdim, empty_means_all=False)


# ----- amax / amin / max / min ---------------------------------------------------------------------
def _extreme(ctx: LoweringContext, x: ir.Value, dim, keepdim: bool, is_max: bool) -> ir.Value:
    dt = ctx.in_specs[0].dtype
    sizes = b.sizes_of(x)
    rank = len(sizes)
    dims = reduced_dims(ctx, dim, rank)
    ctx.require(all(sizes[d] != 0 for d in dims),
                "reducing a size-0 dim has no identity (eager raises)")
    pick = b.max_value if is_max else b.min_value  # NaN-propagating for floats
    init = b.lowest(dt) if is_max else b.highest(dt)
    (result,) = reduce_generic([x], rank, dims, sizes, [(init, dt)], lambda e, a: [pick(e, a, dt)])
    return finish(result, dt, dt, dims, rank, keepdim)


@lowers(aten.amax.default)
def amax(ctx, x, dim=(), keepdim=False):
    return _extreme(ctx, x, dim, keepdim, True)


@lowers(aten.amin.default)
def amin(ctx, x, dim=(), keepdim=False):
    return _extreme(ctx, x, dim, keepdim, False)


@lowers(aten.max.default)
def max_(ctx, x):
    return _extreme(ctx, x, None, False, True)


@lowers(aten.min.default)
def min_(ctx, x):
    return _extreme(ctx, x, None, False, False)


# ----- value + index reductions -------------------------------------------------------------------
def _beats(dt: torch.dtype, v: ir.Value, i: ir.Value, a: ir.Value, j: ir.Value, is_max: bool) -> ir.Value:
    """Whether candidate (v, i) replaces the accumulator (a, j): strictly better, or equal with a
    lower index; a NaN beats any number and the lower-index NaN wins. Order independent."""
    earlier = arith.CmpIOp(arith.CmpIPredicate.slt, i, j).result
    if b.is_float(dt):
        better = arith.CmpFOp(arith.CmpFPredicate.OGT if is_max else arith.CmpFPredicate.OLT, v, a).result
        equal = arith.CmpFOp(arith.CmpFPredicate.OEQ, v, a).result
        v_nan = arith.CmpFOp(arith.CmpFPredicate.UNO, v, v).result
        a_num = arith.CmpFOp(arith.CmpFPredicate.ORD, a, a).result
        nan_wins = arith.AndIOp(v_nan, arith.OrIOp(a_num, earlier).result).result
        better = arith.OrIOp(better, nan_wins).result
    else:
        if b.is_unsigned(dt):
            pred = arith.CmpIPredicate.ugt if is_max else arith.CmpIPredicate.ult
        else:
            pred = arith.CmpIPredicate.sgt if is_max else arith.CmpIPredicate.slt
        better = arith.CmpIOp(pred, v, a).result
        equal = arith.CmpIOp(arith.CmpIPredicate.eq, v, a).result
    return arith.OrIOp(better, arith.AndIOp(equal, earlier).result).result


def arg_extreme(ctx: LoweringContext, x: ir.Value, dim: int, is_max: bool) -> tuple[ir.Value, ir.Value]:
    """(values, int64 indices) of the max/min of `x` along one non-negative `dim` (no keepdim);
    a 0-d `x` is its own max at index 0."""
    dt = ctx.in_specs[0].dtype
    if ir.RankedTensorType(x.type).rank == 0:
        x = _as_vector(x)
    sizes = b.sizes_of(x)
    rank = len(sizes)
    ctx.require(sizes[dim] != 0, "reducing a size-0 dim has no identity (eager raises)")
    init = b.lowest(dt) if is_max else b.highest(dt)
    i64 = ir.IntegerType.get_signless(64)

    def body(e, a, j):
        i = arith.IndexCastOp(i64, linalg.IndexOp(dim).result).result
        take = _beats(dt, e, i, a, j, is_max)
        return [b.select(take, e, a), b.select(take, i, j)]

    values, indices = reduce_generic([x], rank, [dim], sizes, [(init, dt), (0, torch.int64)], body)
    return values, indices


def _as_vector(x: ir.Value) -> ir.Value:
    """A 0-d tensor as a 1-element vector."""
    t = ir.RankedTensorType(x.type)
    return b.expand_shape(x, ir.RankedTensorType.get([1], t.element_type), [], [1])


def _with_indices(ctx: LoweringContext, x: ir.Value, dim, keepdim: bool, is_max: bool):
    rank = ctx.in_specs[0].rank
    dims = reduced_dims(ctx, ctx.static_int(dim, "dim"), rank)
    values, indices = arg_extreme(ctx, x, dims[0] if dims else 0, is_max)
    return (finish(values, ctx.in_specs[0].dtype, ctx.out_specs[0].dtype, dims, rank, keepdim),
            finish(indices, torch.int64, torch.int64, dims, rank, keepdim))


@lowers(aten.max.dim)
def max_dim(ctx, x, dim, keepdim=False):
    return _with_indices(ctx, x, dim, keepdim, True)


@lowers(aten.min.dim)
def min_dim(ctx, x, dim, keepdim=False):
    return _with_indices(ctx, x, dim, keepdim, False)


def _arg(ctx: LoweringContext, x: ir.Value, dim, keepdim: bool, is_max: bool) -> ir.Value:
    rank = ctx.in_specs[0].rank
    out = ctx.out_spec
    if dim is not None:
        dims = reduced_dims(ctx, ctx.static_int(dim, "dim"), rank)
        _, indices = arg_extreme(ctx, x, dims[0] if dims else 0, is_max)
        return finish(indices, torch.int64, torch.int64, dims, rank, keepdim)
    # dim=None: the index into the flattened tensor; keepdim gives all-1 dims of the input rank.
    flat = b.collapse_shape(x, [list(range(rank))]) if rank > 1 else x
    _, index = arg_extreme(ctx, flat, 0, is_max)
    if out.rank:
        index = b.expand_shape(index, b.tensor_type(out), [], [1] * out.rank)
    return index


# Eager refuses bool for argmax/argmin (but not for max.dim/min.dim).
@lowers(aten.argmax.default, dtypes=NUMERIC)
def argmax(ctx, x, dim=None, keepdim=False):
    return _arg(ctx, x, dim, keepdim, True)


@lowers(aten.argmin.default, dtypes=NUMERIC)
def argmin(ctx, x, dim=None, keepdim=False):
    return _arg(ctx, x, dim, keepdim, False)


# ----- variance ------------------------------------------------------------------------------------
def moments(x: ir.Value, src: torch.dtype, acc: torch.dtype, dims: Sequence[int]) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(mean, sum of squared deviations, count) over `dims`, two-pass in the `acc` dtype, without
    keepdim. Two passes avoid the cancellation of the sum-of-squares formula."""
    sizes = b.sizes_of(x)
    rank = len(sizes)
    kept = [sizes[i] for i in range(rank) if i not in dims]
    (total,) = reduce_generic([x], rank, dims, sizes, [(0, acc)],
                              lambda e, a: [arith.AddFOp(b.convert(e, src, acc), a).result])
    count = element_count(sizes, dims, acc)
    spec = TensorSpec(tuple(b.static_shape(total)), acc)
    mean = b.elementwise([total], [acc], spec, lambda s: arith.DivFOp(s, count).result, sizes=kept)

    def sq_dev(e, m, a):
        d = arith.SubFOp(b.convert(e, src, acc), m).result
        return [arith.AddFOp(arith.MulFOp(d, d).result, a).result]

    (m2,) = reduce_generic([x, mean], rank, dims, sizes, [(0, acc)], sq_dev)
    return mean, m2, count


def _var(ctx: LoweringContext, x: ir.Value, dim, correction, keepdim: bool, with_mean: bool):
    src, out = ctx.in_specs[0].dtype, ctx.out_spec.dtype
    acc = accumulator_dtype(out)
    sizes = b.sizes_of(x)
    rank = len(sizes)
    dims = reduced_dims(ctx, dim, rank)
    ctx.require(correction is None or isinstance(correction, (int, float)),
                "correction must be a compile-time number")
    correction = 1 if correction is None else correction
    mean, m2, count = moments(x, src, acc, dims)
    kept = [sizes[i] for i in range(rank) if i not in dims]

    def divide(s):
        # eager: M2 / max(0, N - correction); a non-positive dof gives inf or NaN
        dof = arith.SubFOp(count, b.constant(correction, acc)).result
        dof = arith.MaximumFOp(dof, b.constant(0, acc)).result
        return arith.DivFOp(s, dof).result

    var = b.elementwise([m2], [acc], TensorSpec(tuple(b.static_shape(m2)), acc), divide, sizes=kept)
    var = finish(var, acc, out, dims, rank, keepdim)
    if not with_mean:
        return var
    return var, finish(mean, acc, ctx.out_specs[1].dtype, dims, rank, keepdim)


@lowers(aten.var.correction, dtypes=FLOAT_DTYPES)
def var(ctx, x, dim=None, correction=None, keepdim=False):
    return _var(ctx, x, dim, correction, keepdim, False)


@lowers(aten.var_mean.correction, dtypes=FLOAT_DTYPES)
def var_mean(ctx, x, dim=None, correction=None, keepdim=False):
    return _var(ctx, x, dim, correction, keepdim, True)


# ----- softmax ---------------------------------------------------------------------------------
def _softmax(ctx: LoweringContext, x: ir.Value, dim, log: bool) -> ir.Value:
    """Numerically stable, as eager's vectorized CPU kernels compute it:
    softmax: m = max(x); e = exp(x - m) written once into the result and summed in the same
    pass; y = e * (1 / sum(e)), rescaled in place (the exp is not recomputed);
    log_softmax: m = max(x); lse = m + log(sum(exp(x - m))) per row; y = x - lse.
    The row statistics are kept-dims tensors; the codegen stage `fuse-rows` runs the ops of one
    row together. Half types compute in float32 and round once (their exps are kept in a
    float32 temporary, not in the half-precision result)."""
    src, out = ctx.in_specs[0].dtype, ctx.out_spec.dtype
    acc = accumulator_dtype(src) if out == src else out  # half_to_float: compute in f32 anyway
    sizes = b.sizes_of(x)
    rank = len(sizes)
    dims = reduced_dims(ctx, ctx.static_int(dim, "dim"), rank)
    kept = [sizes[i] for i in range(rank) if i not in dims]
    (mx,) = reduce_generic([x], rank, dims, sizes, [(float("-inf"), acc)],
                           lambda e, a: [arith.MaximumFOp(b.convert(e, src, acc), a).result])
    full_maps = [b.identity_map(rank), kept_map(rank, dims), b.identity_map(rank)]

    def shifted(e, m):
        return arith.SubFOp(b.convert(e, src, acc), m).result

    def per_row(value: ir.Value, fn) -> ir.Value:
        return b.elementwise([value], [acc], TensorSpec(tuple(b.static_shape(value)), acc), fn, sizes=kept)

    if log:
        (total,) = reduce_generic([x, mx], rank, dims, sizes, [(0, acc)],
                                  lambda e, m, a: [arith.AddFOp(math_d.ExpOp(shifted(e, m)).result, a).result])
        lse = b.generic([mx, total], [b.empty(kept, acc)], [b.identity_map(len(kept))] * 3,
                        ["parallel"] * len(kept),
                        lambda m, s, o: arith.AddFOp(m, math_d.LogOp(s).result).result)
        return b.generic([x, lse], [b.empty(sizes, out)], full_maps, ["parallel"] * rank,
                         lambda e, l, o: b.convert(arith.SubFOp(b.convert(e, src, acc), l).result, acc, out))

    def exp_and_sum(e, m, o, a):
        t = math_d.ExpOp(shifted(e, m)).result
        return [t, arith.AddFOp(t, a).result]

    # one pass writes the exps and sums them: the full-shape output is written at every point
    # of the iteration space, reduction dims included
    exps, total = b.generic([x, mx], [b.empty(sizes, acc), b.full(kept, 0, acc)],
                            full_maps + [kept_map(rank, dims)],
                            ["reduction" if i in dims else "parallel" for i in range(rank)], exp_and_sum)
    inverse = per_row(total, lambda s: arith.DivFOp(b.constant(1, acc), s).result)
    if out == acc:  # rescale the exps in place: their buffer becomes the result
        return b.generic([inverse], [exps], [kept_map(rank, dims), b.identity_map(rank)], ["parallel"] * rank,
                         lambda r, e: arith.MulFOp(e, r).result)
    return b.generic([exps, inverse], [b.empty(sizes, out)], full_maps, ["parallel"] * rank,
                     lambda e, r, o: b.convert(arith.MulFOp(e, r).result, acc, out))


@lowers(aten._softmax.default, dtypes=FLOAT_DTYPES)
def softmax(ctx, x, dim, half_to_float):
    return _softmax(ctx, x, dim, False)


@lowers(aten._log_softmax.default, dtypes=FLOAT_DTYPES)
def log_softmax(ctx, x, dim, half_to_float):
    return _softmax(ctx, x, dim, True)


# ----- attention -------------------------------------------------------------------------------
def _batch_matmul(lhs: ir.Value, rhs: ir.Value, sizes: Sequence[b.Size], transpose_rhs: bool) -> ir.Value:
    """[N, M, K] @ [N, K, P] (or @ [N, P, K]^T) into a zero-filled f32 [N, M, P]."""
    init = b.full(sizes, 0, torch.float32)
    if not transpose_rhs:
        return linalg.batch_matmul(lhs, rhs, outs=[init])
    d = [ir.AffineDimExpr.get(i) for i in range(4)]
    maps = [ir.AffineMap.get(4, 0, e) for e in ([d[0], d[1], d[3]], [d[0], d[2], d[3]], [d[0], d[1], d[2]])]
    return linalg.batch_matmul(lhs, rhs, outs=[init], indexing_maps=maps)


def attention_is_fused(query, key, value, dropout_p=0.0, attn_mask=None) -> bool:
    """Whether `sdpa_flash_cpu` takes these (FakeTensor) inputs: decompositions.py keeps the op
    whole for them and lets PyTorch's decomposition take the rest."""
    tensors = [query, key, value] + ([attn_mask] if attn_mask is not None else [])
    if not (dropout_p == 0.0 and all(t.dtype == torch.float32 for t in tensors)
            and query.dim() == key.dim() == value.dim() == 4 and (attn_mask is None or attn_mask.dim() <= 4)):
        return False
    # same batch and heads everywhere (grouped-query attention repeats k/v heads: decomposed)
    return (query.shape[:2] == key.shape[:2] == value.shape[:2] and key.shape[2] == value.shape[2]
            and query.shape[3] == key.shape[3])


@lowers(aten._scaled_dot_product_flash_attention_for_cpu.default, dtypes=(torch.float32,))
def sdpa_flash_cpu(ctx, query, key, value, dropout_p=0.0, is_causal=False, attn_mask=None, scale=None):
    """softmax(q @ k^T * scale + mask) @ v as two BLAS contractions around a fused softmax.

    The scores [B, H, L, S] are one buffer: q @ k^T writes them (k read transposed by sgemm, no
    copy); a max pass over logits = scores * scale + mask (causal: -inf above the diagonal); a
    pass writing exp(logits - max) over the scores in place while summing them; a pass scaling
    them by 1 / sum; then probabilities @ v. The three passes share the rows (codegen `fuse-rows`).
    A fully masked row gives zeros (eager's flash kernel does too). Returns (output, logsumexp)."""
    ctx.require(dropout_p == 0.0, "dropout in attention is decomposed instead")
    specs = ctx.in_specs
    ctx.require(all(s.rank == 4 for s in specs[:3]), "attention inputs must be 4-D")
    mask_spec = specs[5] if attn_mask is not None and len(specs) > 5 else None
    ctx.require(attn_mask is None or (mask_spec is not None and mask_spec.dtype == torch.float32
                                      and mask_spec.rank <= 4), "attention mask must be float32, rank <= 4")
    qs, ks, vs = b.sizes_of(query), b.sizes_of(key), b.sizes_of(value)
    ctx.require(isinstance(qs[3], int), "attention needs a static head dim")
    ctx.require(all(specs[0].shape[i] == specs[1].shape[i] == specs[2].shape[i] for i in (0, 1))
                and specs[1].shape[2] == specs[2].shape[2] and specs[0].shape[3] == specs[1].shape[3],
                "query, key and value need the same batch and heads, key and value the same length")
    scale = float(scale) if scale is not None else 1.0 / math.sqrt(qs[3])
    f32 = torch.float32
    batch, heads, length, keys, ev = qs[0], qs[1], qs[2], ks[2], vs[3]
    n = batch * heads if isinstance(batch, int) and isinstance(heads, int) else None
    if n is None:
        n = arith.MulIOp(b.as_index(batch), b.as_index(heads)).result
    groups = [[0, 1], [2], [3]]
    q3, k3, v3 = (b.collapse_shape(t, groups) for t in (query, key, value))
    scores3 = _batch_matmul(q3, k3, [n, length, keys], transpose_rhs=True)
    sizes = [batch, heads, length, keys]
    dyn = ir.ShapedType.get_dynamic_size()
    scores = b.expand_shape(scores3, ir.RankedTensorType.get([s if isinstance(s, int) else dyn for s in sizes],
                                                            ir.F32Type.get()), groups, sizes)
    rank, dims = 4, [3]
    kept = sizes[:3]
    row = kept_map(rank, dims)
    row_iterators = ["parallel", "parallel", "parallel", "reduction"]
    mask_in = [attn_mask] if attn_mask is not None else []
    mask_maps = [b.broadcast_map(mask_spec.shape, [s if isinstance(s, int) else None for s in sizes])] \
        if attn_mask is not None else []
    neg_inf = b.constant(float("-inf"), f32)

    if is_causal:
        # top-left aligned: key j is visible from query i when j <= i. An additive [L, S] mask
        # made once per call: comparing indices inside the passes was ~1.5x slower (LLVM mixes
        # 64-bit index vectors into the f32 loops)
        def causal(o):
            above = arith.CmpIOp(arith.CmpIPredicate.ugt, linalg.IndexOp(1).result, linalg.IndexOp(0).result).result
            return b.select(above, neg_inf, b.constant(0, f32))

        causal_mask = b.generic([], [b.empty([length, keys], f32)], [b.identity_map(2)], ["parallel"] * 2, causal)
        mask_in.append(causal_mask)
        mask_maps.append(ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(2), ir.AffineDimExpr.get(3)]))

    def logits(s, mask_elems):
        t = arith.MulFOp(s, b.constant(scale, f32)).result
        for m in mask_elems:
            t = arith.AddFOp(t, m).result
        return t

    mx = b.generic([scores] + mask_in, [b.full(kept, float("-inf"), f32)],
                   [b.identity_map(rank)] + mask_maps + [row], row_iterators,
                   lambda s, *rest: arith.MaximumFOp(logits(s, rest[:-1]), rest[-1]).result)
    # a fully masked row has max -inf: subtract 0 instead (its exps are 0, not NaN)
    shift = b.elementwise([mx], [f32], TensorSpec(tuple(b.static_shape(mx)), f32),
                          lambda m: b.select(arith.CmpFOp(arith.CmpFPredicate.OEQ, m, neg_inf).result,
                                             b.constant(0, f32), m), sizes=kept)

    def exp_and_sum(m, *rest):
        mask_elems, s, acc = rest[:-2], rest[-2], rest[-1]
        e = math_d.ExpOp(arith.SubFOp(logits(s, mask_elems), m).result).result
        return [e, arith.AddFOp(e, acc).result]

    exps, total = b.generic([shift] + mask_in, [scores, b.full(kept, 0, f32)],
                            [row] + mask_maps + [b.identity_map(rank), row], row_iterators, exp_and_sum)

    def inverse(s):
        empty = arith.CmpFOp(arith.CmpFPredicate.OEQ, s, b.constant(0, f32)).result
        return b.select(empty, b.constant(0, f32), arith.DivFOp(b.constant(1, f32), s).result)

    inv = b.elementwise([total], [f32], TensorSpec(tuple(b.static_shape(total)), f32), inverse, sizes=kept)
    probs = b.generic([inv], [exps], [row, b.identity_map(rank)], ["parallel"] * rank,
                      lambda r, e: arith.MulFOp(e, r).result)
    out3 = _batch_matmul(b.collapse_shape(probs, groups), v3, [n, length, ev], transpose_rhs=False)
    out_sizes = [batch, heads, length, ev]
    out = b.expand_shape(out3, b.tensor_type(ctx.out_specs[0]), groups, out_sizes)
    # log-sum-exp of the logits per row (what eager's kernel saves for its backward); 0 for a
    # fully masked row, as eager's (its backward then recomputes probabilities exp(-inf - 0) = 0)
    def log_sum_exp(m, s, o):
        empty = arith.CmpFOp(arith.CmpFPredicate.OEQ, s, b.constant(0, f32)).result
        return b.select(empty, b.constant(0, f32), arith.AddFOp(m, math_d.LogOp(s).result).result)

    lse = b.generic([shift, total], [b.empty(kept, f32)], [b.identity_map(3)] * 3, ["parallel"] * 3, log_sum_exp)
    return out, lse
