"""The Dynamo backend `torch_mlir`: AOTAutograd -> Core ATen FX graphs -> Torch dialect ->
linalg-on-tensors -> LLVM JIT.

Registered through the `torch_dynamo_backends` entry point, so
`torch.compile(model, backend="torch_mlir", options={...})` needs no import of this package.
AOTAutograd (functorch) produces functional Core ATen graphs for forward and backward, with
PyTorch's Core ATen decomposition table (plus `decompositions.EXTRA`); each graph is compiled by
`compile_fx_graph` into a boxed callable.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
import torch.fx
from functorch.compile import make_boxed_func
from torch._dynamo.backends.common import aot_autograd

from .decompositions import decomposition_table
from .dynamic_shapes import ShapePlan, has_symbolic_sizes, symbolic_shapes
from .errors import TorchMlirBackendError
from .importers.fx_importer import FxImporter
from .lowering import lower_to_linalg
from .options import CompileOptions
from .partition import compile_graph
from .runtime import ArgLayout, compile_linalg
from .types import TensorSpec


@dataclass(frozen=True)
class OutputSlot:
    """Where one output of the FX graph comes from at run time."""

    kind: str  # "result" (an MLIR result), "input" (a graph input, returned as is), "constant",
    # "symint" (a symbolic size, computed in Python by `value(args)`)
    index: int = 0
    value: Any = None


class CompiledFxGraph:
    """A boxed callable running one compiled FX graph: `run(args_list) -> outputs`.

    Only tensors computed by the graph go through MLIR; graph inputs that are returned as they
    are (AOTAutograd saves many for backward) and constant outputs are handed back directly.
    """

    _boxed_call = True

    def __init__(self, compiled, tensor_arg_positions: Sequence[int], outputs: Sequence[OutputSlot],
                 pack_inputs: Optional[Callable[[list], list]] = None):
        # Also an instance attribute: Dynamo wraps backward callables with `functools.wraps`,
        # which copies the instance `__dict__` but not class attributes; without it AOTAutograd
        # would call the backward unboxed.
        self._boxed_call = True
        self.compiled = compiled
        self.tensor_arg_positions = tuple(tensor_arg_positions)
        self.pack_inputs = pack_inputs  # when SymInt inputs are passed (as 0-d tensors)
        self.outputs = tuple(outputs)
        self._all_results = all(o.kind == "result" for o in outputs) and \
            [o.index for o in outputs] == list(range(len(outputs)))

    def __call__(self, args: list) -> list:
        if self.pack_inputs is None:
            inputs = [args[i] for i in self.tensor_arg_positions]
        else:
            inputs = self.pack_inputs(args)
        results = self.compiled(*inputs)
        if self._all_results:
            args.clear()
            return results
        out = []
        for slot in self.outputs:
            if slot.kind == "result":
                out.append(results[slot.index])
            elif slot.kind == "input":
                out.append(args[slot.index])
            elif slot.kind == "symint":
                out.append(slot.value(args))
            else:
                out.append(slot.value)
        args.clear()
        return out


def _plan_outputs(gm: torch.fx.GraphModule):
    """Split the graph's outputs into MLIR results, passed-through inputs and constants."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    position = {n: i for i, n in enumerate(placeholders)}
    output_node = next(n for n in gm.graph.nodes if n.op == "output")
    items = output_node.args[0]
    items = list(items) if isinstance(items, (tuple, list)) else [items]
    slots, result_nodes = [], []
    for item in items:
        if isinstance(item, torch.fx.Node) and item.op == "placeholder":
            slots.append(OutputSlot("input", position[item]))
        elif isinstance(item, torch.fx.Node) and isinstance(item.meta.get("val"), (torch.SymInt, torch.SymBool)):
            slots.append(OutputSlot("symint", value=item.meta["val"]))  # evaluator set by the caller
        elif isinstance(item, torch.fx.Node):
            slots.append(OutputSlot("result", len(result_nodes)))
            result_nodes.append(item)
        else:
            slots.append(OutputSlot("constant", value=item))
    return slots, result_nodes


