"""FX graph (functional Core ATen, from AOTAutograd) -> MLIR module in the Torch dialect.

The output is torch-mlir's own dialect in MLIR's generic form: `func.func @main` taking and
returning `!torch.vtensor<[2,?],f32>`, ops named `torch.aten.<op>[.<overload>]`, scalars made by
`torch.constant.*` and lists by `torch.prim.ListConstruct`. The importer holds no per-op code:
an op's name comes from its overload's schema and each argument is converted by its schema type,
as torch-mlir's `fx_importer.py` does. Everything op-specific lives in `lowering/`.

Two forms follow torch-mlir's importer exactly, so torch-mlir parses and verifies what we emit:
an ATen op its dialect does not define (`aten.squeeze.dims`, ...; the list of those it does is
`torch_mlir_op_names.py`, generated from torch-mlir) is the generic
`torch.operator "torch.aten.<op>.<overload>"`, and an op returning `Tensor[]` (`split_with_sizes`,
`unbind`, ...) has one `!torch.list<vtensor>` result that a `torch.prim.ListUnpack` splits.

Parameters and buffers reach the graph as placeholders (AOTAutograd lifts them), so they become
function arguments: weights are not copied into the IR, updates to them are seen by the compiled
code and one compiled artifact serves any weights. Constant tensors that are attributes of the
graph module (`get_attr`) become `torch.vtensor.literal`.
"""
from __future__ import annotations

import operator
import re
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.fx

from mlir import ir
from mlir.dialects import func as func_d

from ..errors import GraphImportError
from ..types import TensorSpec, scalar_type_number, torch_dialect_dtype
from .torch_mlir_op_names import TORCH_MLIR_OP_NAMES

_STACK_FRAME_RE = re.compile(r'File "([^"]+)", line (\d+)')


def mlir_op_name(target: torch._ops.OpOverload) -> str:
    """`aten.add.Tensor` -> `torch.aten.add.Tensor`; `aten.mm.default` -> `torch.aten.mm`."""
    namespace = target.namespace
    name = target._schema.name.split("::", 1)[1]
    overload = target._overloadname
    base = f"torch.{namespace}.{name}"
    return base if overload == "default" else f"{base}.{overload}"


def schema_op_name(schema: torch._C.FunctionSchema) -> str:
    """`aten::add.Tensor` -> `torch.aten.add.Tensor`; an empty overload -> `torch.aten.mm`."""
    namespace, name = schema.name.split("::", 1)
    base = f"torch.{namespace}.{name}"
    overload = schema.overload_name
    return base if overload in ("", "default") else f"{base}.{overload}"


def new_context() -> ir.Context:
    """A context in which the (unregistered) Torch dialect's generic form parses and verifies."""
    ctx = ir.Context()
    ctx.allow_unregistered_dialects = True
    return ctx


def node_location(node: torch.fx.Node) -> ir.Location:
    """`loc("<node name>"("<file>":<line>:0))` from the innermost user frame of the stack trace."""
    trace = node.meta.get("stack_trace") or ""
    frames = _STACK_FRAME_RE.findall(trace)
    if frames:
        filename, line = frames[-1]
        return ir.Location.name(node.name, childLoc=ir.Location.file(filename, int(line), 0))
    return ir.Location.name(node.name)


def source_line(node: torch.fx.Node) -> str:
    """`file:line` of the user's code for a node, or '' when the trace is missing."""
    frames = _STACK_FRAME_RE.findall(node.meta.get("stack_trace") or "")
    return f"{frames[-1][0]}:{frames[-1][1]}" if frames else ""


class TypeCache:
    """Memoized MLIR types of the Torch dialect (parsed once per context)."""

    def __init__(self, ctx: ir.Context):
        self.ctx = ctx
        self._cache: dict[str, ir.Type] = {}

    def get(self, text: str) -> ir.Type:
        t = self._cache.get(text)
        if t is None:
            t = self._cache[text] = ir.Type.parse(text, self.ctx)
        return t

    def tensor(self, spec: TensorSpec) -> ir.Type:
        return self.get(spec.torch_type())

    def of_value(self, val: Any) -> ir.Type:
        """The Torch type of a node's `meta['val']`: FakeTensor, SymInt/int, float, bool."""
        if isinstance(val, torch.Tensor):
            return self.tensor(TensorSpec.from_tensor(val))
        if isinstance(val, (bool, torch.SymBool)):
            return self.get("!torch.bool")
        if isinstance(val, (int, torch.SymInt)):
            return self.get("!torch.int")
        if isinstance(val, (float, torch.SymFloat)):
            return self.get("!torch.float")
        if val is None:
            return self.get("!torch.none")
        raise GraphImportError(f"no Torch dialect type for a value of type {type(val).__name__}")


