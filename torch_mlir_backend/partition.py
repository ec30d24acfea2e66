"""Partial graphs: compile the regions of an FX graph we can lower, run the rest eagerly.

`compile_graph(gm, example_inputs, options, compile_region)` is what the Dynamo backend calls for
every AOTAutograd graph. Each `call_function` node is checked against the lowering table
(`lowering.registry.LOWERINGS`: a rule exists, and the rule's declared dtypes accept the node's
tensor operands and results, by the same `check_dtypes` the driver runs). A graph whose nodes all
pass is compiled whole by `compile_region` (`backend.compile_fx_graph`). Otherwise torch.fx's
`CapabilityBasedPartitioner` splits it: supported regions become submodules compiled by
`compile_region`, unsupported nodes stay in the outer graph and run as the ATen ops they are.
A rule that rejects its inputs only while lowering (`ctx.reject`, e.g. a shape it cannot handle)
is found the same way: the region's UnsupportedOpError names the op and line, those nodes are
marked unsupported and the graph is partitioned again.

Each fallback warns once per process (`EagerFallbackWarning`, naming the op, its input types and
the user's source line); `options.strict` raises UnsupportedOpError instead. A recorder
(`recording()`, used by `explain.py`) sees every graph, region and fallback.
"""
from __future__ import annotations

import contextlib
import operator
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

import torch
import torch.fx
from torch.fx.passes.infra.partitioner import CapabilityBasedPartitioner
from torch.fx.passes.operator_support import OperatorSupportBase

from .errors import UnsupportedOpError
from .importers.fx_importer import mlir_op_name, source_line
from .lowering.data_dependent import drop_restated_asserts, unbounded_size_reason
from .lowering.registry import LOWERINGS, LoweringContext, check_dtypes
from .options import CompileOptions
from .types import TensorSpec, format_specs

# How often one graph is re-partitioned after a rule rejected its inputs while lowering.
MAX_REPARTITIONS = 16


class EagerFallbackWarning(UserWarning):
    """An op of a compiled graph runs in eager PyTorch because it cannot be lowered."""


@dataclass(frozen=True)
class Fallback:
    """One node that runs eagerly, and why."""

    node: str
    op: str
    reason: str
    input_types: str
    source_line: str

    def __str__(self) -> str:
        where = f" at {self.source_line}" if self.source_line else ""
        return f"{self.op}({self.input_types}){where}: {self.reason}"


@dataclass
class GraphRecord:
    """What `compile_graph` did with one AOTAutograd graph."""

    name: str
    num_ops: int
    regions: list = field(default_factory=list)  # per compiled region: the ATen ops in it
    fallbacks: list = field(default_factory=list)  # Fallback per eager node


# -- capability check --------------------------------------------------------------------------


def _tensor_spec(value: Any) -> Optional[TensorSpec]:
    return TensorSpec.from_tensor(value) if isinstance(value, torch.Tensor) else None


def _operand_specs(node: torch.fx.Node) -> list:
    """Specs of the node's direct tensor operands, as the driver sees them (lists are not tensors)."""
    specs = []
    for arg in list(node.args) + list(node.kwargs.values()):
        if isinstance(arg, torch.fx.Node):
            specs.append(_tensor_spec(arg.meta.get("val")))
    return specs


def _result_specs(node: torch.fx.Node) -> list:
    val = node.meta.get("val")
    vals = val if isinstance(val, (tuple, list)) else [val]
    return [_tensor_spec(v) for v in vals]


def _input_types(node: torch.fx.Node) -> str:
    try:
        return format_specs(_operand_specs(node))
    except Exception:  # a dtype without a spec (float8, ...): still name the inputs
        return ", ".join(str(getattr(a.meta.get("val"), "dtype", "?")) for a in node.all_input_nodes)


def _importer_symbolic_ops() -> dict:
    from .importers import fx_importer

    return getattr(fx_importer, "_SYMBOLIC_OPS", {})


def unsupported_reason(node: torch.fx.Node) -> Optional[str]:
    """Why `node` cannot be lowered (None when it can, as far as the rule's declared dtypes say)."""
    target = node.target
    if target is operator.getitem:
        return None  # the partitioner keeps it with its producer
    if target in _importer_symbolic_ops():
        return None  # SymInt arithmetic: the importer itself lowers it
    if not isinstance(target, torch._ops.OpOverload):
        return f"no lowering rule for {getattr(target, '__name__', target)} (not an ATen overload)"
    unbounded = unbounded_size_reason(node)
    if unbounded is not None:
        return unbounded
    rule = LOWERINGS.get(mlir_op_name(target))
    if rule is None:
        return "no lowering rule for this op"
    try:
        in_specs, out_specs = _operand_specs(node), _result_specs(node)
    except TypeError as e:  # a dtype the compiler has no type for
        return str(e)
    ctx = LoweringContext(mlir_op_name(target), target, in_specs, out_specs, location=None)
    try:
        check_dtypes(ctx, rule)
    except UnsupportedOpError as e:
        return e.reason
    return None


class LoweringSupport(OperatorSupportBase):
    """The partitioner's view of the lowering table, with nodes found unsupported while lowering."""

    def __init__(self, rejected: dict):
        self.rejected = rejected  # node name -> reason

    def is_node_supported(self, submodules, node: torch.fx.Node) -> bool:
        return node.name not in self.rejected and unsupported_reason(node) is None


# -- warnings and recording --------------------------------------------------------------------

_warned: set = set()
_warned_lock = threading.Lock()
_recorder = threading.local()


