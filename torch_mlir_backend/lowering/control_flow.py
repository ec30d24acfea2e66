"""Structured control flow of the Torch dialect -> `scf`: `torch.prim.If` -> `scf.if`,
`torch.prim.Loop` -> `scf.while`, and the tensor -> condition conversions they need
(`aten.Bool.Tensor`, `aten.Int.Tensor`, `aten.Float.Tensor`).

The TorchScript importer emits torch-mlir's own region ops (generic form):

    %r = "torch.prim.If"(%cond) ({ ...; "torch.prim.If.yield"(%a) }, { ...; "torch.prim.If.yield"(%b) })
    %r = "torch.prim.Loop"(%max_trips, %cond, %init...) ({
      ^bb0(%i: !torch.int, %x...): ...; "torch.prim.Loop.condition"(%continue, %next...) })

A `prim.Loop` is both a counted and a conditional loop (TorchScript's `for` and `while`), so it
becomes one `scf.while` carrying (trip index, continue flag, values...): the `before` region
tests `i < max_trips && continue`, the `after` region runs the body. A condition known at compile
time (a Python bool after constant folding) selects its region inline instead.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, scf, tensor

from ..errors import CompileError
from . import builders as b
from .driver import REGION_LOWERINGS, _match_type, builtin_type
from .registry import LoweringContext, lowers

aten = torch.ops.aten


def _materialize(value: Any, t: ir.Type) -> ir.Value:
    """A lowered value (ir.Value or Python constant) as an `ir.Value` of builtin type `t`."""
    if isinstance(value, ir.Value):
        if isinstance(t, ir.RankedTensorType):
            return _match_type(value, t, "structured control flow")
        if value.type != t and isinstance(value.type, ir.IntegerType) and isinstance(t, ir.IntegerType):
            # an i1 condition where the region carries i64 (or the reverse)
            width_in, width_out = ir.IntegerType(value.type).width, ir.IntegerType(t).width
            return arith.ExtUIOp(t, value).result if width_in < width_out else arith.TruncIOp(t, value).result
        return value
    if value is None:
        raise CompileError("structured control flow cannot carry None values")
    if isinstance(t, ir.RankedTensorType):
        raise CompileError(f"structured control flow: a constant {value!r} where a tensor {t} is carried")
    if isinstance(t, ir.FloatType):
        return arith.ConstantOp(t, ir.FloatAttr.get(t, float(value))).result
    return arith.ConstantOp(t, ir.IntegerAttr.get(t, int(value))).result


def _region_ops(region: ir.Region) -> tuple[list, ir.Operation]:
    ops = [op.operation for op in region.blocks[0].operations]
    return ops[:-1], ops[-1]


def lower_prim_if(lowering, op: ir.Operation) -> None:
    cond = lowering.values[op.operands[0]]
    result_types = [builtin_type(r.type) for r in op.results]
    if not isinstance(cond, ir.Value):  # known at compile time: only the taken branch
        body, terminator = _region_ops(op.regions[0 if cond else 1])
        lowering.lower_ops(body)
        for old, new in zip(op.results, terminator.operands):
            lowering.values[old] = lowering.values[new]
        return
    if_op = scf.IfOp(cond, result_types, has_else=True)
    for region, block in ((op.regions[0], if_op.then_block), (op.regions[1], if_op.else_block)):
        with ir.InsertionPoint(block):
            body, terminator = _region_ops(region)
            lowering.lower_ops(body)
            scf.YieldOp([_materialize(lowering.values[v], t) for v, t in zip(terminator.operands, result_types)])
    for old, new in zip(op.results, if_op.results):
        lowering.values[old] = new


def lower_prim_loop(lowering, op: ir.Operation) -> None:
    i64 = ir.IntegerType.get_signless(64)
    i1 = ir.IntegerType.get_signless(1)
    max_trips = _materialize(lowering.values[op.operands[0]], i64)
    keep_going = _materialize(lowering.values[op.operands[1]], i1)
    carried_types = [builtin_type(r.type) for r in op.results]
    carried = [_materialize(lowering.values[v], t) for v, t in zip(op.operands[2:], carried_types)]
    zero = arith.ConstantOp(i64, ir.IntegerAttr.get(i64, 0)).result
    loop = scf.WhileOp([i64, *carried_types], [zero, keep_going, *carried])
    before = loop.before.blocks.append(i64, i1, *carried_types)
    with ir.InsertionPoint(before):
        index, flag, *values = before.arguments
        in_range = arith.CmpIOp(arith.CmpIPredicate.slt, index, max_trips).result
        scf.ConditionOp(arith.AndIOp(in_range, flag).result, [index, *values])
    after = loop.after.blocks.append(i64, *carried_types)
    source_block = op.regions[0].blocks[0]
    with ir.InsertionPoint(after):
        for old, new in zip(source_block.arguments, after.arguments):
            lowering.values[old] = new
        body, terminator = _region_ops(op.regions[0])
        lowering.lower_ops(body)
        next_flag = _materialize(lowering.values[terminator.operands[0]], i1)
        next_values = [_materialize(lowering.values[v], t) for v, t in zip(terminator.operands[1:], carried_types)]
        one = arith.ConstantOp(i64, ir.IntegerAttr.get(i64, 1)).result
        scf.YieldOp([arith.AddIOp(after.arguments[0], one).result, next_flag, *next_values])
    for old, new in zip(op.results, list(loop.results)[1:]):
        lowering.values[old] = new


REGION_LOWERINGS["torch.prim.If"] = lower_prim_if
REGION_LOWERINGS["torch.prim.Loop"] = lower_prim_loop


def _extract_scalar(ctx: LoweringContext, value: ir.Value) -> ir.Value:
    spec = ctx.in_specs[0]
    ctx.require(spec.rank == 0 or all(d == 1 for d in spec.shape),
                f"only a one-element tensor converts to a Python scalar, got shape {list(spec.shape)}")
    return tensor.ExtractOp(value, [b.index_constant(0) for _ in spec.shape]).result


@lowers(aten.Bool.Tensor)
def bool_tensor(ctx: LoweringContext, value: ir.Value) -> ir.Value:
    """`bool(t)`: t != 0, as an `i1` (the condition of an `scf.if` / `scf.while`)."""
    element = _extract_scalar(ctx, value)
    dtype = ctx.in_specs[0].dtype
    if dtype == torch.bool:
        return element
    if b.is_float(dtype):
        zero = arith.ConstantOp(element.type, ir.FloatAttr.get(element.type, 0.0)).result
        return arith.CmpFOp(arith.CmpFPredicate.UNE, element, zero).result
    zero = arith.ConstantOp(element.type, ir.IntegerAttr.get(element.type, 0)).result
    return arith.CmpIOp(arith.CmpIPredicate.ne, element, zero).result


@lowers(aten.Int.Tensor)
def int_tensor(ctx: LoweringContext, value: ir.Value) -> ir.Value:
    """`int(t)`: the element as `i64` (floats truncate toward zero, as Python's int())."""
    element = _extract_scalar(ctx, value)
    return b.convert(element, ctx.in_specs[0].dtype, torch.int64)


@lowers(aten.Float.Tensor)
def float_tensor(ctx: LoweringContext, value: ir.Value) -> ir.Value:
    """`float(t)`: the element as `f64`."""
    element = _extract_scalar(ctx, value)
    return b.convert(element, ctx.in_specs[0].dtype, torch.float64)