class TorchOpEmitter:
    """Schema-driven emission of Torch dialect ops, shared by the FX and TorchScript importers.

    `_argument(value, jit_type)` converts one op argument by its schema type (Tensor, int, float,
    bool, int[], Optional, ...) into an `ir.Value`; a subclass resolves references to values of
    its own graph with `_graph_value` (FX nodes, TorchScript values). Emits at the current
    insertion point and location.
    """

    def __init__(self, types: TypeCache):
        self.types = types

    def _graph_value(self, value: Any) -> Optional[ir.Value]:
        """The MLIR value bound to `value` if it is a value of the graph being imported."""
        return None

    def emit_schema_op(self, schema: torch._C.FunctionSchema, operands: Sequence[ir.Value],
                       result_types: Sequence[ir.Type]) -> ir.Operation:
        """`torch.<ns>.<name>[.<overload>]` named from the schema, as torch-mlir names it; an op
        torch-mlir's dialect does not define is `torch.operator` with that name as its `name`
        attribute (torch-mlir's `_emit_operation`)."""
        name = schema_op_name(schema)
        if name in TORCH_MLIR_OP_NAMES:
            return ir.Operation.create(name, results=list(result_types), operands=list(operands))
        return ir.Operation.create("torch.operator", results=list(result_types), operands=list(operands),
                                   attributes={"name": ir.StringAttr.get(name)})

    # ----- arguments by schema type ---------------------------------------------------------
    def _argument(self, value: Any, jit_type: Optional[torch._C.JitType]) -> ir.Value:
        bound = self._graph_value(value)
        if bound is not None:
            return self._bool_as(bound, jit_type)
        kind = jit_type.kind() if jit_type is not None else None
        if kind == "OptionalType":
            if value is None:
                return self._constant("torch.constant.none", None, "!torch.none")
            return self._argument(value, jit_type.getElementType())
        if kind == "ListType":
            elem_type = jit_type.getElementType()
            elements = [self._argument(v, elem_type) for v in value]
            list_type = self._list_type(elem_type, elements)
            return ir.Operation.create("torch.prim.ListConstruct", results=[list_type],
                                       operands=elements).result
        if kind == "TensorType" and isinstance(value, complex):
            # The Torch dialect has no complex scalar constant: a 0-d complex128 literal (promotes
            # like the wrapped number to the result's complex dtype; computed in double precision).
            from torch._subclasses.fake_tensor import unset_fake_temporarily

            with unset_fake_temporarily():
                return self._tensor_literal(torch.tensor(value, dtype=torch.complex128))
        if kind == "TensorType" and not isinstance(value, torch.Tensor):
            # A Python scalar where the schema wants a tensor: a 0-d tensor, as torch-mlir does.
            scalar = self._argument(value, None)
            spec = TensorSpec((), torch.float64 if isinstance(value, float) else
                              torch.bool if isinstance(value, bool) else torch.int64)
            return ir.Operation.create("torch.prim.NumToTensor.Scalar",
                                       results=[self.types.tensor(spec)], operands=[scalar]).result
        if isinstance(value, torch.Tensor):
            return self._tensor_literal(value)
        if value is None:
            return self._constant("torch.constant.none", None, "!torch.none")
        if isinstance(value, torch.dtype):
            return self._constant("torch.constant.int", scalar_type_number(value), "!torch.int")
        if isinstance(value, torch.device):
            return self._constant("torch.constant.device", str(value), "!torch.Device")
        if isinstance(value, torch.memory_format):
            return self._constant("torch.constant.int", _MEMORY_FORMATS[value], "!torch.int")
        if isinstance(value, torch.layout):
            return self._constant("torch.constant.int", _LAYOUTS[value], "!torch.int")
        if isinstance(value, bool):
            return self._bool_as(self._constant("torch.constant.bool", value, "!torch.bool"), jit_type)
        if isinstance(value, int):
            return self._constant("torch.constant.int", value, "!torch.int")
        if isinstance(value, float):
            return self._constant("torch.constant.float", value, "!torch.float")
        if isinstance(value, str):
            return self._constant("torch.constant.str", value, "!torch.str")
        if isinstance(value, complex):
            raise GraphImportError(f"complex Python number {value!r} as a scalar argument: the Torch dialect "
                                   "has no complex scalar constant (pass it as a tensor)")
        if isinstance(value, (list, tuple)):
            elements = [self._argument(v, None) for v in value]
            return ir.Operation.create("torch.prim.ListConstruct",
                                       results=[self._list_type(None, elements)],
                                       operands=elements).result
        raise GraphImportError(f"cannot import argument {value!r} of type {type(value).__name__}")

    def _bool_as(self, value: ir.Value, jit_type: Optional[torch._C.JitType]) -> ir.Value:
        """A `!torch.bool` where the schema wants a float, an int or a Scalar goes through
        `torch.aten.Float.bool` / `torch.aten.Int.bool`, as torch-mlir's `_convert_type` does
        (its dialect types a Scalar operand as int or float, never bool: `full(s, True)`)."""
        if jit_type is None or not isinstance(value, ir.Value) or str(value.type) != "!torch.bool":
            return value
        kind = jit_type.kind()
        if kind == "FloatType":
            name, result = "torch.aten.Float.bool", "!torch.float"
        elif kind in ("IntType", "SymIntType", "NumberType"):
            name, result = "torch.aten.Int.bool", "!torch.int"
        else:
            return value
        return ir.Operation.create(name, results=[self.types.get(result)], operands=[value]).result

    def _list_type(self, elem_type, elements: Sequence[ir.Value]) -> ir.Type:
        if elements:
            element_texts = {str(e.type) for e in elements}
            if len(element_texts) == 1:
                text = element_texts.pop()
                if text.startswith("!torch.vtensor"):
                    text = "!torch.vtensor"
                if elem_type is not None and elem_type.kind() == "OptionalType":
                    return self.types.get(f"!torch.list<optional<{text[len('!torch.'):]}>>")
                return self.types.get(f"!torch.list<{text[len('!torch.'):]}>")
            if elem_type is not None and elem_type.kind() == "OptionalType":
                return self.types.get("!torch.list<optional<vtensor>>")
        kind = elem_type.kind() if elem_type is not None else "IntType"
        name = {"IntType": "int", "SymIntType": "int", "FloatType": "float", "BoolType": "bool",
                "TensorType": "vtensor", "OptionalType": "optional<vtensor>"}.get(kind, "int")
        return self.types.get(f"!torch.list<{name}>")

    def _constant(self, op_name: str, value: Any, type_text: str) -> ir.Value:
        # Constants are not uniqued: each use site gets its own, so every op keeps its location.
        attributes = {}
        if op_name == "torch.constant.int":
            attributes["value"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), value)
        elif op_name == "torch.constant.float":
            attributes["value"] = ir.FloatAttr.get(ir.F64Type.get(), value)
        elif op_name == "torch.constant.bool":
            attributes["value"] = ir.BoolAttr.get(value)
        elif op_name in ("torch.constant.str", "torch.constant.device"):
            attributes["value"] = ir.StringAttr.get(value)
        return ir.Operation.create(op_name, results=[self.types.get(type_text)],
                                   attributes=attributes).result

    def _tensor_literal(self, tensor: torch.Tensor) -> ir.Value:
        spec = TensorSpec(tuple(tensor.shape), tensor.dtype)
        if tensor.is_complex():
            # MLIR's Python bindings cannot read a complex dense attribute back (reading one
            # aborts the process): the literal is the real view [..., 2], made complex again.
            from torch._subclasses.fake_tensor import unset_fake_temporarily

            with unset_fake_temporarily():
                parts = torch.view_as_real(tensor.detach().resolve_conj())
            return ir.Operation.create("torch.aten.view_as_complex", results=[self.types.tensor(spec)],
                                       operands=[self._tensor_literal(parts)]).result
        attr = dense_elements_attr(tensor)
        return ir.Operation.create("torch.vtensor.literal", results=[self.types.tensor(spec)],
                                   attributes={"value": attr}).result


