"""TorchScript (`torch.jit.script` / `torch.jit.trace` modules and functions, `.pt` files from
`torch.jit.save`, graphs captured by the lazy tensor core) -> the same Torch dialect as the FX
importer, then the same lowering and runtime.

Preparation (TorchScript's own passes, as torch-mlir's TorchScript road does): modules are frozen
(`torch.jit.freeze`: parameters become constants, methods are inlined), functions are inlined,
then `remove_mutation`, constant propagation and dead code elimination make the graph
functional where TorchScript can prove it.

The import walks the graph with example inputs, so every value has a static shape and dtype:
- `aten::` nodes are named by their schema (`torch.aten.<name>.<overload>`) and their arguments
  converted by schema type through `fx_importer.TorchOpEmitter`, exactly as the FX importer does.
  By default each op is first traced (`make_fx`, fake tensors) with the backend's decomposition
  table, so the emitted ops are the Core ATen ops the Dynamo road produces and the lowering knows;
  `decompose=False` emits the TorchScript ops as they are.
- Scalars computable at import time (`x.size(0)`, `x.dim()`, int arithmetic on them, ...) fold
  to constants; so do tensor ops whose inputs are all constants (weights, `torch.zeros(3)`).
  A scalar that depends on tensor data (`bool(x.sum() > 0)`) or on a loop index stays an op.
- `prim::Constant` / `ListConstruct` / `TupleConstruct` / `GetAttr` become constants, lists and
  literals; `prim::If` whose condition folds keeps only the taken branch; otherwise `prim::If` and
  `prim::Loop` become torch-mlir's region ops `torch.prim.If` / `torch.prim.Loop` (lowered to
  `scf.if` / `scf.while` by `lowering/control_flow.py`). Loop-carried and branch-result tensors
  must keep their shape.
- Non-tensor arguments are specialized to their example value (constants in the IR).
- Anything else (`prim::RaiseException` reached, `prim::PythonOp`, `prim::CallMethod` left after
  inlining, prints, in-place ops on graph inputs or views) is a `GraphImportError` naming the
  construct and the script's source line.
"""
from __future__ import annotations

import os
import re
from typing import Any, Optional, Sequence

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from mlir import ir
from mlir.dialects import func as func_d

from ..errors import GraphImportError
from ..types import TensorSpec
from .fx_importer import GraphImporter, TorchOpEmitter, TypeCache, new_context

aten = torch.ops.aten

_SOURCE_RE = re.compile(r'File "([^"]+)", line (\d+)')

_UNSUPPORTED = {
    "prim::RaiseException": "raising an exception",
    "prim::PythonOp": "a call into Python (@torch.jit.ignore / unscriptable function)",
    "prim::CallMethod": "a method call that could not be inlined (interfaces, recursion)",
    "prim::CallFunction": "a function call that could not be inlined",
    "prim::Print": "print()",
    "prim::Enter": "a `with` block",
    "prim::Exit": "a `with` block",
    "prim::fork": "torch.jit.fork",
    "aten::wait": "torch.jit.wait",
}


LIFT_MIN_ELEMENTS = 64


class _Uninitialized:
    """`prim::Uninitialized`: the value of a branch that raises."""


def _legacy_convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
                        groups, *flags):
    return aten.convolution.default(input, weight, bias, stride, padding, dilation, transposed,
                                    output_padding, groups)


def _native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):
    if training or running_mean is None:
        return aten._native_batch_norm_legit_functional.default(
            input, weight, bias, running_mean, running_var, training, momentum, eps)[:3]
    return aten._native_batch_norm_legit_no_training.default(
        input, weight, bias, running_mean, running_var, momentum, eps)


# Ops TorchScript graphs hold that AOTAutograd never shows us (it functionalizes and decomposes
# them on the way): the forms our lowering has rules for.
_TORCHSCRIPT_DECOMPOSITIONS = {
    aten._convolution.default: _legacy_convolution,
    aten._convolution.deprecated: _legacy_convolution,
    aten.native_batch_norm.default: _native_batch_norm,
}


def _decompositions() -> dict:
    from ..decompositions import decomposition_table

    table = dict(decomposition_table())
    table.update(_TORCHSCRIPT_DECOMPOSITIONS)
    return table


def _source_of(node: torch._C.Node) -> tuple[str, int]:
    if node.hasAttribute("source"):  # lazy tensor graphs: source="<file> <function> <line>"
        parts = node.s("source").rsplit(" ", 2)
        if len(parts) == 3 and parts[2].isdigit():
            return parts[0], int(parts[2])
    try:
        m = _SOURCE_RE.search(node.sourceRange())
    except Exception:  # nodes without a source range
        return "", 0
    return (m.group(1), int(m.group(2))) if m else ("", 0)


def _where(node: torch._C.Node) -> str:
    filename, line = _source_of(node)
    return f"{filename}:{line}" if filename else "unknown location"


