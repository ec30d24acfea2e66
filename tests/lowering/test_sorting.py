"""Sorting (lowering/sorting.py) against eager: sort (default and stable overloads), argsort
(which reaches us as sort) and topk; the selections built on sort (kthvalue, median, nanmedian,
mode); searches of sorted sequences (bucketize, searchsorted) and histograms (histc, histogram).
Values and indices are exact, except histogram densities (float rounding).

Eager's unstable sort is libstdc++'s std::sort, its kthvalue ATen's quickselect and its topk
(k * 64 > n) std::nth_element + std::sort, which we replay: tests with many ties check that the
indices of equal values are eager's. topk with k * 64 <= n (std::partial_sort, not replayed) is
tested on distinct values; `stable=True`,
median (eager orders by value, then index) and mode (eager's std::sort, replayed) tests have many
ties."""
import pytest
import torch

from helpers import check, make_input
from torch_mlir_backend.types import SUPPORTED_DTYPES

COVERED = ["aten.sort.default", "aten.sort.stable", "aten.topk.default", "aten.kthvalue.default",
           "aten.median.default", "aten.median.dim", "aten.nanmedian.default", "aten.nanmedian.dim",
           "aten.mode.default", "aten.bucketize.Tensor", "aten.bucketize.Scalar", "aten.searchsorted.Tensor",
           "aten.searchsorted.Scalar", "aten.histc.default", "aten.histogram.bin_ct",
           "aten.histogram.bins_tensor"]

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



# ----- kthvalue, median, nanmedian, mode -----------------------------------------------------
NUMERIC = [d for d in DTYPES if d.values[0] != torch.bool]


def with_nans(shape, dtype, seed):
    x = make_input(shape, dtype, -2, 2, seed=seed)
    x.view(-1)[::5] = NAN  # every row of the shapes below gets some, none gets only NaNs
    # (an all-NaN row is left out: eager's index there is std::nth_element's, not a rule)
    return x


@pytest.mark.parametrize("dtype", NUMERIC)
def test_kthvalue_with_ties(dtype):
    # Few distinct values: the index among equal values is the one eager's quickselect leaves.
    a = make_input((4, 9), dtype, -2, 2, seed=3)
    c = make_input((3, 21, 4), dtype, -2, 2, seed=4)
    check(lambda a, c: (torch.kthvalue(a, 1), torch.kthvalue(a, 9, 1), torch.kthvalue(a, 5, 1),
                        torch.kthvalue(a, 2, 0, keepdim=True), torch.kthvalue(c, 3, 1), torch.kthvalue(c, 11, 1),
                        torch.kthvalue(c, 2, -1, keepdim=True)), a, c, **EXACT)


def test_kthvalue_nan_is_largest():
    x = make_input((5, 8), torch.float32, -2, 2, seed=20).round()
    x[::2, 1::3] = NAN
    check(lambda x: (torch.kthvalue(x, 7, 1), torch.kthvalue(x, 2, 1), torch.kthvalue(x, 5, 0)), x, **EXACT)


@pytest.mark.parametrize("dtype", NUMERIC)
def test_median_and_nanmedian_with_ties(dtype):
    # Few distinct values: eager's index among equal medians is the smallest, as a stable sort's.
    a = make_input((4, 9), dtype, -2, 2, seed=5)
    c = make_input((3, 6, 4), dtype, -2, 2, seed=6)
    check(lambda a, c: (torch.median(a), torch.median(c), torch.median(a, 1), torch.median(a, 0, keepdim=True),
                        torch.median(c, 1), torch.nanmedian(a), torch.nanmedian(c, -1), torch.nanmedian(a, 0)),
          a, c, **EXACT)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_median_propagates_nan_and_nanmedian_skips_it(dtype):
    # median returns a row's first NaN and its index; nanmedian the median of the other values.
    a, c = with_nans((4, 7), dtype, 7), with_nans((3, 6, 4), dtype, 8)
    check(lambda a, c: (torch.median(a), torch.median(a, 1), torch.median(c, 1, keepdim=True),
                        torch.nanmedian(a), torch.nanmedian(a, 1), torch.nanmedian(c, 1), torch.nanmedian(c, 2)),
          a, c, **EXACT)