class GraphImporter(TorchOpEmitter):
    """Walks one FX graph in order and emits its ops into a `func.func`."""

    def __init__(self, types: TypeCache, graph_module: torch.fx.GraphModule):
        super().__init__(types)
        self.gm = graph_module
        self.values: dict[torch.fx.Node, Any] = {}  # node -> ir.Value or tuple of them
        # node of an op returning Tensor[] -> its `!torch.list<vtensor>` result (`values` holds
        # the `torch.prim.ListUnpack` results, which `getitem` picks from).
        self.list_values: dict[torch.fx.Node, ir.Value] = {}
        self._constant_cache: dict[tuple, ir.Value] = {}

    def _graph_value(self, value: Any) -> Optional[ir.Value]:
        if not isinstance(value, torch.fx.Node):
            return None
        listed = self.list_values.get(value)
        return listed if listed is not None else self.values[value]

    # ----- entry ---------------------------------------------------------------------------
    def import_into(self, module: ir.Module, func_name: str,
                    results: Optional[Sequence[Any]] = None,
                    literal_inputs: Optional[dict] = None) -> func_d.FuncOp:
        """Emit `func.func @<func_name>`; `results` overrides which values it returns
        (default: the graph's outputs); placeholders in `literal_inputs` (node -> tensor) become
        `torch.vtensor.literal`s instead of function arguments."""
        graph = self.gm.graph
        literal_inputs = literal_inputs or {}
        placeholders = [n for n in graph.nodes if n.op == "placeholder" and n not in literal_inputs]
        output_node = next(n for n in graph.nodes if n.op == "output")
        arg_types = [self.types.of_value(_node_val(n)) for n in placeholders]
        result_nodes = list(results) if results is not None else _flatten_outputs(output_node.args[0])
        result_types = [self.types.of_value(_node_val(n)) if isinstance(n, torch.fx.Node)
                        else self.types.of_value(n) for n in result_nodes]
        with ir.InsertionPoint(module.body), ir.Location.unknown():
            fn = func_d.FuncOp(func_name, ir.FunctionType.get(arg_types, result_types))
            block = fn.add_entry_block()
        for node, arg in zip(placeholders, block.arguments):
            self.values[node] = arg
        with ir.InsertionPoint(block):
            for node, tensor in literal_inputs.items():
                with node_location(node):
                    self.values[node] = self._tensor_literal(tensor)
            self.import_body()
            with node_location(output_node):
                func_d.ReturnOp([self._argument(n, None) for n in result_nodes])
        return fn

    def import_body(self) -> None:
        """Emit every node but placeholders and the output at the current insertion point
        (placeholders must be bound in `self.values` already)."""
        for node in self.gm.graph.nodes:
            if node.op in ("placeholder", "output"):
                continue
            with node_location(node):
                if node.op == "call_function":
                    self._import_call(node)
                elif node.op == "get_attr":
                    self.values[node] = self._tensor_literal(_fetch_attr(self.gm, node.target))
                else:
                    raise GraphImportError(f"FX node kind '{node.op}' ({node.format_node()}) "
                                           f"is not supported by the importer")

    # ----- node kinds ----------------------------------------------------------------------
    def _import_call(self, node: torch.fx.Node) -> None:
        target = node.target
        if target is operator.getitem:
            source, index = node.args
            self.values[node] = self.values[source][index]
            return
        if isinstance(target, torch._ops.OpOverloadPacket):
            target = target.default
        if isinstance(target, torch._ops.OpOverload):
            self._import_op_overload(node, target)
            return
        symbolic = _SYMBOLIC_OPS.get(target)
        if symbolic is not None:
            self._import_symbolic(node, *symbolic)
            return
        raise GraphImportError(
            f"cannot import call to {getattr(target, '__name__', target)!r} "
            f"(node {node.name}, at {source_line(node) or 'unknown location'}): "
            f"only ATen op overloads reach the importer after AOTAutograd")

    def _import_op_overload(self, node: torch.fx.Node, target: torch._ops.OpOverload) -> None:
        schema = target._schema
        operands = []
        for i, parg in enumerate(schema.arguments):
            if parg.kwarg_only and parg.name in node.kwargs:
                value = node.kwargs[parg.name]
            elif i < len(node.args):
                value = node.args[i]
            elif parg.name in node.kwargs:
                value = node.kwargs[parg.name]
            elif parg.has_default_value():
                value = parg.default_value
            else:
                raise GraphImportError(f"{target}: missing argument '{parg.name}' in {node.format_node()}")
            operands.append(self._argument(value, parg.real_type))
        val = node.meta.get("val")
        returns = list(schema.returns)
        if len(returns) == 1 and isinstance(val, (tuple, list)) and val \
                and all(isinstance(v, torch.Tensor) for v in val):
            # `Tensor[]`: one list result, unpacked at once (the list's length is static).
            op = self.emit_schema_op(schema, operands, [self.types.get("!torch.list<vtensor>")])
            unpack = ir.Operation.create("torch.prim.ListUnpack", operands=[op.result],
                                         results=[self.types.of_value(v) for v in val])
            self.list_values[node] = op.result
            self.values[node] = tuple(unpack.results)
            return
        if len(returns) == 1 and not isinstance(val, (tuple, list)):
            result_types = [self.types.of_value(val)]
        else:
            vals = list(val) if isinstance(val, (tuple, list)) else [val]
            result_types = [self.types.of_value(v) for v in vals]
        op = self.emit_schema_op(schema, operands, result_types)
        self.values[node] = op.results[0] if len(op.results) == 1 and not isinstance(val, (tuple, list)) \
            else tuple(op.results)

    def _import_symbolic(self, node: torch.fx.Node, op_name: str, result_type: str) -> None:
        operands = [self._argument(a, None) for a in node.args]
        op = ir.Operation.create(op_name, results=[self.types.get(result_type)], operands=operands)
        self.values[node] = op.result


