"""Extern kernels: ops whose rule calls PyTorch's own ATen kernel from the generated code.

Dense linear algebra (LAPACK factorizations, solvers, eigen- and singular-value decompositions),
FFTs and a few ops like them are not worth generating code for: Inductor does not either, it calls
ATen's kernels (its "fallback kernels"). Here such an op stays inside the compiled graph and its
call crosses one boundary:

- the rule (`lower_as_extern_kernel`) emits `func.call @__tmb_extern_<i>(inputs..., outputs...)`
  on memrefs: each tensor input through `bufferization.to_buffer ... read_only` with a fully
  strided layout (no copy), each output a fresh `memref.alloc` that becomes a tensor again
  (`bufferization.to_tensor ... restrict writable`), so fusion, bufferization and deallocation
  treat the call as an opaque reader of its inputs and the only writer of its outputs;
- the module attribute `tmb.extern_kernels` lists, as JSON, what each `@__tmb_extern_<i>` is: the
  ATen overload, its constant arguments, the ranks/dtypes crossing the boundary, the user's line;
- the pipeline stage `extern-kernel-table` (`install_extern_kernel_table`, after `to-llvm`) makes
  each `_mlir_ciface___tmb_extern_<i>` an indirect call through `@__tmb_extern_table` and stores the
  JSON in the machine code, so a graph loaded from the disk cache knows its kernels too;
- `runtime/extern_kernels.py` fills the table with ctypes callbacks that run the ATen kernel on
  tensors wrapping the descriptors and copy the results into the outputs.

Adding an op: append its overload to `EXTERN_KERNEL_OPS`. An op qualifies when its results are
tensors whose sizes the importer knows (static, or equal to an input's dynamic dimension).
"""
from __future__ import annotations

import json
import math
from typing import Any, Optional

import torch

from mlir import ir
from mlir.dialects import bufferization, func as func_d, memref, tensor

from ..types import SUPPORTED_DTYPES, TensorSpec
from . import builders
from .registry import LoweringContext, lowers

aten = torch.ops.aten

MODULE_ATTRIBUTE = "tmb.extern_kernels"
FUNCTION_PREFIX = "__tmb_extern_"
TABLE_SYMBOL = "__tmb_extern_table"
SPECS_SYMBOL = "__tmb_extern_specs"
INFO_SYMBOL = "_mlir__mlir_ciface___tmb_extern_info"  # packed: what `engine.lookup("__tmb_extern_info")` finds

# Ops run by ATen's kernel from inside the compiled graph (see the module docstring).
EXTERN_KERNEL_OPS = [
    # Cholesky
    aten.cholesky.default, aten.cholesky_inverse.default, aten.cholesky_solve.default,
    aten.linalg_cholesky_ex.default,
    # LU, inverse, solvers, determinants
    aten.linalg_lu.default, aten.linalg_lu_factor_ex.default, aten.linalg_lu_solve.default,
    aten.lu_unpack.default, aten.linalg_inv_ex.default, aten._linalg_solve_ex.default,
    aten.linalg_solve_triangular.default, aten.triangular_solve.default,
    aten._linalg_det.default, aten._linalg_slogdet.default,
    aten.linalg_ldl_factor_ex.default, aten.linalg_ldl_solve.default,
    # QR and Householder
    aten.linalg_qr.default, aten.geqrf.default, aten.ormqr.default, aten.linalg_householder_product.default,
    # eigen- and singular-value decompositions, functions of matrices
    aten._linalg_eigh.default, aten.linalg_eig.default, aten._linalg_svd.default,
    aten.linalg_pinv.atol_rtol_tensor, aten.linalg_matrix_exp.default,
    # errors the non-`_ex` linalg functions raise from the `info` results
    aten._linalg_check_errors.default,
    # FFT (pocketfft / MKL inside ATen)
    aten._fft_r2c.default, aten._fft_c2r.default, aten._fft_c2c.default,
    # recurrent layers: AOTAutograd's LSTM decomposition calls oneDNN's fused layer (inference)
    aten.mkldnn_rnn_layer.default,
    # histograms over several dimensions
    aten._histogramdd_bin_edges.default, aten._histogramdd_from_bin_cts.default,
    aten._histogramdd_from_bin_tensors.default,
]

