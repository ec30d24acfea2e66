"""Normalization layers: native_layer_norm, native_group_norm and batch norm (inference with
running statistics; training with batch statistics, where the functional form also returns
the updated running statistics).

Statistics are computed as eager's CPU kernels do: two-pass mean and biased variance in the
accumulator dtype (float32 for float16/bfloat16 inputs), `rstd = 1 / sqrt(var + eps)`, and the
normalized output `(x - mean) * rstd * weight + bias` rounded once to the result dtype. Mean and
rstd results have the shapes and dtypes eager gives (taken from `ctx.out_specs`). The batch-norm
running variance is updated with the unbiased variance (`M2 / (n - 1)`), as eager does.

Reductions use the shared helpers of reduction.py (`moments`, `reduce_generic`).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, math as math_d

from ..types import FLOAT_DTYPES, TensorSpec
from . import builders as b
from .reduction import accumulator_dtype, finish, kept_map, moments
from .registry import LoweringContext, lowers

aten = torch.ops.aten

Operand = tuple[ir.Value, torch.dtype, ir.AffineMap]


def _map(rank: int, dims: Sequence[int]) -> ir.AffineMap:
    """Map from the rank-`rank` iteration space to an operand indexed by `dims`, in order."""
    return ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(d) for d in dims])


def _rstd(m2: ir.Value, count: ir.Value, eps: float, acc: torch.dtype) -> ir.Value:
    """1 / sqrt(M2 / count + eps), elementwise on a statistics tensor."""
    def body(s):
        var = arith.DivFOp(s, count).result
        return arith.DivFOp(b.constant(1, acc), math_d.SqrtOp(arith.AddFOp(var, b.constant(eps, acc)).result).result).result

    return b.elementwise([m2], [acc], TensorSpec(tuple(b.static_shape(m2)), acc), body, sizes=b.sizes_of(m2))


def _normalize(x: ir.Value, src: torch.dtype, acc: torch.dtype, out: torch.dtype,
               mean: Operand, rstd: Operand, weight: Optional[Operand], bias: Optional[Operand]) -> ir.Value:
    """(x - mean) * rstd [* weight] [+ bias], one parallel linalg.generic over x's shape."""
    sizes = b.sizes_of(x)
    rank = len(sizes)
    operands = [mean, rstd] + [o for o in (weight, bias) if o is not None]

    def body(e, m, r, *rest):
        vals = [b.convert(v, dt, acc) for v, (_, dt, _) in zip((m, r) + rest[:-1], operands)]
        m, r, extra = vals[0], vals[1], vals[2:]
        y = arith.MulFOp(arith.SubFOp(b.convert(e, src, acc), m).result, r).result
        it = iter(extra)
        if weight is not None:
            y = arith.MulFOp(y, next(it)).result
        if bias is not None:
            y = arith.AddFOp(y, next(it)).result
        return b.convert(y, acc, out)

    maps = [b.identity_map(rank)] + [m for _, _, m in operands] + [b.identity_map(rank)]
    return b.generic([x] + [v for v, _, _ in operands], [b.empty(sizes, out)], maps,
                     ["parallel"] * rank, body)


def _spec_dtype(ctx: LoweringContext, i: int) -> Optional[torch.dtype]:
    spec = ctx.in_specs[i]
    return spec.dtype if spec is not None else None


# ----- layer norm ------------------------------------------------------------------------------
@lowers(aten.native_layer_norm.default, dtypes=FLOAT_DTYPES)
def native_layer_norm(ctx, x, normalized_shape, weight, bias, eps):
    src, out = ctx.in_specs[0].dtype, ctx.out_specs[0].dtype
    acc = accumulator_dtype(src)
    rank = ctx.in_specs[0].rank
    k = len(normalized_shape)
    ctx.require(k <= rank, f"normalized_shape {normalized_shape} longer than the input rank {rank}")
    dims = list(range(rank - k, rank))
    mean, m2, count = moments(x, src, acc, dims)
    rstd = _rstd(m2, count, eps, acc)
    stat_map = kept_map(rank, dims)
    affine_map = _map(rank, dims)
    y = _normalize(x, src, acc, out, (mean, acc, stat_map), (rstd, acc, stat_map),
                   (weight, _spec_dtype(ctx, 2), affine_map) if weight is not None else None,
                   (bias, _spec_dtype(ctx, 3), affine_map) if bias is not None else None)
    return (y, finish(mean, acc, ctx.out_specs[1].dtype, dims, rank, True),
            finish(rstd, acc, ctx.out_specs[2].dtype, dims, rank, True))