def dense_elements_attr(tensor: torch.Tensor) -> ir.DenseElementsAttr:
    """A `dense<...> : tensor<...xT>` attribute holding a copy of a constant tensor's values."""
    from ..types import builtin_dtype

    from torch._subclasses.fake_tensor import unset_fake_temporarily

    # AOTAutograd may still have its FakeTensorMode active: read the real constant outside it.
    with unset_fake_temporarily():
        t = tensor.detach().contiguous().cpu()
        shaped = ir.RankedTensorType.get(list(t.shape), ir.Type.parse(builtin_dtype(t.dtype)))
        if t.dtype == torch.bool:
            # MLIR takes i1 data bit-packed, little-endian within each byte.
            array = np.packbits(t.numpy().reshape(-1), bitorder="little")
        elif t.dtype == torch.bfloat16:
            array = t.view(torch.int16).numpy()
        else:
            array = t.numpy()
    return ir.DenseElementsAttr.get(array, type=shaped.element_type, shape=list(t.shape))


def _fetch_attr(gm: torch.fx.GraphModule, target: str) -> torch.Tensor:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, torch.Tensor):
        raise GraphImportError(f"get_attr '{target}' is a {type(obj).__name__}, not a tensor")
    return obj


def _node_val(node: torch.fx.Node) -> Any:
    if "val" not in node.meta:
        raise GraphImportError(f"node {node.name} has no meta['val']: run FakeTensor propagation first")
    return node.meta["val"]