# bool crosses no buffer boundary here (bool temporaries are widened to i8 by the pipeline).
_COMPLEX = tuple(d for d in (torch.complex64, torch.complex128))
EXTERN_DTYPES = tuple(d for d in SUPPORTED_DTYPES if d is not torch.bool) + _COMPLEX


def _json_value(ctx: LoweringContext, value: Any, name: str) -> Any:
    """A constant argument as JSON (what the callback passes back to the ATen overload)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return {"float": repr(value)}
        return value
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).replace("torch.", "")}
    if isinstance(value, (list, tuple)):
        return [_json_value(ctx, v, name) for v in value]
    raise ctx.reject(f"argument {name} must be known at compile time to call ATen's kernel "
                     f"(got {type(value).__name__})")


_ELEMENT_DTYPES = {"f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64", "i64": "int64",
                   "i32": "int32", "i16": "int16", "i8": "int8", "complex<f32>": "complex64",
                   "complex<f64>": "complex128"}


def _dtype_name(ctx: LoweringContext, operand: int, value: ir.Value) -> str:
    """The dtype of a tensor operand: from its spec, or for an element of a tensor list (which
    has no spec of its own) from its element type."""
    spec = ctx.in_specs[operand] if operand < len(ctx.in_specs) else None
    if spec is not None:
        return str(spec.dtype).replace("torch.", "")
    element = str(ir.RankedTensorType(value.type).element_type)
    if element not in _ELEMENT_DTYPES:
        raise ctx.reject(f"a tensor list element of type {element} cannot be passed to ATen's kernel")
    return _ELEMENT_DTYPES[element]


def _output_size_sources(ctx: LoweringContext, index: int, spec: TensorSpec, inputs: list) -> Optional[list]:
    """Per dimension of output `index`: its static size, or the (input value, dim) of the same
    symbolic size; None when some dynamic size is no input's (the buffer cannot be allocated)."""
    sources = []
    for d, size in enumerate(spec.shape):
        if size is not None:
            sources.append(size)
            continue
        found = None
        for operand, value in inputs:
            t = ir.RankedTensorType(value.type)
            found = next(((value, j) for j in range(t.rank)
                          if t.is_dynamic_dim(j) and ctx.same_size(operand, j, index, d)), None)
            if found is not None:
                break
        if found is None:
            return None
        sources.append(found)
    return sources


def outputs_can_be_allocated(ctx: LoweringContext, *operands) -> bool:
    """Whether `lower_as_extern_kernel` can size every result of this op (for rules that call
    ATen's kernel when they can and generate code otherwise)."""
    inputs = [(i, v) for i, v in enumerate(operands)
              if isinstance(v, ir.Value) and isinstance(v.type, ir.RankedTensorType)]
    return all(_output_size_sources(ctx, i, spec, inputs) is not None
               for i, spec in enumerate(ctx.out_specs) if spec is not None)


def _output_sizes(ctx: LoweringContext, index: int, spec: TensorSpec, inputs: list) -> list:
    sources = _output_size_sources(ctx, index, spec, inputs)
    if sources is None:
        raise ctx.reject(f"a dynamic size of result {index} ({spec}) is not one of the inputs' sizes, so "
                         "the buffer for ATen's result cannot be allocated")
    return [s if isinstance(s, int) else tensor.DimOp(s[0], builders.index_constant(s[1])).result for s in sources]


def _strided_memref_type(value: ir.Value) -> ir.MemRefType:
    t = ir.RankedTensorType(value.type)
    dynamic = ir.ShapedType.get_dynamic_stride_or_offset()
    layout = ir.StridedLayoutAttr.get(dynamic, [dynamic] * t.rank)
    return ir.MemRefType.get(t.shape, t.element_type, layout)


