"""Runs conformance cases against eager PyTorch and reports pass/fail with the maximum error."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from .compare import assert_same, describe
from .registry import ConformanceCase


@dataclass
class CaseResult:
    name: str
    passed: bool
    max_error: float = 0.0
    message: str = ""
    seconds: float = 0.0


def _clone(x):
    if isinstance(x, torch.Tensor):
        return x.detach().clone().requires_grad_(x.requires_grad)
    return x


def run_case(case: ConformanceCase, backend: str = "torch_mlir") -> CaseResult:
    t0 = time.perf_counter()
    torch._dynamo.reset()
    with torch._dynamo.config.patch(**dict(case.dynamo_config)):
        return _run_case(case, backend, t0)


def _run_case(case: ConformanceCase, backend: str, t0: float) -> CaseResult:
    try:
        torch.manual_seed(0)
        module = case.make_module()
        inputs = list(case.make_inputs())
        if isinstance(module, torch.nn.Module):
            module.train(case.training)
        compiled = torch.compile(module, backend=backend, fullgraph=True, dynamic=False)
        if case.training:
            err = _run_training(module, compiled, inputs, case)
        else:
            with torch.no_grad():
                want = module(*[_clone(x) for x in inputs])
                got = compiled(*[_clone(x) for x in inputs])
            err = assert_same(got, want, case.name, inputs, case.atol, case.rtol)
        return CaseResult(case.name, True, err, seconds=time.perf_counter() - t0)
    except AssertionError as e:
        return CaseResult(case.name, False, float("nan"), str(e), time.perf_counter() - t0)
    except Exception as e:  # report and continue with the next case
        first = f"{type(e).__name__}: {e}".strip().splitlines()
        return CaseResult(case.name, False, float("nan"), "\n".join(first[:6]), time.perf_counter() - t0)


def _run_training(module, compiled, inputs, case) -> float:
    import copy

    eager_module = copy.deepcopy(module)
    eager_in = [_clone(x) for x in inputs]
    want = eager_module(*eager_in)
    loss = sum(o.float().sum() for o in (want if isinstance(want, (tuple, list)) else [want]))
    loss.backward()
    comp_in = [_clone(x) for x in inputs]
    got = compiled(*comp_in)
    loss_c = sum(o.float().sum() for o in (got if isinstance(got, (tuple, list)) else [got]))
    loss_c.backward()
    err = assert_same(got, want, case.name, inputs, case.atol, case.rtol)
    grads_got = [p.grad for p in module.parameters()] + [x.grad for x in comp_in if isinstance(x, torch.Tensor) and x.requires_grad]
    grads_want = [p.grad for p in eager_module.parameters()] + [x.grad for x in eager_in if isinstance(x, torch.Tensor) and x.requires_grad]
    return max(err, assert_same(grads_got, grads_want, case.name + "[grad]", inputs, case.atol, case.rtol))


def run_cases(cases: Sequence[ConformanceCase], verbose: bool = False, backend: str = "torch_mlir",
              out=None) -> list[CaseResult]:
    import sys

    out = out or sys.stdout
    results = []
    for case in cases:
        r = run_case(case, backend)
        results.append(r)
        status = "PASS" if r.passed else "FAIL"
        line = f"{status} {r.name}"
        if verbose:
            line += f"  max_error={r.max_error:.3g}  ({r.seconds:.2f}s)"
        print(line, file=out, flush=True)
        if not r.passed and (verbose or True):
            for msg_line in r.message.splitlines():
                print(f"    {msg_line}", file=out)
    passed = sum(r.passed for r in results)
    print(f"\nSummary: {passed} passed, {len(results) - passed} failed, {len(results)} cases", file=out)
    return results