def _flatten_outputs(out: Any) -> list:
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _flatten_outputs(o)]
    return [out]


# SymInt arithmetic that Dynamo leaves as Python operators; imported as torch-mlir's scalar ops.
_SYMBOLIC_OPS: dict[Callable, tuple[str, str]] = {
    operator.add: ("torch.aten.add.int", "!torch.int"),
    operator.sub: ("torch.aten.sub.int", "!torch.int"),
    operator.mul: ("torch.aten.mul.int", "!torch.int"),
    operator.floordiv: ("torch.aten.floordiv.int", "!torch.int"),
    operator.mod: ("torch.aten.remainder.int", "!torch.int"),
    operator.eq: ("torch.aten.eq.int", "!torch.bool"),
    operator.ne: ("torch.aten.ne.int", "!torch.bool"),
    operator.lt: ("torch.aten.lt.int", "!torch.bool"),
    operator.le: ("torch.aten.le.int", "!torch.bool"),
    operator.gt: ("torch.aten.gt.int", "!torch.bool"),
    operator.ge: ("torch.aten.ge.int", "!torch.bool"),
}

_MEMORY_FORMATS = {torch.contiguous_format: 0, torch.preserve_format: 1, torch.channels_last: 2,
                   torch.channels_last_3d: 3}
_LAYOUTS = {torch.strided: 0, torch.sparse_coo: 1}


