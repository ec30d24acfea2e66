"""SymInt arithmetic: `torch.aten.{add,sub,mul,floordiv,remainder,eq,...}.int`, `sym_size.int` and
`sym_numel` as `arith` ops on `i64` (comparisons give `i1`).

These ops compute sizes under dynamic shapes (the importer maps Python operators on SymInts to
them). Operands are Python ints when known at compile time — then the rule folds the op in Python
and returns an int, so static shapes keep static types — or `i64` values otherwise.
Division and remainder round toward negative infinity, as Python (and SymInt) do. `sym_stride`
has no rule: the graph's strides are FakeTensor strides, not those of the values lowered here.
"""
from __future__ import annotations

import operator
from typing import Callable, Union

import torch

from mlir import ir
from mlir.dialects import arith, tensor

from . import builders as b
from .registry import LoweringContext, lowers

aten = torch.ops.aten

Int = Union[int, ir.Value]


def _i64() -> ir.Type:
    return ir.IntegerType.get_signless(64)


def as_i64(value: Int) -> ir.Value:
    """An int, an `index` or an `i1`/`i64` value as an `i64` value."""
    if isinstance(value, ir.Value):
        text = str(value.type)
        if text == "i64":
            return value
        if text == "index":
            return arith.IndexCastOp(_i64(), value).result
        if text == "i1":
            return arith.ExtUIOp(_i64(), value).result
        raise TypeError(f"no integer view of a {text} value")
    return arith.ConstantOp(_i64(), ir.IntegerAttr.get(_i64(), int(value))).result


def _floordiv(a: ir.Value, b_: ir.Value) -> ir.Value:
    return arith.FloorDivSIOp(a, b_).result


def _floormod(a: ir.Value, b_: ir.Value) -> ir.Value:
    # Python's % has the divisor's sign: r = a - floordiv(a, b) * b.
    return arith.SubIOp(a, arith.MulIOp(_floordiv(a, b_), b_).result).result


_ARITH: dict = {
    aten.add.int: (operator.add, lambda a, b_: arith.AddIOp(a, b_).result),
    aten.sub.int: (operator.sub, lambda a, b_: arith.SubIOp(a, b_).result),
    aten.mul.int: (operator.mul, lambda a, b_: arith.MulIOp(a, b_).result),
    aten.floordiv.int: (operator.floordiv, _floordiv),
    aten.remainder.int: (operator.mod, _floormod),
}
_COMPARE: dict = {
    aten.eq.int: (operator.eq, "eq"), aten.ne.int: (operator.ne, "ne"),
    aten.lt.int: (operator.lt, "slt"), aten.le.int: (operator.le, "sle"),
    aten.gt.int: (operator.gt, "sgt"), aten.ge.int: (operator.ge, "sge"),
}


def _register_arith(target, python_op: Callable, emit: Callable) -> None:
    @lowers(target)
    def rule(ctx: LoweringContext, a: Int, b_: Int):
        if not isinstance(a, ir.Value) and not isinstance(b_, ir.Value):
            if python_op in (operator.floordiv, operator.mod) and b_ == 0:
                raise ctx.reject("integer division by zero")
            return python_op(int(a), int(b_))
        return emit(as_i64(a), as_i64(b_))


def _register_compare(target, python_op: Callable, predicate: str) -> None:
    @lowers(target)
    def rule(ctx: LoweringContext, a: Int, b_: Int):
        if not isinstance(a, ir.Value) and not isinstance(b_, ir.Value):
            return bool(python_op(int(a), int(b_)))
        pred = ir.IntegerAttr.get(_i64(), _PREDICATES[predicate])
        return arith.CmpIOp(pred, as_i64(a), as_i64(b_)).result


_PREDICATES = {"eq": 0, "ne": 1, "slt": 2, "sle": 3, "sgt": 4, "sge": 5}

for _target, (_py, _emit) in _ARITH.items():
    _register_arith(_target, _py, _emit)
for _target, (_py, _pred) in _COMPARE.items():
    _register_compare(_target, _py, _pred)


def _dim_size(ctx: LoweringContext, value: ir.Value, dim: int) -> Int:
    spec = ctx.in_specs[0]
    dim = ctx.static_int(dim, "dim")
    dim = dim + spec.rank if dim < 0 else dim
    ctx.require(0 <= dim < spec.rank, f"dim {dim} out of range for rank {spec.rank}")
    if spec.shape[dim] is not None:
        return spec.shape[dim]
    return as_i64(tensor.DimOp(value, b.index_constant(dim)).result)


@lowers(aten.sym_size.int)
def sym_size(ctx: LoweringContext, value: ir.Value, dim: int):
    return _dim_size(ctx, value, dim)


@lowers(aten.sym_numel.default)
def sym_numel(ctx: LoweringContext, value: ir.Value):
    spec = ctx.in_specs[0]
    total: Int = 1
    for i in range(spec.rank):
        size = _dim_size(ctx, value, i)
        if isinstance(total, int) and isinstance(size, int):
            total *= size
        else:
            total = arith.MulIOp(as_i64(total), as_i64(size)).result
    return total
