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
    if isinstance(value, sympy.Expr):
        return None if value.is_number else value
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

    `placeholder_vals`: each placeholder's `meta['val']` (FakeTensor or SymInt); `result_vals`:
    each result's FakeTensor, or its shape as a tuple of ints/sympy expressions. After
    construction:
    - `int_arg_dims`: SymInt placeholder -> (tensor placeholder, dim) it equals (not passed);
    - `passed`: placeholders passed to the compiled function, in order (tensors, and SymInts not
      found among the tensors' sizes, which are passed as 0-d int64 tensors);
    - `result_shapes(inputs)`: output shapes from the passed inputs (with consistency checks).
    """

    def __init__(self, placeholder_vals: Sequence[Any], result_vals: Sequence[Any], graph_name: str = "graph",
                 data_bindings: Optional[dict] = None):
        # data_bindings: symbol -> (placeholder, Python text with `{x}` for that input's tensor),
        # sizes read from an input's data (see lowering/data_dependent.py `data_bounds`).
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
        for sym, (i, read) in (data_bindings or {}).items():
            bindings[sym] = read.format(x=f"inputs[{position[i]}]")

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
            dims = [str(int(d)) if _expr(d) is None else text(_expr(d))
                    for d in (val.shape if isinstance(val, torch.Tensor) else val)]
            shapes.append("(" + "".join(f"{d}, " for d in dims) + ")")
        lines.append("    return (" + "".join(f"{s}, " for s in shapes) + ")")
        self.source = "\n".join(lines)
        from .lowering.data_dependent import bincount_length

        namespace = {"_mismatch": self._mismatch, "max": max, "min": min, "_bincount_length": bincount_length}
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


class DataDependentOutputs:
    """Python's side of `lowering.driver.DataDependentAbi` for one graph: outputs whose sizes
    depend on the data are allocated flat at an upper bound (`capacities`, sympy expressions
    over the input sizes, evaluated per call by the ShapePlan), and narrowed after the call to
    the sizes the generated code reports; the graph's runtime assertions are checked there too.

    The narrowed output is a contiguous prefix view of its buffer (the generated code writes it
    row-major at the front), so no copy is made; but when it would keep alive a buffer more than
    twice its size (and over 64 KiB), it is copied so a sparse result does not pin a worst-case
    buffer.

    An output that is a view of an input with data-dependent bounds (`x[:, a:b]` with `a =
    i.item()`, possibly viewed further: `.t()`, `.view(...)`) must be that view: AOTAutograd
    rebuilds such outputs from the input with the metadata of the tensor we return, as it cannot
    replay symbolic views. Its chain of view ops (`aliases`: result index, placeholder position,
    [(op, args, kwargs)]) is replayed on the input in eager PyTorch, views costing no copy, with
    the integer values the generated code reports."""

    COPY_ABOVE_BYTES = 64 * 1024

    def __init__(self, abi, ranks: Sequence[int], capacities: Sequence[sympy.Expr], messages: Sequence[str],
                 aliases: Sequence[tuple] = (), data_bindings: Optional[dict] = None,
                 int_outputs: Sequence[tuple] = ()):
        self.abi = abi
        self.ranks = tuple(ranks)
        self.capacities = tuple(capacities)
        self.messages = tuple(messages)
        self.aliases = tuple(aliases)
        self.data_bindings = dict(data_bindings or {})  # for the ShapePlan: sizes read from input data
        # (graph output position, FX node name, is a bool): integer outputs of data-dependent value (`u0`),
        # appended to the results, from the report
        self.int_outputs = tuple(int_outputs)

    def plan_shapes(self, result_vals: Sequence[Any]) -> list:
        """The result shapes to give the ShapePlan: flat capacities, then the report."""
        shapes = list(result_vals)
        for i, cap in zip(self.abi.results, self.capacities):
            shapes[i] = (cap,)
        shapes.append((self.report_length,))
        return shapes

    @property
    def report_length(self) -> int:
        return sum(self.ranks) + len(self.abi.scalars) + self.abi.checks

    def with_capacities(self, inputs: list, result_shapes: Callable) -> list:
        if not self.abi.results:
            return inputs
        shapes = result_shapes(inputs)
        caps = [int(shapes[i][0]) for i in self.abi.results]
        return list(inputs) + [torch.tensor(caps, dtype=torch.int64)]

    def finish(self, results: list, args: list) -> list:
        """The graph's outputs from the compiled function's results and the graph's arguments."""
        report = results.pop().tolist()
        offset = 0
        for i, rank in zip(self.abi.results, self.ranks):
            dims = report[offset:offset + rank]
            offset += rank
            buffer = results[i]
            numel = 1
            for d in dims:
                numel *= d
            if numel > buffer.numel():
                raise TorchMlirBackendError(
                    f"a data-dependent output of size {dims} exceeds the bound {buffer.numel()} the graph "
                    f"was compiled with (a bug in that bound; the output was not written)")
            out = buffer[:numel].view(dims)
            if numel * 2 < buffer.numel() and buffer.numel() * buffer.element_size() > self.COPY_ABOVE_BYTES:
                out = out.clone()
            results[i] = out
        scalars = dict(zip(self.abi.scalars, report[offset:offset + len(self.abi.scalars)]))
        offset += len(self.abi.scalars)
        for message, flag in zip(self.messages, report[offset:]):
            if not flag:
                raise RuntimeError(message)
        results += [bool(scalars[name]) if is_bool else scalars[name] for _, name, is_bool in self.int_outputs]
        for i, placeholder, chain in self.aliases:
            view = args[placeholder]
            for target, op_args, kwargs in chain:
                view = target(*[view if a is _VIEWED else _value(a, scalars) for a in op_args],
                              **{k: _value(v, scalars) for k, v in kwargs.items()})
            results[i] = view
        return results


def plan_data_dependent(gm: torch.fx.GraphModule, placeholder_vals: Sequence[Any],
                        result_nodes: Sequence[torch.fx.Node]) -> Optional[DataDependentOutputs]:
    """The boundary of a graph with outputs of data-dependent sizes or runtime assertions (None
    when it has neither). Raises UnsupportedOpError naming the op whose output size has no
    upper bound from the input sizes."""
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

    from .errors import UnsupportedOpError
    from .importers.fx_importer import source_line
    from .lowering.data_dependent import data_bounds, graph_size_bounds, new_unbacked_sizes, resolve_bound
    from .lowering.driver import DataDependentAbi

    known = set()
    for v in placeholder_vals:
        if isinstance(v, torch.Tensor):
            for d in v.shape:
                known |= getattr(_expr(d), "free_symbols", set())
        elif _expr(v) is not None:
            known |= _expr(v).free_symbols
    bounds = None
    results, ranks, capacities = [], [], []
    result_vals = [n.meta["val"] for n in result_nodes]
    for i, v in enumerate(result_vals):
        if not isinstance(v, torch.Tensor) or not (free_unbacked_symbols(v) - known):
            continue
        if bounds is None:
            bounds = graph_size_bounds(gm)
        numel = sympy.Mul(*[_expr(d) if _expr(d) is not None else sympy.Integer(int(d)) for d in v.shape])
        capacity = resolve_bound(numel, bounds, known)
        if capacity is None:
            missing = free_unbacked_symbols(v) - known - set(bounds)
            node = next((n for n in gm.graph.nodes if n.op == "call_function" and new_unbacked_sizes(n) & missing), None)
            raise UnsupportedOpError(
                str(node.target) if node is not None else "graph output",
                f"its output size depends on the data ({', '.join(sorted(map(str, missing)))}) with no upper "
                f"bound known from the input sizes", "", source_line(node) if node is not None else "")
        results.append(i)
        ranks.append(v.dim())
        capacities.append(capacity)
    aliases, scalars, int_outputs = [], [], []
    output_node = next(n for n in gm.graph.nodes if n.op == "output")
    items = output_node.args[0] if isinstance(output_node.args[0], (tuple, list)) else [output_node.args[0]]
    for k, item in enumerate(items):
        val = item.meta.get("val") if isinstance(item, torch.fx.Node) else None
        if isinstance(val, (torch.SymInt, torch.SymBool)) and free_unbacked_symbols(val) - known:
            int_outputs.append((k, item.name, isinstance(val, torch.SymBool)))
            scalars.append(item.name)
    for i, node in enumerate(result_nodes):
        alias = _input_view_chain(node, placeholder_vals, gm)
        if alias is not None:
            aliases.append((i,) + alias)
            for _, op_args, kwargs in alias[1]:
                for a in _scalars_in(list(op_args) + list(kwargs.values())):
                    if a.name not in scalars:
                        scalars.append(a.name)
    asserts = [n for n in gm.graph.nodes
               if n.op == "call_function" and n.target is torch.ops.aten._assert_scalar.default]
    if not results and not asserts and not aliases and not int_outputs:
        return None
    messages = []
    for n in asserts:
        text = str(n.args[1]) if len(n.args) > 1 else "runtime assertion failed"
        where = source_line(n)
        messages.append(f"{text} (at {where})" if where else text)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    data_bindings = {}
    for n in gm.graph.nodes:
        read = data_bounds(n) if n.op == "call_function" else None
        if read is not None and any(read[0] in c.free_symbols for c in capacities):
            data_bindings[read[0]] = (placeholders.index(read[1]), read[2])
    return DataDependentOutputs(DataDependentAbi(tuple(results), len(asserts), tuple(scalars)), ranks, capacities,
                                messages, aliases, data_bindings, int_outputs)


class _Scalar:
    """An integer argument of a replayed view op: the value of FX node `name` (reported)."""

    def __init__(self, name: str):
        self.name = name


_VIEWED = object()  # the replayed view op's tensor argument


def _value(a, scalars: dict):
    """A replayed view op's argument: reported values in place of `_Scalar`s (also in lists)."""
    if isinstance(a, _Scalar):
        return scalars[a.name]
    if isinstance(a, (list, tuple)):
        return type(a)(_value(e, scalars) for e in a)
    return a


def _scalars_in(args) -> list:
    found = []
    for a in args:
        if isinstance(a, _Scalar):
            found.append(a)
        elif isinstance(a, (list, tuple)):
            found += _scalars_in(a)
    return found

def _input_view_chain(node: torch.fx.Node, placeholder_vals: Sequence[Any], gm: torch.fx.GraphModule):
    """(placeholder position, [(op, args, kwargs)]) when `node` is a view of a graph input through
    view ops (slice, select, t, view, ...) some of whose arguments depend on the data; None
    otherwise. Raises UnsupportedOpError for such a view whose arguments cannot be replayed."""
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

    from .errors import UnsupportedOpError
    from .importers.fx_importer import source_line

    chain, data_dependent, replayable = [], False, True
    output = node

    def arg(a):
        nonlocal data_dependent, replayable
        if isinstance(a, (list, tuple)):
            return type(a)(arg(e) for e in a)
        if not isinstance(a, torch.fx.Node):
            return a
        val = a.meta.get("val")
        if not isinstance(val, torch.SymInt):
            replayable = False
            return None
        data_dependent = data_dependent or bool(free_unbacked_symbols(val))
        return _Scalar(a.name)

    while node.op == "call_function" and getattr(node.target, "is_view", False) and node.args \
            and isinstance(node.args[0], torch.fx.Node):
        op_args = [_VIEWED] + [arg(a) for a in node.args[1:]]
        kwargs = {k: arg(v) for k, v in node.kwargs.items()}
        chain.append((node.target, op_args, kwargs))
        node = node.args[0]
    if not chain or not data_dependent or node.op != "placeholder":
        return None
    if not replayable:
        raise UnsupportedOpError(str(output.target), "a view of a graph input with data-dependent bounds whose "
                                 "view arguments cannot be rebuilt after the call", "", source_line(output))
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    return placeholders.index(node), chain[::-1]
