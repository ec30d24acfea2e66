"""Edge inputs, each compared with eager: 0-d tensors, size-0 dims, non-contiguous views,
channels-last, one tensor passed twice, in-place mutation of inputs and buffers, NaN/Inf,
integer wrap-around, requires_grad under no_grad, and dtypes we do not compile (eager fallback
through the partitioner, with a warning)."""
import warnings

import pytest
import torch

from torch_mlir_backend.partition import EagerFallbackWarning

from helpers import assert_same, check, compile_fn


# -- shapes --------------------------------------------------------------------------------------

def test_zero_dim_tensors():
    check(lambda a, b: a * b + 1, torch.tensor(3.5), torch.tensor(-2.0), atol=0, rtol=0)


def test_zero_dim_and_full_tensor_broadcast():
    check(lambda a, b: torch.relu(a - b), torch.tensor(0.25), torch.randn(3, 4), atol=0, rtol=0)


def test_reduction_to_zero_dim():
    check(lambda a: a.sum() * 2, torch.randn(4, 5), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(0,), (0, 4), (3, 0, 2)])
def test_size_zero_dims_elementwise(shape):
    check(lambda a: torch.exp(a) * 2 + 1, torch.randn(shape), atol=0, rtol=0)


def test_size_zero_dim_reduction_gives_identity():
    check(lambda a: (a.sum(dim=0), a.amax(dim=1)), torch.randn(0, 3), atol=0, rtol=0)


def test_size_zero_matmul():
    check(lambda a, b: a @ b, torch.randn(3, 0), torch.randn(0, 4), atol=0, rtol=0)


# -- layouts -------------------------------------------------------------------------------------

def test_transposed_input():
    x = torch.randn(5, 3).t()
    assert not x.is_contiguous()
    check(lambda a: a * 2 + a.sum(dim=0), x, atol=1e-5, rtol=1e-5)


def test_strided_slice_input():
    base = torch.randn(8, 9)
    x = base[::2, 1::3]
    assert not x.is_contiguous()
    check(lambda a: torch.tanh(a) - 1, x, atol=1e-6, rtol=1e-6)


def test_transposed_operands_of_matmul():
    check(lambda a, b: a @ b, torch.randn(6, 4).t(), torch.randn(5, 6).t(), atol=1e-5, rtol=1e-5)


def test_expanded_input_with_zero_strides():
    x = torch.randn(4, 1).expand(4, 5)
    check(lambda a: a * torch.arange(5.0), x, atol=0, rtol=0)


def test_channels_last_convolution():
    conv = torch.nn.Conv2d(3, 4, 3, padding=1).eval()
    x = torch.randn(2, 3, 6, 6).to(memory_format=torch.channels_last)
    with torch.no_grad():
        check(conv, x, atol=1e-5, rtol=1e-5)


def test_channels_last_elementwise_keeps_values():
    x = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    check(lambda a: a * 3 + 1, x, atol=0, rtol=0)


# -- aliasing and mutation -----------------------------------------------------------------------

def test_same_tensor_passed_twice():
    x = torch.randn(4, 4)
    check(lambda a, b: a * b + b @ a, x, x, atol=1e-5, rtol=1e-5)


def _mutate_input(x, y):
    x.add_(1)
    y.mul_(2)
    return x * y


def test_in_place_mutation_of_inputs_reaches_the_caller():
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    x_ref, y_ref = x.clone(), y.clone()
    want = _mutate_input(x_ref, y_ref)
    got = compile_fn(_mutate_input)(x, y)
    assert_same(got, want, "result", [x, y], atol=1e-6, rtol=1e-6)
    assert_same(x, x_ref, "mutated x", [x], atol=0, rtol=0)
    assert_same(y, y_ref, "mutated y", [y], atol=0, rtol=0)


def test_in_place_mutation_of_a_tensor_passed_twice():
    def fn(a, b):
        a.add_(b)
        return a + b

    x = torch.randn(5)
    x_ref = x.clone()
    want = fn(x_ref, x_ref)
    got = compile_fn(fn)(x, x)
    assert_same(got, want, "result", [x], atol=1e-6, rtol=1e-6)
    assert_same(x, x_ref, "mutated", [x], atol=0, rtol=0)


