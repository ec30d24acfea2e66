"""Torch dialect -> linalg-on-tensors: a linear walk over each function's ops, calling the rule
registered for each op (see `registry.py`). Constants and lists become Python values that rules
receive directly; tensors become builtin `tensor<...>` values. torch-mlir's generic form of an op
its dialect does not define, `torch.operator "torch.aten.x.y"` (or `"aten.x.y"`), goes to the rule
of `aten.x.y`; an op's `!torch.list<vtensor>` result is the list of tensors its rule returns,
which `torch.prim.ListUnpack` splits.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

import torch

from mlir import ir
from mlir.dialects import arith, func as func_d, tensor

from ..errors import CompileError, TorchMlirBackendError, UnsupportedOpError
from ..types import TensorSpec, format_specs
from . import builders
from .registry import LOWERINGS, LoweringContext, check_dtypes, user_source_line

_LOC_NAME_RE = re.compile(r'loc\("([^"]+)"')

# Ops the driver itself turns into Python values.
# Ops with regions (`torch.prim.If`, `torch.prim.Loop`): op name -> fn(function_lowering, op),
# which lowers the regions' ops through `FunctionLowering.lower_ops`. Filled by control_flow.py.
REGION_LOWERINGS: dict = {}

_CONSTANT_OPS = {"torch.constant.int", "torch.constant.float", "torch.constant.bool",
                 "torch.constant.str", "torch.constant.device", "torch.constant.none"}
# A bool where the schema wants an int/float/Scalar: the importer converts it as torch-mlir does.
_BOOL_CONVERSIONS = {"torch.aten.Int.bool", "torch.aten.Float.bool"}


def torch_op_name(op: ir.Operation) -> str:
    """The op's `torch.<ns>.<name>[.<overload>]`, also for the generic `torch.operator` form that
    torch-mlir's importers give ops its dialect does not define: its `name` attribute, written
    `torch.aten.x.y` (fx_importer) or `aten.x.y` (TorchScript importer)."""
    name = op.name
    if name != "torch.operator":
        return name
    named = ir.StringAttr(op.attributes["name"]).value
    return named if named.startswith("torch.") else f"torch.{named}"


def _list_unpack_of(value: ir.Value) -> Optional[ir.Operation]:
    """The `torch.prim.ListUnpack` splitting a `!torch.list<vtensor>` result, if there is one."""
    for use in value.uses:
        if use.owner.name == "torch.prim.ListUnpack":
            return use.owner
    return None


def torch_type_spec(t: ir.Type) -> Optional[TensorSpec]:
    text = str(t)
    if text.startswith("!torch.vtensor<") or text.startswith("!torch.tensor<"):
        return TensorSpec.from_torch_type(text)
    return None


def _scalar_builtin_type(t: ir.Type) -> ir.Type:
    text = str(t)
    if text == "!torch.int":
        return ir.IntegerType.get_signless(64)
    if text == "!torch.float":
        return ir.F64Type.get()
    if text == "!torch.bool":
        return ir.IntegerType.get_signless(1)
    raise CompileError(f"function argument or result of type {text} is not supported")


def builtin_type(t: ir.Type) -> ir.Type:
    spec = torch_type_spec(t)
    return builders.tensor_type(spec) if spec is not None else _scalar_builtin_type(t)


def _constant_value(op: ir.Operation) -> Any:
    name = op.name
    if name == "torch.constant.none":
        return None
    attr = op.attributes["value"]
    if name == "torch.constant.int":
        return ir.IntegerAttr(attr).value
    if name == "torch.constant.float":
        return ir.FloatAttr(attr).value
    if name == "torch.constant.bool":
        return ir.BoolAttr(attr).value
    return ir.StringAttr(attr).value


@dataclass(frozen=True)
class DataDependentAbi:
    """How `@main` returns results whose sizes depend on the data (see lowering/data_dependent.py).

    Each result in `results` is returned flat (`tensor<?xT>`, row-major) at the front of a buffer
    of the capacity Python allocated, read from an extra last argument `tensor<Kxi64>` (one
    capacity per such result); a result larger than its capacity is not written at all. One more
    result, `tensor<Sxi64>`, reports every dimension of those results (in order), then the value
    of each scalar op named in `scalars` (FX node names: the `item()`s Python needs to rebuild an
    output that is a view of an input), then one 0/1 flag per `_assert_scalar` of the graph
    (`checks` of them), for Python to narrow, rebuild and check."""

    results: tuple = ()
    checks: int = 0
    scalars: tuple = ()

    @property
    def active(self) -> bool:
        return bool(self.results) or self.checks > 0 or bool(self.scalars)


class FunctionLowering:
    """Lowers one Torch-dialect `func.func` into a new builtin-typed `func.func`.

    `!torch.int` arguments (SymInts under dynamic shapes) do not cross the ABI as scalars: one
    listed in `int_arg_dims` (argument -> (tensor argument, dim)) is dropped from the signature
    and read back as `tensor.dim` of that tensor argument; any other becomes a `tensor<i64>`
    argument (a 0-d int64 tensor at run time) read with `tensor.extract`.
    """

    def __init__(self, source: func_d.FuncOp, int_arg_dims: Optional[dict] = None,
                 symbolic_shapes: Optional[dict] = None, data_dependent: Optional[DataDependentAbi] = None):
        self.source = source
        self.data_dependent = data_dependent if data_dependent is not None and data_dependent.active else None
        self.int_arg_dims = dict(int_arg_dims or {})
        # FX node name -> (operand sizes, result sizes), symbolic; found through op locations.
        self.symbolic_shapes = symbolic_shapes or {}
        self.values: dict[ir.Value, Any] = {}
        self.state: dict = {}  # `LoweringContext.state`: shared by the rules of this function
        self._reported_scalars: dict = {}  # FX node name -> i64 value (see DataDependentAbi.scalars)

    def lower_into(self, module: ir.Module) -> func_d.FuncOp:
        src_type = ir.FunctionType(ir.TypeAttr(self.source.attributes["function_type"]).value)
        int_args = {i for i, t in enumerate(src_type.inputs) if str(t) == "!torch.int"}
        i64 = ir.IntegerType.get_signless(64)
        kept = [i for i in range(len(src_type.inputs)) if i not in self.int_arg_dims]
        arg_types = [ir.RankedTensorType.get([], i64) if i in int_args else builtin_type(src_type.inputs[i])
                     for i in kept]
        result_types = [builtin_type(t) for t in src_type.results]
        abi = self.data_dependent
        if abi is not None:
            for i in abi.results:
                result_types[i] = ir.RankedTensorType.get([ir.ShapedType.get_dynamic_size()],
                                                          ir.RankedTensorType(result_types[i]).element_type)
            if abi.results:
                arg_types.append(ir.RankedTensorType.get([len(abi.results)], i64))
            result_types.append(ir.RankedTensorType.get([self._report_length(src_type)], i64))
        name = ir.StringAttr(self.source.attributes["sym_name"]).value
        with ir.InsertionPoint(module.body), self.source.location:
            fn = func_d.FuncOp(name, ir.FunctionType.get(arg_types, result_types))
            block = fn.add_entry_block()
        old_args = self.source.regions[0].blocks[0].arguments
        new_of = dict(zip(kept, block.arguments))
        self._block_arguments = list(block.arguments)
        with ir.InsertionPoint(block), self.source.location:
            for i, old in enumerate(old_args):
                if i in self.int_arg_dims:
                    source, dim = self.int_arg_dims[i]
                    size = tensor.DimOp(new_of[source], builders.index_constant(dim)).result
                    self.values[old] = arith.IndexCastOp(i64, size).result
                elif i in int_args:
                    self.values[old] = tensor.ExtractOp(new_of[i], []).result
                else:
                    self.values[old] = new_of[i]
        with ir.InsertionPoint(block):
            for op in self.source.regions[0].blocks[0].operations:
                op = op.operation
                with op.location:
                    self._lower_op(op)
        return fn

    def _lower_op(self, op: ir.Operation) -> None:
        name = op.name
        if name in _CONSTANT_OPS:
            self.values[op.results[0]] = _constant_value(op)
        elif name == "torch.prim.ListConstruct":
            self.values[op.results[0]] = [self.values[v] for v in op.operands]
        elif name in _BOOL_CONVERSIONS:
            value = self.values[op.operands[0]]
            to_float = name == "torch.aten.Float.bool"
            if not isinstance(value, ir.Value):
                self.values[op.results[0]] = float(value) if to_float else int(value)
            elif to_float:
                self.values[op.results[0]] = arith.UIToFPOp(ir.F64Type.get(), value).result
            else:
                self.values[op.results[0]] = arith.ExtUIOp(ir.IntegerType.get_signless(64), value).result
        elif name == "torch.prim.ListUnpack":
            # The list result of a Tensor[]-returning op (split_with_sizes, unbind...).
            elements = self.values[op.operands[0]]
            if len(elements) != len(op.results):
                raise CompileError(f"torch.prim.ListUnpack of {len(op.results)} values from a list "
                                   f"of {len(elements)} at {user_source_line(op.location) or 'unknown location'}")
            for old, new in zip(op.results, elements):
                spec = torch_type_spec(old.type)
                if spec is not None and isinstance(new, ir.Value):
                    new = _match_type(new, builders.tensor_type(spec), "torch.prim.ListUnpack")
                self.values[old] = new
        elif name == "torch.vtensor.literal":
            attr = op.attributes["value"]
            self.values[op.results[0]] = arith.ConstantOp(ir.DenseElementsAttr(attr).type, attr).result
        elif name == "func.return":
            results = [self._materialize_result(v) for v in op.operands]
            if self.data_dependent is not None:
                results = self._data_dependent_results(results)
            func_d.ReturnOp(results)
        elif name in REGION_LOWERINGS:
            REGION_LOWERINGS[name](self, op)
        else:
            self._lower_with_rule(op)

    def _report_length(self, src_type) -> int:
        abi = self.data_dependent
        return sum(torch_type_spec(src_type.results[i]).rank for i in abi.results) + len(abi.scalars) + abi.checks

    def _data_dependent_results(self, results: list) -> list:
        """See `DataDependentAbi`: flat results at their capacities, and the report."""
        from .data_dependent import RUNTIME_CHECKS

        abi = self.data_dependent
        i64 = ir.IntegerType.get_signless(64)
        report = []
        capacities = self._block_arguments[-1] if abi.results else None
        for k, i in enumerate(abi.results):
            value = results[i]
            t = ir.RankedTensorType(value.type)
            sizes = builders.sizes_of(value)
            report += [builders.as_index(s) if not isinstance(s, int) else builders.index_constant(s) for s in sizes]
            # (rank >= 1: a data-dependent size is one of its dimensions)
            flat = value if t.rank == 1 else builders.collapse_shape(value, [list(range(t.rank))])
            if 0 in builders.static_shape(value):  # (nonzero of a 0-d tensor: [u0, 0]) nothing to write
                flat = tensor.EmptyOp([0], t.element_type).result
            flat = _match_type(flat, ir.RankedTensorType.get([ir.ShapedType.get_dynamic_size()], t.element_type),
                               "data-dependent result")
            numel = tensor.DimOp(flat, builders.index_constant(0)).result
            capacity = arith.IndexCastOp(ir.IndexType.get(), tensor.ExtractOp(
                capacities, [builders.index_constant(k)]).result).result
            fits = arith.CmpIOp(arith.CmpIPredicate.ule, numel, capacity).result
            count = arith.SelectOp(fits, numel, builders.index_constant(0)).result  # never past the buffer
            dyn = ir.ShapedType.get_dynamic_size()
            piece = tensor.ExtractSliceOp(ir.RankedTensorType.get([dyn], t.element_type), flat, [], [count], [],
                                          [0], [dyn], [1]).result
            buffer = tensor.EmptyOp([capacity], t.element_type).result
            results[i] = tensor.InsertSliceOp(piece, buffer, [], [count], [], [0], [dyn], [1]).result
        report = [arith.IndexCastOp(i64, v).result for v in report]
        for name in abi.scalars:
            value = self._reported_scalars.get(name)
            if value is None:
                raise CompileError(f"the value of {name}, needed at the graph's boundary, was not lowered")
            report.append(value if isinstance(value, ir.Value) else
                          arith.ConstantOp(i64, ir.IntegerAttr.get(i64, int(value))).result)
        checks = self.state.get(RUNTIME_CHECKS, [])
        if len(checks) != abi.checks:
            raise CompileError(f"{len(checks)} runtime assertions lowered, {abi.checks} expected")
        report += [arith.ExtUIOp(i64, c).result for c in checks]
        results.append(tensor.FromElementsOp(ir.RankedTensorType.get([len(report)], i64), report).result)
        return results

    def lower_ops(self, ops) -> None:
        """Lower the ops of a nested block, in order, at the current insertion point."""
        for op in ops:
            op = op.operation
            with op.location:
                self._lower_op(op)

    def _materialize_result(self, value: ir.Value) -> ir.Value:
        lowered = self.values[value]
        if isinstance(lowered, ir.Value):
            return lowered
        # A constant scalar result (e.g. a size) of the graph.
        t = builtin_type(value.type)
        if isinstance(lowered, bool) or str(t) == "i1":
            return arith.ConstantOp(t, ir.IntegerAttr.get(t, int(lowered))).result
        if isinstance(lowered, float) or str(t) == "f64":
            return arith.ConstantOp(t, ir.FloatAttr.get(t, float(lowered))).result
        return arith.ConstantOp(t, ir.IntegerAttr.get(t, int(lowered))).result

    def _lower_with_rule(self, op: ir.Operation) -> None:
        in_specs = [torch_type_spec(v.type) for v in op.operands]
        location = op.location
        op_name = torch_op_name(op)
        rule = LOWERINGS.get(op_name)
        if rule is None:
            raise UnsupportedOpError(_overload_name(op_name), "no lowering rule for this op",
                                     format_specs(in_specs), user_source_line(location))
        # A `!torch.list<vtensor>` result (one list for several tensors): the rule returns the
        # tensors, and sees the element types of the ListUnpack that splits the list as out_specs.
        list_result = len(op.results) == 1 and str(op.results[0].type) == "!torch.list<vtensor>"
        if list_result:
            unpack = _list_unpack_of(op.results[0])
            out_specs = [torch_type_spec(r.type) for r in unpack.results] if unpack is not None else []
        else:
            out_specs = [torch_type_spec(r.type) for r in op.results]
        ctx = LoweringContext(op_name, rule.target, in_specs, out_specs, location, self.state)
        if not list_result:
            ctx.results_used = [any(True for _ in r.uses) for r in op.results]
        found = _LOC_NAME_RE.match(str(location)) if self.symbolic_shapes or self.data_dependent else None
        if self.symbolic_shapes:
            ctx.symbolic_in, ctx.symbolic_out = self.symbolic_shapes.get(found.group(1) if found else "", (None, None))
        check_dtypes(ctx, rule)
        args = [self.values[v] for v in op.operands]
        if not rule.wrapped_scalars:
            args = [_scalar_as_tensor(a, spec) if spec is not None and not isinstance(a, ir.Value) else a
                    for a, spec in zip(args, in_specs)]
        try:
            results = rule.fn(ctx, *args)
        except TorchMlirBackendError:
            raise
        except Exception as e:  # a bug in a rule: still a Python error naming the op, never a crash
            raise CompileError(f"lowering rule of {rule.target} failed on inputs ({format_specs(in_specs)}) "
                               f"at {ctx.source_line or 'unknown location'}: {type(e).__name__}: {e}") from e
        if list_result:
            if not isinstance(results, (tuple, list)) or (out_specs and len(results) != len(out_specs)):
                raise CompileError(f"lowering rule of {rule.target} returned {results!r} for a list of "
                                   f"{len(out_specs)} tensors")
            self.values[op.results[0]] = [
                _match_type(r, builders.tensor_type(spec), rule.target) if spec is not None else r
                for r, spec in zip(results, out_specs or [None] * len(results))]
            return
        if len(op.results) == 1 and not isinstance(results, (tuple, list)):
            results = [results]
        if found is not None and self.data_dependent is not None and found.group(1) in self.data_dependent.scalars:
            value = results[0]
            self._reported_scalars[found.group(1)] = value if not isinstance(value, ir.Value) or \
                str(value.type) == "i64" else arith.ExtSIOp(ir.IntegerType.get_signless(64), value).result
        if len(results) != len(op.results):
            raise CompileError(f"lowering rule of {rule.target} returned {len(results)} values "
                               f"for {len(op.results)} results")
        for old, new in zip(op.results, results):
            spec = torch_type_spec(old.type)
            if spec is not None and isinstance(new, ir.Value):
                new = _match_type(new, builders.tensor_type(spec), rule.target)
            self.values[old] = new


def _scalar_as_tensor(value: Any, spec: TensorSpec) -> ir.Value:
    """Materialize a wrapped number as the 0-d tensor its type says (for non-elementwise rules)."""
    t = builders.tensor_type(spec)
    return arith.ConstantOp(t, ir.DenseElementsAttr.get_splat(t, builders.scalar_attr(value, spec.dtype))).result


def _match_type(value: ir.Value, expected: ir.Type, target) -> ir.Value:
    """Rules may produce a more or less static type than the importer's; cast where legal."""
    if value.type == expected:
        return value
    from mlir.dialects import tensor

    got = ir.RankedTensorType(value.type)
    exp = ir.RankedTensorType(expected)
    if got.element_type != exp.element_type or got.rank != exp.rank:
        raise CompileError(f"lowering rule of {target} produced {value.type}, expected {expected}")
    return tensor.CastOp(expected, value).result


