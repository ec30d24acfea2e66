"""Tensor creation: arange, full/full_like, scalar_tensor, the empty family, copy (a functional
copy into a template) and as_strided.

Factory ops take their result shape and dtype from the result spec; the layout, device,
pin_memory and memory_format arguments do not change values and are ignored. `empty*` results
hold unspecified values, as in eager. Except arange, they take complex dtypes (a real fill
value gets imaginary part 0; the importer has no complex scalar constant).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, linalg

from ..types import FLOAT_DTYPES, INT_DTYPES, SUPPORTED_AND_COMPLEX_DTYPES
from . import builders as b
from . import complex as cx
from .registry import LoweringContext, lowers
from .shape import bool_as_bytes

aten = torch.ops.aten


def _result_sizes(ctx: LoweringContext, size: Optional[Sequence] = None) -> list[b.Size]:
    """Static dims from the result spec; dynamic ones from the op's size list (run-time ints)."""
    sizes: list[b.Size] = []
    for i, d in enumerate(ctx.out_spec.shape):
        if d is not None:
            sizes.append(d)
        else:
            ctx.require(size is not None and i < len(size), f"dynamic result dim {i} has no size")
            sizes.append(size[i])
    return sizes


# ----- arange -------------------------------------------------------------------------------------
def _arange_acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The type eager's CPU arange kernel computes `start + step * i` in (`acc_type`)."""
    if dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    if b.is_float(dtype):
        return torch.float64
    return torch.int64


def _arange_length(ctx: LoweringContext, start, end, step) -> ir.Value:
    """The run-time length of an integer arange with SymInt bounds: ceil((end - start) / step),
    at least 0, as eager computes it."""
    for what, v in (("start", start), ("end", end), ("step", step)):
        ok = isinstance(v, int) and not isinstance(v, bool) or isinstance(v, ir.Value) and \
            isinstance(v.type, (ir.IntegerType, ir.IndexType))
        ctx.require(ok, f"arange with a run-time length needs integer bounds ({what} is {v!r})")
    ctx.require(isinstance(step, int) and step != 0, f"arange with a run-time length needs a constant step, got {step!r}")
    start_v, end_v = b.as_index(start), b.as_index(end)
    span = arith.SubIOp(end_v, start_v).result if step > 0 else arith.SubIOp(start_v, end_v).result
    span = arith.MaxSIOp(span, b.index_constant(0)).result
    k = abs(step)
    return span if k == 1 else arith.DivUIOp(arith.AddIOp(span, b.index_constant(k - 1)).result,
                                             b.index_constant(k)).result


@lowers(aten.arange.start_step, dtypes=FLOAT_DTYPES + INT_DTYPES)  # eager has no bool arange
def _arange(ctx, start, end, step=1, dtype=None, layout=None, device=None, pin_memory=None):
    out = ctx.out_spec
    acc = _arange_acc_dtype(out.dtype)
    length: b.Size = out.shape[0] if out.shape[0] is not None else _arange_length(ctx, start, end, step)

    def scalar(v):
        # Eager converts start and step to the accumulation type first (so an integer arange
        # with a fractional step truncates the step).
        if isinstance(v, ir.Value):
            return b.scalar_operand(v, acc)
        return b.constant(v if b.is_float(acc) else int(v), acc)

    init = b.empty([length], out.dtype)

    def body(_):
        start_v, step_v = scalar(start), scalar(step)
        i = linalg.IndexOp(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 0)).result
        i = b.convert(arith.IndexCastOp(ir.IntegerType.get_signless(64), i).result, torch.int64, acc)
        if b.is_float(acc):
            value = arith.AddFOp(start_v, arith.MulFOp(step_v, i).result).result
        else:
            value = arith.AddIOp(start_v, arith.MulIOp(step_v, i).result).result
        return b.convert(value, acc, out.dtype)

    return b.generic([], [init], [b.identity_map(1)], ["parallel"], body)


# ----- full / scalar_tensor -------------------------------------------------------------------------
def _fill_value(ctx: LoweringContext, value, dtype: torch.dtype):
    if isinstance(value, float) and not b.is_float(dtype) and dtype != torch.bool and not cx.is_complex(dtype):
        return int(value)  # eager converts the fill value to the result dtype (truncating)
    return value


def _full_of(sizes: Sequence[b.Size], value, dtype: torch.dtype) -> ir.Value:
    """`builders.full` for any dtype: a complex fill value (or a real one, imaginary part 0)."""
    return linalg.fill(cx.scalar_operand(value, dtype), outs=[b.empty(sizes, dtype)])


