"""The `torch.export` road into the Torch dialect: `export_and_import` and `compile_exported`.

`torch.export.export` captures the whole model as one `ExportedProgram` (no graph breaks, no
guards); `run_decompositions(decomposition_table())` brings it to the same Core ATen the Dynamo
road sees, so the FX importer and the lowering serve both roads unchanged.

`export_and_import` returns the module at the requested level, as torch-mlir's
`fx.export_and_import` does: `"torch"` (Torch dialect, parameters as `torch.vtensor.literal`s,
so the text is self-contained), `"linalg-on-tensors"`, or `"llvm"` (after the runtime's default
pipeline, destination-passing ABI). `compile_exported` returns a callable; it keeps parameters
and buffers as leading function arguments (no copy of the weights in the IR) and passes the
program's own tensors at each call.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import torch
from mlir import ir

from .decompositions import decomposition_table
from .errors import TorchMlirBackendError
from .importers.fx_importer import FxImporter
from .lowering import lower_to_linalg
from .options import CompileOptions
from .types import TensorSpec

OUTPUT_TYPES = ("torch", "linalg-on-tensors", "llvm")


def export_program(model_or_program: Union[torch.nn.Module, "torch.export.ExportedProgram"],
                   *args: Any, dynamic_shapes: Optional[Any] = None,
                   strict: bool = False) -> "torch.export.ExportedProgram":
    """`torch.export` + the backend's decomposition table (an ExportedProgram is only decomposed)."""
    if isinstance(model_or_program, torch.export.ExportedProgram):
        program = model_or_program
    else:
        if not isinstance(model_or_program, torch.nn.Module):
            raise TypeError(f"export_and_import takes a torch.nn.Module or an ExportedProgram, "
                            f"not {type(model_or_program).__name__}")
        program = torch.export.export(model_or_program, tuple(args), dynamic_shapes=dynamic_shapes,
                                      strict=strict)
    return program.run_decompositions(decomposition_table())


def export_and_import(model_or_program, *args: Any, output_type: str = "torch",
                      dynamic_shapes: Optional[Any] = None, func_name: str = "main") -> ir.Module:
    """Module (or ExportedProgram) -> MLIR module at `output_type` (see module docstring)."""
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, not {output_type!r}")
    program = export_program(model_or_program, *args, dynamic_shapes=dynamic_shapes)
    importer = FxImporter()
    importer.import_exported_program(program, func_name, parameters="literals")
    return lower_module(importer.module, output_type)


def lower_module(torch_module: ir.Module, output_type: str) -> ir.Module:
    """A Torch dialect module -> `output_type` ("torch" returns it as it is)."""
    if output_type == "torch":
        return torch_module
    linalg_module = lower_to_linalg(torch_module)
    if output_type == "linalg-on-tensors":
        return linalg_module
    from .lowering.pipeline import default_pipeline

    default_pipeline().run(linalg_module)
    return linalg_module


class CompiledExportedProgram:
    """`compiled(*user_inputs) -> output or tuple of outputs`, like calling the exported model."""

    def __init__(self, compiled, constants: Sequence[torch.Tensor], output_spec, program):
        self.compiled = compiled
        self.constants = tuple(constants)
        self.output_spec = output_spec
        self.program = program

    def __call__(self, *inputs: torch.Tensor):
        flat = [x for x in inputs if isinstance(x, torch.Tensor)]
        results = self.compiled(*self.constants, *flat)
        if self.output_spec is None:
            return results[0] if len(results) == 1 else tuple(results)
        return torch.utils._pytree.tree_unflatten(results, self.output_spec)


def compile_exported(model_or_program, *args: Any, dynamic_shapes: Optional[Any] = None,
                     options: Optional[Union[dict, CompileOptions]] = None) -> CompiledExportedProgram:
    """Export, import (parameters as arguments), lower and JIT-compile; returns a callable."""
    from .runtime import compile_linalg

    opts = options if isinstance(options, CompileOptions) else CompileOptions.from_dict(options)
    program = export_program(model_or_program, *args, dynamic_shapes=dynamic_shapes)
    importer = FxImporter()
    constants = importer.import_exported_program(program, "main", parameters="arguments")
    linalg_module = lower_to_linalg(importer.module)

    gm = program.graph_module
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    arg_vals = [n.meta["val"] for n in placeholders]
    if not all(isinstance(v, torch.Tensor) for v in arg_vals):
        raise TorchMlirBackendError("exported programs with non-tensor inputs are not supported yet: "
                                    f"{[n.name for n, v in zip(placeholders, arg_vals) if not isinstance(v, torch.Tensor)]}")
    output_node = next(n for n in gm.graph.nodes if n.op == "output")
    from torch.export.graph_signature import OutputKind

    outs = [n for n, s in zip(output_node.args[0], program.graph_signature.output_specs)
            if s.kind == OutputKind.USER_OUTPUT]
    arg_specs = [TensorSpec.from_tensor(v) for v in arg_vals]
    result_specs = [TensorSpec.from_tensor(n.meta["val"]) for n in outs]
    result_shapes = None
    if not all(s.is_static for s in result_specs):
        result_shapes = _symbolic_result_shapes(arg_vals, [n.meta["val"] for n in outs])
    compiled = compile_linalg(linalg_module, arg_specs, result_specs, opts, result_shapes=result_shapes)
    return CompiledExportedProgram(compiled, constants, program.call_spec.out_spec, program)


def _symbolic_result_shapes(arg_vals, out_vals):
    """`result_shapes(inputs)` for dynamic dims: bind the inputs' size symbols (s0, s1, ...) from
    the call's tensors and evaluate the outputs' size expressions."""
    bindings = []  # (input index, dim, symbol)
    for i, v in enumerate(arg_vals):
        for d, size in enumerate(v.shape):
            if isinstance(size, torch.SymInt) and size.node.expr.is_symbol:
                bindings.append((i, d, size.node.expr))
    exprs = [[size.node.expr if isinstance(size, torch.SymInt) else int(size) for size in o.shape]
             for o in out_vals]

    def result_shapes(inputs):
        env = {sym: inputs[i].shape[d] for i, d, sym in bindings}
        return [[int(e) if isinstance(e, int) else int(e.xreplace(env)) for e in shape] for shape in exprs]

    return result_shapes
