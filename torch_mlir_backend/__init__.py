"""torch-mlir-backend: `torch.compile(model, backend="torch_mlir")` on the CPU through MLIR.

Data flows one way: `backend` (Dynamo + AOTAutograd) -> `importers` (FX -> Torch dialect) ->
`lowering` (Torch dialect -> linalg-on-tensors -> LLVM dialect) -> `runtime` (LLVM JIT).
"""
from .backend import compile_fx_graph, make_backend, torch_mlir
from .errors import CompileError, GraphImportError, TorchMlirBackendError, UnsupportedOpError
# The torch.export road (the TorchScript and lazy-tensor roads: importers/, lazy.py).
from .export import compile_exported, export_and_import
from .explain import ExplainReport, explain
from .options import CompileOptions

__version__ = "0.1.0"

__all__ = ["torch_mlir", "make_backend", "compile_fx_graph", "CompileOptions", "CompileError",
           "GraphImportError", "TorchMlirBackendError", "UnsupportedOpError", "explain", "ExplainReport", "__version__"]
__all__ += ["export_and_import", "compile_exported"]
