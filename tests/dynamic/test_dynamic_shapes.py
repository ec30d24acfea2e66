"""Dynamic shapes beyond whole models: size-0 dimensions, integer (SymInt) inputs, shape checks
of a directly called graph, training through the backward graph, and data-dependent ops."""
import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from helpers import assert_same
from torch_mlir_backend.backend import compile_fx_graph
from torch_mlir_backend.decompositions import decomposition_table
from torch_mlir_backend.dynamic_shapes import ShapeMismatchError

F32 = dict(atol=1e-5, rtol=1e-5)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def test_size_zero_batch_next_to_dynamic_batches():
    w = torch.randn(8, 4)

    def fn(x):
        return torch.relu(x @ w) + x.sum(dim=1, keepdim=True)

    compiled = torch.compile(fn, backend="torch_mlir", dynamic=True, fullgraph=True)
    for b in [3, 0, 7, 0, 1]:
        x = torch.randn(b, 8)
        got = compiled(x)
        assert got.shape == (b, 4)
        assert_same(got, fn(x), f"fn{b}", [x], **F32)


def test_size_zero_inside_a_dynamic_graph():
    # A slice whose length is 0 for some sizes: the dynamic graph itself sees a 0-size dim.
    def fn(x):
        return (x[:, 2:] * 2).sum(dim=1)

    compiled = torch.compile(fn, backend="torch_mlir", dynamic=True, fullgraph=True)
    for n in [5, 2, 9]:
        x = torch.randn(3, n)
        assert_same(compiled(x), fn(x), f"slice{n}", [x], **F32)


def test_integer_input_becomes_a_runtime_size():
    # The second call with another `n` makes `n` a SymInt input of the graph (automatic dynamic),
    # not a size of any tensor: it is passed to the compiled function.
    def fn(x, n):
        return x.reshape(n, -1) + 1

    compiled = torch.compile(fn, backend="torch_mlir", fullgraph=True)
    x = torch.randn(12)
    for n in [2, 3, 4, 6]:  # 12 // n stays >= 2: no 0/1 specialization
        assert_same(compiled(x, n), fn(x, n), f"reshape{n}", [x], **F32)
    assert counters["stats"]["unique_graphs"] == 2


def _symbolic_graph(fn, *inputs):
    from torch.fx.experimental.proxy_tensor import make_fx

    return make_fx(fn, decomposition_table=decomposition_table(), tracing_mode="symbolic")(*inputs)


def test_direct_call_with_contradicting_sizes_raises():
    # Traced with equal sizes, the graph's two inputs share one symbol (no broadcast): calling
    # it with different sizes must raise, not read out of bounds.
    def fn(x, y):
        return x + y

    gm = _symbolic_graph(fn, torch.randn(4, 3), torch.randn(4, 3))
    compiled = compile_fx_graph(gm, [])
    x, y = torch.randn(6, 5), torch.randn(6, 5)
    assert_same(compiled([x, y])[0], x + y, "add", [x, y], **F32)
    with pytest.raises(ShapeMismatchError, match=r"input 1 dim 0 has size 2"):
        compiled([torch.randn(6, 5), torch.randn(2, 5)])


def test_training_step_with_dynamic_batch_matches_eager():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    reference = [p.detach().clone() for p in model.parameters()]
    compiled = torch.compile(model, backend="torch_mlir", dynamic=True)
    for b in [4, 9, 2]:
        x = torch.randn(b, 8)
        model.zero_grad()
        compiled(x).square().mean().backward()
        got = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        model(x).square().mean().backward()
        for g, want in zip(got, [p.grad for p in model.parameters()]):
            assert_same(g, want, f"grad{b}", [x], **F32)
    assert all(torch.equal(p, r) for p, r in zip(model.parameters(), reference))


@pytest.mark.parametrize("op", ["nonzero", "masked_select", "unique"])
def test_data_dependent_ops_run_eagerly_across_a_graph_break(op):
    # Dynamo does not capture ops whose output size depends on the data (by default): with
    # fullgraph=False it breaks the graph there, runs the op in eager and compiles the rest.
    def fn(x):
        y = x * 2
        if op == "nonzero":
            z = torch.nonzero(y > 0).float()
        elif op == "masked_select":
            z = torch.masked_select(y, y > 0)
        else:
            z = torch.unique(y.round())
        return z.sum() + y.sum()

    compiled = torch.compile(fn, backend="torch_mlir", dynamic=True)
    for n in [5, 11]:
        x = torch.randn(3, n)
        assert_same(compiled(x), fn(x), op, [x], **F32)


@pytest.mark.parametrize("op", ["nonzero", "masked_select"])
def test_data_dependent_ops_under_fullgraph_compile(op):
    # Under fullgraph Dynamo captures them with data-dependent (unbacked) sizes; they compile
    # (lowering/data_dependent.py), with the input sizes dynamic too: strict mode, no eager op.
    def fn(x):
        y = torch.masked_select(x, x > 0) if op == "masked_select" else torch.nonzero(x > 0)
        return y.sum() + x.sum(), y

    compiled = torch.compile(fn, backend="torch_mlir", dynamic=True, fullgraph=True, options={"strict": True})
    for n in [4, 9]:
        x = torch.randn(3, n)
        assert_same(compiled(x), fn(x), op, [x], **F32)


def test_data_dependent_op_without_a_bound_runs_in_eager():
    # bincount's length is max(input) + 1, bounded by no input size: the op is rejected by name
    # and runs in eager PyTorch between compiled regions (with an EagerFallbackWarning), the rest
    # stays compiled.
    import warnings

    from torch_mlir_backend.partition import EagerFallbackWarning

    def fn(x):
        return torch.bincount(x * 2).sum() + x.sum()

    compiled = torch.compile(fn, backend="torch_mlir", dynamic=True, fullgraph=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in [4, 9]:
            x = torch.randint(0, 6, (n,))
            assert_same(compiled(x), fn(x), "bincount", [x], atol=0, rtol=0)
    assert any(issubclass(w.category, EagerFallbackWarning) and "aten.bincount.default" in str(w.message)
               for w in caught)
