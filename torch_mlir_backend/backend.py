"""The Dynamo backend `torch_mlir`: AOTAutograd -> Core ATen FX graphs -> Torch dialect ->
linalg-on-tensors -> LLVM JIT.

Registered through the `torch_dynamo_backends` entry point, so
`torch.compile(model, backend="torch_mlir", options={...})` needs no import of this package.
AOTAutograd (functorch) produces functional Core ATen graphs for forward and backward, with
PyTorch's Core ATen decomposition table (plus `decompositions.EXTRA`); each graph is compiled by
`compile_fx_graph` into a boxed callable.
"""
from __future__ import annotations

import contextlib
import operator
import contextvars
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
import torch.fx
from functorch.compile import make_boxed_func
from torch._dynamo.backends.common import aot_autograd

from .decompositions import decomposition_table
from .dynamic_shapes import DataDependentOutputs, ShapePlan, has_symbolic_sizes, plan_data_dependent, symbolic_shapes
from .errors import CompileError, TorchMlirBackendError
from .importers.fx_importer import FxImporter
from .layout import to_channels_last
from .lowering import lower_to_linalg
from .options import CompileOptions
from .partition import compile_graph
from .runtime import ArgLayout, GraphOwner, compile_linalg, compile_torch_graph
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

    With `reacquire`, the compiled graph is held weakly: its `GraphOwner` (the parameters of the
    model it was compiled for) holds it, so deleting the model frees its JIT engine while Dynamo's
    code cache still holds this object (Dynamo reuses it for any later model of the same
    structure). A call after that gets the graph back through `reacquire(owner)` (in-memory cache,
    disk cache, or a compile) with the parameters of that call as the new owner.
    """

    _boxed_call = True

    def __init__(self, compiled, tensor_arg_positions: Sequence[int], outputs: Sequence[OutputSlot],
                 pack_inputs: Optional[Callable[[list], list]] = None,
                 reacquire: Optional[Callable[[Optional[GraphOwner]], Any]] = None,
                 effect_tokens: Sequence[int] = (), data_dependent: Optional[DataDependentOutputs] = None,
                 result_shapes: Optional[Callable] = None):
        # Also an instance attribute: Dynamo wraps backward callables with `functools.wraps`,
        # which copies the instance `__dict__` but not class attributes; without it AOTAutograd
        # would call the backward unboxed.
        self._boxed_call = True
        self._reacquire = reacquire
        self._owner_slot = _current_owner.get() or OwnerSlot(None)
        self._strong = compiled if reacquire is None else None
        self._weak = weakref.ref(compiled) if reacquire is not None else None
        self.tensor_arg_positions = tuple(tensor_arg_positions)
        self.pack_inputs = pack_inputs  # when SymInt inputs are passed (as 0-d tensors)
        self.outputs = tuple(outputs)
        # Effect-token inputs (see `inline_effect_tokens`): AOTAutograd passes None for them.
        self.effect_tokens = tuple(effect_tokens)
        # Outputs of data-dependent sizes / runtime assertions (see dynamic_shapes.py): a
        # capacities input before the call, narrowing and checks after it.
        self.data_dependent = data_dependent
        self._result_shapes = result_shapes
        self._all_results = all(o.kind == "result" for o in outputs) and \
            [o.index for o in outputs] == list(range(len(outputs)))

    @property
    def compiled(self):
        """The compiled graph (None while released: its owner is gone and no call came since)."""
        return self._strong if self._strong is not None else self._weak()

    def _graph_for(self, args: list):
        """The compiled graph after its owner was collected: owned by this call's parameters, or
        (a backward graph, called with saved activations) by the model whose forward graph of
        the same Dynamo graph was last called."""
        owner = GraphOwner.of(a for a in args if isinstance(a, torch.nn.Parameter))
        if owner is not None:
            self._owner_slot.owner = owner
        elif self._owner_slot.owner is not None and self._owner_slot.owner.alive:
            owner = self._owner_slot.owner
        compiled = self._reacquire(owner)
        if owner is None:
            self._strong = compiled
        else:
            self._weak = weakref.ref(compiled)
        return compiled

    def __call__(self, args: list) -> list:
        compiled = self._strong
        if compiled is None:
            compiled = self._weak() or self._graph_for(args)
        for i in self.effect_tokens:
            if args[i] is None:
                args[i] = _EMPTY_TOKEN
        if self.pack_inputs is None:
            inputs = [args[i] for i in self.tensor_arg_positions]
        else:
            inputs = self.pack_inputs(args)
        if self.data_dependent is not None:
            inputs = self.data_dependent.with_capacities(inputs, self._result_shapes)
        results = compiled(*inputs)
        if self.data_dependent is not None:
            results = self.data_dependent.finish(results, args)
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


@dataclass
class OwnerSlot:
    """The current owner of the graphs compiled for one Dynamo graph (forward, backward and
    partition regions): the model they were compiled for, later the last model that called them."""

    owner: Optional[GraphOwner]


# The OwnerSlot of the Dynamo graph `make_backend`'s compiler is compiling (a context variable, not
# an argument: compile_fx_graph keeps its (gm, example_inputs, options) signature for wrappers).
_current_owner: contextvars.ContextVar = contextvars.ContextVar("torch_mlir_graph_owner", default=None)


@contextlib.contextmanager
def _owned_by(owner: "OwnerSlot"):
    token = _current_owner.set(owner)
    try:
        yield
    finally:
        _current_owner.reset(token)


def compile_fx_graph(gm: torch.fx.GraphModule, example_inputs: Sequence[Any],
                     options: Optional[CompileOptions] = None) -> CompiledFxGraph:
    """Compile one functional Core ATen FX graph (nodes carry FakeTensor `meta['val']`).

    Inside the backend, the model's parameters own the compiled graph (see `CompiledFxGraph`);
    called directly, the graph lives as long as the returned object."""
    options = options or CompileOptions()
    slot = _current_owner.get()
    owner = slot.owner if slot is not None else None
    t0 = time.perf_counter()
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    placeholder_vals = [n.meta.get("val") for n in placeholders]
    tensor_positions = [i for i, v in enumerate(placeholder_vals) if isinstance(v, torch.Tensor)]
    slots, result_nodes = _plan_outputs(gm)
    result_vals = [n.meta["val"] for n in result_nodes]
    # Outputs of data-dependent sizes (nonzero, ...) and runtime assertions: see dynamic_shapes.py.
    data_dependent = plan_data_dependent(gm, placeholder_vals, result_nodes)
    abi = data_dependent.abi if data_dependent is not None else None
    for j, (k, _, _) in enumerate(data_dependent.int_outputs if data_dependent else ()):
        slots[k] = OutputSlot("result", len(result_nodes) + j)  # an int the generated code reports
    shape_plan = None
    if len(tensor_positions) != len(placeholders) or data_dependent is not None or \
            any(has_symbolic_sizes(v) for v in placeholder_vals + result_vals):
        # Dynamic shapes: SymInt inputs are read from input sizes (or passed as 0-d tensors),
        # output shapes are computed per call from their symbolic sizes (see dynamic_shapes.py).
        shape_plan = ShapePlan(placeholder_vals,
                               data_dependent.plan_shapes(result_vals) if data_dependent else result_vals,
                               graph_name=f"graph with {len(gm.graph.nodes)} nodes",
                               data_bindings=data_dependent.data_bindings if data_dependent else None)
        tensor_positions = shape_plan.passed
        slots = [OutputSlot("symint", value=shape_plan.symint_evaluator(s.value)) if s.kind == "symint" else s
                 for s in slots]

    importer = FxImporter()
    importer.import_graph_module(gm, "main", results=result_nodes)
    torch_module = importer.module
    import_seconds = time.perf_counter() - t0
    int_arg_dims = shape_plan.int_arg_dims if shape_plan else None
    symbols = symbolic_shapes(gm) if shape_plan else None

    arg_vals = [placeholder_vals[i] for i in tensor_positions]
    arg_specs = [TensorSpec.from_tensor(v) if isinstance(v, torch.Tensor) else TensorSpec((), torch.int64)
                 for v in arg_vals]
    result_specs = [TensorSpec.from_tensor(v) for v in result_vals]
    if abi is not None:
        for i in abi.results:
            result_specs[i] = TensorSpec((None,), result_specs[i].dtype)
        result_specs.append(TensorSpec((data_dependent.report_length,), torch.int64))  # the report
    layouts = [ArgLayout.CONTIGUOUS if not isinstance(v, torch.Tensor) or _surely_contiguous(v) else ArgLayout.STRIDED
               for v in arg_vals]
    result_shapes = shape_plan.result_shapes if shape_plan else None
    if abi is not None and abi.results:
        arg_specs.append(TensorSpec((len(abi.results),), torch.int64))
        layouts.append(ArgLayout.CONTIGUOUS)
        plan_shapes = shape_plan.result_shapes
        result_shapes = lambda inputs: plan_shapes(inputs[:-1])  # noqa: E731 (the capacities come last)
    lowering_seconds = [0.0]
    if options.dump_dir or options.profile:
        # Every stage's IR or compile time is asked for: lower and compile afresh (compile_linalg
        # skips the caches for these options; a cache hit would have no stages to show).
        start = time.perf_counter()
        linalg_module = lower_to_linalg(torch_module, int_arg_dims, symbols, abi)
        lowering_seconds[0] = time.perf_counter() - start
        if options.dump_dir:
            _dump_front_end(options.dump_dir, torch_module, linalg_module)
        compiled, reacquire = compile_linalg(linalg_module, arg_specs, result_specs, options, arg_layouts=layouts,
                                             result_shapes=result_shapes), None
    else:
        # Looked up by the Torch-dialect text: a hit (in memory or on disk) skips the lowering too.
        # The text with locations is kept to lower again should the graph be freed and asked for.
        torch_text = torch_module.operation.get_asm(enable_debug_info=True)
        key_text = torch_module.operation.get_asm(enable_debug_info=False)
        lowering_inputs = repr((int_arg_dims, symbols, abi))
        imported = [torch_module]  # the first lowering uses the imported module itself
        del torch_module, importer

        def lower():
            from mlir import ir

            from .importers.fx_importer import new_context

            start = time.perf_counter()
            module = imported.pop() if imported else ir.Module.parse(torch_text, new_context())
            linalg = lower_to_linalg(module, int_arg_dims, symbols, abi)
            lowering_seconds[0] += time.perf_counter() - start
            return linalg

        def reacquire(graph_owner: Optional[GraphOwner]):
            return compile_torch_graph(key_text, lowering_inputs, lower, arg_specs, result_specs, options,
                                       arg_layouts=layouts, result_shapes=result_shapes, owner=graph_owner)

        compiled = reacquire(owner)
        imported.clear()  # a hit did not need it
        reacquire = reacquire if owner is not None else None
    if options.profile:
        from . import profiling

        compiled = profiling.profile_graph(compiled, f"{len(gm.graph.nodes)} FX nodes",
                                           import_seconds + lowering_seconds[0])
    if options.verbose:
        import sys

        print(f"[torch_mlir] compiled graph with {len(gm.graph.nodes)} nodes in "
              f"{time.perf_counter() - t0:.3f}s", file=sys.stderr)
    pack = shape_plan.pack if shape_plan is not None and len(shape_plan.passed) > len(
        [v for v in placeholder_vals if isinstance(v, torch.Tensor)]) else None
    tokens = [i for i, n in enumerate(placeholders) if n.meta.get(EFFECT_TOKEN)]
    return CompiledFxGraph(compiled, tensor_positions, slots, pack, reacquire=reacquire, effect_tokens=tokens,
                           data_dependent=data_dependent, result_shapes=shape_plan.result_shapes if shape_plan else None)


def _surely_contiguous(val: torch.Tensor) -> bool:
    """Contiguity without guarding on data-dependent sizes (strided when it cannot be told)."""
    from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode

    try:
        return bool(val.is_contiguous())
    except GuardOnDataDependentSymNode:
        return False


def _dump_front_end(dump_dir: str, torch_module, linalg_module) -> None:
    import os

    os.makedirs(dump_dir, exist_ok=True)
    with open(os.path.join(dump_dir, "00-torch.mlir"), "w") as f:
        f.write(torch_module.operation.get_asm(enable_debug_info=True))
    with open(os.path.join(dump_dir, "00-linalg-on-tensors.mlir"), "w") as f:
        f.write(linalg_module.operation.get_asm(enable_debug_info=True))


EFFECT_TOKEN = "torch_mlir_effect_token"
_EMPTY_TOKEN = torch.empty(0)


def inline_effect_tokens(gm: torch.fx.GraphModule) -> None:
    """`with_effects(token, op, *args)` -> `op(*args)` for ops we lower, in place.

    AOTAutograd threads an effect token (a graph input returned as an output) through ops with
    side effects, such as `aten._linalg_check_errors` (raises for a singular matrix), to keep
    them in order. Our lowering keeps every such op where it is (its extern-kernel call has
    unknown side effects, so nothing moves or removes it), so the op is called directly and the
    token passes through unchanged."""
    from torch_mlir_backend.lowering import LOWERINGS
    from torch_mlir_backend.lowering.registry import mlir_op_name

    with_effects = getattr(torch.ops.higher_order, "with_effects", None)
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or with_effects is None or node.target is not with_effects:
            continue
        token, op, *args = node.args
        if not isinstance(op, torch._ops.OpOverload) or mlir_op_name(op) not in LOWERINGS:
            continue
        if isinstance(token, torch.fx.Node) and token.op == "placeholder":
            token.meta[EFFECT_TOKEN] = True  # AOTAutograd passes None for it at run time
        with gm.graph.inserting_before(node):
            call = gm.graph.call_function(op, tuple(args), dict(node.kwargs))
        call.meta.update({k: v for k, v in node.meta.items() if k != "val"})
        value = node.meta.get("val")
        results = tuple(value[1:]) if isinstance(value, (tuple, list)) else ()
        call.meta["val"] = results[0] if len(results) == 1 else (results or None)
        for user in list(node.users):
            if user.op != "call_function" or user.target is not operator.getitem:
                raise CompileError(f"with_effects of {op} used other than by indexing: {user.format_node()}")
            index = user.args[1]
            if index == 0:
                user.replace_all_uses_with(token)
            elif len(results) == 1:
                user.replace_all_uses_with(call)
            else:
                with gm.graph.inserting_after(call):
                    item = gm.graph.call_function(operator.getitem, (call, index - 1))
                item.meta.update(user.meta)
                user.replace_all_uses_with(item)
            gm.graph.erase_node(user)
        gm.graph.erase_node(node)
        changed = True
    if changed:
        gm.graph.lint()
        gm.recompile()


def make_backend(options: Optional[dict] = None, owner: Optional[GraphOwner] = None) -> Callable:
    """An AOTAutograd backend whose forward and backward graphs are compiled by us; `owner`
    (the model's parameters) holds their JIT engines (see `CompiledFxGraph`)."""
    opts = CompileOptions.from_dict(options)
    slot = OwnerSlot(owner)

    def compiler(gm: torch.fx.GraphModule, example_inputs):
        # Ops we cannot lower run eagerly around the compiled regions (or raise when strict).
        # `compile_fx_graph` is looked up at call time so it stays the per-region compiler.
        inline_effect_tokens(gm)
        with _owned_by(slot):
            return compile_graph(gm, example_inputs, opts, lambda g, ex, o: compile_fx_graph(g, ex, o))

    def inference_compiler(gm: torch.fx.GraphModule, example_inputs):
        # Inference only: convolution regions run channels-last (layout.py); training graphs
        # save channels-first activations for their backward.
        to_channels_last(gm)
        return compiler(gm, example_inputs)

    return aot_autograd(fw_compiler=compiler, bw_compiler=compiler, inference_compiler=inference_compiler,
                        decompositions=decomposition_table())


def torch_mlir(gm: torch.fx.GraphModule, example_inputs: list, options: Optional[dict] = None):
    """The Dynamo backend function (entry point `torch_dynamo_backends: torch_mlir`).

    Dynamo passes the model's parameters among the example inputs: they own the compiled graphs,
    which are freed once the model is collected (Dynamo's code cache keeps only what is needed to
    compile them again)."""
    owner = GraphOwner.of(t for t in example_inputs if isinstance(t, torch.nn.Parameter))
    return make_backend(options, owner)(gm, example_inputs)
