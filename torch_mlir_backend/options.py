"""Compile options: what `torch.compile(..., options={...})` may say, with environment defaults."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Optional

ENV_DUMP_DIR = "TORCH_MLIR_BACKEND_DUMP_DIR"
ENV_OPT_LEVEL = "TORCH_MLIR_BACKEND_OPT_LEVEL"
# Which code runs f32/f64 convolutions: "aten" (ATen's oneDNN kernel, called from the compiled
# graph as an extern kernel: lowering/extern.py) or "generated" (our own loops / im2col + BLAS).
ENV_CONVOLUTION = "TORCH_MLIR_BACKEND_CONVOLUTION"
CONVOLUTION_POLICIES = ("aten", "generated")


def convolution_policy() -> str:
    policy = os.environ.get(ENV_CONVOLUTION, "aten") or "aten"
    if policy not in CONVOLUTION_POLICIES:
        raise ValueError(f"{ENV_CONVOLUTION} must be one of {CONVOLUTION_POLICIES}, got {policy!r}")
    return policy


@dataclass(frozen=True)
class CompileOptions:
    # Folder where every pipeline stage's IR is written (one file a stage, numbered).
    dump_dir: Optional[str] = field(default_factory=lambda: os.environ.get(ENV_DUMP_DIR) or None)
    # LLVM optimization level of the JIT (0-3).
    opt_level: int = field(default_factory=lambda: int(os.environ.get(ENV_OPT_LEVEL, "3")))
    # Print per-stage compile times to stderr.
    verbose: bool = False
    # Time every call of each compiled graph and keep its per-stage compile times; the report
    # (torch_mlir_backend.profiling.report()) is printed to stderr at exit.
    profile: bool = False
    # Raise UnsupportedOpError for an op that cannot be lowered instead of running it eagerly.
    strict: bool = False

    @staticmethod
    def from_dict(options: Optional[dict]) -> "CompileOptions":
        options = dict(options or {})
        known = {f.name for f in fields(CompileOptions)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(
                f"torch_mlir backend: unknown option(s) {unknown}; known options are {sorted(known)}"
            )
        if "opt_level" in options and options["opt_level"] not in (0, 1, 2, 3):
            raise ValueError(f"torch_mlir backend: opt_level must be 0-3, got {options['opt_level']!r}")
        return CompileOptions(**options)

    def cache_key(self) -> tuple:
        # The dump folder does not change the generated code; the convolution policy does.
        return (self.opt_level, convolution_policy())
