"""Ops whose output size depends on the data (lowering/data_dependent.py): nonzero/argwhere,
masked_select, unique (_unique2), unique_consecutive, bincount and item() as a slice bound, compared with
eager (exact: they move values and count, no arithmetic); their results feeding later ops in the
same graph, empty results, dynamic input sizes, the write-check mode, the safety net when a bound
is wrong, runtime assertions; bincount of a graph input (its length read from the data before the
call) and of a computed tensor (no bound: falls back to eager, or raises in strict mode)."""
import warnings

import pytest
import torch

from helpers import check, compile_fn, make_input
from torch_mlir_backend.errors import TorchMlirBackendError, UnsupportedOpError
from torch_mlir_backend.partition import EagerFallbackWarning

EXACT = dict(atol=0, rtol=0)
F32 = dict(atol=1e-5, rtol=1e-5)
DTYPES = [torch.float32, torch.float64, torch.int64, torch.bool]


def _sparse(shape, dtype, seed=0):
    """Data with many zeros (and repeats), so counts are neither 0 nor everything."""
    x = make_input(shape, dtype, low=-2, high=2, seed=seed)
    if dtype.is_floating_point:
        x = x.round()
    return x


@pytest.mark.parametrize("dtype", DTYPES)
def test_nonzero_and_argwhere(dtype):
    x = _sparse((3, 5), dtype)
    check(lambda x: (torch.nonzero(x), torch.argwhere(x)), x, **EXACT)


@pytest.mark.parametrize("shape", [(7,), (2, 3, 4), ()])
def test_nonzero_ranks(shape):
    x = _sparse(shape, torch.float32, seed=1)
    check(lambda x: torch.nonzero(x), x, **EXACT)


