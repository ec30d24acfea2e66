"""Scans (lowering/scan.py) against eager: cumsum, cumprod, logcumsumexp, cummax, cummin (values and
indices) on two shapes per dtype, and nonzero_static (built on a running count).

Eager accumulates float32 scans in float64 and half-precision ones in float32, as we do, so
float32 agrees to rounding; integer scans are exact."""
import pytest
import torch

from helpers import check, make_input
from torch_mlir_backend.types import SUPPORTED_DTYPES

COVERED = ["aten.cumsum.default", "aten.cumprod.default", "aten.logcumsumexp.default", "aten.cummax.default",
           "aten.cummin.default", "aten.nonzero_static.default"]

DTYPES = [pytest.param(d, id=str(d).replace("torch.", "")) for d in SUPPORTED_DTYPES]
FLOATS = [pytest.param(d, id=str(d).replace("torch.", ""))
          for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16)]


def tolerance(dtype):
    if dtype in (torch.float16, torch.bfloat16):
        return dict(atol=2e-2, rtol=2e-2)
    if dtype.is_floating_point:
        return dict(atol=1e-5, rtol=1e-5)
    return dict(atol=0, rtol=0)


def two(dtype, low=-2, high=2):
    return make_input((3, 6), dtype, low, high, seed=1), make_input((2, 3, 4), dtype, low, high, seed=2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cumsum_and_cumprod(dtype):
    # Values in [-1.5, 1.5] keep products of six factors well inside every dtype's range.
    a, c = two(dtype, -1.5, 1.5)
    check(lambda a, c: (torch.cumsum(a, 1), torch.cumsum(a, 0), torch.cumsum(c, -1), torch.cumsum(c, 1),
                        torch.cumprod(a, 1), torch.cumprod(c, 0), torch.cumprod(c, 2)), a, c, **tolerance(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
def test_logcumsumexp(dtype):
    check(lambda a, c: (torch.logcumsumexp(a, 1), torch.logcumsumexp(c, 0), torch.logcumsumexp(c, -1)),
          *two(dtype, -4, 4), **tolerance(dtype))


def test_logcumsumexp_infinities_and_nan():
    inf, nan = float("inf"), float("nan")
    x = torch.tensor([[-inf, -inf, 1.0, -inf, 2.0], [inf, 1.0, inf, -inf, 0.0], [0.0, nan, 1.0, 2.0, 3.0]])
    check(lambda x: torch.logcumsumexp(x, 1), x, atol=1e-6, rtol=1e-6)


def test_cumsum_dtype_argument_and_bool():
    a = make_input((4, 5), torch.int32)
    m = make_input((4, 5), torch.bool)
    check(lambda a, m: (torch.cumsum(a, 1, dtype=torch.float64), torch.cumsum(a, 0, dtype=torch.int32),
                        torch.cumsum(m, 1), torch.cumprod(a, 0, dtype=torch.float32)), a, m, atol=1e-6, rtol=1e-6)


def test_scan_of_0d_and_of_length_1():
    check(lambda s, a: (torch.cumsum(s, 0), torch.cumprod(s, -1), torch.cumsum(a, 1)),
          torch.tensor(2.5), make_input((3, 1), torch.float32), atol=0, rtol=0)


def test_several_scans_with_equal_initial_values_in_one_graph():
    # Equal accumulator fills are merged by CSE; each loop must still get its own.
    a, c = make_input((3, 6), torch.float32, seed=3), make_input((3, 6), torch.float32, seed=4)
    check(lambda a, c: (torch.cumsum(a, 1), torch.cumsum(c, 1), torch.cumsum(a, 1) * 2), a, c,
          atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cummax_and_cummin_with_ties(dtype):
    # Few distinct values: eager takes the last of equal extremes (x >= running), as we do.
    a, c = two(dtype, -2, 2)
    check(lambda a, c: (torch.cummax(a, 1), torch.cummax(a, 0), torch.cummin(c, -1), torch.cummin(c, 1),
                        torch.cummax(c, 0)), a, c, atol=0, rtol=0)


def test_cummax_and_cummin_nan_and_infinities():
    # A NaN is taken and sticks, each later NaN moving the index to itself.
    inf, nan = float("inf"), float("nan")
    x = torch.tensor([[1.0, nan, 2.0, nan, -1.0], [-inf, -inf, 3.0, inf, inf], [0.0, -0.0, 0.0, -1.0, nan]])
    check(lambda x: (torch.cummax(x, 1), torch.cummin(x, 1), torch.cummax(x, 0), torch.cummin(x.double(), 0)),
          x, atol=0, rtol=0)


def test_cummax_of_0d_and_of_length_1():
    check(lambda s, a: (torch.cummax(s, 0), torch.cummin(s, -1), torch.cummax(a, 1)),
          torch.tensor(2.5), make_input((3, 1), torch.float32), atol=0, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.uint8, torch.bool],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_nonzero_static_truncates_and_pads(dtype):
    x = make_input((3, 4, 5), dtype, -1, 2, seed=5)
    v = make_input((7,), dtype, -1, 2, seed=6)
    nonzeros = int(torch.count_nonzero(x))
    check(lambda x, v: (torch.nonzero_static(x, size=nonzeros - 3), torch.nonzero_static(x, size=nonzeros),
                        torch.nonzero_static(x, size=nonzeros + 4, fill_value=-9), torch.nonzero_static(v, size=9),
                        torch.nonzero_static(x, size=0)), x, v, atol=0, rtol=0)


def test_nonzero_static_of_0d_and_empty():
    check(lambda s, z, e: (torch.nonzero_static(s, size=2), torch.nonzero_static(z, size=2, fill_value=5),
                           torch.nonzero_static(e, size=3)),
          torch.tensor(3.0), torch.tensor(0), torch.zeros(0, 4), atol=0, rtol=0)
