"""Sorting (lowering/sorting.py) against eager: sort (default and stable overloads), argsort
(which reaches us as sort) and topk, on two shapes per dtype; values and indices are exact.

Our sort is stable. Tests of `sort.default` and `topk` use distinct values, since eager does not
promise an order for equal ones there; `stable=True` tests have many ties."""
import pytest
import torch

from helpers import check, make_input
from torch_mlir_backend.types import SUPPORTED_DTYPES

COVERED = ["aten.sort.default", "aten.sort.stable", "aten.topk.default"]

DTYPES = [pytest.param(d, id=str(d).replace("torch.", "")) for d in SUPPORTED_DTYPES]
EXACT = dict(atol=0, rtol=0)
NAN, INF = float("nan"), float("inf")


def distinct(shape, dtype, seed):
    """Distinct values of `dtype` (a permutation; bool has only two values, so it gets ties)."""
    g = torch.Generator().manual_seed(seed)
    n = torch.Size(shape).numel()
    values = torch.randperm(n, generator=g) - n // 2
    if dtype == torch.uint8:
        values = values + n // 2
    return values.to(dtype).view(shape)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sort_stable_with_ties(dtype):
    # Few distinct values: most elements tie, and stable order fixes their indices.
    a = make_input((4, 9), dtype, -2, 2, seed=1)
    c = make_input((3, 5, 4), dtype, -2, 2, seed=2)
    check(lambda a, c: (torch.sort(a, dim=1, stable=True), torch.sort(a, dim=0, descending=True, stable=True),
                        torch.sort(c, dim=1, stable=True), torch.argsort(c, dim=-1, descending=True, stable=True)),
          a, c, **EXACT)


@pytest.mark.parametrize("dtype", [d for d in DTYPES if d.values[0] != torch.bool])
def test_sort_default_and_topk(dtype):
    a, c = distinct((4, 9), dtype, 1), distinct((3, 5, 4), dtype, 2)
    check(lambda a, c: (torch.sort(a), torch.sort(c, 0, descending=True), torch.argsort(a, 0),
                        torch.topk(a, 3), torch.topk(c, 2, dim=1, largest=False), torch.topk(c, 3, dim=0)),
          a, c, **EXACT)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_nan_and_infinity_order(dtype):
    # Eager puts NaN after +inf when ascending and first when descending (topk: NaN is largest).
    x = torch.tensor([[3.0, NAN, 1.0, -INF, NAN, 0.5, INF], [1.0, 2.0, NAN, 4.0, -1.0, -2.0, 0.0]], dtype=dtype)
    check(lambda x: (torch.sort(x, dim=1, stable=True), torch.sort(x, dim=1, descending=True, stable=True),
                     torch.topk(x, 2), torch.topk(x, 3, largest=False)), x, **EXACT)


def test_sort_of_0d_length_1_and_topk_k0():
    check(lambda s, a: (torch.sort(s), torch.sort(a, 1), torch.topk(a, 0, dim=0)),
          torch.tensor(1.5), make_input((3, 1), torch.float32), **EXACT)


def test_two_sorts_of_one_tensor_in_one_graph():
    # Both sorts start from the same input; each must get its own loop-carried buffers.
    x = torch.tensor([[3.0, NAN, 1.0, -2.0, NAN, 0.5], [1, 2, 3, 4, 5, 6]])
    check(lambda x: (torch.sort(x, 1)[1], torch.sort(x, 1, descending=True)[1], torch.sort(x, 0)[0]), x, **EXACT)