def compile_fx_graph(gm: torch.fx.GraphModule, example_inputs: Sequence[Any],
                     options: Optional[CompileOptions] = None) -> CompiledFxGraph:
    """Compile one functional Core ATen FX graph (nodes carry FakeTensor `meta['val']`)."""
    options = options or CompileOptions()
    t0 = time.perf_counter()
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    placeholder_vals = [n.meta.get("val") for n in placeholders]
    tensor_positions = [i for i, v in enumerate(placeholder_vals) if isinstance(v, torch.Tensor)]
    _reject_data_dependent_sizes(gm)
    slots, result_nodes = _plan_outputs(gm)
    result_vals = [n.meta["val"] for n in result_nodes]
    shape_plan = None
    if len(tensor_positions) != len(placeholders) or \
            any(has_symbolic_sizes(v) for v in placeholder_vals + result_vals):
        # Dynamic shapes: SymInt inputs are read from input sizes (or passed as 0-d tensors),
        # output shapes are computed per call from their symbolic sizes (see dynamic_shapes.py).
        shape_plan = ShapePlan(placeholder_vals, result_vals, graph_name=f"graph with {len(gm.graph.nodes)} nodes")
        tensor_positions = shape_plan.passed
        slots = [OutputSlot("symint", value=shape_plan.symint_evaluator(s.value)) if s.kind == "symint" else s
                 for s in slots]

    importer = FxImporter()
    importer.import_graph_module(gm, "main", results=result_nodes)
    torch_module = importer.module
    linalg_module = lower_to_linalg(torch_module, shape_plan.int_arg_dims if shape_plan else None,
                                    symbolic_shapes(gm) if shape_plan else None)

    arg_vals = [placeholder_vals[i] for i in tensor_positions]
    arg_specs = [TensorSpec.from_tensor(v) if isinstance(v, torch.Tensor) else TensorSpec((), torch.int64)
                 for v in arg_vals]
    result_specs = [TensorSpec.from_tensor(v) for v in result_vals]
    layouts = [ArgLayout.CONTIGUOUS if not isinstance(v, torch.Tensor) or _surely_contiguous(v) else ArgLayout.STRIDED
               for v in arg_vals]
    if options.dump_dir:
        _dump_front_end(options.dump_dir, torch_module, linalg_module)
    t_front_end = time.perf_counter()
    compiled = compile_linalg(linalg_module, arg_specs, result_specs, options, arg_layouts=layouts,
                              result_shapes=shape_plan.result_shapes if shape_plan else None)
    if options.profile:
        from . import profiling

        compiled = profiling.profile_graph(compiled, f"{len(gm.graph.nodes)} FX nodes", t_front_end - t0)
    if options.verbose:
        import sys

        print(f"[torch_mlir] compiled graph with {len(gm.graph.nodes)} nodes in "
              f"{time.perf_counter() - t0:.3f}s", file=sys.stderr)
    pack = shape_plan.pack if shape_plan is not None and len(shape_plan.passed) > len(
        [v for v in placeholder_vals if isinstance(v, torch.Tensor)]) else None
    return CompiledFxGraph(compiled, tensor_positions, slots, pack)


def _reject_data_dependent_sizes(gm: torch.fx.GraphModule) -> None:
    """Ops whose output size depends on the data (nonzero, masked_select, unique: unbacked
    symbols `u0`) cannot be given a preallocated output: raise naming the op and source line
    (the partitioner then runs it in eager PyTorch; in strict mode this is the user's error)."""
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

    from .errors import UnsupportedOpError
    from .importers.fx_importer import source_line

    known = set()
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            known |= free_unbacked_symbols(node.meta.get("val"))
        elif node.op == "call_function":
            new = free_unbacked_symbols(node.meta.get("val")) - known
            if new:
                raise UnsupportedOpError(
                    str(node.target), f"its output size depends on the data ({', '.join(sorted(map(str, new)))}); "
                    f"data-dependent sizes are not compiled",
                    ", ".join(_describe(a.meta.get("val")) for a in node.args if isinstance(a, torch.fx.Node)),
                    source_line(node))


def _surely_contiguous(val: torch.Tensor) -> bool:
    """Contiguity without guarding on data-dependent sizes (strided when it cannot be told)."""
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

    try:
        return bool(val.is_contiguous())
    except GuardOnDataDependentSymNode:
        return False


def _describe(val) -> str:
    if isinstance(val, torch.Tensor):
        return TensorSpec.from_tensor(val).__str__()
    return type(val).__name__


def _dump_front_end(dump_dir: str, torch_module, linalg_module) -> None:
    import os

    os.makedirs(dump_dir, exist_ok=True)
    with open(os.path.join(dump_dir, "00-torch.mlir"), "w") as f:
        f.write(torch_module.operation.get_asm(enable_debug_info=True))
    with open(os.path.join(dump_dir, "00-linalg-on-tensors.mlir"), "w") as f:
        f.write(linalg_module.operation.get_asm(enable_debug_info=True))


def make_backend(options: Optional[dict] = None) -> Callable:
    """An AOTAutograd backend whose forward and backward graphs are compiled by us."""
    opts = CompileOptions.from_dict(options)

    def compiler(gm: torch.fx.GraphModule, example_inputs):
        # Ops we cannot lower run eagerly around the compiled regions (or raise when strict).
        # `compile_fx_graph` is looked up at call time so it stays the per-region compiler.
        return compile_graph(gm, example_inputs, opts, lambda g, ex, o: compile_fx_graph(g, ex, o))

    return aot_autograd(fw_compiler=compiler, bw_compiler=compiler,
                        decompositions=decomposition_table())


def torch_mlir(gm: torch.fx.GraphModule, example_inputs: list, options: Optional[dict] = None):
    """The Dynamo backend function (entry point `torch_dynamo_backends: torch_mlir`)."""
    return make_backend(options)(gm, example_inputs)