def _declare(module_body: ir.Block, name: str, arg_types: list) -> None:
    with ir.InsertionPoint.at_block_begin(module_body), ir.Location.unknown():
        fn = func_d.FuncOp(name, ir.FunctionType.get(arg_types, []), visibility="private")
        fn.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()


def _register(module: ir.Operation, description: dict) -> int:
    """Append the kernel's description to the module attribute; its index names the function."""
    existing = []
    if MODULE_ATTRIBUTE in module.attributes:
        existing = [ir.StringAttr(a).value for a in ir.ArrayAttr(module.attributes[MODULE_ATTRIBUTE])]
    existing.append(json.dumps(description, sort_keys=True))
    module.attributes[MODULE_ATTRIBUTE] = ir.ArrayAttr.get([ir.StringAttr.get(s) for s in existing])
    return len(existing) - 1


def _enclosing_module(block: ir.Block) -> ir.Operation:
    op = block.owner
    while op.name != "builtin.module":
        op = op.parent
    return op


def lower_as_extern_kernel(ctx: LoweringContext, *operands):
    """The rule of every op in `EXTERN_KERNEL_OPS`: call ATen's kernel from the generated code."""
    schema = ctx.target._schema
    args, kwargs, inputs = [], {}, []
    for i, (argument, value) in enumerate(zip(schema.arguments, operands)):
        if isinstance(value, ir.Value) and isinstance(value.type, ir.RankedTensorType):
            entry = {"tensor": len(inputs)}
            inputs.append((i, value))
        elif isinstance(value, ir.Value):
            raise ctx.reject(f"argument {argument.name} is only known at run time; ATen's kernel is "
                             "called with compile-time constants")
        elif isinstance(value, (list, tuple)) and value and all(
                isinstance(v, ir.Value) and isinstance(v.type, ir.RankedTensorType) for v in value):
            entry = {"tensors": list(range(len(inputs), len(inputs) + len(value)))}
            inputs.extend((i, v) for v in value)
        elif isinstance(value, (list, tuple)) and any(isinstance(v, ir.Value) for v in value):
            raise ctx.reject(f"argument {argument.name} (a list of run-time values) cannot be "
                             "passed to ATen's kernel")
        else:
            entry = {"value": _json_value(ctx, value, argument.name)}
        if argument.kwarg_only:
            kwargs[argument.name] = entry
        else:
            args.append(entry)
    outputs = [(i, spec) for i, spec in enumerate(ctx.out_specs) if spec is not None]
    returns = list(schema.returns)
    # A single `Tensor[]` result: the rule's results are the list's elements.
    list_result = len(returns) == 1 and str(returns[0].type) == "List[Tensor]"
    if returns and not list_result and (len(ctx.out_specs) != len(returns) or any(
            spec is None and str(r.type) != "Tensor" for spec, r in zip(ctx.out_specs, returns)) or (returns and not outputs)):
        raise ctx.reject("only ops whose results are all tensors can call ATen's kernel")
    # A `Tensor` result without a spec is one the op does not compute (convolution_backward's
    # output_mask): no buffer, and the rule returns None for it.

    in_memrefs = []
    for _, value in inputs:
        memref_type = _strided_memref_type(value)
        in_memrefs.append(bufferization.ToBufferOp(memref_type, value, read_only=True).result)
    out_memrefs = []
    for index, spec in outputs:
        sizes = _output_sizes(ctx, index, spec, inputs)
        memref_type = ir.MemRefType.get([s if isinstance(s, int) else ir.ShapedType.get_dynamic_size() for s in sizes],
                                        builders.element_type(spec.dtype))
        dynamic = [builders.as_index(s) for s in sizes if not isinstance(s, int)]
        out_memrefs.append(memref.AllocOp(memref_type, dynamic, [], alignment=64).result)

    block = ir.InsertionPoint.current.block
    module = _enclosing_module(block)
    description = {
        "op": str(ctx.target).replace("::", "."),
        "args": args,
        "kwargs": kwargs,
        "inputs": [{"rank": ir.RankedTensorType(v.type).rank, "dtype": _dtype_name(ctx, i, v)} for i, v in inputs],
        "list_result": list_result,
        "outputs": [{"rank": spec.rank, "dtype": str(spec.dtype).replace("torch.", "")} for _, spec in outputs],
        "results": [index for index, _ in outputs],
        "source_line": ctx.source_line,
    }
    name = f"{FUNCTION_PREFIX}{_register(module, description)}"
    _declare(module.regions[0].blocks[0], name, [m.type for m in in_memrefs + out_memrefs])
    func_d.CallOp([], ir.FlatSymbolRefAttr.get(name), in_memrefs + out_memrefs)
    results = [bufferization.ToTensorOp(builders.tensor_type(TensorSpec(tuple(ir.MemRefType(m.type).shape), spec.dtype)),
                                        m, restrict=True, writable=True).result
               for m, (_, spec) in zip(out_memrefs, outputs)]
    if not returns:  # the importer gives such an op one `!torch.none` result
        return [None] * len(ctx.out_specs)
    if list_result:
        return results
    if len(ctx.out_specs) == 1:
        return results[0]
    by_index = dict(zip([index for index, _ in outputs], results))
    return [by_index.get(i) for i in range(len(ctx.out_specs))]


