"""Ops whose output size depends on the data (lowering/data_dependent.py): nonzero, argwhere,
masked_select, unique (with inverse and counts), unique_consecutive, bincount of an input, item() as slice bounds
(tensor_split with a tensor of indices), a data-dependent result feeding later ops, and an empty
result."""
import torch

from ._util import fn_case, inputs, rand, randint


def _sparse(*shape, dtype=torch.float32):
    """Rounded values in [-2, 2]: zeros and repeats."""
    return lambda: (torch.rand(*shape, dtype=torch.float64) * 4 - 2).round().to(dtype)


fn_case("NonzeroModule_basic", lambda x: torch.nonzero(x), inputs(_sparse(4, 5)))
fn_case("NonzeroModule_i64Rank3", lambda x: torch.nonzero(x), inputs(_sparse(2, 3, 4, dtype=torch.int64)))
fn_case("ArgwhereModule_bool", lambda x: torch.argwhere(x), inputs(lambda: torch.rand(5, 4) > 0.5))
fn_case("MaskedSelectModule_basic", lambda x: torch.masked_select(x, x > 0), inputs(rand(4, 6)))
fn_case("MaskedSelectModule_broadcastMask", lambda x, m: torch.masked_select(x, m),
        inputs(rand(3, 5), lambda: torch.rand(5) > 0.4))
fn_case("MaskedSelectModule_allFalse", lambda x: torch.masked_select(x, x > 5), inputs(rand(3, 4)))
fn_case("UniqueModule_sorted", lambda x: torch.unique(x), inputs(randint(6, 5, high=7)))
fn_case("UniqueModule_inverseCounts", lambda x: torch.unique(x, return_inverse=True, return_counts=True),
        inputs(_sparse(4, 6)))
fn_case("UniqueConsecutiveModule_basic",
        lambda x: torch.unique_consecutive(x, return_inverse=True, return_counts=True),
        inputs(lambda: torch.tensor([1, 1, 2, 2, 2, 0, 1, 1, 3])))
fn_case("DataDependentModule_feedsLaterOps",
        lambda x: ((torch.nonzero(x) * 2).sum(0), torch.masked_select(x, x > 0).exp().sum() + x.mean()),
        inputs(_sparse(5, 6)), atol=1e-5, rtol=1e-5)
fn_case("TensorSplitModule_tensorIndices", lambda x, i: torch.tensor_split(x, i, dim=1),
        inputs(rand(3, 7), lambda: torch.tensor([2, 5])), dynamo_config={"capture_scalar_outputs": True})
fn_case("BincountModule_minlength", lambda x: torch.bincount(x, minlength=12), inputs(randint(20, high=9)))
fn_case("BincountModule_weights", lambda x, w: torch.bincount(x, weights=w),
        inputs(randint(15, high=6), rand(15, dtype=torch.float64)), atol=1e-12, rtol=1e-12)
