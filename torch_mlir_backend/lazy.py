"""The lazy-tensor road: PyTorch's lazy tensor core (`torch._lazy`, TorchScript backend) records
a computation run on the `lazy` device; its TorchScript graph goes through the TorchScript
importer, our lowering and runtime.

`capture_lazy(fn, *inputs)` moves the inputs to the `lazy` device, runs `fn` (whose module, if
any, the caller has moved to `lazy`; a training step may call `backward()` and return the
gradients), and takes the recorded graph of the outputs
(`torch._C._lazy._get_tensors_backend`, the graph torch-mlir's LTC backend compiled) with its
device data (`torch._lazy.computation.get_tensors_ts_device_data_node`). Device data that are
the caller's inputs become function arguments; all other device data (parameters, scalars LTC
uploads such as `alpha=1`) are constants captured with their current values, as freezing does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .errors import GraphImportError

_INITIALIZED = False


def init_lazy_backend() -> None:
    """Initialize the TorchScript backend of the lazy tensor core (once per process)."""
    global _INITIALIZED
    if not _INITIALIZED:
        import torch._lazy.ts_backend

        torch._lazy.ts_backend.init()
        _INITIALIZED = True


@dataclass
class LazyCapture:
    graph: torch._C.Graph
    graph_inputs: list  # per graph input: a CPU tensor (the example or the captured constant)
    argument_of: dict  # graph input index -> index of the caller's input it is
    num_outputs: int

    def constant_inputs(self) -> dict:
        return {i: t for i, t in enumerate(self.graph_inputs) if i not in self.argument_of}


def capture_lazy(fn: Callable, *inputs: torch.Tensor) -> LazyCapture:
    """Run `fn(*inputs on lazy)` and return the recorded graph of its outputs."""
    import torch._lazy.computation as computation

    init_lazy_backend()
    import torch._lazy.metrics as metrics

    lazy_inputs = [x.detach().to("lazy") if isinstance(x, torch.Tensor) else x for x in inputs]
    metrics.reset()
    outputs = fn(*lazy_inputs)
    # An op the TorchScript backend cannot record runs eagerly ("fallback"): its result would be
    # baked into the graph as data, so the graph would not compute it. Refuse, naming the ops.
    fallbacks = [f"{name}={metrics.counter_value(name)}" for name in metrics.counter_names()
                 if name.startswith("aten::") and metrics.counter_value(name)]
    if fallbacks:
        raise GraphImportError(f"capture_lazy: ops fell back to eager execution on the lazy device "
                               f"({', '.join(fallbacks)}); their results cannot be captured")
    outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
    if not outputs or not all(isinstance(o, torch.Tensor) and o.device.type == "lazy" for o in outputs):
        raise GraphImportError("capture_lazy: the function must return lazy tensors "
                               "(move its module to the 'lazy' device first)")
    text = torch._C._lazy._get_tensors_backend(outputs)
    graph = torch._C.parse_ir(text)
    ids, values = computation.get_tensors_ts_device_data_node(outputs)
    input_ids = {torch._C._lazy._get_tensor_id(x): i for i, x in enumerate(lazy_inputs)
                 if isinstance(x, torch.Tensor)}
    graph_inputs, argument_of = [], {}
    for position, (tensor_id, value) in enumerate(zip(ids, values)):
        if tensor_id in input_ids:
            argument_of[position] = input_ids[tensor_id]
            graph_inputs.append(inputs[input_ids[tensor_id]])
        else:
            graph_inputs.append(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if len(graph_inputs) != len(list(graph.inputs())):
        raise GraphImportError(f"lazy graph has {len(list(graph.inputs()))} inputs but "
                               f"{len(graph_inputs)} device data were reported")
    return LazyCapture(graph, graph_inputs, argument_of, len(outputs))


def import_lazy(fn: Callable, *inputs: torch.Tensor):
    """The Torch dialect module of the computation `fn` records on the lazy device."""
    from .importers.torchscript_importer import import_torchscript

    capture = capture_lazy(fn, *inputs)
    return import_torchscript(capture.graph, capture.graph_inputs, constant_inputs=capture.constant_inputs())


def compile_lazy(fn: Callable, *inputs: torch.Tensor) -> Callable:
    """Capture `fn` lazily on `inputs`, compile the graph; returns `run(*inputs) -> list of
    tensors` (the constants keep the values they had at capture)."""
    from .importers.torchscript_importer import compile_torchscript

    capture = capture_lazy(fn, *inputs)
    compiled = compile_torchscript(capture.graph, capture.graph_inputs,
                                   constant_inputs=capture.constant_inputs())
    order = [capture.argument_of[i] for i in sorted(capture.argument_of)]

    def run(*call_inputs: torch.Tensor) -> list:
        out = compiled(*[call_inputs[i] for i in order])
        return list(out) if isinstance(out, tuple) else [out]

    run.torch_module = compiled.torch_module
    return run