# ----- group norm ------------------------------------------------------------------------------
@lowers(aten.native_group_norm.default, dtypes=FLOAT_DTYPES)
def native_group_norm(ctx, x, weight, bias, n, c, hxw, group, eps):
    """Viewed as (N, G, C/G, HxW): statistics over the last two dims, weight/bias per channel."""
    src, out = ctx.in_specs[0].dtype, ctx.out_specs[0].dtype
    acc = accumulator_dtype(src)
    rank = ctx.in_specs[0].rank
    c, group = ctx.static_int(c, "C"), ctx.static_int(group, "group")
    ctx.require(rank >= 2 and group > 0 and c % group == 0, f"C={c} is not divisible by group={group}")
    sizes = b.sizes_of(x)
    et = ir.RankedTensorType(x.type).element_type
    dyn = ir.ShapedType.get_dynamic_size()
    batch = sizes[0]
    spatial: b.Size = 1
    for s in sizes[2:]:
        spatial = spatial * s if isinstance(spatial, int) and isinstance(s, int) else None
    if spatial is None:  # a dynamic spatial dim: its product at run time
        spatial = b.as_index(sizes[2])
        for s in sizes[3:]:
            spatial = arith.MulIOp(spatial, b.as_index(s)).result
    grouped_sizes = [batch, group, c // group, spatial]
    grouped_type = ir.RankedTensorType.get([s if isinstance(s, int) else dyn for s in grouped_sizes], et)
    if rank == 2:
        grouped = b.expand_shape(x, grouped_type, [[0], [1, 2, 3]], grouped_sizes)
    else:
        flat = b.collapse_shape(x, [[0], [1], list(range(2, rank))]) if rank > 3 else x
        grouped = b.expand_shape(flat, grouped_type, [[0], [1, 2], [3]], grouped_sizes)

    dims = [2, 3]
    mean, m2, count = moments(grouped, src, acc, dims)
    rstd = _rstd(m2, count, eps, acc)
    stat_map = kept_map(4, dims)

    def per_channel(v: Optional[ir.Value], i: int) -> Optional[Operand]:
        if v is None:
            return None
        t = ir.RankedTensorType(v.type)
        v2 = b.expand_shape(v, ir.RankedTensorType.get([group, c // group], t.element_type),
                            [[0, 1]], [group, c // group])
        return v2, _spec_dtype(ctx, i), _map(4, [1, 2])

    y = _normalize(grouped, src, acc, out, (mean, acc, stat_map), (rstd, acc, stat_map),
                   per_channel(weight, 1), per_channel(bias, 2))
    if rank == 2:
        y = b.collapse_shape(y, [[0], [1, 2, 3]])
    else:
        y = b.collapse_shape(y, [[0], [1, 2], [3]])
        if rank > 3:
            y = b.expand_shape(y, b.tensor_type(ctx.out_specs[0]), [[0], [1], list(range(2, rank))], sizes)
    return (y, b.cast_tensor(mean, acc, ctx.out_specs[1].dtype),
            b.cast_tensor(rstd, acc, ctx.out_specs[2].dtype))


# ----- batch norm ------------------------------------------------------------------------------
def _batch_norm_stats_operands(ctx: LoweringContext, rank: int, weight, bias):
    channel = _map(rank, [1])
    return ((weight, _spec_dtype(ctx, 1), channel) if weight is not None else None,
            (bias, _spec_dtype(ctx, 2), channel) if bias is not None else None)


def _empty_or_cast(ctx: LoweringContext, i: int, value: ir.Value, src: torch.dtype) -> ir.Value:
    """Result `i`: eager returns size-0 placeholders for the saved statistics in some forms."""
    spec = ctx.out_specs[i]
    if 0 in spec.shape:
        return b.empty(list(spec.shape), spec.dtype)
    return b.cast_tensor(value, src, spec.dtype)


@lowers(aten._native_batch_norm_legit_no_training.default, dtypes=FLOAT_DTYPES)
def batch_norm_inference(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
    """Normalize with the running statistics; results 1 and 2 are eager's empty placeholders."""
    src, out = ctx.in_specs[0].dtype, ctx.out_specs[0].dtype
    acc = accumulator_dtype(src)
    rank = ctx.in_specs[0].rank
    ctx.require(rank >= 2, "batch norm needs an input of rank >= 2")
    rv_dtype = ctx.in_specs[4].dtype
    one = TensorSpec(tuple(b.static_shape(running_var)), acc)
    rstd = b.elementwise(
        [running_var], [rv_dtype], one,
        lambda v: arith.DivFOp(b.constant(1, acc),
                               math_d.SqrtOp(arith.AddFOp(v, b.constant(eps, acc)).result).result).result,
        compute_dtype=acc)
    channel = _map(rank, [1])
    w, bb = _batch_norm_stats_operands(ctx, rank, weight, bias)
    y = _normalize(x, src, acc, out, (running_mean, ctx.in_specs[3].dtype, channel), (rstd, acc, channel), w, bb)
    return y, _empty_or_cast(ctx, 1, running_mean, ctx.in_specs[3].dtype), _empty_or_cast(ctx, 2, rstd, acc)


def _batch_norm_training(ctx: LoweringContext, x, weight, bias, eps):
    """(out, mean, invstd, M2, count) with batch statistics over every dim but the channel."""
    src, out = ctx.in_specs[0].dtype, ctx.out_specs[0].dtype
    acc = accumulator_dtype(src)
    rank = ctx.in_specs[0].rank
    ctx.require(rank >= 2, "batch norm needs an input of rank >= 2")
    dims = [0] + list(range(2, rank))
    mean, m2, count = moments(x, src, acc, dims)
    invstd = _rstd(m2, count, eps, acc)
    channel = _map(rank, [1])
    w, bb = _batch_norm_stats_operands(ctx, rank, weight, bias)
    y = _normalize(x, src, acc, out, (mean, acc, channel), (invstd, acc, channel), w, bb)
    return y, mean, invstd, m2, count, acc


@lowers(aten._native_batch_norm_legit_functional.default, dtypes=FLOAT_DTYPES)
def batch_norm_training_functional(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps):
    """Batch norm as AOTAutograd emits it for `BatchNorm` in train mode: returns
    (out, save_mean, save_invstd, new_running_mean, new_running_var)."""
    if not training:
        # Running statistics, empty saved statistics, running stats returned unchanged (copies:
        # each result is a fresh tensor).
        y, save_mean, save_invstd = batch_norm_inference(ctx, x, weight, bias, running_mean, running_var,
                                                         momentum, eps)
        copies = [b.elementwise([v], [ctx.in_specs[i].dtype], ctx.out_specs[i], lambda e: e)
                  for i, v in ((3, running_mean), (4, running_var))]
        return (y, save_mean, save_invstd, *copies)
    y, mean, invstd, m2, count, acc = _batch_norm_training(ctx, x, weight, bias, eps)
    rm_dtype, rv_dtype = ctx.in_specs[3].dtype, ctx.in_specs[4].dtype
    keep = b.constant(1 - momentum, acc)
    mom = b.constant(momentum, acc)

    def update_mean(r, m):
        return arith.AddFOp(arith.MulFOp(mom, m).result, arith.MulFOp(keep, r).result).result

    def update_var(r, s):
        unbiased = arith.DivFOp(s, arith.SubFOp(count, b.constant(1, acc)).result).result
        return arith.AddFOp(arith.MulFOp(mom, unbiased).result, arith.MulFOp(keep, r).result).result

    new_rm = b.elementwise([running_mean, mean], [rm_dtype, acc], ctx.out_specs[3], update_mean, compute_dtype=acc)
    new_rv = b.elementwise([running_var, m2], [rv_dtype, acc], ctx.out_specs[4], update_var, compute_dtype=acc)
    return (y, b.cast_tensor(mean, acc, ctx.out_specs[1].dtype), b.cast_tensor(invstd, acc, ctx.out_specs[2].dtype),
            new_rm, new_rv)


@lowers(aten._native_batch_norm_legit.no_stats, dtypes=FLOAT_DTYPES)
def batch_norm_training_no_stats(ctx, x, weight, bias, training, momentum, eps):
    """`BatchNorm(track_running_stats=False)`: always batch statistics, nothing to update."""
    # Without running statistics eval mode has nothing to normalize with (eager crashes on it).
    ctx.require(training is True, "only training=True is supported without running statistics")
    y, mean, invstd, _, _, acc = _batch_norm_training(ctx, x, weight, bias, eps)
    return y, b.cast_tensor(mean, acc, ctx.out_specs[1].dtype), b.cast_tensor(invstd, acc, ctx.out_specs[2].dtype)
