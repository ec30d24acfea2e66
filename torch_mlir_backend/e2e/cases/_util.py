"""Small building blocks for cases: wrap a function as a module, seeded random inputs."""
from __future__ import annotations

from typing import Callable

import torch


class FunctionModule(torch.nn.Module):
    """A stateless module around a function of tensors (so a case is one line)."""

    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


def fn_case(name: str, fn: Callable, inputs: Callable, **kwargs) -> None:
    from ..registry import conformance_case

    conformance_case(name, inputs=inputs, **kwargs)(lambda: FunctionModule(fn))


def rand(*shape, dtype=torch.float32, low=-1.0, high=1.0):
    return lambda: (torch.rand(*shape, dtype=torch.float64) * (high - low) + low).to(dtype)


def randint(*shape, low=0, high=10, dtype=torch.int64):
    return lambda: torch.randint(low, high, shape, dtype=dtype)


def inputs(*makers):
    """A case's input factory from per-input factories (called in order under the case's seed)."""
    return lambda: [m() for m in makers]
