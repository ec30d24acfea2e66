"""Extern kernels at run time: the ctypes callbacks that run an ATen kernel for generated code.

A compiled module that calls extern kernels (see `lowering/extern.py`) carries, in its machine
code, a table of function pointers `@__tmb_extern_table` and the JSON list of the kernels it
calls; the packed function `__tmb_extern_info` returns the addresses of both. `ExternKernelTable`
reads the list, makes one ctypes callback per kernel and writes their addresses into the table,
for a JIT engine and for a shared object loaded from the disk cache alike. It must outlive every
call of the graph (the CompiledGraph holds it).

A callback receives pointers to the memref descriptors of the kernel's inputs and outputs,
wraps each as a torch tensor over the same memory (`torch.frombuffer` + `as_strided`: no copy),
calls the ATen overload with the kernel's constant arguments and copies each result into its
output. An exception cannot cross back into generated code: the callback stores it (and zeroes
the outputs, so no later op of the graph indexes with garbage) and the CompiledGraph raises it
once `@main` returns: the exception eager would raise (`torch.linalg.LinAlgError` for a singular
matrix...), with a note naming the op, the input shapes/dtypes and the user's source line.
"""
from __future__ import annotations

import ctypes
import json
import threading
from typing import Any, Optional, Sequence

import torch

from torch_mlir_backend.errors import TorchMlirBackendError

INFO_FUNCTION = "__tmb_extern_info"

_pending = threading.local()  # the first error of an extern kernel in this thread's current call


class ExternKernelError(TorchMlirBackendError):
    """An ATen kernel called from a compiled graph raised (as it would have in eager)."""


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r} in an extern kernel description")
    return dtype


def _overload(name: str) -> torch._ops.OpOverload:
    """`aten.linalg_inv_ex.default` -> the OpOverload."""
    namespace, op, overload = name.split(".")
    if namespace == "tmb":
        from torch_mlir_backend import layout  # noqa: F401  (defines the tmb:: ops)
    return getattr(getattr(getattr(torch.ops, namespace), op), overload)


# Internal ops whose out= variant is not for outside callers (oneDNN's RNN layer crashes on
# an out= workspace in inference): always the functional op and a copy.
NO_OUT_VARIANT = {"aten.mkldnn_rnn_layer.default"}


def out_variant(op: torch._ops.OpOverload) -> Optional[tuple]:
    """`(overload, out argument names)` of `op`'s out= variant (same leading arguments, then one
    keyword-only written tensor per result), or None. Calling it writes the results straight
    into the graph's buffers instead of copying them there."""
    schema = op._schema
    returns = schema.returns
    if not returns or any(str(r.type) != "Tensor" for r in returns):
        return None
    names = [a.name for a in schema.arguments]
    for name in op.overloadpacket.overloads():
        candidate = getattr(op.overloadpacket, name)
        arguments = candidate._schema.arguments
        if len(arguments) != len(names) + len(returns) or [a.name for a in arguments[:len(names)]] != names:
            continue
        outs = arguments[len(names):]
        if all(a.kwarg_only and a.alias_info is not None and a.alias_info.is_write for a in outs) and \
                not any(a.alias_info is not None and a.alias_info.is_write for a in arguments[:len(names)]):
            return candidate, [a.name for a in outs]
    return None


def tensor_from_descriptor(address: int, rank: int, dtype: torch.dtype) -> torch.Tensor:
    """A tensor over the memory a ranked memref descriptor at `address` describes (no copy)."""
    words = ctypes.cast(address, ctypes.POINTER(ctypes.c_int64))
    aligned, offset = words[1], words[2]
    sizes = [words[3 + i] for i in range(rank)]
    strides = [words[3 + rank + i] for i in range(rank)]
    if any(s == 0 for s in sizes):
        return torch.empty(sizes, dtype=dtype)
    span = 1 + sum((s - 1) * st for s, st in zip(sizes, strides))
    itemsize = torch.empty((), dtype=dtype).element_size()
    buffer = (ctypes.c_byte * (span * itemsize)).from_address(aligned + offset * itemsize)
    flat = torch.frombuffer(buffer, dtype=dtype, count=span)
    return flat.as_strided(sizes, strides)


