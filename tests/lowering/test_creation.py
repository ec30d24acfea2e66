"""Creation ops (lowering/creation.py) against eager. `empty*` results hold unspecified
values, so those tests check shape and dtype only (and that the result can be used)."""
import pytest
import torch

from helpers import check, compile_fn, make_input
from torch_mlir_backend.types import FLOAT_DTYPES, INT_DTYPES, SUPPORTED_DTYPES

DTYPES = [pytest.param(d, id=str(d).replace("torch.", "")) for d in SUPPORTED_DTYPES]
ARANGE_DTYPES = [pytest.param(d, id=str(d).replace("torch.", "")) for d in FLOAT_DTYPES + INT_DTYPES]
EXACT = dict(atol=0, rtol=0)
ANCHOR = make_input((2,), torch.float32)  # a graph needs a tensor input


def _fill_for(dtype):
    return True if dtype == torch.bool else (2.5 if dtype.is_floating_point else 7)


@pytest.mark.parametrize("dtype", ARANGE_DTYPES)
def test_arange(dtype):
    if dtype.is_floating_point:
        fn = lambda a: (torch.arange(0, 3, 0.1, dtype=dtype), torch.arange(-1.5, 2, 0.25, dtype=dtype),
                        torch.arange(5, dtype=dtype))
    else:
        lo = 0 if dtype == torch.uint8 else -4
        fn = lambda a: (torch.arange(lo, 9, 2, dtype=dtype), torch.arange(12, lo, -3, dtype=dtype),
                        torch.arange(5, dtype=dtype))
    # Integers are exact. Eager's vectorized float kernel adds `step` to a per-vector base
    # (vector width depends on the CPU), so float results may differ in the last bit.
    check(fn, ANCHOR, **({} if dtype.is_floating_point else EXACT))


def test_arange_integer_dtype_truncates_fractional_step():
    check(lambda a: torch.arange(0, 5, 1.5, dtype=torch.int64), ANCHOR, **EXACT)


def test_arange_default_dtype_in_expression():
    check(lambda a: a[:, None] * torch.arange(4), ANCHOR, **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_full(dtype):
    v = _fill_for(dtype)
    check(lambda a: (torch.full((2, 3), v, dtype=dtype), torch.full((4,), v, dtype=dtype),
                     torch.zeros(3, 1, dtype=dtype), torch.ones(2, dtype=dtype)), ANCHOR, **EXACT)


def test_full_float_value_into_int_truncates():
    check(lambda a: torch.full((2, 2), -2.7, dtype=torch.int32), ANCHOR, **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_full_like(dtype):
    v = _fill_for(dtype)
    check(lambda a, c: (torch.full_like(a, v), torch.zeros_like(c), torch.ones_like(a, dtype=torch.float32)),
          make_input((3, 4), dtype), make_input((2, 1, 5), dtype), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scalar_tensor(dtype):
    v = _fill_for(dtype)
    check(lambda a: (torch.scalar_tensor(v, dtype=dtype), torch.scalar_tensor(0, dtype=dtype)), ANCHOR,
          **EXACT)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int64, torch.uint8, torch.bool],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_empty_family_shapes_and_dtypes(dtype):
    def fn(a):
        return (torch.empty(3, 2, dtype=dtype), torch.empty_strided((4, 5), (1, 4), dtype=dtype),
                torch.empty_like(a, dtype=dtype), torch.empty((2, 0), dtype=dtype))

    got = compile_fn(fn)(make_input((2, 3), torch.float32))
    want = fn(make_input((2, 3), torch.float32))
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype


def test_empty_then_filled():
    check(lambda a: (torch.empty(2, 3).fill_(1.5) + a[0], torch.empty_like(a).fill_(3)),
          make_input((2, 3), torch.float32), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_copy_into_template(dtype):
    # copy_ into a fresh tensor: functional copy.default, with broadcasting and conversion.
    src_dtype = SUPPORTED_DTYPES[(SUPPORTED_DTYPES.index(dtype) + 3) % len(SUPPORTED_DTYPES)]

    def fn(a, c):
        return torch.zeros(3, 4, dtype=dtype).copy_(a), torch.ones(2, 3, 4, dtype=dtype).copy_(c)

    tol = dict(atol=1e-2, rtol=1e-2) if dtype in (torch.float16, torch.bfloat16) else EXACT
    check(fn, make_input((3, 4), src_dtype), make_input((4,), dtype), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_as_strided(dtype):
    def fn(a, c):
        return a.as_strided((2, 2), (1, 2), 3), c.as_strided((3, 2), (4, 6)), a.as_strided((4,), (0,), 5)

    check(fn, make_input((4, 6), dtype), make_input((3, 5), dtype), **EXACT)


def test_as_strided_beyond_the_tensor_is_rejected():
    # The read would leave the operand (eager reads the underlying storage): rejected.
    with pytest.raises(Exception, match="aten.as_strided"):
        compile_fn(lambda a: a[:2].as_strided((2, 6), (6, 1), 6) + 1)(make_input((4, 6), torch.float32))
