"""`torch_mlir_backend.explain(model, *inputs)`: what the backend compiles and what runs eagerly.

Runs `model(*inputs)` once through `torch.compile(backend="torch_mlir")` while `partition.py`
records every AOTAutograd graph it is given: the compiled regions with the ATen ops in each, and
every op left to eager PyTorch with the reason (no rule, or a rule rejecting these dtypes or
shapes), its input types and the user's source line. Nothing is raised for unsupported ops (the
recording uses the non-strict partitioner), and no fallback warning is issued while recording.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from .partition import Fallback, GraphRecord, recording


@dataclass
class ExplainReport:
    """Per graph (in compile order): its compiled regions (lists of ATen ops) and fallbacks."""

    graphs: list = field(default_factory=list)  # GraphRecord
    outputs: Any = None  # what the compiled model returned

    @property
    def regions(self) -> list:
        return [r for g in self.graphs for r in g.regions]

    @property
    def fallbacks(self) -> list:
        return [f for g in self.graphs for f in g.fallbacks]

    @property
    def fully_compiled(self) -> bool:
        return bool(self.graphs) and not self.fallbacks

    def __str__(self) -> str:
        lines = [f"torch_mlir explain: {len(self.graphs)} graph(s), {len(self.regions)} compiled "
                 f"region(s), {len(self.fallbacks)} op(s) in eager PyTorch"]
        for i, g in enumerate(self.graphs):
            lines.append(f"graph {i} ({g.name}): {g.num_ops} ops")
            for j, ops in enumerate(g.regions):
                counts = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in Counter(ops).items())
                lines.append(f"  region {j}: {len(ops)} ops compiled: {counts}")
            for f in g.fallbacks:
                lines.append(f"  eager: {f}")
        return "\n".join(lines)


def explain(model, *inputs, options: Optional[dict] = None, **kwargs) -> ExplainReport:
    """Compile `model` (a module or function) for `inputs`, run it once, report what happened."""
    from .backend import torch_mlir

    opts = dict(options or {})
    opts["strict"] = False

    def backend(gm, example_inputs):
        return torch_mlir(gm, example_inputs, options=opts)

    compiled = torch.compile(model, backend=backend)
    with recording() as records:
        outputs = compiled(*inputs, **kwargs)
    return ExplainReport(list(records), outputs)


__all__ = ["explain", "ExplainReport", "GraphRecord", "Fallback"]
