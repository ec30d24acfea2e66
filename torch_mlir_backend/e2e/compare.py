"""Comparison of compiled results with eager PyTorch, shared by the e2e runner and the tests.

A failure message names the case, the input shapes/dtypes and the maximum error."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

# Default tolerances per dtype (atol, rtol); tests may pass tighter or looser ones explicitly.
TOLERANCES = {
    torch.float64: (1e-10, 1e-10),
    torch.float32: (1e-5, 1e-5),
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (1.6e-2, 1.6e-2),
    # complex: those of the part dtype, applied to the real and imaginary parts separately
    torch.complex128: (1e-10, 1e-10),
    torch.complex64: (1e-5, 1e-5),
    torch.complex32: (2e-3, 2e-3),
}


def describe(values: Sequence[Any]) -> str:
    parts = []
    for v in values:
        if isinstance(v, torch.Tensor):
            parts.append(f"{list(v.shape)}{str(v.dtype).replace('torch.', '')}")
        else:
            parts.append(repr(v))
    return "(" + ", ".join(parts) + ")"


def _flatten(x):
    if isinstance(x, (tuple, list)):
        return [y for e in x for y in _flatten(e)]
    return [x]


def _as_real_parts(x: torch.Tensor) -> torch.Tensor:
    """A complex tensor as float64 [..., 2] (real, imaginary): each part compared on its own, so
    an error in the imaginary part counts as one in the real part does."""
    return torch.view_as_real(x.to(torch.complex128))


def max_error(got: torch.Tensor, want: torch.Tensor) -> float:
    if got.numel() == 0:
        return 0.0
    if want.dtype == torch.bool or not (want.is_floating_point() or want.is_complex()):
        return float((got.to(torch.int64) != want.to(torch.int64)).sum())
    if want.is_complex():
        return max_error(_as_real_parts(got), _as_real_parts(want))
    diff = (got.double() - want.double()).abs()
    both_nan = got.isnan() & want.isnan()
    both_inf = (got == want) & want.isinf()
    diff = torch.where(both_nan | both_inf, torch.zeros_like(diff), diff)
    return float(diff.max())


def assert_same(got: Any, want: Any, name: str, inputs: Sequence[Any],
                atol: Optional[float] = None, rtol: Optional[float] = None) -> float:
    """Compare (nested) outputs; returns the maximum error seen."""
    got_l, want_l = _flatten(got), _flatten(want)
    assert len(got_l) == len(want_l), f"{name}{describe(inputs)}: {len(got_l)} outputs, eager has {len(want_l)}"
    worst = 0.0
    for i, (g, w) in enumerate(zip(got_l, want_l)):
        if not isinstance(w, torch.Tensor):
            assert g == w, f"{name}{describe(inputs)}: output {i} is {g!r}, eager gives {w!r}"
            continue
        assert isinstance(g, torch.Tensor), f"{name}: output {i} is {type(g).__name__}, not a tensor"
        assert g.dtype == w.dtype, f"{name}{describe(inputs)}: output {i} dtype {g.dtype}, eager {w.dtype}"
        assert g.shape == w.shape, f"{name}{describe(inputs)}: output {i} shape {list(g.shape)}, eager {list(w.shape)}"
        a, r = TOLERANCES.get(w.dtype, (0, 0))
        a = a if atol is None else atol
        r = r if rtol is None else rtol
        err = max_error(g, w)
        worst = max(worst, err)
        if w.is_complex():
            ok = torch.allclose(_as_real_parts(g), _as_real_parts(w), atol=a, rtol=r, equal_nan=True)
        elif w.is_floating_point():
            ok = torch.allclose(g.double(), w.double(), atol=a, rtol=r, equal_nan=True)
        else:
            ok = err == 0
        assert ok, (f"{name}{describe(inputs)}: output {i} differs from eager: max error {err:.3g} "
                    f"(atol={a}, rtol={r})")
    return worst
