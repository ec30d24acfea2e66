"""Exceptions raised by the compiler. Each names the op, its input types and the user's line."""
from __future__ import annotations


class TorchMlirBackendError(RuntimeError):
    """Base class of every error this package raises on purpose."""


class UnsupportedOpError(TorchMlirBackendError):
    """No lowering rule for an ATen overload, or a rule rejects the given dtypes/shapes."""

    def __init__(self, op_name: str, reason: str, input_types: str = "", location: str = ""):
        self.op_name = op_name
        self.reason = reason
        self.input_types = input_types
        self.location = location
        parts = [f"{op_name}: {reason}"]
        if input_types:
            parts.append(f"  inputs: {input_types}")
        if location:
            parts.append(f"  at: {location}")
        super().__init__("\n".join(parts))


class GraphImportError(TorchMlirBackendError):
    """An FX graph node could not be imported into the Torch dialect."""


class CompileError(TorchMlirBackendError):
    """An MLIR verifier or pass failure; `diagnostics` holds MLIR's messages."""

    def __init__(self, message: str, diagnostics: str = "", stage: str = ""):
        self.diagnostics = diagnostics
        self.stage = stage
        text = message
        if stage:
            text += f" (stage '{stage}')"
        if diagnostics:
            text += "\nMLIR diagnostics:\n" + diagnostics
        super().__init__(text)
