"""The lowering table: one rule per ATen overload, registered with `@lowers(aten.mm.default)`.

A rule is `rule(ctx, *operands)`: tensors arrive as builtin-tensor `ir.Value`s, scalars and
lists as Python values (or `ir.Value`s of `index`/`i64`/`f64`/`i1` type when they are only known
at run time), `None` as None. It returns the result value(s). `ctx` carries the input and output
`TensorSpec`s computed by the importer, so a rule never re-derives types from the IR. Options of
the decorator (`dtypes=`) are checked before the rule runs, so a rule body is only the op's math.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

import torch

from mlir import ir

from ..errors import UnsupportedOpError
from ..types import SUPPORTED_DTYPES, TensorSpec, format_specs

aten = torch.ops.aten


@dataclass
class LoweringRule:
    target: torch._ops.OpOverload
    fn: Callable
    dtypes: tuple  # dtypes accepted for every tensor operand and result
    # Whether tensor operands that are wrapped Python numbers (`prim.NumToTensor`) may reach the
    # rule as Python numbers (elementwise rules: PyTorch promotes them as wrapped numbers).
    wrapped_scalars: bool = False


# MLIR op name (`torch.aten.mm`) -> rule
LOWERINGS: dict[str, LoweringRule] = {}


def mlir_op_name(target: torch._ops.OpOverload) -> str:
    from ..importers.fx_importer import mlir_op_name as name_of

    return name_of(target)


def lowers(*targets: torch._ops.OpOverload, dtypes: Iterable[torch.dtype] = SUPPORTED_DTYPES,
           wrapped_scalars: bool = False):
    """Register the decorated function as the lowering rule of each ATen overload in `targets`."""
    allowed = tuple(dtypes)

    def register(fn: Callable) -> Callable:
        for target in targets:
            if isinstance(target, torch._ops.OpOverloadPacket):
                raise TypeError(f"@lowers needs an overload such as {target}.default, not {target}")
            name = mlir_op_name(target)
            if name in LOWERINGS:
                raise ValueError(f"two lowering rules for {target}")
            LOWERINGS[name] = LoweringRule(target, fn, allowed, wrapped_scalars)
        return fn

    return register


def registered_overloads() -> list[torch._ops.OpOverload]:
    return [rule.target for rule in LOWERINGS.values()]


_LOC_RE = re.compile(r'"([^"]+)":(\d+):\d+')


def user_source_line(location: ir.Location) -> str:
    """`/path/model.py:12` from a node location `loc("addmm"("/path/model.py":12:0))`."""
    m = _LOC_RE.search(str(location))
    return f"{m.group(1)}:{m.group(2)}" if m else ""


@dataclass
class LoweringContext:
    """What a rule knows about the op it lowers; built by the driver for every op."""

    op_name: str
    target: torch._ops.OpOverload
    in_specs: list[Optional[TensorSpec]]  # per operand; None for non-tensors
    out_specs: list[Optional[TensorSpec]]  # per result; None for non-tensors
    location: ir.Location
    # Emitters may stash per-function state here (e.g. cached index constants).
    state: dict = field(default_factory=dict)
    # Under dynamic shapes: the FX node's symbolic sizes (sympy expressions or ints) per tensor
    # operand (None for others) and per result, so a rule can tell two `?` dims apart or equal.
    symbolic_in: Optional[list] = None
    symbolic_out: Optional[list] = None
    # Per result: whether anything reads it (None: unknown), so a rule may skip a result nobody
    # reads (max pooling's indices in inference).
    results_used: Optional[list] = None

    def result_used(self, index: int) -> bool:
        return self.results_used is None or bool(self.results_used[index])

    def same_size(self, operand: int, dim: int, result: int, result_dim: int) -> bool:
        """Whether operand dim and result dim are provably the same size (same symbol)."""
        if self.symbolic_in is None or self.symbolic_out is None:
            return False
        try:
            a = self.symbolic_in[operand][dim]
            b_ = self.symbolic_out[result][result_dim]
        except (IndexError, TypeError):
            return False
        return a is not None and b_ is not None and a == b_

    @property
    def out_spec(self) -> TensorSpec:
        return self.out_specs[0]

    @property
    def source_line(self) -> str:
        return user_source_line(self.location)

    def reject(self, reason: str) -> UnsupportedOpError:
        """The error to raise when this rule cannot honour these inputs (never compute wrongly)."""
        return UnsupportedOpError(str(self.target), reason, format_specs(self.in_specs), self.source_line)

    def require(self, condition: bool, reason: str) -> None:
        if not condition:
            raise self.reject(reason)

    def static_int(self, value: Any, what: str) -> int:
        """A scalar operand that this rule needs at compile time."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.reject(f"{what} must be a compile-time integer, got {value!r}")
        return value


def check_dtypes(ctx: LoweringContext, rule: LoweringRule) -> None:
    for spec in list(ctx.in_specs) + list(ctx.out_specs):
        if spec is not None and spec.dtype not in rule.dtypes:
            raise ctx.reject(f"dtype {spec.dtype} is not supported by this lowering "
                             f"(supported: {', '.join(str(d).replace('torch.', '') for d in rule.dtypes)})")