def _location(node: torch._C.Node) -> ir.Location:
    filename, line = _source_of(node)
    name = node.kind().split("::", 1)[-1]
    if filename:
        return ir.Location.name(name, childLoc=ir.Location.file(filename, line, 0))
    return ir.Location.name(name)


def _overload_of(schema: torch._C.FunctionSchema) -> torch._ops.OpOverload:
    namespace, name = schema.name.split("::", 1)
    packet = getattr(getattr(torch.ops, namespace), name)
    return getattr(packet, schema.overload_name or "default")


def _functional_variant(schema: torch._C.FunctionSchema) -> Optional[torch._ops.OpOverload]:
    """`aten::add_.Tensor` -> `aten.add.Tensor` (None if there is none)."""
    namespace, name = schema.name.split("::", 1)
    if not name.endswith("_") or name.startswith("_"):
        return None
    packet = getattr(getattr(torch.ops, namespace), name[:-1], None)
    return getattr(packet, schema.overload_name or "default", None) if packet is not None else None


def _view_of_copy_op(overload: torch._ops.OpOverload) -> Optional[torch._ops.OpOverload]:
    """`aten.t_copy.default` -> `aten.t.default`: the lazy tensor core records the functional
    `*_copy` forms of view ops; in a functional graph the view itself has the same value."""
    name = overload._schema.name.split("::", 1)[1]
    if not name.endswith("_copy"):
        return None
    packet = getattr(aten, name[: -len("_copy")], None)
    return getattr(packet, overload._overloadname, None) if packet is not None else None


def _is_view(schema: torch._C.FunctionSchema) -> bool:
    return any(r.alias_info is not None and not r.alias_info.is_write for r in schema.returns)


def _is_tensor_type(t: torch._C.JitType) -> bool:
    return t.kind() == "TensorType"