class FxImporter:
    """Owns one MLIR context and module; imports graph modules into it as functions."""

    def __init__(self, ctx: Optional[ir.Context] = None):
        self.ctx = ctx or new_context()
        self.types = TypeCache(self.ctx)
        with self.ctx, ir.Location.unknown():
            self.module = ir.Module.create()

    def import_graph_module(self, gm: torch.fx.GraphModule, func_name: str = "main",
                            results: Optional[Sequence[Any]] = None) -> func_d.FuncOp:
        with self.ctx:
            fn = GraphImporter(self.types, gm).import_into(self.module, func_name, results)
            if not self.module.operation.verify():
                raise GraphImportError("imported Torch dialect module does not verify")
            return fn


    def import_exported_program(self, program: "torch.export.ExportedProgram", func_name: str = "main",
                                parameters: str = "literals") -> list[torch.Tensor]:
        """Import an `ExportedProgram` (already decomposed to Core ATen) as `func.func @<name>`.

        `parameters="literals"` (torch-mlir's `import_frozen_program`): parameters, buffers and
        constant tensors become `torch.vtensor.literal`s, so the module is self-contained (what
        `export_and_import` prints and the command line runs). `parameters="arguments"`: they
        stay leading function arguments, in the graph's order, and are returned (the tensors to
        pass first at each call), so weights are not copied into the IR and updates are seen.
        Only user outputs are returned; buffer mutations (training-mode batch norm) are rejected.
        """
        from torch.export.graph_signature import InputKind, OutputKind

        if parameters not in ("literals", "arguments"):
            raise ValueError(f"parameters must be 'literals' or 'arguments', not {parameters!r}")
        signature = program.graph_signature
        gm = program.graph_module
        mutated = [s.target for s in signature.output_specs if s.kind != OutputKind.USER_OUTPUT]
        if mutated:
            raise GraphImportError(f"the exported program mutates {mutated}: only programs without "
                                   f"buffer mutations import (export the module in eval() mode)")
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        lifted: dict[torch.fx.Node, torch.Tensor] = {}
        for spec, node in zip(signature.input_specs, placeholders):
            if spec.kind == InputKind.USER_INPUT:
                continue
            if spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
                tensor = program.state_dict[spec.target] if spec.target in program.state_dict \
                    else program.constants[spec.target]
            elif spec.kind == InputKind.CONSTANT_TENSOR:
                tensor = program.constants[spec.target]
            else:
                raise GraphImportError(f"exported program input {spec.arg} of kind {spec.kind.name} "
                                       f"is not supported")
            lifted[node] = tensor.detach()
        output_node = next(n for n in gm.graph.nodes if n.op == "output")
        results = [a for a, spec in zip(_flatten_outputs(output_node.args[0]), signature.output_specs)
                   if spec.kind == OutputKind.USER_OUTPUT]
        with self.ctx:
            importer = GraphImporter(self.types, gm)
            importer.import_into(self.module, func_name, results,
                                 literal_inputs=lifted if parameters == "literals" else None)
            if not self.module.operation.verify():
                raise GraphImportError("imported Torch dialect module does not verify")
        return [] if parameters == "literals" else list(lifted.values())


def import_fx_graph(gm: torch.fx.GraphModule, func_name: str = "main",
                    ctx: Optional[ir.Context] = None) -> ir.Module:
    """Import one FX graph module (nodes carrying `meta['val']`) as a Torch dialect module."""
    importer = FxImporter(ctx)
    importer.import_graph_module(gm, func_name)
    return importer.module
