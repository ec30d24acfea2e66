"""Reductions: sum, mean, prod, amax/amin, max/min (whole tensor and with indices),
argmax/argmin, any, var/var_mean, hash_tensor (xor of the bits), and the fused softmax/log_softmax.

Each reduction is one `linalg.generic` with "reduction" iterators over the reduced dims and an
accumulator of the kept dims (never keepdim: size-1 dims are inserted with `expand_shape` after).
Semantics follow eager's CPU kernels:
- accumulator dtype: integer/bool sums and products are computed in the result dtype (int64
  unless `dtype=` says otherwise, from `ctx.out_spec`); float16/bfloat16 accumulate in float32
  and round once; float32/float64 accumulate in their own dtype;
- an empty dim list (or None) reduces every dim, except for `any.dims` where it reduces none;
- a size-0 reduced dim gives the identity (0 for sum, 1 for prod, False for any) and NaN for
  mean and var (0/0);
- amax/amin/max/min propagate NaN; argmax/argmin (and the indices of max.dim/min.dim) pick the
  first index among ties, and a NaN counts as the extreme value. The index combiner is written
  to be independent of iteration order, so tiling or parallel reduction stays correct.

`reduce_generic` and `kept_map` are shared with normalization.py.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, linalg, math as math_d

from ..types import FLOAT_DTYPES, SUPPORTED_DTYPES, TensorSpec
from . import builders as b
from .registry import LoweringContext, lowers

aten = torch.ops.aten

NUMERIC = tuple(d for d in SUPPORTED_DTYPES if d != torch.bool)


# ----- shared helpers ---------------------------------------------------------------------------
def accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype eager's CPU reduction kernels accumulate `dtype` results in."""
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
    accs = [b.full([sizes[i] for i in kept], value, dt) for (value, _), dt in zip(inits, stored)]
    in_maps = [b.identity_map(rank) if ir.RankedTensorType(v.type).rank == rank else kept_map(rank, dims)
               for v in inputs]
    maps = in_maps + [kept_map(rank, dims)] * len(accs)
    iterators = ["reduction" if i in dims else "parallel" for i in range(rank)]
    n = len(inputs)

    def wrapped(*xs):
        acc_elems = [b.convert(a, st, dt) for a, st, (_, dt) in zip(xs[n:], stored, inits)]
        new = list(body(*xs[:n], *acc_elems))
        return [b.convert(v, dt, st) for v, st, (_, dt) in zip(new, stored, inits)]

    result = b.generic(list(inputs), accs, maps, iterators, wrapped)
    results = result if isinstance(result, list) else [result]
    return [b.cast_tensor(r, st, dt) for r, st, (_, dt) in zip(results, stored, inits)]


def finish(value: ir.Value, src: torch.dtype, dst: torch.dtype, dims: Sequence[int], rank: int,
           keepdim: bool) -> ir.Value:
    """Convert an accumulator to the result dtype and re-insert the reduced dims if keepdim."""
    value = b.cast_tensor(value, src, dst)
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
    if b.is_float(dtype):
        return arith.AddFOp(x, y).result
    if dtype == torch.bool:  # a bool accumulator saturates (C++ bool arithmetic)
        return arith.OrIOp(x, y).result
    return arith.AddIOp(x, y).result


def mul(dtype: torch.dtype, x: ir.Value, y: ir.Value) -> ir.Value:
    if b.is_float(dtype):
        return arith.MulFOp(x, y).result
    if dtype == torch.bool:
        return arith.AndIOp(x, y).result
    return arith.MulIOp(x, y).result


def _load(x: ir.Value, src: torch.dtype, out: torch.dtype, acc: torch.dtype) -> ir.Value:
    # `dtype=` casts the input to the result dtype first (x.to(dtype).sum()), then accumulates.
    return b.convert(b.convert(x, src, out), out, acc)


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
@lowers(aten.sum.dim_IntList)
def sum_dim(ctx, x, dim, keepdim=False, dtype=None):
    return _fold(ctx, x, dim, keepdim, 0, add)


@lowers(aten.prod.default)
def prod(ctx, x, dtype=None):
    return _fold(ctx, x, None, False, 1, mul)


@lowers(aten.prod.dim_int)
def prod_dim(ctx, x, dim, keepdim=False, dtype=None):
    return _fold(ctx, x, dim, keepdim, 1, mul)


def _mean(ctx: LoweringContext, x: ir.Value, dim, keepdim: bool) -> ir.Value:
    # Eager (CPU): float32 sum for half types, divide, round once. Integer inputs only reach
    # here with a float `dtype=`.
    src, out = ctx.in_specs[0].dtype, ctx.out_spec.dtype
    ctx.require(b.is_float(out), f"mean needs a floating result dtype, got {out}")
    acc = accumulator_dtype(out)
    sizes = b.sizes_of(x)
    rank = len(sizes)
    dims = reduced_dims(ctx, dim, rank)
    (total,) = reduce_generic([x], rank, dims, sizes, [(0, acc)],
                              lambda e, a: [arith.AddFOp(_load(e, src, out, acc), a).result])
    count = element_count(sizes, dims, acc)
    kept = [sizes[i] for i in range(rank) if i not in dims]
    spec = TensorSpec(tuple(b.static_shape(total)), out)
    mean = b.elementwise([total], [acc], spec, lambda s: arith.DivFOp(s, count).result,
                         compute_dtype=acc, sizes=kept)
    return finish(mean, out, out, dims, rank, keepdim)


@lowers(aten.mean.default)
def mean(ctx, x, dtype=None):
    return _mean(ctx, x, None, False)


@lowers(aten.mean.dim)
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
    """Numerically stable: exp(x - max) / sum(exp(x - max)), or (x - max) - log(sum(...)).
    Three linalg.generic ops (max, sum of exps, normalize); half types compute in float32."""
    src, out = ctx.in_specs[0].dtype, ctx.out_spec.dtype
    acc = accumulator_dtype(src) if out == src else out  # half_to_float: compute in f32 anyway
    sizes = b.sizes_of(x)
    rank = len(sizes)
    dims = reduced_dims(ctx, ctx.static_int(dim, "dim"), rank)
    (mx,) = reduce_generic([x], rank, dims, sizes, [(float("-inf"), acc)],
                           lambda e, a: [arith.MaximumFOp(b.convert(e, src, acc), a).result])

    def shifted(e, m):
        return arith.SubFOp(b.convert(e, src, acc), m).result

    (total,) = reduce_generic([x, mx], rank, dims, sizes, [(0, acc)],
                              lambda e, m, a: [arith.AddFOp(math_d.ExpOp(shifted(e, m)).result, a).result])

    def normalize(e, m, s, o):
        t = shifted(e, m)
        if log:
            r = arith.SubFOp(t, math_d.LogOp(s).result).result
        else:
            r = arith.DivFOp(math_d.ExpOp(t).result, s).result
        return b.convert(r, acc, out)

    init = b.empty(sizes, out)
    maps = [b.identity_map(rank), kept_map(rank, dims), kept_map(rank, dims), b.identity_map(rank)]
    return b.generic([x, mx, total], [init], maps, ["parallel"] * rank, normalize)


@lowers(aten._softmax.default, dtypes=FLOAT_DTYPES)
def softmax(ctx, x, dim, half_to_float):
    return _softmax(ctx, x, dim, False)


@lowers(aten._log_softmax.default, dtypes=FLOAT_DTYPES)
def log_softmax(ctx, x, dim, half_to_float):
    return _softmax(ctx, x, dim, True)