lowers(*EXTERN_KERNEL_OPS, dtypes=EXTERN_DTYPES)(lower_as_extern_kernel)


# ----- pipeline stage: after to-llvm ----------------------------------------------------------

def _llvm_string(text: str) -> str:
    """MLIR string-literal escape of `text` (as bytes), NUL-terminated."""
    data = text.encode() + b"\0"
    return "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else f"\\{b:02X}" for b in data), len(data)


def install_extern_kernel_table(module: ir.Module) -> None:
    """Define each `_mlir_ciface___tmb_extern_<i>` as a call through `@__tmb_extern_table[i]`, and
    the table, the kernels' JSON and the packed accessor `__tmb_extern_info` that returns both
    (`runtime/extern_kernels.py` reads them when it loads the code). A module without extern
    kernels gets an empty list, so every compiled graph answers the accessor the same way."""
    op = module.operation
    descriptions = []
    if MODULE_ATTRIBUTE in op.attributes:
        descriptions = [ir.StringAttr(a).value for a in ir.ArrayAttr(op.attributes[MODULE_ATTRIBUTE])]
    declared = {}
    for child in list(module.body.operations):
        if child.operation.name != "llvm.func":
            continue
        name = ir.StringAttr(child.operation.attributes["sym_name"]).value
        prefix = "_mlir_ciface_" + FUNCTION_PREFIX
        if name.startswith(prefix) and len(child.operation.regions[0].blocks) == 0:
            declared[int(name[len(prefix):])] = child
        elif name.startswith(FUNCTION_PREFIX):
            # func-to-llvm's wrapper of the (necessarily private) declaration: the JIT engine
            # compiles every defined function through a packed wrapper it only makes for
            # externally linked ones (a private one aborts `dump_to_object_file`, disk cache).
            if "sym_visibility" in child.operation.attributes:
                del child.operation.attributes["sym_visibility"]
            child.operation.attributes["linkage"] = ir.Attribute.parse("#llvm.linkage<external>")
    n = len(descriptions)
    json_text, json_bytes = _llvm_string("[" + ",".join(descriptions) + "]")
    parts = [
        f'llvm.mlir.global internal @{TABLE_SYMBOL}() {{addr_space = 0 : i32}} : !llvm.array<{max(n, 1)} x ptr> {{\n'
        f'  %z = llvm.mlir.zero : !llvm.array<{max(n, 1)} x ptr>\n  llvm.return %z : !llvm.array<{max(n, 1)} x ptr>\n}}',
        f'llvm.mlir.global internal constant @{SPECS_SYMBOL}("{json_text}") {{addr_space = 0 : i32}} : !llvm.array<{json_bytes} x i8>',
        f'llvm.func @{INFO_SYMBOL}(%args: !llvm.ptr) {{\n'
        f'  %slot0 = llvm.load %args : !llvm.ptr -> !llvm.ptr\n'
        f'  %table = llvm.mlir.addressof @{TABLE_SYMBOL} : !llvm.ptr\n'
        f'  llvm.store %table, %slot0 : !llvm.ptr, !llvm.ptr\n'
        f'  %a1 = llvm.getelementptr %args[1] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr\n'
        f'  %slot1 = llvm.load %a1 : !llvm.ptr -> !llvm.ptr\n'
        f'  %specs = llvm.mlir.addressof @{SPECS_SYMBOL} : !llvm.ptr\n'
        f'  llvm.store %specs, %slot1 : !llvm.ptr, !llvm.ptr\n'
        f'  llvm.return\n}}',
    ]
    for index, decl in sorted(declared.items()):
        fn_type = ir.TypeAttr(decl.operation.attributes["function_type"]).value
        n_args = str(fn_type).count("ptr")  # `!llvm.func<void (ptr, ptr, ...)>`: descriptor pointers
        params = ", ".join(f"%a{k}: !llvm.ptr" for k in range(n_args))
        args = ", ".join(f"%a{k}" for k in range(n_args))
        ptr_types = ", ".join(["!llvm.ptr"] * n_args)
        name = ir.StringAttr(decl.operation.attributes["sym_name"]).value
        parts.append(
            f'llvm.func @{name}({params}) {{\n'
            f'  %table = llvm.mlir.addressof @{TABLE_SYMBOL} : !llvm.ptr\n'
            f'  %slot = llvm.getelementptr %table[0, {index}] : (!llvm.ptr) -> !llvm.ptr, !llvm.array<{max(n, 1)} x ptr>\n'
            f'  %fn = llvm.load %slot : !llvm.ptr -> !llvm.ptr\n'
            f'  llvm.call %fn({args}) : !llvm.ptr, ({ptr_types}) -> ()\n'
            f'  llvm.return\n}}')
        decl.operation.erase()
    parsed = ir.Module.parse("module {\n" + "\n".join(parts) + "\n}", module.context)
    for child in list(parsed.body.operations):
        child.operation.clone(ip=ir.InsertionPoint(module.body))
    if MODULE_ATTRIBUTE in op.attributes:
        del op.attributes[MODULE_ATTRIBUTE]


