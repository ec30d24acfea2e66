"""LLVM JIT runtime: compile a linalg-on-tensors `@main` and call it on torch tensors.

Entry point: `compile_linalg(module_or_text, arg_specs, result_specs, options) -> CompiledGraph`
(cached in memory); `CompiledGraph(*tensors) -> list[torch.Tensor]`.
"""
from torch_mlir_backend.lowering.pipeline import ArgLayout
from torch_mlir_backend.runtime.cache import (
    CompileCache,
    GraphOwner,
    clear_cache,
    compilation_count,
    compile_linalg,
    compile_torch_graph,
    default_cache,
)
from torch_mlir_backend.runtime.compiled_graph import CompiledGraph, build_compiled_graph, live_engine_count

__all__ = [
    "ArgLayout",
    "CompileCache",
    "CompiledGraph",
    "GraphOwner",
    "build_compiled_graph",
    "clear_cache",
    "compilation_count",
    "compile_linalg",
    "compile_torch_graph",
    "default_cache",
    "live_engine_count",
]