class _Counter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("calls", torch.zeros((), dtype=torch.int64))
        self.register_buffer("running", torch.zeros(4))
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x):
        self.calls.add_(1)
        self.running.mul_(0.5).add_(x.mean(dim=0))
        return self.linear(x) + self.running


def test_in_place_mutation_of_module_buffers_reaches_the_module():
    model, reference = _Counter(), _Counter()
    reference.load_state_dict(model.state_dict())
    compiled = compile_fn(model)
    with torch.no_grad():
        for step in range(3):
            x = torch.randn(2, 4)
            assert_same(compiled(x), reference(x), f"step {step}", [x], atol=1e-5, rtol=1e-5)
    assert int(model.calls) == 3
    assert_same(model.running, reference.running, "running buffer", [], atol=1e-6, rtol=1e-6)


# -- values --------------------------------------------------------------------------------------

def test_nan_and_inf_propagate_as_in_eager():
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, -1.5, 2.0])
    check(lambda a: (torch.relu(a), torch.exp(a), a * 0, a.sum(), torch.maximum(a, a.flip(0)),
                     torch.sigmoid(a)), x, atol=1e-6, rtol=1e-6)


def test_nan_through_reductions():
    x = torch.tensor([[1.0, float("nan"), 3.0], [4.0, 5.0, 6.0]])
    check(lambda a: (a.amax(dim=1), a.mean(dim=1), torch.softmax(a, dim=1)), x, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64])
def test_integer_overflow_wraps_around_as_eager(dtype):
    info = torch.iinfo(dtype)
    x = torch.tensor([info.max, info.min, info.max - 1, 0, 1], dtype=dtype)
    check(lambda a: (a + 1, a * 3, a - 2, -a), x, atol=0, rtol=0)


def test_requires_grad_inputs_under_no_grad():
    w = torch.randn(4, 3, requires_grad=True)
    x = torch.randn(2, 4, requires_grad=True)
    fn = compile_fn(lambda a, b: torch.tanh(a @ b))
    with torch.no_grad():
        got = fn(x, w)
        want = torch.tanh(x @ w)
    assert not got.requires_grad
    assert_same(got, want, "no_grad", [x, w], atol=1e-6, rtol=1e-6)


# -- dtypes we do not compile ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_complex_inputs_fall_back_to_eager_with_a_warning(dtype):
    def fn(a, b):
        return torch.mm(a, b) * 2 + a

    a, b = torch.randn(3, 3, dtype=dtype), torch.randn(3, 3, dtype=dtype)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = torch.compile(fn, backend="torch_mlir")(a, b)
    assert_same(got, fn(a, b), "complex", [a, b], atol=1e-5, rtol=1e-5)
    messages = [str(w.message) for w in caught if issubclass(w.category, EagerFallbackWarning)]
    assert any("aten.mm.default" in m and str(dtype).replace("torch.", "") in m for m in messages), messages


# Complex tensors compile, but complex `tan` has no lowering (lowering/complex.py: MLIR's form
# loses every digit of small |z| in float32): the op we cannot lower in a complex graph.
def test_complex_part_falls_back_while_the_real_part_compiles():
    def fn(x):
        z = torch.view_as_complex(torch.stack([x, x * 2], dim=-1))
        return torch.tan(z * z).abs() + torch.relu(x)

    x = torch.randn(4, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = torch.compile(fn, backend="torch_mlir")(x)
    assert_same(got, fn(x), "mixed complex", [x], atol=1e-5, rtol=1e-5)
    messages = [str(w.message) for w in caught if issubclass(w.category, EagerFallbackWarning)]
    assert any("aten.tan.default" in m and "complex64" in m for m in messages), messages


def test_strict_mode_rejects_complex_instead_of_falling_back():
    with pytest.raises(Exception, match=r"aten\.tan(.|\n)*complex64"):
        compile_fn(lambda a: torch.tan(a) * 2)(torch.randn(3, dtype=torch.complex64))
