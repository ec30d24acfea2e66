"""Random ops (lowering/random.py) other than rand/rand_like (tested in test_backward.py): randn,
randn_like, normal (all four overloads and normal_functional), uniform, exponential, randint
(default, low, _like) and randperm. Bits cannot match eager's generator, so each test checks
shape, dtype, range and statistics against the distribution's exact moments, with tolerances of
about six standard errors of the estimate (a false failure is then rarer than 1e-8), and that
two calls of one compiled function differ."""
import math

import pytest
import torch

from helpers import compile_fn, make_input

COVERED = ["aten.randn.default", "aten.randn_like.default", "aten.normal.float_float",
           "aten.normal.Tensor_float", "aten.normal.float_Tensor", "aten.normal.Tensor_Tensor",
           "aten.normal_functional.default", "aten.uniform.default", "aten.exponential.default",
           "aten.randint.default", "aten.randint.low", "aten.randint_like.default",
           "aten.randint_like.low_dtype", "aten.randperm.default"]

FLOATS = [pytest.param(d, id=str(d).replace("torch.", "")) for d in (torch.float32, torch.float64)]
N = 64 * 64  # elements per statistic: the standard error of a mean of unit variance is 1/64


def assert_moments(x: torch.Tensor, mean: float, std: float, what: str):
    x = x.double().flatten()
    n = x.numel()
    m, s = x.mean().item(), x.std().item()
    assert abs(m - mean) <= 6 * std / math.sqrt(n), f"{what}: mean {m}, expected {mean}"
    # The sample std of n normal draws has standard error about std / sqrt(2n).
    assert abs(s - std) <= 6 * std / math.sqrt(2 * n) + 1e-12, f"{what}: std {s}, expected {std}"


@pytest.mark.parametrize("dtype", FLOATS)
def test_randn_and_randn_like_are_standard_normal(dtype):
    fn = compile_fn(lambda x: (torch.randn(64, 64, dtype=dtype), torch.randn_like(x)))
    x = torch.zeros(64, 64, dtype=dtype)
    a, c = fn(x)
    a2, _ = fn(x)
    for t in (a, c):
        assert t.shape == (64, 64) and t.dtype == dtype and torch.isfinite(t).all()
        assert_moments(t, 0.0, 1.0, "randn")
    assert not torch.equal(a, a2), "two calls drew the same numbers"
    assert not torch.equal(a, c), "two ops of one graph drew the same numbers"
    # Tails: about 4.55 % of standard normal draws lie beyond 2 sigma (binomial error ~0.33 %).
    beyond = (a.abs() > 2).double().mean().item()
    assert abs(beyond - 0.0455) < 6 * math.sqrt(0.0455 * 0.9545 / N), beyond


@pytest.mark.parametrize("dtype", FLOATS)
def test_normal_overloads_scale_and_shift(dtype):
    mean_t = torch.full((64, 64), 3.0, dtype=dtype)
    std_t = torch.full((64, 64), 0.5, dtype=dtype)
    fn = compile_fn(lambda m, s: (torch.normal(2.0, 3.0, (64, 64), dtype=dtype), torch.normal(m, 2.0),
                                  torch.normal(-1.0, s), torch.normal(m, s), m.clone().normal_(5.0, 0.25)))
    ff, tf, ft, tt, functional = fn(mean_t, std_t)
    assert_moments(ff, 2.0, 3.0, "normal(float, float)")
    assert_moments(tf, 3.0, 2.0, "normal(Tensor, float)")
    assert_moments(ft, -1.0, 0.5, "normal(float, Tensor)")
    assert_moments(tt, 3.0, 0.5, "normal(Tensor, Tensor)")
    assert_moments(functional, 5.0, 0.25, "normal_")
    for t in (ff, tf, ft, tt, functional):
        assert t.shape == (64, 64) and t.dtype == dtype


def test_normal_broadcasts_mean_and_std_per_element():
    # Each column has its own mean and std: a broadcast (1, 8) std against a (512, 8) mean.
    mean = torch.arange(8, dtype=torch.float32).expand(512, 8).contiguous()
    std = torch.linspace(0.5, 4.0, 8).view(1, 8)
    out = compile_fn(lambda m, s: torch.normal(m, s))(mean, std)
    assert out.shape == (512, 8)
    for j in range(8):
        assert_moments(out[:, j], float(j), std[0, j].item(), f"column {j}")


@pytest.mark.parametrize("dtype", FLOATS)
def test_uniform_and_exponential(dtype):
    fn = compile_fn(lambda x: (x.clone().uniform_(-2.0, 3.0), x.clone().exponential_(2.0)))
    u, e = fn(torch.zeros(64, 64, dtype=dtype))
    assert u.dtype == dtype and e.dtype == dtype
    assert (u >= -2.0).all() and (u <= 3.0).all()
    assert_moments(u, 0.5, 5.0 / math.sqrt(12.0), "uniform(-2, 3)")
    assert (e >= 0).all() and torch.isfinite(e).all()
    # Exponential with rate 2: mean 1/2; its std is also 1/2 but the std's error is larger than a
    # normal's (kurtosis 9), so only the mean and the median (log 2 / 2) are checked.
    x = e.double()
    assert abs(x.mean().item() - 0.5) <= 6 * 0.5 / 64
    assert abs((x < math.log(2) / 2).double().mean().item() - 0.5) <= 6 * 0.5 / 64


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.float32],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_randint_overloads_cover_their_range_uniformly(dtype):
    low = 0 if dtype == torch.uint8 else -3
    fn = compile_fn(lambda x: (torch.randint(7, (64, 64), dtype=dtype), torch.randint(low, 5, (64, 64), dtype=dtype),
                               torch.randint_like(x, 4), torch.randint_like(x, low, 2)))
    like = make_input((64, 64), dtype)
    outs = fn(like)
    for t, (lo, hi) in zip(outs, [(0, 7), (low, 5), (0, 4), (low, 2)]):
        assert t.dtype == dtype and t.shape == (64, 64)
        counts = torch.bincount((t.long() - lo).flatten(), minlength=hi - lo)
        assert counts.numel() == hi - lo, f"values outside [{lo}, {hi})"
        # Each value's count is binomial(N, 1/k): within six standard deviations of N/k.
        k = hi - lo
        expected, sd = N / k, math.sqrt(N * (1 / k) * (1 - 1 / k))
        assert (counts.double() - expected).abs().max().item() <= 6 * sd, counts


@pytest.mark.parametrize("n", [1, 9, 40])
def test_randperm_is_a_uniform_permutation(n):
    fn = compile_fn(lambda: (torch.randperm(n), torch.randperm(n, dtype=torch.int32)))
    first = []
    for _ in range(200 if n == 9 else 3):
        p, q = fn()
        assert p.dtype == torch.int64 and q.dtype == torch.int32
        assert torch.equal(torch.sort(p).values, torch.arange(n)), p
        assert torch.equal(torch.sort(q).values, torch.arange(n, dtype=torch.int32)), q
        first.append(p[0].item())
    if n == 9:
        # The first element is uniform over 9 values: 200 draws, counts binomial(200, 1/9).
        counts = torch.bincount(torch.tensor(first), minlength=9).double()
        sd = math.sqrt(200 * (1 / 9) * (8 / 9))
        assert (counts - 200 / 9).abs().max().item() <= 6 * sd, counts


def test_randperm_of_zero_is_empty():
    p = compile_fn(lambda: torch.randperm(0))()
    assert p.shape == (0,) and p.dtype == torch.int64
