"""Dynamic shapes at the boundary of a compiled graph: where each size symbol of an FX graph is
read at run time, and generated Python that computes the output shapes per call.

Dynamo gives every dynamic dimension a sympy symbol (`s0`) in the placeholders' FakeTensors and
passes SymInt placeholders for them. `ShapePlan` binds each symbol to the first input dimension
(or SymInt argument) holding it and compiles, once, a small Python function that reads those
sizes, evaluates every output's symbolic sizes (`FloorDiv`, `Max`, ... printed as Python by
PyTorch's own `PythonPrinter`) and checks that every other input dimension with a symbol agrees.

Why the checks: the lowered code reads a dynamic size from one operand and assumes the others
equal it (no broadcast of a `?` dimension), exactly what the graph's symbols say. Under Dynamo
the guards of the shape environment already ensure it (sizes 0/1 are specialized, equalities of
symbols guarded); a graph called directly (tests, AOT users) gets a `ValueError` naming the input
and dimension instead of an out-of-bounds access.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import sympy
import torch
import torch.fx
from torch.utils._sympy.printers import PythonPrinter

from .errors import TorchMlirBackendError


def _expr(value: Any) -> Optional[sympy.Expr]:
    """The sympy expression of a SymInt (None for a plain or constant int)."""
    if isinstance(value, torch.SymInt):
        expr = value.node.expr
        return None if expr.is_number else expr
    return None


def symbolic_shapes(gm: torch.fx.GraphModule) -> dict:
    """FX node name -> (per positional argument: its tensor's sizes or None, per result: sizes),
    each size a sympy expression (dynamic) or an int, for the lowering rules (`ctx.same_size`)."""

    def sizes(value: Any):
        if not isinstance(value, torch.Tensor):
            return None
        return [int(d) if _expr(d) is None else _expr(d) for d in value.shape]

    table = {}
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        operands = [sizes(a.meta.get("val")) if isinstance(a, torch.fx.Node) else None for a in node.args]
        val = node.meta.get("val")
        results = [sizes(v) for v in val] if isinstance(val, (tuple, list)) else [sizes(val)]
        table[node.name] = (operands, results)
    return table


def has_symbolic_sizes(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and any(_expr(d) is not None for d in value.shape)


class ShapeMismatchError(ValueError):
    """An input's size contradicts the symbolic shapes the graph was compiled for."""


class ShapePlan:
    """How a graph with symbolic sizes is called.

    `placeholder_vals`: each placeholder's `meta['val']` (FakeTensor or SymInt). After
    construction:
    - `int_arg_dims`: SymInt placeholder -> (tensor placeholder, dim) it equals (not passed);
    - `passed`: placeholders passed to the compiled function, in order (tensors, and SymInts not
      found among the tensors' sizes, which are passed as 0-d int64 tensors);
    - `result_shapes(inputs)`: output shapes from the passed inputs (with consistency checks).
    """

    def __init__(self, placeholder_vals: Sequence[Any], result_vals: Sequence[Any], graph_name: str = "graph"):
        self.graph_name = graph_name
        bindings: dict[sympy.Symbol, str] = {}
        binding_text: dict[sympy.Symbol, str] = {}
        self.int_arg_dims: dict[int, tuple[int, int]] = {}
        pending_checks: list[tuple[str, sympy.Expr, str]] = []
        tensor_positions = [i for i, v in enumerate(placeholder_vals) if isinstance(v, torch.Tensor)]
        first_dim: dict[sympy.Symbol, tuple[int, int]] = {}  # symbol -> (placeholder, dim)
        for i in tensor_positions:
            for d, size in enumerate(placeholder_vals[i].shape):
                expr = _expr(size)
                if isinstance(expr, sympy.Symbol) and expr not in first_dim:
                    first_dim[expr] = (i, d)
        for i, v in enumerate(placeholder_vals):
            if isinstance(v, torch.Tensor):
                continue
            if not isinstance(v, (int, torch.SymInt)) or isinstance(v, bool):
                raise TorchMlirBackendError(
                    f"graph input {i} is a {type(v).__name__}: only tensors and SymInt sizes are supported")
            expr = _expr(v)
            if isinstance(expr, sympy.Symbol) and expr in first_dim:
                self.int_arg_dims[i] = first_dim[expr]
        # Placeholders keep their order; SymInts read from a tensor's size are not passed.
        self.passed = [i for i in range(len(placeholder_vals)) if i not in self.int_arg_dims]
        position = {i: j for j, i in enumerate(self.passed)}
        for i in tensor_positions:
            j = position[i]
            for d, size in enumerate(placeholder_vals[i].shape):
                expr = _expr(size)
                if expr is None:
                    continue
                read = f"inputs[{j}].shape[{d}]"
                where = f"input {j} dim {d}"
                if isinstance(expr, sympy.Symbol) and first_dim.get(expr) == (i, d):
                    bindings[expr] = read
                    binding_text[expr] = (i, d, where)
                else:
                    pending_checks.append((read, expr, where))
        for i in self.passed:
            v = placeholder_vals[i]
            if isinstance(v, torch.Tensor):
                continue
            expr = _expr(v)
            read = f"int(inputs[{position[i]}])"
            if isinstance(expr, sympy.Symbol) and expr not in bindings:
                bindings[expr] = read
            elif expr is not None:
                pending_checks.append((read, expr, f"integer input {position[i]}"))
        # A symbol seen only inside an expression (`s1 - 2`, as partitioned regions receive):
        # solve for it when that is the expression's one unbound symbol and the solution is unique.
        for read, expr, where in list(pending_checks):
            unbound = [sym for sym in expr.free_symbols if sym not in bindings]
            if len(unbound) != 1:
                continue
            size = sympy.Symbol("_size", integer=True)
            solutions = sympy.solve(sympy.Eq(expr, size), unbound[0])
            if len(solutions) == 1 and not solutions[0].has(sympy.Function):
                bindings[unbound[0]] = PythonPrinter().doprint(solutions[0]).replace("_size", f"({read})")
        self._scalar_positions = [k for k, i in enumerate(self.passed) if not isinstance(placeholder_vals[i], torch.Tensor)]

        printer = PythonPrinter()

        def text(expr: sympy.Expr) -> str:
            missing = expr.free_symbols - set(bindings)
            if missing:
                raise TorchMlirBackendError(
                    f"{graph_name}: size symbols {sorted(map(str, missing))} are not sizes of any input "
                    f"tensor nor integer inputs; cannot compute them at run time")
            return f"({printer.doprint(expr)})"

        lines = ["def result_shapes(inputs):"]
        for sym, read in bindings.items():
            lines.append(f"    {sym} = {read}")
        for read, expr, where in pending_checks:
            lines.append(f"    if {read} != {text(expr)}:")
            lines.append(f"        _mismatch({where!r}, {read}, {str(expr)!r}, {text(expr)})")
        shapes = []
        for val in result_vals:
            dims = [str(int(d)) if _expr(d) is None else text(_expr(d)) for d in val.shape]
            shapes.append("(" + "".join(f"{d}, " for d in dims) + ")")
        lines.append("    return (" + "".join(f"{s}, " for s in shapes) + ")")
        self.source = "\n".join(lines)
        namespace = {"_mismatch": self._mismatch, "max": max, "min": min}
        exec(compile(self.source, f"<result shapes of {graph_name}>", "exec"), namespace)
        self.result_shapes: Callable = namespace["result_shapes"]

        # Symbolic graph outputs (SymInts, e.g. sizes AOTAutograd saves for backward), from the
        # placeholders' values as the FX graph receives them (ints for SymInt placeholders).
        self._symbol_reads = {}
        for sym in bindings:
            if sym in binding_text:
                i, d, _ = binding_text[sym]
                self._symbol_reads[sym] = f"args[{i}].shape[{d}]"
        for i, v in enumerate(placeholder_vals):
            expr = _expr(v) if not isinstance(v, torch.Tensor) else None
            if isinstance(expr, sympy.Symbol) and expr not in self._symbol_reads:
                self._symbol_reads[expr] = f"args[{i}]"
        self._printer = printer

    def symint_evaluator(self, value: Any) -> Callable[[list], Any]:
        """A function of the FX graph's arguments computing a SymInt (or SymBool) output."""
        kind = "bool" if isinstance(value, (bool, torch.SymBool)) else "int"
        expr = value.node.expr if isinstance(value, torch.SymBool) else _expr(value)
        if expr is None or getattr(expr, "is_number", False) or expr in (sympy.true, sympy.false):
            constant = bool(value) if kind == "bool" else int(value)
            return lambda args: constant
        missing = expr.free_symbols - set(self._symbol_reads)
        if missing:
            raise TorchMlirBackendError(f"{self.graph_name}: cannot compute the integer output {expr} at run time")
        body = "".join(f"    {s} = {r}\n" for s, r in self._symbol_reads.items() if s in expr.free_symbols)
        source = f"def value(args):\n{body}    return {kind}({self._printer.doprint(expr)})\n"
        namespace = {"max": max, "min": min}
        exec(compile(source, f"<integer output of {self.graph_name}>", "exec"), namespace)
        return namespace["value"]

    def _mismatch(self, where: str, got: int, expr: str, expected: int) -> None:
        raise ShapeMismatchError(
            f"{self.graph_name}: {where} has size {got}, but the graph was compiled for size {expr} = "
            f"{expected} there (sizes of dynamic dimensions that the traced program made equal must "
            f"stay equal; a size that broadcasts needs its own compilation)")

    def pack(self, args: list) -> list:
        """The compiled function's inputs from the FX graph's arguments."""
        inputs = [args[i] for i in self.passed]
        for k in self._scalar_positions:
            inputs[k] = torch.tensor(int(inputs[k]), dtype=torch.int64)
        return inputs
