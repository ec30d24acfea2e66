"""Selection, scan-with-index, search and histogram cases: kthvalue, median, nanmedian, mode,
cummax, cummin, bucketize, searchsorted, histc, histogram, nonzero_static; and ties in unstable
sort, topk and kthvalue, whose indices follow eager's own algorithms (std::sort, nth_element,
quickselect), which the lowering replays."""
import torch

from ._util import fn_case, inputs, rand, randint


def _with_nans(*shape):
    def make():
        x = torch.rand(*shape) * 2 - 1
        x.view(-1)[::5] = float("nan")
        return x
    return make


def _sorted(*shape, dtype=torch.float32):
    return lambda: torch.sort(torch.rand(*shape, dtype=torch.float64) * 4 - 2, dim=-1).values.to(dtype)


fn_case("KthvalueModule_basic", lambda x: torch.kthvalue(x, 3, dim=1), inputs(rand(4, 7)))
fn_case("KthvalueModule_keepdimDim0", lambda x: torch.kthvalue(x, 2, dim=0, keepdim=True), inputs(rand(5, 3, 2)))
fn_case("MedianModule_all", lambda x: torch.median(x), inputs(rand(5, 7)))
fn_case("MedianModule_dim", lambda x: torch.median(x, dim=1), inputs(rand(4, 6)))
fn_case("MedianModule_dimKeepdimI64", lambda x: torch.median(x, dim=0, keepdim=True), inputs(randint(7, 5, high=4)))
fn_case("MedianModule_nanPropagates", lambda x: torch.median(x, dim=1), inputs(_with_nans(4, 6)))
fn_case("NanmedianModule_all", lambda x: torch.nanmedian(x), inputs(_with_nans(5, 7)))
fn_case("NanmedianModule_dim", lambda x: torch.nanmedian(x, dim=-1), inputs(_with_nans(3, 8)))
fn_case("ModeModule_i64", lambda x: torch.mode(x, dim=1), inputs(randint(4, 9, high=3)))
fn_case("ModeModule_keepdimDim0", lambda x: torch.mode(x, dim=0, keepdim=True), inputs(randint(8, 3, high=4)))
fn_case("CummaxModule_dim1", lambda x: torch.cummax(x, dim=1), inputs(rand(3, 8)))
fn_case("CummaxModule_i64Ties", lambda x: torch.cummax(x, dim=0), inputs(randint(9, 3, high=4)))
fn_case("CumminModule_basic", lambda x: torch.cummin(x, dim=-1), inputs(rand(2, 3, 6)))
fn_case("CumminModule_nan", lambda x: torch.cummin(x, dim=1), inputs(_with_nans(3, 7)))
fn_case("BucketizeModule_basic", lambda x, b: torch.bucketize(x, b), inputs(rand(4, 5, low=-3, high=3), _sorted(6)))
fn_case("BucketizeModule_rightInt32", lambda x, b: torch.bucketize(x, b, right=True, out_int32=True),
        inputs(randint(4, 5, high=6), lambda: torch.tensor([0, 1, 1, 3, 5])))
fn_case("SearchsortedModule_1d", lambda s, x: torch.searchsorted(s, x), inputs(_sorted(7), rand(3, 4, low=-3, high=3)))
fn_case("SearchsortedModule_batchedRight", lambda s, x: torch.searchsorted(s, x, side="right"),
        inputs(_sorted(3, 6), rand(3, 5, low=-3, high=3)))
fn_case("SearchsortedModule_sorter", lambda s, x: torch.searchsorted(s, x, sorter=torch.argsort(s)),
        inputs(rand(8), rand(4)))
fn_case("HistcModule_basic", lambda x: torch.histc(x, bins=8, min=-1, max=1), inputs(rand(6, 7)))
fn_case("HistcModule_dataRange", lambda x: torch.histc(x, bins=5), inputs(rand(40, dtype=torch.float64)))
fn_case("HistogramModule_binCount", lambda x: torch.histogram(x, bins=6), inputs(rand(5, 9)))
fn_case("HistogramModule_weightedDensity",
        lambda x, w: torch.histogram(x, bins=4, range=(-1.0, 1.0), weight=w, density=True),
        inputs(rand(30), rand(30, low=0.0, high=1.0)))
fn_case("HistogramModule_edges", lambda x, e: torch.histogram(x, e),
        inputs(rand(25), lambda: torch.tensor([-1.0, -0.5, 0.1, 0.2, 1.0])))
fn_case("NonzeroStaticModule_basic", lambda x: torch.nonzero_static(x, size=6), inputs(randint(3, 4, high=2)))
fn_case("NonzeroStaticModule_padded", lambda x: torch.nonzero_static(x > 0.5, size=20, fill_value=-7),
        inputs(rand(2, 3, 4)))
# Ties in rows longer than 16: eager's std::sort / nth_element order of equal values, replayed.
fn_case("ArgsortModule_unstableBoolTies", lambda x: torch.argsort(x), inputs(lambda: torch.rand(300) > 0.5))
fn_case("SortModule_unstableTiesI64", lambda x: torch.sort(x, dim=1, descending=True), inputs(randint(3, 40, high=3)))
fn_case("TopkModule_tiesI64", lambda x: torch.topk(x, 6, dim=1), inputs(randint(4, 25, high=3)))
fn_case("KthvalueModule_tiesI64", lambda x: torch.kthvalue(x, 9, dim=1), inputs(randint(3, 20, high=3)))