def _warn_once(fallback: Fallback) -> None:
    key = (fallback.op, fallback.source_line, fallback.reason)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(f"torch_mlir: {fallback} -- this op runs in eager PyTorch", EagerFallbackWarning,
                  stacklevel=2)


@contextlib.contextmanager
def recording() -> Iterator[list]:
    """Collect a GraphRecord for every graph compiled by this thread inside the block."""
    previous = getattr(_recorder, "records", None)
    records: list = []
    _recorder.records = records
    try:
        yield records
    finally:
        _recorder.records = previous


def _record(record: GraphRecord) -> None:
    records = getattr(_recorder, "records", None)
    if records is not None:
        records.append(record)


# -- compiling --------------------------------------------------------------------------------


def _ops_of(gm: torch.fx.GraphModule) -> list:
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]


def _fallback(node: torch.fx.Node, reason: str) -> Fallback:
    return Fallback(node.name, str(node.target), reason, _input_types(node), source_line(node))


def _matching_nodes(gm: torch.fx.GraphModule, error: UnsupportedOpError) -> list:
    """The nodes an UnsupportedOpError raised while lowering is about (op name and source line)."""
    nodes = [n for n in gm.graph.nodes if n.op == "call_function" and str(n.target) == error.op_name]
    if error.location:
        exact = [n for n in nodes if source_line(n) == error.location]
        nodes = exact or nodes
    return nodes


class CompiledRegion:
    """A fused submodule of the partitioned graph, replaced by its compiled (boxed) graph."""

    def __init__(self, compiled: Callable, single_output: bool):
        self.compiled = compiled
        self.single_output = single_output

    def __call__(self, *args):
        results = self.compiled(list(args))
        return results[0] if self.single_output else tuple(results)


class PartitionedGraph:
    """A boxed callable: the outer FX graph with compiled regions; the other nodes run eagerly."""

    _boxed_call = True

    def __init__(self, gm: torch.fx.GraphModule, regions: Sequence[CompiledRegion], fallbacks: Sequence[Fallback]):
        # Also on the instance: Dynamo wraps backward callables with `functools.wraps`, which
        # copies the instance `__dict__` only.
        self._boxed_call = True
        self.gm = gm
        self.regions = tuple(regions)
        self.fallbacks = tuple(fallbacks)

    def __call__(self, args: list):
        inputs = list(args)
        args.clear()
        return self.gm(*inputs)


def _copy(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of the graph (same node names, shared attributes) for the partitioner to rewrite."""
    graph = torch.fx.Graph()
    graph.output(graph.graph_copy(gm.graph, {}))
    return torch.fx.GraphModule(gm, graph)


def _partition(gm: torch.fx.GraphModule, rejected: dict, options: CompileOptions,
               compile_region: Callable) -> tuple:
    gm = _copy(gm)  # fusing rewrites the graph in place; a retry starts from the original
    partitioner = CapabilityBasedPartitioner(gm, LoweringSupport(rejected), allows_single_node_partition=True)
    partitions = partitioner.propose_partitions()
    fused = partitioner.fuse_partitions(partitions, prefix="mlir_region_")
    regions, region_ops = [], []
    for node in list(fused.graph.nodes):
        if node.op != "call_module" or not node.target.startswith("mlir_region_"):
            continue
        sub = getattr(fused, node.target)
        example = [n.meta.get("val") for n in sub.graph.nodes if n.op == "placeholder"]
        out = next(n for n in sub.graph.nodes if n.op == "output")
        compiled = compile_region(sub, example, options)
        region = CompiledRegion(compiled, single_output=not isinstance(out.args[0], (tuple, list)))
        delattr(fused, node.target)
        setattr(fused, node.target, region)
        regions.append(region)
        region_ops.append(_ops_of(sub))
    return fused, regions, region_ops


def compile_graph(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], options: CompileOptions,
                  compile_region: Callable, name: str = "graph") -> Callable:
    """Compile `gm` whole when every op can be lowered, else partition it (see module docstring)."""
    drop_restated_asserts(gm)  # PyTorch's view/size arithmetic, not user checks: see data_dependent.py
    rejected: dict = {}
    for node in gm.graph.nodes:
        if node.op == "call_function":
            reason = unsupported_reason(node)
            if reason is not None:
                rejected[node.name] = reason
    nodes = {n.name: n for n in gm.graph.nodes}
    for _ in range(MAX_REPARTITIONS):
        fallbacks = [_fallback(nodes[n], r) for n, r in rejected.items()]
        if fallbacks and options.strict:
            f = fallbacks[0]
            raise UnsupportedOpError(f.op, f.reason + " (strict mode: no eager fallback)",
                                     f.input_types, f.source_line)
        try:
            if not rejected:
                compiled = compile_region(gm, example_inputs, options)
                _record(GraphRecord(name, len(_ops_of(gm)), [_ops_of(gm)], []))
                return compiled
            fused, regions, region_ops = _partition(gm, rejected, options, compile_region)
        except UnsupportedOpError as e:
            if options.strict:
                raise
            culprits = [n for n in _matching_nodes(gm, e) if n.name not in rejected]
            if not culprits:
                raise
            for n in culprits:
                rejected[n.name] = e.reason
            continue
        if getattr(_recorder, "records", None) is None:  # explain() reports them instead
            for f in fallbacks:
                _warn_once(f)
        _record(GraphRecord(name, len(_ops_of(gm)), region_ops, fallbacks))
        return PartitionedGraph(fused, regions, fallbacks)
    raise UnsupportedOpError(name, f"gave up after {MAX_REPARTITIONS} re-partitions")
