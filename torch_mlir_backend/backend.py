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

    kind: str  # "result" (an MLIR result), "input" (a graph input, returned as is), "constant"
    index: int = 0
    value: Any = None


class CompiledFxGraph:
    """A boxed callable running one compiled FX graph: `run(args_list) -> outputs`.

    Only tensors computed by the graph go through MLIR; graph inputs that are returned as they
    are (AOTAutograd saves many for backward) and constant outputs are handed back directly.
    """

    _boxed_call = True

    def __init__(self, compiled, tensor_arg_positions: Sequence[int], outputs: Sequence[OutputSlot]):
        # Also an instance attribute: Dynamo wraps backward callables with `functools.wraps`,
        # which copies the instance `__dict__` but not class attributes; without it AOTAutograd
        # would call the backward unboxed.
        self._boxed_call = True
        self.compiled = compiled
        self.tensor_arg_positions = tuple(tensor_arg_positions)
        self.outputs = tuple(outputs)
        self._all_results = all(o.kind == "result" for o in outputs) and \
            [o.index for o in outputs] == list(range(len(outputs)))

    def __call__(self, args: list) -> list:
        inputs = [args[i] for i in self.tensor_arg_positions]
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
    tensor_positions = [i for i, n in enumerate(placeholders)
                        if isinstance(n.meta.get("val"), torch.Tensor)]
    if len(tensor_positions) != len(placeholders):
        non_tensor = [placeholders[i].name for i in range(len(placeholders)) if i not in tensor_positions]
        raise TorchMlirBackendError(f"graph inputs that are not tensors are not supported yet: {non_tensor}")
    slots, result_nodes = _plan_outputs(gm)

    importer = FxImporter()
    importer.import_graph_module(gm, "main", results=result_nodes)
    torch_module = importer.module
    linalg_module = lower_to_linalg(torch_module)

    arg_vals = [placeholders[i].meta["val"] for i in tensor_positions]
    arg_specs = [TensorSpec.from_tensor(v) for v in arg_vals]
    result_specs = [TensorSpec.from_tensor(n.meta["val"]) for n in result_nodes]
    layouts = [ArgLayout.CONTIGUOUS if v.is_contiguous() else ArgLayout.STRIDED for v in arg_vals]
    if options.dump_dir:
        _dump_front_end(options.dump_dir, torch_module, linalg_module)
    compiled = compile_linalg(linalg_module, arg_specs, result_specs, options, arg_layouts=layouts)
    if options.verbose:
        import sys

        print(f"[torch_mlir] compiled graph with {len(gm.graph.nodes)} nodes in "
              f"{time.perf_counter() - t0:.3f}s", file=sys.stderr)
    return CompiledFxGraph(compiled, tensor_positions, slots)


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