class ExternKernel:
    """One kernel a module calls: the ATen overload, its constant arguments, and which tensor
    inputs/outputs (rank, dtype) cross the boundary, in the callback's parameter order."""

    def __init__(self, description: dict):
        self.description = description
        self.op = _overload(description["op"])
        self.inputs = [(int(t["rank"]), _dtype(t["dtype"])) for t in description["inputs"]]
        self.outputs = [(int(t["rank"]), _dtype(t["dtype"])) for t in description["outputs"]]
        # arguments: list of {"tensor": i} | {"value": v}, plus kwarg-only names
        self.args = description["args"]
        self.kwargs = description.get("kwargs", {})
        self.result_indices = description["results"]  # result index of each output
        self.source_line = description.get("source_line", "")
        # The out= variant when every result is an output in order (most ATen ops have one).
        found = out_variant(self.op) if description["op"] not in NO_OUT_VARIANT else None
        self.out_op, self.out_names = found if found and self.result_indices == list(range(len(self.outputs))) \
            and len(found[1]) == len(self.outputs) else (None, None)

    def _build(self, tensors: Sequence[torch.Tensor]):
        def value(a):
            if "tensor" in a:
                return tensors[a["tensor"]]
            if "tensors" in a:
                return [tensors[i] for i in a["tensors"]]
            v = a["value"]
            if isinstance(v, dict) and "dtype" in v:
                return _dtype(v["dtype"])
            return v

        return [value(a) for a in self.args], {k: value(a) for k, a in self.kwargs.items()}

    def __call__(self, *addresses: int) -> None:
        n_in = len(self.inputs)
        inputs = outputs = []
        try:
            inputs = [tensor_from_descriptor(a, r, d) for a, (r, d) in zip(addresses[:n_in], self.inputs)]
            outputs = [tensor_from_descriptor(a, r, d) for a, (r, d) in zip(addresses[n_in:], self.outputs)]
            args, kwargs = self._build(inputs)
            if self.out_op is not None:
                try:
                    self.out_op(*args, **kwargs, **dict(zip(self.out_names, outputs)))
                    return
                except Exception:
                    # Some out= variants refuse buffers the functional op would return (an
                    # undefined workspace...): from now on the functional op and a copy; the
                    # functional op raises again if the inputs are what failed.
                    self.out_op = None
            result = self.op(*args, **kwargs)
            results = result if isinstance(result, (tuple, list)) else (result,)
            if self.description.get("list_result"):
                results = result
            for out, index in zip(outputs, self.result_indices):
                got = results[index]
                if got is None and out.numel() == 0:
                    continue  # an undefined result (mkldnn_rnn_layer's workspace in inference)
                if tuple(got.shape) != tuple(out.shape) or got.dtype != out.dtype:
                    raise RuntimeError(f"result {index} is {got.dtype}{list(got.shape)}, the compiled graph "
                                       f"expected {out.dtype}{list(out.shape)}")
                out.copy_(got)
        except BaseException as e:  # must not unwind into generated code
            for out in outputs:
                try:
                    out.zero_()
                except BaseException:
                    pass
            if getattr(_pending, "error", None) is None:
                shapes = ", ".join(f"{str(t.dtype).replace('torch.', '')}{list(t.shape)}" for t in inputs)
                where = (f"torch_mlir: raised by ATen's {self.description['op']} ({shapes}) called from the "
                         f"compiled graph, at {self.source_line or 'unknown location'}")
                if isinstance(e, Exception):
                    e.add_note(where)  # the same exception type eager raises (e.g. LinAlgError)
                    _pending.error = e
                else:
                    _pending.error = ExternKernelError(f"{where}: {type(e).__name__}: {e}")


def raise_pending_error() -> None:
    """Raise the error an extern kernel stored during the call that just returned, if any."""
    error = getattr(_pending, "error", None)
    if error is not None:
        _pending.error = None
        raise error


def clear_pending_error() -> None:
    _pending.error = None


class ExternKernelTable:
    """The callbacks of one compiled module, installed into its function-pointer table."""

    def __init__(self, kernels: list[ExternKernel], table_address: int):
        self.kernels = kernels
        self._callbacks = []
        slots = (ctypes.c_void_p * max(len(kernels), 1)).from_address(table_address) if kernels else None
        for i, kernel in enumerate(kernels):
            n = len(kernel.inputs) + len(kernel.outputs)
            callback = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * n))(kernel)
            self._callbacks.append(callback)  # the table points at it: keep it alive
            slots[i] = ctypes.cast(callback, ctypes.c_void_p).value

    def __len__(self) -> int:
        return len(self.kernels)

    @property
    def ops(self) -> list[str]:
        return [k.description["op"] for k in self.kernels]


def install(engine) -> Optional[ExternKernelTable]:
    """Fill the extern kernel table of `engine` (a JIT ExecutionEngine or a loaded shared object);
    None when its module calls no extern kernel (or predates the table)."""
    try:
        info = engine.lookup(INFO_FUNCTION)
    except RuntimeError:
        return None
    table = ctypes.c_void_p()
    text = ctypes.c_void_p()
    slots = (ctypes.c_void_p * 2)(ctypes.addressof(table), ctypes.addressof(text))
    info(ctypes.addressof(slots))
    if not text.value:
        return None
    descriptions = json.loads(ctypes.string_at(text.value).decode())
    if not descriptions:
        return None
    return ExternKernelTable([ExternKernel(d) for d in descriptions], table.value)
