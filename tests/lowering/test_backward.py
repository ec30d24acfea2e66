"""Backward-only ops (lowering/backward.py, lowering/random.py) called directly, against eager:
convolution_backward (through our decomposition, or ATen's kernel under the default convolution
policy) and avg_pool2d_backward through our decomposition, the flash-attention
backward, the scatters index_put / scatter_add, prims.fma and rand / rand_like."""
from __future__ import annotations

import pytest
import torch

from helpers import check, compile_fn, make_input

aten = torch.ops.aten


@pytest.mark.parametrize("policy", ["generated", "aten"])
@pytest.mark.parametrize("stride,padding,dilation,groups", [
    ([1, 1], [0, 0], [1, 1], 1), ([2, 2], [1, 1], [1, 1], 1), ([1, 2], [2, 1], [2, 1], 2), ([2, 1], [1, 0], [1, 1], 4)])
def test_convolution_backward(stride, padding, dilation, groups, policy, monkeypatch):
    # generated: our decomposition into convolutions; aten: ATen's kernel from the graph.
    from torch_mlir_backend.options import ENV_CONVOLUTION

    monkeypatch.setenv(ENV_CONVOLUTION, policy)
    x = make_input((2, 4, 9, 8), torch.float32, seed=1)
    w = make_input((8, 4 // groups, 3, 2), torch.float32, seed=2)
    out = torch.nn.functional.conv2d(x, w, None, stride, padding, dilation, groups)
    grad = make_input(out.shape, torch.float32, seed=3)

    def fn(grad, x, w):
        return aten.convolution_backward.default(grad, x, w, [8], stride, padding, dilation, False,
                                                 [0, 0], groups, [True, True, True])
    check(fn, grad, x, w, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("policy", ["generated", "aten"])
def test_conv_net_gradients_match_eager(policy, monkeypatch):
    # A training step's backward graph: convolution_backward with output_mask (the first conv's
    # input needs no gradient, the second conv has no bias).
    from torch_mlir_backend.options import ENV_CONVOLUTION

    monkeypatch.setenv(ENV_CONVOLUTION, policy)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 4, 3, stride=2, bias=False))
    x = make_input((2, 3, 10, 10), torch.float32, seed=4)
    model(x).square().sum().backward()
    want = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    compile_fn(model)(x).square().sum().backward()
    for got, ref in zip([p.grad for p in model.parameters()], want):
        torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,count_include_pad,divisor", [
    ([2, 2], [2, 2], [0, 0], False, True, None), ([3, 3], [2, 2], [1, 1], True, True, None),
    ([3, 2], [2, 1], [1, 1], True, False, None), ([3, 3], [2, 2], [1, 0], False, True, 5)])
def test_avg_pool2d_backward(kernel, stride, padding, ceil_mode, count_include_pad, divisor):
    x = make_input((2, 3, 9, 8), torch.float32, seed=1)
    out = torch.nn.functional.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    grad = make_input(out.shape, torch.float32, seed=2)

    def fn(grad, x):
        return aten.avg_pool2d_backward.default(grad, x, kernel, stride, padding, ceil_mode,
                                                count_include_pad, divisor)
    check(fn, grad, x, atol=1e-5, rtol=1e-5)


def test_scaled_dot_product_attention_backward():
    q, k, v = (make_input((2, 3, 5, 4), torch.float32, seed=s).requires_grad_() for s in (1, 2, 3))

    def fn(q, k, v):
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return torch.autograd.grad(out.pow(2).sum(), (q, k, v))
    want = fn(q, k, v)
    got = torch.compile(fn, backend="torch_mlir", options={"strict": True})(q, k, v)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
@pytest.mark.parametrize("accumulate", [True, False])
def test_index_put(dtype, accumulate):
    x = make_input((6, 3), dtype, seed=1)
    index = torch.tensor([4, 0, -1, 2])  # distinct rows: eager's order for duplicates is unspecified
    values = make_input((4, 3), dtype, seed=2)
    check(lambda x, i, v: aten.index_put.default(x, [i], v, accumulate), x, index, values)


def test_index_put_accumulate_duplicates():
    x = make_input((5, 2), torch.float64, seed=1)
    index = torch.tensor([1, 1, 3, 1, 0])
    check(lambda x, i, v: aten.index_put.default(x, [i], v, True), x, index, make_input((5, 2), torch.float64))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_add(dim):
    x = make_input((4, 5), torch.float32, seed=1)
    index = make_input((3, 4), torch.int64, low=0, high=3, seed=2)
    src = make_input((3, 4), torch.float32, seed=3)
    check(lambda x, i, s: torch.scatter_add(x, dim, i, s), x, index, src, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fma(dtype):
    a, b, c = (make_input((3, 4), dtype, seed=s) for s in (1, 2, 3))
    check(lambda a, b, c: torch.ops.prims.fma.default(a, b, c), a, b, c)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_rand_and_rand_like_are_uniform(dtype):
    # Eager draws other numbers: compare the distribution (mean 1/2, variance 1/12, all in [0, 1)).
    fn = compile_fn(lambda x: (torch.rand(64, 64, dtype=dtype), torch.rand_like(x)))
    for sample in fn(torch.zeros(64, 64, dtype=dtype)):
        s = sample.double()
        assert sample.dtype == dtype and s.min() >= 0 and s.max() < 1
        n = s.numel()
        assert abs(s.mean() - 0.5) < 5 * (1 / 12 / n) ** 0.5
        assert abs(s.var() - 1 / 12) < 0.01
