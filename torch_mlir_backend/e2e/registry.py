"""Named conformance cases: a module factory, an input factory and tolerances, registered by
`@conformance_case`. The same cases run from `python -m torch_mlir_backend.e2e` and under pytest
(tests/e2e/test_conformance.py)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch


@dataclass(frozen=True)
class ConformanceCase:
    name: str
    make_module: Callable[[], Callable]
    make_inputs: Callable[[], Sequence[Any]]
    atol: Optional[float] = None
    rtol: Optional[float] = None
    # Run the module in train mode with gradients (forward + backward through our backend).
    training: bool = False
    tags: tuple = field(default_factory=tuple)
    # torch._dynamo.config settings the case compiles under (e.g. allow_rnn for nn.LSTM, which
    # Dynamo refuses to trace by default).
    dynamo_config: tuple = field(default_factory=tuple)


CASES: dict[str, ConformanceCase] = {}


def conformance_case(name: Optional[str] = None, *, inputs: Callable[[], Sequence[Any]],
                     atol: Optional[float] = None, rtol: Optional[float] = None,
                     training: bool = False, tags: Sequence[str] = (), dynamo_config: Optional[dict] = None):
    """Register a module class or a factory function as a case named after it."""

    def register(factory):
        case_name = name or factory.__name__
        if case_name in CASES:
            raise ValueError(f"duplicate conformance case {case_name}")
        CASES[case_name] = ConformanceCase(case_name, factory, inputs, atol, rtol, training, tuple(tags),
                                           tuple(sorted((dynamo_config or {}).items())))
        return factory

    return register


def all_cases() -> list[ConformanceCase]:
    from . import cases  # noqa: F401  (registers every case)

    return sorted(CASES.values(), key=lambda c: c.name)


def select_cases(pattern: Optional[str] = None) -> list[ConformanceCase]:
    """Cases whose name matches the regular expression `pattern` (search, case-sensitive)."""
    cases = all_cases()
    if not pattern:
        return cases
    regex = re.compile(pattern)
    return [c for c in cases if regex.search(c.name)]