def test_median_of_0d_and_of_length_1():
    check(lambda s, a: (torch.median(s), torch.median(s, 0), torch.nanmedian(a, 1), torch.kthvalue(a, 1, 1)),
          torch.tensor(1.5), make_input((3, 1), torch.float32), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mode_with_ties(dtype):
    # The smallest most frequent value wins; its index is the last in eager's std::sort order.
    a = make_input((5, 9), dtype, -2, 2, seed=9)
    c = make_input((3, 6, 4), dtype, -2, 2, seed=10)
    check(lambda a, c: (torch.mode(a), torch.mode(a, 0), torch.mode(c, 1), torch.mode(c, -1, keepdim=True)),
          a, c, **EXACT)


# ----- bucketize, searchsorted ----------------------------------------------------------------
SEARCHED = [pytest.param(d, id=str(d).replace("torch.", ""))
            for d in (torch.float32, torch.float64, torch.float16, torch.int64, torch.int32, torch.uint8)]


@pytest.mark.parametrize("dtype", SEARCHED)
def test_bucketize_and_searchsorted_with_repeated_boundaries(dtype):
    bounds = torch.tensor([0, 2, 2, 3, 7], dtype=dtype)
    x = make_input((4, 6), dtype, 0, 9, seed=11)
    seq = torch.sort(make_input((4, 5), dtype, 0, 9, seed=12), dim=1).values
    check(lambda x, bd, seq: (torch.bucketize(x, bd), torch.bucketize(x, bd, right=True),
                              torch.bucketize(x, bd, out_int32=True), torch.searchsorted(bd, x),
                              torch.searchsorted(bd, x, side="right"), torch.searchsorted(seq, x),
                              torch.searchsorted(seq, x, right=True, out_int32=True)),
          x, bounds, seq, **EXACT)


def test_bucketize_and_searchsorted_scalars_nan_and_sorter():
    bd = torch.tensor([-1.0, 0.0, 0.0, 0.5, 2.0])
    x = torch.tensor([[-2.0, -1.0, 0.0, 0.3], [0.5, 2.0, 3.0, NAN]])  # NaN goes after every bound
    perm = torch.tensor([3, 0, 4, 1, 2])
    shuffled = bd[torch.argsort(perm)]  # shuffled[perm] == bd
    check(lambda x, bd, sh, perm: (torch.bucketize(x, bd), torch.bucketize(0.0, bd), torch.bucketize(2, bd, right=True),
                                   torch.searchsorted(bd, 0.25), torch.searchsorted(bd, 0.0, right=True),
                                   torch.searchsorted(sh, x, sorter=perm),
                                   torch.bucketize(x.to(torch.float64), bd)),
          x, bd, shuffled, perm, **EXACT)


def test_searchsorted_rejects_mismatched_leading_dimensions():
    from helpers import compile_fn
    with pytest.raises(Exception, match="leading dimensions|boundaries|sorted"):
        compile_fn(lambda s, x: torch.searchsorted(s, x))(torch.zeros(2, 2, 5), torch.zeros(2, 3))


# ----- histc, histogram -----------------------------------------------------------------------
HISTOGRAMMED = [pytest.param(d, id=str(d).replace("torch.", "")) for d in (torch.float32, torch.float64)]


@pytest.mark.parametrize("dtype", HISTOGRAMMED)
def test_histc(dtype):
    x = make_input((6, 7), dtype, -1.5, 1.5, seed=13)
    edge_cases = torch.tensor([0.0, 1.0, 3.0, 3.5, -1.0, NAN, 2.9999, 1.5], dtype=dtype)
    check(lambda x, e: (torch.histc(x, 10), torch.histc(x, 4, -1, 1), torch.histc(x, bins=3, min=0.5, max=0.5),
                        torch.histc(e, 6, 0, 3), torch.histc(torch.full_like(x, 2.0), 5)),
          x, edge_cases, **EXACT)


@pytest.mark.parametrize("dtype", HISTOGRAMMED)
def test_histogram(dtype):
    x = make_input((5, 7), dtype, -1.5, 1.5, seed=14)
    w = make_input((5, 7), dtype, 0, 1, seed=15)
    edges = torch.tensor([-1.0, -0.2, 0.0, 0.7, 1.5], dtype=dtype)
    check(lambda x, w, e: (torch.histogram(x, 6), torch.histogram(x, 4, range=(-1.0, 1.0), weight=w, density=True),
                           torch.histogram(x, e), torch.histogram(x, e, weight=w, density=True),
                           torch.histogram(torch.full_like(x, 0.25), 3)),
          x, w, edges, atol=1e-6 if dtype == torch.float32 else 1e-12, rtol=1e-6 if dtype == torch.float32 else 1e-12)


def ties(shape, dtype, seed):
    """Values 0..3 only (bool: 0..1)."""
    x = make_input(shape, dtype, 0, 3, seed=seed)
    return x.round() if dtype.is_floating_point else x


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.uint8, torch.bool],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_unstable_sort_ties_as_eager(dtype):
    # Rows longer than 16 with few distinct values: eager's std::sort leaves equal keys in an
    # order that is not the stable one; we replay it, so the indices match.
    a, c, v = ties((3, 50), dtype, 16), ties((40, 2, 3), dtype, 17), ties((300,), dtype, 18)
    check(lambda a, c, v: (torch.sort(a, 1), torch.sort(a, 1, descending=True), torch.argsort(c, 0),
                           torch.sort(c, dim=0, descending=True, stable=False), torch.argsort(v)),
          a, c, v, **EXACT)


def test_unstable_sort_nan_ties_as_eager():
    x = ties((2, 37), torch.float64, 19)
    x[0, ::7] = NAN
    x[1, 3::5] = NAN
    check(lambda x: (torch.sort(x, 1), torch.sort(x, 1, descending=True)), x, **EXACT)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.uint8],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_topk_ties_as_eager(dtype):
    # k * 64 > n: eager's nth_element + sort, replayed, including for sorted=False.
    a, c = ties((4, 30), dtype, 21), ties((5, 5, 5), dtype, 22)
    check(lambda a, c: (torch.topk(a, 1), torch.topk(a, 5), torch.topk(a, 20, largest=False), torch.topk(a, 30),
                        torch.topk(a, 9, sorted=False), torch.topk(c, 2, 0), torch.topk(c, 3, 1, largest=False)),
          a, c, **EXACT)


def test_topk_nan_ties_as_eager():
    x = ties((3, 40), torch.float32, 23)
    x[:, ::6] = NAN
    check(lambda x: (torch.topk(x, 7, 1), torch.topk(x, 7, 1, largest=False)), x, **EXACT)


def test_mode_of_long_rows_and_nan_as_eager():
    # Rows longer than 16 (std::sort is no longer an insertion sort) and NaN (each its own run).
    a = ties((4, 40), torch.int64, 24)
    x = ties((3, 30), torch.float32, 25)
    x[:, ::7] = NAN
    check(lambda a, x: (torch.mode(a, 1), torch.mode(a, 0), torch.mode(x, 1), torch.mode(x, 0)), a, x, **EXACT)