def _blame_unverified(lowered: ir.Module, torch_module: ir.Module) -> str:
    """`: the IR lowered from aten.x (inputs) at file:line` for the first top-level op that does
    not verify on its own; rules create their ops at the source op's location, which finds it."""
    sources = {}
    for fn in torch_module.body.operations:
        if fn.operation.name == "func.func":
            for op in fn.regions[0].blocks[0].operations:
                sources.setdefault(str(op.location), op.operation)
    for fn in lowered.body.operations:
        for op in fn.regions[0].blocks[0].operations:
            try:
                op.operation.verify()
            except ir.MLIRError:
                source = sources.get(str(op.location))
                if source is None:
                    return f": {op.operation.name} at {user_source_line(op.location) or 'unknown location'}"
                specs = [torch_type_spec(v.type) for v in source.operands]
                return (f": the IR lowered from {_overload_name(torch_op_name(source))} ({format_specs(specs)}) at "
                        f"{user_source_line(source.location) or 'unknown location'}")
    return ""


def _overload_name(op_name: str) -> str:
    # torch.aten.foo.bar -> aten.foo.bar
    parts = op_name.split(".")
    return ".".join(parts[1:]) if len(parts) > 3 else ".".join(parts[1:]) + ".default"


def lower_to_linalg(torch_module: ir.Module, int_arg_dims: Optional[dict] = None,
                    symbolic_shapes: Optional[dict] = None,
                    data_dependent: Optional[DataDependentAbi] = None) -> ir.Module:
    """A new module holding the linalg-on-tensors form of every function of `torch_module`.

    For `@main`: `int_arg_dims` maps a `!torch.int` argument index to the (tensor argument
    index, dim) whose size it equals (see `FunctionLowering`); `symbolic_shapes` maps FX node
    names (the ops' location names) to their operands' and results' symbolic sizes, which rules
    see as `ctx.symbolic_in/out`; `data_dependent` is @main's ABI for results of data-dependent
    sizes and runtime assertions (see `DataDependentAbi`)."""
    ctx = torch_module.context
    with ctx, ir.Location.unknown():
        out = ir.Module.create()
        for op in torch_module.body.operations:
            if op.operation.name == "func.func":
                is_main = ir.StringAttr(op.attributes["sym_name"]).value == "main"
                FunctionLowering(op, int_arg_dims if is_main else None,
                                 symbolic_shapes if is_main else None,
                                 data_dependent if is_main else None).lower_into(out)
        try:
            out.operation.verify()
        except ir.MLIRError as e:
            raise CompileError("linalg-on-tensors module does not verify" + _blame_unverified(out, torch_module),
                               diagnostics="\n".join(f"{d.location}: {d}" for d in e.error_diagnostics),
                               stage="torch-to-linalg") from None
    return out