def extern_results_into_outputs(module: ir.Module) -> None:
    """An extern kernel's result that is a graph result is written by the kernel straight into
    @main's output buffer: after `destination-passing-abi`, `materialize_in_destination` of the
    `to_tensor` of the kernel's `memref.alloc` into an output of the same type becomes the
    kernel writing that output (no temporary, no copy)."""
    for mat in builders.ops_named(module, "bufferization.materialize_in_destination"):
        value, out = mat.operands[0], mat.operands[1]
        if not isinstance(out.type, ir.MemRefType) or not isinstance(value, ir.OpResult):
            continue
        to_tensor = value.owner.operation
        if to_tensor.name != "bufferization.to_tensor" or len(list(value.uses)) != 1:
            continue
        buffer = to_tensor.operands[0]
        if not isinstance(buffer, ir.OpResult) or buffer.owner.operation.name != "memref.alloc" or buffer.type != out.type:
            continue
        users = [use.owner.operation if hasattr(use.owner, "operation") else use.owner for use in buffer.uses]
        calls = [u for u in users if u.name == "func.call" and
                 ir.FlatSymbolRefAttr(u.attributes["callee"]).value.startswith(FUNCTION_PREFIX)]
        if len(users) != 2 or len(calls) != 1:
            continue
        if len([u for u in out.uses]) != 1:  # the output is written by this result only
            continue
        alloc = buffer.owner.operation
        buffer.replace_all_uses_with(out)
        mat.erase()
        to_tensor.erase()
        alloc.erase()