def test_nonzero_counts_nan_as_nonzero():
    x = torch.tensor([0.0, float("nan"), 0.0, -0.0, 2.0])
    check(lambda x: torch.nonzero(x), x, **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_select_with_broadcast_mask(dtype):
    x = _sparse((3, 4), dtype)
    mask = make_input((4,), torch.bool, seed=2)
    check(lambda x, m: (torch.masked_select(x, m), torch.masked_select(x, x != 0)), x, mask, **EXACT)


def test_masked_select_with_a_mask_larger_than_the_input():
    # PyTorch's fake masked_select asserts u0 <= numel(self) (4 here): false for this mask, whose
    # broadcast selects up to 12; that restated range is not checked (drop_restated_asserts)
    x = make_input((4,), torch.float32, seed=9)
    mask = torch.tensor([[True, True, False, True], [True, True, True, True], [False, True, True, True]])
    check(lambda x, m: torch.masked_select(x, m), x, mask, **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unique(dtype):
    # torch.unique is aten._unique2.default after decomposition; sorted=False sorts too on CPU
    x = _sparse((4, 5), dtype, seed=3)
    check(lambda x: torch.unique(x, return_inverse=True, return_counts=True), x, **EXACT)


@pytest.mark.parametrize("flags", [(False, False, True), (True, False, False), (False, True, False)])
def test_unique_flags(flags):
    inverse, counts, is_sorted = flags
    x = _sparse((3, 4), torch.int64, seed=6)
    check(lambda x: torch.unique(x, sorted=is_sorted, return_inverse=inverse, return_counts=counts), x, **EXACT)


def test_unique_with_nan_keeps_each_nan():
    x = torch.tensor([3.0, float("nan"), 1.0, 3.0, float("nan")])
    check(lambda x: torch.unique(x, return_counts=True), x, **EXACT)
    longer = _sparse((60,), torch.float32, seed=7)  # past the insertion-sort size of std::sort
    longer[::7] = float("nan")
    check(lambda x: torch.unique(x, return_inverse=True, return_counts=True), longer, **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unique_consecutive(dtype):
    x = torch.tensor([[1, 1, 0, 2], [2, 2, 0, 0]]).to(dtype)
    check(lambda x: torch.unique_consecutive(x, return_inverse=True, return_counts=True), x, **EXACT)
    check(lambda x: torch.unique_consecutive(x), x.flatten(), **EXACT)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool])
def test_unique_consecutive_along_a_dimension(dtype):
    x = torch.tensor([[1, 1, 2], [1, 1, 2], [3, 1, 2], [1, 1, 2]]).to(dtype)
    check(lambda x: (torch.unique_consecutive(x, dim=0, return_inverse=True, return_counts=True),
                     torch.unique_consecutive(x, dim=1, return_counts=True)), x, **EXACT)


def test_unique_consecutive_slices_with_nan_differ():
    x = torch.tensor([[1.0, float("nan")], [1.0, float("nan")], [2.0, 0.0]])
    check(lambda x: torch.unique_consecutive(x, dim=0, return_counts=True), x, **EXACT)


def test_unique_along_the_dimension_of_a_1d_tensor():
    # aten.unique_dim.default; more dimensions need a lexicographic sort of slices (not lowered)
    x = torch.tensor([3.0, 1.0, 3.0, 2.0, 1.0])
    check(lambda x: torch.unique(x, dim=0, return_inverse=True, return_counts=True), x, **EXACT)
    torch._dynamo.reset()
    with pytest.raises(Exception, match="lexicographically"):
        compile_fn(lambda x: torch.unique(x, dim=0))(torch.ones(3, 2))


def test_data_dependent_result_feeds_later_ops():
    x = _sparse((4, 6), torch.float32, seed=4)

    def fn(x):
        idx = torch.nonzero(x)
        picked = torch.masked_select(x, x > 0)
        values, counts = torch.unique(x, return_counts=True)
        return (idx * 2 + 1).sum(0), picked.exp().sum() + x.sum(), (values * counts).sum(), picked * 3

    check(fn, x, **F32)


def test_data_dependent_size_as_an_integer_output():
    def fn(x):
        idx = torch.nonzero(x)
        return idx * 2, idx.shape[0]

    x = _sparse((3, 4), torch.float32, seed=8)
    got = compile_fn(fn)(x)
    assert got[1] == fn(x)[1] and isinstance(got[1], int)
    check(fn, x, **EXACT)


def test_all_false_mask_gives_empty_results():
    x = torch.randn(3, 4)

    def fn(x):
        big = x > 100
        return torch.nonzero(big), torch.masked_select(x, big), torch.masked_select(x, big).sum() + 1

    got = compile_fn(fn)(x)
    assert got[0].shape == (0, 2) and got[1].shape == (0,)
    check(fn, x, **EXACT)


def test_empty_input():
    check(lambda x: (torch.nonzero(x), torch.unique(x, return_counts=True)), torch.zeros(0, 3), **EXACT)


def test_dynamic_input_sizes_share_one_graph():
    from torch_mlir_backend.runtime import compilation_count

    def fn(x):
        return torch.nonzero(x > 0), torch.masked_select(x, x < 0) * 2

    compiled = torch.compile(fn, backend="torch_mlir", fullgraph=True, dynamic=True, options={"strict": True})
    before = None
    for n in [5, 9, 13]:
        x = make_input((3, n), torch.float32, seed=n)
        for got, want in zip(compiled(x), fn(x)):
            torch.testing.assert_close(got, want, atol=0, rtol=0)
        if before is None:
            before = compilation_count()
    assert compilation_count() == before  # the bound is an expression of the input sizes


def _capture_scalars():
    return torch._dynamo.config.patch(capture_scalar_outputs=True)


def test_item_as_slice_bound():
    # item() is aten._local_scalar_dense.default; an output that is a view of an input with
    # these bounds is rebuilt as that view (AOTAutograd replays it from our output's metadata)
    def fn(x, i):
        a = i[0].item()
        b = i[1].item()
        return x[:, a:b] * 2, x[:, b:].sum(1)

    with _capture_scalars():
        check(fn, torch.randn(3, 6), torch.tensor([1, 4]), **F32)
        check(lambda x, i: torch.tensor_split(x, i, dim=1), torch.randn(2, 7), torch.tensor([2, 5]), **EXACT)
        # further views of such a view (replayed as a chain)
        check(lambda x, i: (x[:, i[0].item():].t(), x[i[1].item():].reshape(-1), x[:, i[0].item():].unsqueeze(0)),
              torch.randn(3, 6), torch.tensor([1, 2]), **EXACT)


def test_user_checks_are_asserted_at_run_time():
    # torch._check on an item() becomes aten._assert_scalar.default, checked on every call.
    # Dynamo also guards the value here, so the graph is called directly with a failing value.
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    from torch_mlir_backend.backend import compile_fx_graph
    from torch_mlir_backend.decompositions import decomposition_table

    graphs = []

    def keep(gm, example_inputs):
        graphs.append(gm)
        return make_boxed_func(gm.forward)

    def fn(x, i):
        n = i.item()
        torch._check(n < 4)
        return x[:n] * 2

    x = torch.randn(6)
    with _capture_scalars():
        torch._dynamo.reset()
        torch.compile(fn, backend=aot_autograd(fw_compiler=keep, decompositions=decomposition_table()),
                      fullgraph=True)(x, torch.tensor(3))
    (gm,) = graphs
    assert any(n.target is torch.ops.aten._assert_scalar.default for n in gm.graph.nodes)
    vals = [n.meta["val"] for n in gm.graph.nodes if n.op == "placeholder"]
    compiled = compile_fx_graph(gm, vals)

    def args(i):  # in the graph's placeholder order
        return [x if v.dim() else torch.tensor(i) for v in vals]

    (got,) = compiled(args(2))
    torch.testing.assert_close(got, fn(x, torch.tensor(2)), atol=0, rtol=0)
    with pytest.raises(RuntimeError, match="Runtime assertion failed"):
        compiled(args(5))


def test_write_checks_pass(monkeypatch):
    monkeypatch.setenv("TORCH_MLIR_BACKEND_CHECK_WRITES", "1")
    x = _sparse((5, 3), torch.float64, seed=5)

    def fn(x):  # a graph of its own (the check mode is read when a graph is built)
        return torch.nonzero(x - 0.5 > 0), torch.unique(x * 3, return_inverse=True), torch.masked_select(x, x < 0)

    check(fn, x, **EXACT)


def test_result_larger_than_its_bound_is_not_written(monkeypatch):
    # A wrong bound (here made up: 2 elements fewer) must neither corrupt memory (the write
    # checks watch the guard zones) nor return a wrong result: the generated code skips the
    # write and Python raises.
    from torch_mlir_backend.lowering import data_dependent

    monkeypatch.setenv("TORCH_MLIR_BACKEND_CHECK_WRITES", "1")
    monkeypatch.setitem(data_dependent.SIZE_BOUNDS, torch.ops.aten.masked_select.default,
                        lambda node: data_dependent._bound_masked_select(node) - 2)
    torch._dynamo.reset()
    with pytest.raises(TorchMlirBackendError, match="exceeds the bound 4"):
        compile_fn(lambda x: torch.masked_select(x, x > -10) + 1)(torch.randn(2, 3))
    torch._dynamo.reset()


@pytest.mark.parametrize("minlength", [0, 9])
def test_bincount_of_a_graph_input(minlength):
    # The length max(x) + 1 is read from the input before the call (bincount's data bound)
    x = torch.tensor([0, 3, 3, 1, 7, 3])
    w = torch.rand(6, dtype=torch.float64)
    check(lambda x: torch.bincount(x, minlength=minlength) * 2, x, **EXACT)
    check(lambda x, w: torch.bincount(x, weights=w, minlength=minlength), x, w, atol=1e-12, rtol=1e-12)
    check(lambda x: torch.bincount(x, minlength=minlength), torch.zeros(0, dtype=torch.int64), **EXACT)


def test_bincount_of_negative_values_raises_as_eager():
    torch._dynamo.reset()
    with pytest.raises(RuntimeError, match="non-negative"):
        compile_fn(lambda x: torch.bincount(x))(torch.tensor([0, -3, 1]))


def _bincount_of_computed(x):
    return torch.bincount(x * 2) + 1


def test_bincount_of_a_computed_tensor_has_no_bound_and_falls_back_with_a_warning():
    x = torch.tensor([0, 3, 3, 1, 7])
    torch._dynamo.reset()
    compiled = torch.compile(_bincount_of_computed, backend="torch_mlir", fullgraph=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = compiled(x)
    torch.testing.assert_close(got, _bincount_of_computed(x), atol=0, rtol=0)
    messages = [str(w.message) for w in caught if issubclass(w.category, EagerFallbackWarning)]
    assert any("aten.bincount.default" in m and "no upper bound" in m for m in messages), messages


def test_bincount_of_a_computed_tensor_in_strict_mode_raises_naming_the_op():
    torch._dynamo.reset()
    with pytest.raises(Exception, match=r"aten\.bincount\.default.*no upper bound") as info:
        compile_fn(_bincount_of_computed)(torch.tensor([0, 3, 1]))
    assert "UnsupportedOpError" in str(info.value) or isinstance(info.value, UnsupportedOpError)