class TorchScriptImporter(TorchOpEmitter):
    """Imports one TorchScript graph as a `func.func`, walking it with example inputs."""

    def __init__(self, types: TypeCache, decompose: bool = True, lift_constants: bool = False):
        super().__init__(types)
        self.decompose = decompose
        # Constant tensors (frozen weights) of more than LIFT_MIN_ELEMENTS elements become
        # trailing function arguments instead of literals when `lift_constants`: LLVM then never
        # sees megabytes of constant data, and the caller passes `lifted_tensors` at each call.
        self.lift_constants = lift_constants
        self.lifted_tensors: list[torch.Tensor] = []
        self._entry_block = None
        self._table = _decompositions() if decompose else None
        # TorchScript value -> ir.Value, Python constant, list/tuple of those, or an object
        # (the module behind `self`, for prim::GetAttr).
        self.vals: dict[torch._C.Value, Any] = {}
        self.examples: dict[torch._C.Value, torch.Tensor] = {}  # tensors: shape/dtype holder
        self.constant_tensors: set = set()  # values whose example holds the real data
        self.view_values: set = set()  # values produced by view ops (in-place on them is rejected)
        self._literal_cache: dict[int, tuple] = {}

    def _graph_value(self, value: Any) -> Optional[ir.Value]:
        return value if isinstance(value, ir.Value) else None

    # ----- entry ----------------------------------------------------------------------------------
    def import_graph(self, module: ir.Module, graph: torch._C.Graph, example_inputs: Sequence[Any],
                     func_name: str = "main", self_object: Any = None,
                     constant_inputs: Optional[dict] = None) -> func_d.FuncOp:
        """`graph`'s inputs are (`self`,) + the example inputs when `self_object` is given.
        `constant_inputs` (input index -> tensor) become literals instead of arguments."""
        constant_inputs = constant_inputs or {}
        inputs = list(graph.inputs())
        if self_object is not None:
            self.vals[inputs[0]] = self_object
            inputs = inputs[1:]
        if len(inputs) != len(example_inputs):
            raise GraphImportError(f"the TorchScript graph takes {len(inputs)} inputs "
                                   f"({', '.join(v.debugName() for v in inputs)}), "
                                   f"{len(example_inputs)} example inputs were given")
        arg_positions = [i for i, x in enumerate(example_inputs)
                         if isinstance(x, torch.Tensor) and i not in constant_inputs]
        arg_types = [self.types.tensor(TensorSpec.from_tensor(example_inputs[i])) for i in arg_positions]
        with ir.InsertionPoint(module.body), ir.Location.unknown():
            fn = func_d.FuncOp(func_name, ir.FunctionType.get(arg_types, []))
            block = fn.add_entry_block()
        self._entry_block = block
        with ir.InsertionPoint(block), ir.Location.unknown():
            for i, (value, example) in enumerate(zip(inputs, example_inputs)):
                if i in constant_inputs:
                    self._bind_constant(value, constant_inputs[i])
                elif isinstance(example, torch.Tensor):
                    self.vals[value] = block.arguments[arg_positions.index(i)]
                    self.examples[value] = torch.empty(example.shape, dtype=example.dtype)
                else:
                    self.vals[value] = example  # specialized: a constant in the IR
            self._import_block_nodes(graph.block() if hasattr(graph, "block") else graph)
            results = self._flatten_results(list(graph.outputs()))
            operands = [self._argument(item, None) for item in results]
            func_d.ReturnOp(operands)
        fn.attributes["function_type"] = ir.TypeAttr.get(
            ir.FunctionType.get([a.type for a in block.arguments], [v.type for v in operands]))
        return fn

    def _flatten_results(self, values: Sequence[torch._C.Value]) -> list:
        out = []

        def visit(item):
            if isinstance(item, (tuple, list)):
                for x in item:
                    visit(x)
            elif isinstance(item, _Uninitialized):
                raise GraphImportError("the script returns a value that is never initialized")
            else:
                out.append(item)

        for v in values:
            visit(self.vals[v])
        return out

    # ----- walking ----------------------------------------------------------------------------------
    def _import_block_nodes(self, block) -> None:
        for node in block.nodes():
            with _location(node):
                self._import_node(node)

    def _import_node(self, node: torch._C.Node) -> None:
        kind = node.kind()
        if kind in _UNSUPPORTED:
            raise GraphImportError(f"unsupported TorchScript construct {kind} ({_UNSUPPORTED[kind]}) "
                                   f"at {_where(node)}")
        handler = _PRIM_HANDLERS.get(kind)
        if handler is not None:
            handler(self, node)
        elif kind.startswith("aten::") or kind.startswith("prims::"):
            self._import_aten(node)
        else:
            raise GraphImportError(f"unsupported TorchScript construct {kind} at {_where(node)}:\n  {node}")

    # ----- values ---------------------------------------------------------------------------------------
    def _bind_constant(self, value: torch._C.Value, constant: Any) -> None:
        if isinstance(constant, torch.Tensor):
            # Keyed by identity; the cache holds the tensor too, so its id is never reused.
            key = id(constant)
            cached = self._literal_cache.get(key)
            literal = cached[1] if cached is not None else None
            if literal is None and self.lift_constants and constant.numel() > LIFT_MIN_ELEMENTS:
                literal = self._entry_block.add_argument(
                    self.types.tensor(TensorSpec.from_tensor(constant)), ir.Location.unknown())
                self.lifted_tensors.append(constant.detach().contiguous())
            if literal is None:
                # In the entry block, so a literal first met inside a branch or loop body
                # still dominates its later uses elsewhere.
                with ir.InsertionPoint.at_block_begin(self._entry_block):
                    literal = self._tensor_literal(constant)
            self._literal_cache[key] = (constant, literal)
            self.vals[value] = literal
            self.examples[value] = constant.detach()
            self.constant_tensors.add(value)
        else:
            self.vals[value] = constant

    def _known(self, value: torch._C.Value) -> bool:
        """Whether the value (a scalar, list, tuple) is known at import time."""
        item = self.vals[value]
        return _is_known(item) if not _is_tensor_type(value.type()) else value in self.constant_tensors

    # ----- aten ops -----------------------------------------------------------------------------------
    def _import_aten(self, node: torch._C.Node) -> None:
        try:
            schema = torch._C.parse_schema(node.schema())
        except RuntimeError:
            raise GraphImportError(f"TorchScript node {node.kind()} has no schema "
                                   f"(at {_where(node)})") from None
        try:
            overload = _overload_of(schema)
        except AttributeError:
            raise GraphImportError(f"{node.kind()} ({schema.overload_name}) is not a registered ATen "
                                   f"operator (at {_where(node)})") from None
        inputs = list(node.inputs())
        outputs = list(node.outputs())
        if schema.is_mutable:
            overload, schema = self._functionalize(node, schema, inputs)
        for v in inputs:
            if isinstance(self.vals[v], _Uninitialized):
                raise GraphImportError(f"{node.kind()} at {_where(node)} uses a value that is never "
                                       f"initialized (a branch that raises)")
        tensor_outputs = any(_is_tensor_type(o.type()) for o in outputs)
        dynamic_scalars = any(not _is_tensor_type(v.type()) and _has_ir(self.vals[v]) for v in inputs)

        if not tensor_outputs:
            if not dynamic_scalars and self._try_fold(node, overload, schema, inputs, outputs):
                return
            self._emit_direct(node, overload, schema, inputs, outputs)
            return
        all_constant = all(v in self.constant_tensors for v in inputs if _is_tensor_type(v.type())) \
            and not dynamic_scalars and not any(_has_ir(self.vals[v]) for v in inputs
                                                if not _is_tensor_type(v.type()))
        if all_constant and not node.isNondeterministic() and \
                self._try_fold(node, overload, schema, inputs, outputs):
            return
        if self.decompose and not dynamic_scalars:
            self._import_decomposed(node, overload, schema, inputs, outputs)
        else:
            self._emit_direct(node, overload, schema, inputs, outputs)
        if _is_view(schema):
            self.view_values.update(outputs)

    def _functionalize(self, node, schema, inputs):
        functional = _functional_variant(schema)
        mutated = [v for v, a in zip(inputs, schema.arguments) if a.alias_info is not None and a.alias_info.is_write]
        if functional is None or len(mutated) != 1 or mutated[0] != inputs[0]:
            raise GraphImportError(f"in-place op {node.kind()} at {_where(node)} could not be made "
                                   f"functional (no out-of-place variant)")
        target = mutated[0]
        if target.node().kind() == "prim::Param" or target in self.view_values or target in self.constant_tensors:
            what = ("a graph input" if target.node().kind() == "prim::Param" else
                    "a view of another tensor" if target in self.view_values else "a constant")
            raise GraphImportError(f"in-place op {node.kind()} at {_where(node)} mutates {what} "
                                   f"(%{target.debugName()}): not supported, the result would be lost")
        # The mutated value is a temporary: the out-of-place result replaces it from here on.
        self._rebind_after = (target, node.output())
        return functional, functional._schema

    def _py_args(self, schema, inputs, real_constants: bool, slots: Optional[list] = None):
        """Python call arguments: known constants as they are; tensors as slots for tracing, or
        as meta tensors of their shape (the constants' real data if `real_constants`)."""
        args, kwargs = [], {}
        for arg, v in zip(schema.arguments, inputs):
            item = self._py_value(v, real_constants, slots)
            if arg.kwarg_only:
                kwargs[arg.name] = item
            else:
                args.append(item)
        return args, kwargs

    def _py_value(self, v, real_constants, slots):
        item = self.vals[v]
        example = self.examples.get(v)

        def convert(item, example):
            if isinstance(item, ir.Value) and isinstance(example, torch.Tensor):
                if slots is not None:
                    slots.append((item, example))
                    return _Slot(len(slots) - 1)
                if real_constants and v in self.constant_tensors:
                    return example
                return torch.empty(example.shape, dtype=example.dtype, device="meta")
            if isinstance(item, ir.Value):
                raise _Dynamic()
            if isinstance(item, list):
                examples = example if isinstance(example, list) else [None] * len(item)
                return [convert(i, e) for i, e in zip(item, examples)]
            if isinstance(item, tuple):
                examples = example if isinstance(example, tuple) else [None] * len(item)
                return tuple(convert(i, e) for i, e in zip(item, examples))
            return item

        return convert(item, example)

    def _try_fold(self, node, overload, schema, inputs, outputs) -> bool:
        try:
            args, kwargs = self._py_args(schema, inputs, real_constants=True)
            with torch.no_grad():
                result = overload(*args, **kwargs)
        except Exception:
            return False  # depends on tensor data (or not computable now): stays an op
        results = list(result) if len(outputs) > 1 else [result]
        for out, r in zip(outputs, results):
            if isinstance(r, torch.Tensor) and r.device.type == "meta":
                return False
        for out, r in zip(outputs, results):
            self._bind_constant(out, r) if isinstance(r, torch.Tensor) else self.vals.__setitem__(out, r)
        self._finish_mutation()
        return True

    def _import_decomposed(self, node, overload, schema, inputs, outputs) -> None:
        slots: list = []
        args, kwargs = self._py_args(schema, inputs, real_constants=False, slots=slots)

        def traced(*tensors):
            bind = lambda x: tensors[x.index] if isinstance(x, _Slot) else (
                [bind(i) for i in x] if isinstance(x, list) else
                tuple(bind(i) for i in x) if isinstance(x, tuple) else x)
            return target(*bind(args), **{k: bind(v) for k, v in kwargs.items()})

        target = _view_of_copy_op(overload) or overload

        examples = [e for _, e in slots]
        try:
            gm = make_fx(traced, decomposition_table=self._table, tracing_mode="fake")(*examples)
        except Exception as e:
            raise GraphImportError(f"{node.kind()} at {_where(node)} failed on inputs "
                                   f"({', '.join(str(TensorSpec.from_tensor(x)) for x in examples)}): "
                                   f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        gm.graph.eliminate_dead_code()
        filename, line = _source_of(node)
        importer = GraphImporter(self.types, gm)
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        for p, (value, _) in zip(placeholders, slots):
            importer.values[p] = value
        for n in gm.graph.nodes:
            if filename:
                n.meta["stack_trace"] = f'File "{filename}", line {line}, in {node.kind()}'
        importer.import_body()
        output_node = next(n for n in gm.graph.nodes if n.op == "output")
        produced = output_node.args[0]
        produced = list(produced) if isinstance(produced, (tuple, list)) and len(outputs) > 1 else [produced]
        for out, p in zip(outputs, produced):
            val = p.meta["val"] if isinstance(p, torch.fx.Node) else p
            if isinstance(p, torch.fx.Node):
                self.vals[out] = importer.values[p]
            else:
                self.vals[out] = p
            if isinstance(val, torch.Tensor):
                self.examples[out] = torch.empty(tuple(int(d) for d in val.shape), dtype=val.dtype)
        self._finish_mutation()

    def _emit_direct(self, node, overload, schema, inputs, outputs) -> None:
        operands = [self._argument(self.vals[v], a.real_type) for v, a in zip(inputs, schema.arguments)]
        result_types = []
        out_examples = self._result_examples(node, overload, schema, inputs, outputs)
        for out, example in zip(outputs, out_examples):
            if isinstance(example, torch.Tensor):
                result_types.append(self.types.tensor(TensorSpec.from_tensor(example)))
            else:
                result_types.append(self.types.get(_scalar_type_text(out.type(), node)))
        op = self.emit_schema_op(schema, operands, result_types)
        for out, res, example in zip(outputs, op.results, out_examples):
            self.vals[out] = res
            if isinstance(example, torch.Tensor):
                self.examples[out] = torch.empty(example.shape, dtype=example.dtype)
        self._finish_mutation()

    def _result_examples(self, node, overload, schema, inputs, outputs) -> list:
        """Output shapes/dtypes from running the op on meta tensors; a scalar known only at run time
        is stood in for twice with different values, and must not change the result shapes."""
        if not any(_is_tensor_type(o.type()) for o in outputs):
            return [None] * len(outputs)
        runs = []
        for standin in (1, 2):
            args, kwargs = self._py_args_with_standin(schema, inputs, standin)
            try:
                result = overload(*args, **kwargs)
            except Exception as e:
                raise GraphImportError(f"{node.kind()} at {_where(node)}: cannot infer result shapes "
                                       f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
            runs.append(list(result) if len(outputs) > 1 else [result])
        shapes = [[tuple(r.shape) if isinstance(r, torch.Tensor) else None for r in run] for run in runs]
        if shapes[0] != shapes[1]:
            raise GraphImportError(f"{node.kind()} at {_where(node)}: the result shape depends on a "
                                   f"value known only at run time (a loop index or tensor data): "
                                   f"not supported")
        return [torch.empty(r.shape, dtype=r.dtype) if isinstance(r, torch.Tensor) else None for r in runs[0]]

    def _py_args_with_standin(self, schema, inputs, standin):
        args, kwargs = [], {}
        for arg, v in zip(schema.arguments, inputs):
            try:
                item = self._py_value(v, False, None)
            except _Dynamic:
                kind = v.type().kind()
                item = float(standin) + 0.5 if kind == "FloatType" else bool(standin % 2) if kind == "BoolType" \
                    else standin
            if arg.kwarg_only:
                kwargs[arg.name] = item
            else:
                args.append(item)
        return args, kwargs

    def _finish_mutation(self) -> None:
        rebind = getattr(self, "_rebind_after", None)
        if rebind is not None:
            target, result = rebind
            self.vals[target] = self.vals[result]
            if result in self.examples:
                self.examples[target] = self.examples[result]
            self._rebind_after = None

    # ----- structured control flow -------------------------------------------------------------------------
    def _import_if(self, node: torch._C.Node) -> None:
        cond = self.vals[node.input()]
        then_block, else_block = list(node.blocks())
        outputs = list(node.outputs())
        if not _has_ir(cond):  # folded: only the taken branch
            block = then_block if cond else else_block
            self._import_block_nodes(block)
            for out, v in zip(outputs, block.outputs()):
                self.vals[out] = self.vals[v]
                if v in self.examples:
                    self.examples[out] = self.examples[v]
                if v in self.constant_tensors:
                    self.constant_tensors.add(out)
            return
        holder = ir.Operation.create("torch.prim.If", results=[], operands=[cond], regions=2)
        branch_results = []
        for region, block in zip(holder.regions, (then_block, else_block)):
            mlir_block = region.blocks.append()
            with ir.InsertionPoint(mlir_block):
                if any(n.kind() == "prim::RaiseException" for n in block.nodes()):
                    raise GraphImportError(f"prim::If at {_where(node)} raises an exception under a "
                                           f"condition known only at run time: not supported")
                self._import_block_nodes(block)
                branch_results.append([(self.vals[v], self.examples.get(v)) for v in block.outputs()])
        result_types = []
        for i, ((a, ea), (b, eb)) in enumerate(zip(*branch_results)):
            if (ea is None) != (eb is None) or (ea is not None and (ea.shape != eb.shape or ea.dtype != eb.dtype)):
                raise GraphImportError(
                    f"prim::If at {_where(node)}: result {i} differs between the branches "
                    f"({_describe(a, ea)} vs {_describe(b, eb)}); only branches producing the same "
                    f"shapes and dtypes are supported")
            result_types.append(self.types.tensor(TensorSpec.from_tensor(ea)) if ea is not None
                                else self.types.get(_scalar_type_text(outputs[i].type(), node)))
        for region, results in zip(holder.regions, branch_results):
            with ir.InsertionPoint(region.blocks[0]):
                operands = [self._argument(item, None) for item, _ in results]
                ir.Operation.create("torch.prim.If.yield", results=[], operands=operands)
        if_op = ir.Operation.create("torch.prim.If", results=result_types, operands=[cond], regions=2)
        for src, dst in zip(holder.regions, if_op.regions):
            src.blocks[0].append_to(dst)
        holder.erase()
        for i, (out, res) in enumerate(zip(outputs, if_op.results)):
            self.vals[out] = res
            if branch_results[0][i][1] is not None:
                self.examples[out] = branch_results[0][i][1]

    def _import_loop(self, node: torch._C.Node) -> None:
        inputs = list(node.inputs())
        (body,) = list(node.blocks())
        outputs = list(node.outputs())
        max_trips = self._argument(self.vals[inputs[0]], None)
        initial = self._argument(self.vals[inputs[1]], None)
        carried = inputs[2:]
        carried_operands, carried_types, carried_examples = [], [], []
        for v in carried:
            item = self.vals[v]
            if isinstance(item, (list, tuple)) or item is None or isinstance(item, _Uninitialized):
                raise GraphImportError(f"prim::Loop at {_where(node)}: loop-carried value %{v.debugName()} "
                                       f"is a {type(item).__name__}; only tensors and scalars are supported")
            operand = self._argument(item, None)
            carried_operands.append(operand)
            carried_types.append(operand.type)
            carried_examples.append(self.examples.get(v))
        int_type = self.types.get("!torch.int")
        holder = ir.Operation.create("torch.prim.Loop", results=[],
                                     operands=[max_trips, initial, *carried_operands], regions=1)
        block = holder.regions[0].blocks.append(int_type, *carried_types)
        body_inputs = list(body.inputs())
        self.vals[body_inputs[0]] = block.arguments[0]
        for v, arg, example in zip(body_inputs[1:], block.arguments[1:], carried_examples):
            self.vals[v] = arg
            if example is not None:
                self.examples[v] = torch.empty(example.shape, dtype=example.dtype)
        with ir.InsertionPoint(block):
            self._import_block_nodes(body)
            body_outputs = list(body.outputs())
            for i, (v, example) in enumerate(zip(body_outputs[1:], carried_examples)):
                got = self.examples.get(v)
                if (got is None) != (example is None) or (got is not None and (
                        got.shape != example.shape or got.dtype != example.dtype)):
                    raise GraphImportError(
                        f"prim::Loop at {_where(node)}: loop-carried value {i} changes from "
                        f"{_describe(None, example)} to {_describe(self.vals[v], got)} in the body; "
                        f"only loops keeping shapes and dtypes are supported")
            operands = [self._argument(self.vals[body_outputs[0]], None)]
            operands += [self._argument(self.vals[v], None) for v in body_outputs[1:]]
            ir.Operation.create("torch.prim.Loop.condition", results=[], operands=operands)
        loop = ir.Operation.create("torch.prim.Loop", results=carried_types,
                                   operands=[max_trips, initial, *carried_operands], regions=1)
        holder.regions[0].blocks[0].append_to(loop.regions[0])
        holder.erase()
        for out, res, example in zip(outputs, loop.results, carried_examples):
            self.vals[out] = res
            if example is not None:
                self.examples[out] = example if example is not None else None

    # ----- other prim nodes ------------------------------------------------------------------------------
    def _import_constant(self, node: torch._C.Node) -> None:
        out = node.output()
        if out.type().kind() == "FunctionType":
            self.vals[out] = None
            return
        try:
            value = out.toIValue()
        except RuntimeError as e:
            raise GraphImportError(f"prim::Constant of type {out.type()} at {_where(node)}: {e}") from None
        if isinstance(value, torch.Tensor):
            self._bind_constant(out, value)
        else:
            self.vals[out] = value

    def _import_list_construct(self, node: torch._C.Node) -> None:
        inputs = list(node.inputs())
        self.vals[node.output()] = [self.vals[v] for v in inputs]
        if inputs and all(v in self.examples for v in inputs):
            self.examples[node.output()] = [self.examples[v] for v in inputs]

    def _import_tuple_construct(self, node: torch._C.Node) -> None:
        inputs = list(node.inputs())
        self.vals[node.output()] = tuple(self.vals[v] for v in inputs)
        self.examples[node.output()] = tuple(self.examples.get(v) for v in inputs)

    def _import_unpack(self, node: torch._C.Node) -> None:
        source = node.input()
        item = self.vals[source]
        if not isinstance(item, (list, tuple)):
            raise GraphImportError(f"{node.kind()} at {_where(node)}: unpacking a list computed at run "
                                   f"time (a list-returning op) is not supported")
        examples = self.examples.get(source) or [None] * len(item)
        for out, element, example in zip(node.outputs(), item, examples):
            self.vals[out] = element
            if example is not None:
                self.examples[out] = example
            if source in self.constant_tensors:
                self.constant_tensors.add(out)

    def _import_tuple_index(self, node: torch._C.Node) -> None:
        source, index = list(node.inputs())
        i = self.vals[index]
        if _has_ir(i):
            raise GraphImportError(f"prim::TupleIndex at {_where(node)} with an index known only at run time")
        self.vals[node.output()] = self.vals[source][i]
        ex = self.examples.get(source)
        if ex is not None:
            self.examples[node.output()] = ex[i]

    def _import_get_attr(self, node: torch._C.Node) -> None:
        owner = self.vals[node.input()]
        name = node.s("name")
        try:
            value = getattr(owner, name)
        except AttributeError:
            raise GraphImportError(f"prim::GetAttr '{name}' at {_where(node)}: no such attribute "
                                   f"on {type(owner).__name__}") from None
        if isinstance(value, torch.Tensor):
            self._bind_constant(node.output(), value)
        else:
            self.vals[node.output()] = value

    def _import_num_to_tensor(self, node: torch._C.Node) -> None:
        item = self.vals[node.input()]
        if _has_ir(item):
            kind = node.input().type().kind()
            dtype = torch.float64 if kind == "FloatType" else torch.bool if kind == "BoolType" else torch.int64
            spec = TensorSpec((), dtype)
            op = ir.Operation.create("torch.prim.NumToTensor.Scalar", results=[self.types.tensor(spec)],
                                     operands=[item])
            self.vals[node.output()] = op.result
            self.examples[node.output()] = torch.empty((), dtype=dtype)
        else:
            self._bind_constant(node.output(), torch.tensor(item))

    def _import_pass_through(self, node: torch._C.Node) -> None:
        # prim::unchecked_cast (Optional refinement), aten::detach-like identities for types only
        source = node.input()
        self.vals[node.output()] = self.vals[source]
        if source in self.examples:
            self.examples[node.output()] = self.examples[source]
        if source in self.constant_tensors:
            self.constant_tensors.add(node.output())

    def _import_device_or_dtype(self, node: torch._C.Node) -> None:
        example = self.examples.get(node.input())
        if example is None:
            raise GraphImportError(f"{node.kind()} at {_where(node)} of a value without a known tensor type")
        kind = node.kind()
        self.vals[node.output()] = {"prim::device": torch.device("cpu"), "prim::dtype": example.dtype,
                                    "prim::layout": torch.strided}[kind] if kind != "prim::dtype" \
            else _scalar_type_number(example.dtype)

    def _import_uninitialized(self, node: torch._C.Node) -> None:
        self.vals[node.output()] = _Uninitialized()

    def _import_nothing(self, node: torch._C.Node) -> None:
        pass


def _scalar_type_number(dtype: torch.dtype) -> int:
    from ..types import scalar_type_number

    return scalar_type_number(dtype)


_PRIM_HANDLERS = {
    "prim::Constant": TorchScriptImporter._import_constant,
    "prim::ListConstruct": TorchScriptImporter._import_list_construct,
    "prim::TupleConstruct": TorchScriptImporter._import_tuple_construct,
    "prim::ListUnpack": TorchScriptImporter._import_unpack,
    "prim::TupleUnpack": TorchScriptImporter._import_unpack,
    "prim::TupleIndex": TorchScriptImporter._import_tuple_index,
    "prim::GetAttr": TorchScriptImporter._import_get_attr,
    "prim::NumToTensor": TorchScriptImporter._import_num_to_tensor,
    "prim::If": TorchScriptImporter._import_if,
    "prim::Loop": TorchScriptImporter._import_loop,
    "prim::unchecked_cast": TorchScriptImporter._import_pass_through,
    "prim::device": TorchScriptImporter._import_device_or_dtype,
    "prim::dtype": TorchScriptImporter._import_device_or_dtype,
    "prim::layout": TorchScriptImporter._import_device_or_dtype,
    "prim::Uninitialized": TorchScriptImporter._import_uninitialized,
    "aten::warn": TorchScriptImporter._import_nothing,
}


class _Slot:
    def __init__(self, index: int):
        self.index = index


class _Dynamic(Exception):
    """A scalar known only at run time where a Python value is needed."""


def _has_ir(item: Any) -> bool:
    if isinstance(item, ir.Value):
        return True
    if isinstance(item, (list, tuple)):
        return any(_has_ir(x) for x in item)
    return False


def _is_known(item: Any) -> bool:
    return not _has_ir(item) and not isinstance(item, _Uninitialized)


def _describe(item: Any, example: Optional[torch.Tensor]) -> str:
    if example is not None:
        return f"tensor {TensorSpec.from_tensor(example)}"
    return f"scalar {item!r}" if not isinstance(item, ir.Value) else f"scalar {item.type}"


def _scalar_type_text(t: torch._C.JitType, node: torch._C.Node) -> str:
    kind = t.kind()
    text = {"IntType": "!torch.int", "FloatType": "!torch.float", "BoolType": "!torch.bool",
            "NumberType": "!torch.number", "NoneType": "!torch.none", "StringType": "!torch.str"}.get(kind)
    if text is None:
        raise GraphImportError(f"{node.kind()} at {_where(node)}: values of type {t} computed at run "
                               f"time are not supported")
    return text


# ------------------------------------------------------------------------------------------------------
# Preparing TorchScript objects
# ------------------------------------------------------------------------------------------------------


def load_torchscript(path: str) -> torch.jit.ScriptModule:
    """`torch.jit.load` with a clear error for a missing or malformed file."""
    if not os.path.exists(path):
        raise GraphImportError(f"{path}: no such file")
    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GraphImportError(f"{path}: not a TorchScript archive saved with torch.jit.save ({first})") from None


def prepare_graph(scripted: Any) -> tuple[torch._C.Graph, Any]:
    """(functional, inlined graph, the `self` object or None) of a script module or function."""
    if isinstance(scripted, str):
        scripted = load_torchscript(scripted)
    if isinstance(scripted, torch.jit.ScriptFunction):
        graph = scripted.graph.copy()
        torch._C._jit_pass_inline(graph)
        owner = None
    elif isinstance(scripted, torch.jit.ScriptModule):
        module = scripted
        if module.training:
            module = module.eval()
        try:
            module = torch.jit.freeze(module)
        except Exception:
            pass  # modules freezing rejects still import: prim::GetAttr reads the attributes
        graph = module.forward.graph.copy()
        torch._C._jit_pass_inline(graph)
        owner = module
    elif isinstance(scripted, torch._C.Graph):
        graph, owner = scripted.copy(), None
        torch._C._jit_pass_inline(graph)
    else:
        raise GraphImportError(f"expected a torch.jit.ScriptModule, ScriptFunction, Graph or a .pt path, "
                               f"got {type(scripted).__name__} (script or trace it first)")
    torch._C._jit_pass_remove_mutation(graph)
    torch._C._jit_pass_constant_propagation(graph)
    torch._C._jit_pass_dce(graph)
    return graph, owner


def import_torchscript(scripted: Any, example_inputs: Sequence[Any], func_name: str = "main",
                       decompose: bool = True, constant_inputs: Optional[dict] = None,
                       ctx: Optional[ir.Context] = None, lift_constants: bool = False):
    """A script module/function, a TorchScript graph or a `.pt` path -> Torch dialect module.
    With `lift_constants`, returns (module, lifted tensors to pass after the inputs)."""
    graph, owner = prepare_graph(scripted)
    ctx = ctx or new_context()
    types = TypeCache(ctx)
    with ctx, ir.Location.unknown():
        module = ir.Module.create()
        importer = TorchScriptImporter(types, decompose, lift_constants)
        importer.import_graph(module, graph, list(example_inputs), func_name, self_object=owner,
                              constant_inputs=constant_inputs)
        try:
            module.operation.verify()
        except ir.MLIRError as e:
            raise GraphImportError(f"imported Torch dialect module does not verify: {e}") from None
    return (module, importer.lifted_tensors) if lift_constants else module


def compile_torchscript(scripted: Any, example_inputs: Sequence[Any], options: Any = None,
                        constant_inputs: Optional[dict] = None):
    """Import, lower and JIT-compile; returns `fn(*tensor_inputs) -> tensor or tuple of tensors`
    (non-tensor example inputs are specialized and not passed again)."""
    from ..lowering import lower_to_linalg
    from ..options import CompileOptions
    from ..runtime import compile_linalg
    from ..lowering.driver import torch_type_spec

    opts = options if isinstance(options, CompileOptions) else CompileOptions.from_dict(options)
    torch_module, lifted = import_torchscript(scripted, example_inputs, constant_inputs=constant_inputs,
                                              lift_constants=True)
    with torch_module.context:
        main = next(op for op in torch_module.body.operations if op.operation.name == "func.func")
        ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
        arg_specs = [torch_type_spec(t) for t in ftype.inputs]
        result_specs = [torch_type_spec(t) for t in ftype.results]
    if any(s is None for s in result_specs):
        raise GraphImportError(f"the script returns non-tensor values ({[str(t) for t in ftype.results]}): "
                               f"only tensor results can be compiled")
    linalg_module = lower_to_linalg(torch_module)
    compiled = compile_linalg(linalg_module, arg_specs, result_specs, opts)
    n_results = len(result_specs)

    def run(*inputs):
        tensors = [x for x in inputs if isinstance(x, torch.Tensor)]
        outs = compiled(*tensors, *lifted)
        return outs[0] if n_results == 1 else tuple(outs)

    run.torch_module = torch_module
    return run