@lowers(aten.full.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _full(ctx, size, fill_value, dtype=None, layout=None, device=None, pin_memory=None):
    out = ctx.out_spec
    return _full_of(_result_sizes(ctx, size), _fill_value(ctx, fill_value, out.dtype), out.dtype)


@lowers(aten.full_like.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _full_like(ctx, x, fill_value, dtype=None, layout=None, device=None, pin_memory=None,
               memory_format=None):
    out = ctx.out_spec
    return _full_of(b.sizes_of(x), _fill_value(ctx, fill_value, out.dtype), out.dtype)


@lowers(aten.scalar_tensor.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _scalar_tensor(ctx, s, dtype=None, layout=None, device=None, pin_memory=None):
    out = ctx.out_spec
    return _full_of([], _fill_value(ctx, s, out.dtype), out.dtype)


# ----- empty family ---------------------------------------------------------------------------------
def _empty_result(ctx: LoweringContext, size) -> ir.Value:
    sizes = _result_sizes(ctx, size)
    if ctx.out_spec.dtype == torch.bool:
        # An uninitialized i1 tensor would need an i1 buffer, which the pipeline cannot
        # allocate; zeros are as good as any unspecified values and fuse into their users.
        return b.full(sizes, False, torch.bool)
    return b.empty(sizes, ctx.out_spec.dtype)


@lowers(aten.empty.memory_format, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _empty(ctx, size, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return _empty_result(ctx, size)


@lowers(aten.empty_strided.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _empty_strided(ctx, size, stride, dtype=None, layout=None, device=None, pin_memory=None):
    # Our results are always dense row-major; the requested strides only matter to views of
    # the result, which a functional graph expresses as ops on values.
    return _empty_result(ctx, size)


@lowers(aten.empty_permuted.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _empty_permuted(ctx, size, physical_layout, dtype=None, layout=None, device=None,
                    pin_memory=None):
    return _empty_result(ctx, size)


# ----- copy -----------------------------------------------------------------------------------------
@lowers(aten.copy.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _copy(ctx, template, src, non_blocking=False):
    """The template's shape and dtype filled with `src` (broadcast and converted), i.e. what
    `template.copy_(src)` leaves in the template."""
    src_dtype = ctx.in_specs[1].dtype
    if cx.is_complex(src_dtype) or cx.is_complex(ctx.out_spec.dtype):
        ctx.require(all(d is not None for d in ctx.out_spec.shape),
                    "copy to or from a complex tensor with dynamic dims")
        return cx.elementwise([src], [src_dtype], ctx.out_spec, lambda v: v, [src_dtype])
    return b.elementwise([src], [src_dtype], ctx.out_spec, lambda v: v, compute_dtype=src_dtype,
                         sizes=b.sizes_of(template))


# ----- as_strided -------------------------------------------------------------------------------------
@lowers(aten.as_strided.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _as_strided(ctx, x, size, stride, storage_offset=None):
    """Reads the operand as a dense row-major buffer starting at its first element: exact for
    values produced inside the graph and for contiguous inputs (the usual case after
    functionalization), which is what our runtime passes."""
    shape = ctx.in_specs[0].shape
    ctx.require(all(d is not None for d in shape), "as_strided of a tensor with dynamic dims")
    size = [ctx.static_int(s, "size") for s in size]
    stride = [ctx.static_int(s, "stride") for s in stride]
    offset = 0 if storage_offset is None else ctx.static_int(storage_offset, "storage_offset")
    ctx.require(len(size) == len(stride), "size and stride lengths differ")
    ctx.require(all(s >= 0 for s in stride) and offset >= 0, "negative strides or offset")
    numel = 1
    for d in shape:
        numel *= d
    out_dtype = ctx.out_spec.dtype
    if any(s == 0 for s in size):
        return b.empty(size, out_dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    ctx.require(last < numel, f"as_strided reads element {last} of a {numel}-element tensor")
    if len(shape) == 0:
        flat = b.expand_shape(x, ir.RankedTensorType.get([1], ir.RankedTensorType(x.type).element_type),
                              [], [1])
    else:
        flat = b.collapse_shape(x, [list(range(len(shape)))]) if len(shape) != 1 else x
    rank = len(size)
    expr = ir.AffineConstantExpr.get(offset)
    for i, s in enumerate(stride):
        expr = ir.AffineExpr.get_add(expr, ir.AffineExpr.get_mul(ir.AffineDimExpr.get(i),
                                                                 ir.AffineConstantExpr.get(s)))
    in_map = ir.AffineMap.get(rank, 0, [expr])
    init = b.empty(size, out_dtype)
    return b.generic([flat], [init], [in_map, b.identity_map(rank)], ["parallel"] * rank,
                     lambda v, _: v)
