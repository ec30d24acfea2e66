"""Pooling rules against eager: max pooling values and indices (padding, ceil_mode, dilation,
NaN/-inf/ties), average pooling (count_include_pad, ceil_mode, divisor_override), adaptive
average and max pooling with uneven windows; 1-D forms reach us as the 2-D overloads."""
import pytest
import torch
import torch.nn.functional as F

from helpers import check, compile_fn, make_input
from torch_mlir_backend import layout  # noqa: F401  (defines torch.ops.tmb)

tmb = torch.ops.tmb

TOL = {
    torch.float32: (1e-6, 1e-6),
    torch.float64: (1e-12, 1e-12),
    torch.float16: (1e-3, 1e-3),
    torch.bfloat16: (8e-3, 8e-3),
}


def _check(fn, x, name):
    atol, rtol = TOL.get(x.dtype, (0, 0))
    check(fn, x, name=name, atol=atol, rtol=rtol)


# ----- max pooling ----------------------------------------------------------------------------
# (input shape, kernel, stride, padding, dilation, ceil_mode)
MAX2D = {
    "k2": ((2, 3, 8, 8), 2, None, 0, 1, False),
    "k3s2p1": ((1, 2, 9, 7), 3, 2, 1, 1, False),
    "ceil_dilated": ((2, 2, 10, 9), 3, 2, 1, 2, True),
    "rect_ceil": ((1, 3, 7, 8), (3, 2), (2, 1), (1, 0), 1, True),
    "unbatched": ((3, 9, 6), (2, 3), (2, 2), (1, 1), (1, 2), True),
}
ALL_MAX_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
                  torch.int8, torch.uint8]


@pytest.mark.parametrize("case", list(MAX2D))
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64])
def test_max_pool2d_with_indices(case, dtype):
    shape, k, s, p, d, ceil = MAX2D[case]

    def max_pool2d(x):
        return F.max_pool2d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)

    _check(max_pool2d, make_input(shape, dtype, -5, 5), case)


@pytest.mark.parametrize("case", ["k3s2p1", "ceil_dilated"])
@pytest.mark.parametrize("dtype", [d for d in ALL_MAX_DTYPES if d not in (torch.float32, torch.int64)])
def test_max_pool2d_dtypes(case, dtype):
    shape, k, s, p, d, ceil = MAX2D[case]

    def max_pool2d(x):
        return F.max_pool2d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)

    _check(max_pool2d, make_input(shape, dtype, -5, 5), case)


@pytest.mark.parametrize("case", list(MAX2D))
@pytest.mark.parametrize("dtype", ALL_MAX_DTYPES)
def test_max_pool2d_values_only(case, dtype):
    # Nobody reads the indices (inference): the rule computes a plain max over padded windows.
    shape, k, s, p, d, ceil = MAX2D[case]

    def max_pool2d(x):
        return F.max_pool2d(x, k, s, p, d, ceil_mode=ceil)

    _check(max_pool2d, make_input(shape, dtype, -5, 5), case)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int8, torch.uint8])
def test_max_pool_values_only_special_values(dtype):
    # NaN wins, a window of the dtype's lowest value (or -inf) gives it back, 3-D too.
    x = make_input((2, 2, 6, 8, 8), torch.int64, -2, 2, seed=4).to(dtype)
    if dtype.is_floating_point:
        x[0, 0, 0, 1, 1] = float("nan")
        x[0, 1, :, 0:4, 0:4] = float("-inf")
    else:
        x[0, 1, :, 0:4, 0:4] = torch.iinfo(dtype).min

    def pools(x):
        return F.max_pool3d(x, 3, 2, 1, ceil_mode=True), F.max_pool2d(x[0], 3, 2, 1) + 0

    _check(pools, x, "max_pool_values_special")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_max_pool2d_nan_inf_and_ties(dtype):
    # Small integers give many ties (the first maximum wins); NaN wins over numbers (the last NaN
    # of a window wins); a window of -inf still reports its first in-bounds element.
    x = make_input((2, 2, 8, 8), torch.int64, -2, 2, seed=3).to(dtype)
    x[0, 0, 1, 1] = float("nan")
    x[0, 0, 1, 2] = float("nan")
    x[0, 1, 0:4, 0:4] = float("-inf")
    x[1, 0, 5, 5] = float("inf")

    def max_pool2d(x):
        return F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)

    _check(max_pool2d, x, "max_pool2d_special")


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32])
@pytest.mark.parametrize("shape, k, s, p, d, ceil", [
    ((2, 3, 11), 3, 2, 1, 1, True),
    ((3, 10), 2, 3, 1, 2, False),
])
def test_max_pool1d(dtype, shape, k, s, p, d, ceil):
    def max_pool1d(x):
        return F.max_pool1d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)

    _check(max_pool1d, make_input(shape, dtype, -5, 5), "max_pool1d")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int64])
@pytest.mark.parametrize("shape, k, s, p, d, ceil", [
    ((1, 2, 6, 7, 5), 2, None, 0, 1, False),
    ((2, 5, 6, 7), (3, 2, 3), (2, 1, 2), (1, 1, 0), (1, 2, 1), True),
])
def test_max_pool3d_with_indices(dtype, shape, k, s, p, d, ceil):
    def max_pool3d(x):
        return F.max_pool3d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)

    _check(max_pool3d, make_input(shape, dtype, -5, 5), "max_pool3d")


# ----- average pooling ------------------------------------------------------------------------
# (input shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG2D = {
    "k2": ((2, 3, 8, 8), 2, None, 0, False, True, None),
    "k3s2p1": ((1, 2, 9, 7), 3, 2, 1, False, True, None),
    "exclude_pad_ceil": ((2, 2, 10, 9), 3, 2, 1, True, False, None),
    "include_pad_ceil": ((1, 3, 7, 8), (3, 2), (2, 1), (1, 1), True, True, None),
    "divisor_override": ((1, 2, 7, 7), 3, 2, 1, True, True, 5),
    "unbatched": ((3, 9, 6), (2, 3), (2, 2), (1, 1), True, False, None),
}


@pytest.mark.parametrize("case", list(AVG2D))
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64])
def test_avg_pool2d(case, dtype):
    shape, k, s, p, ceil, include, div = AVG2D[case]

    def avg_pool2d(x):
        return F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=include, divisor_override=div)

    _check(avg_pool2d, make_input(shape, dtype, -20, 20), case)


@pytest.mark.parametrize("case", ["k3s2p1", "exclude_pad_ceil", "divisor_override"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_avg_pool2d_dtypes(case, dtype):
    shape, k, s, p, ceil, include, div = AVG2D[case]

    def avg_pool2d(x):
        return F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=include, divisor_override=div)

    _check(avg_pool2d, make_input(shape, dtype), case)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape, k, s, p, ceil, include", [
    ((2, 3, 11), 3, 2, 1, True, False),
    ((3, 10), 4, 3, 2, False, True),
])
def test_avg_pool1d(dtype, shape, k, s, p, ceil, include):
    def avg_pool1d(x):
        return F.avg_pool1d(x, k, s, p, ceil_mode=ceil, count_include_pad=include)

    _check(avg_pool1d, make_input(shape, dtype), "avg_pool1d")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
@pytest.mark.parametrize("shape, k, s, p, ceil, include, div", [
    ((1, 2, 6, 7, 5), 2, None, 0, False, True, None),
    ((2, 5, 6, 7), (3, 2, 3), (2, 1, 2), (1, 1, 0), True, False, None),
    ((1, 1, 5, 5, 5), 3, 2, 1, True, True, 7),
])
def test_avg_pool3d(dtype, shape, k, s, p, ceil, include, div):
    def avg_pool3d(x):
        return F.avg_pool3d(x, k, s, p, ceil_mode=ceil, count_include_pad=include, divisor_override=div)

    _check(avg_pool3d, make_input(shape, dtype, -20, 20), "avg_pool3d")


def test_avg_pool3d_rejects_half():
    # Eager has no half-precision avg_pool3d on CPU; the rule rejects it rather than invent one.
    x = make_input((1, 2, 4, 4, 4), torch.float16)
    with pytest.raises(NotImplementedError):
        F.avg_pool3d(x, 2)
    with pytest.raises(Exception, match=r"aten\.avg_pool3d\.default: dtype torch\.float16 is not supported"):
        compile_fn(lambda x: F.avg_pool3d(x, 2))(x)


# ----- adaptive pooling -----------------------------------------------------------------------
ADAPTIVE2D = {
    "global": ((2, 3, 7, 6), (1, 1)),
    "uneven": ((2, 3, 9, 7), (4, 5)),
    "upsample_like": ((1, 2, 3, 5), (5, 7)),  # more outputs than inputs: overlapping windows
    "unbatched_keep_w": ((3, 10, 6), (3, None)),
}


@pytest.mark.parametrize("case", list(ADAPTIVE2D))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_adaptive_avg_pool2d(case, dtype):
    shape, out = ADAPTIVE2D[case]
    _check(lambda x: F.adaptive_avg_pool2d(x, out), make_input(shape, dtype), case)


@pytest.mark.parametrize("case", list(ADAPTIVE2D))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_adaptive_max_pool2d(case, dtype):
    shape, out = ADAPTIVE2D[case]
    x = make_input(shape, torch.int64, -3, 3).to(dtype)  # ties: the first maximum wins
    _check(lambda x: F.adaptive_max_pool2d(x, out, return_indices=True), x, case)


@pytest.mark.parametrize("shape, out", [((2, 3, 10), 4), ((3, 5), 7)])
def test_adaptive_pool1d(shape, out):
    x = make_input(shape, torch.float32)
    _check(lambda x: F.adaptive_avg_pool1d(x, out), x, "adaptive_avg_pool1d")
    _check(lambda x: F.adaptive_max_pool1d(x, out, return_indices=True), x, "adaptive_max_pool1d")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape, out", [((1, 2, 5, 7, 6), (2, 3, 4)), ((3, 4, 4, 9), (3, 1, 5))])
def test_adaptive_pool3d(dtype, shape, out):
    x = make_input(shape, dtype)
    _check(lambda x: F.adaptive_avg_pool3d(x, out), x, "adaptive_avg_pool3d")
    _check(lambda x: F.adaptive_max_pool3d(x, out, return_indices=True), x, "adaptive_max_pool3d")


def test_adaptive_max_pool2d_nan():
    x = make_input((1, 1, 6, 6), torch.float32)
    x[0, 0, 0, 1] = float("nan")
    x[0, 0, 4, 4] = float("nan")
    x[0, 0, 4, 5] = float("nan")
    _check(lambda x: F.adaptive_max_pool2d(x, (4, 3), return_indices=True), x, "adaptive_max_pool2d_nan")


def test_pooling_an_empty_batch():
    # A batch of 0 gives empty results (padding an empty tensor is not compiled: see
    # pooling._empty_results).
    def fn(a, b, c):
        return (F.adaptive_avg_pool1d(a, 5), F.adaptive_avg_pool3d(b, 3), F.adaptive_max_pool2d(c, 3, return_indices=True),
                F.max_pool2d(c, 2, padding=1, return_indices=True), F.avg_pool2d(c, 3, padding=1))

    check(fn, make_input((0, 8, 8), torch.float32), make_input((0, 2, 4, 4, 4), torch.float32),
          make_input((0, 2, 4, 4), torch.float32), atol=0, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_upsample_bilinear2d_antialias(dtype):
    # aten._upsample_bilinear2d_aa, decomposed in lowering/pooling.py: down- and upscaling,
    # align_corners, explicit scales.
    x = make_input((2, 3, 10, 13), dtype)
    aten = torch.ops.aten

    def fn(x):
        return (F.interpolate(x, size=(4, 6), mode="bilinear", antialias=True),
                F.interpolate(x, scale_factor=(1.7, 0.6), mode="bilinear", antialias=True, align_corners=True),
                aten._upsample_bilinear2d_aa.default(x, (3, 20), False, 0.4, 1.5))

    check(fn, x, atol=1e-5, rtol=1e-5)


def test_grid_sample_3d():
    # aten.grid_sampler_3d, decomposed in lowering/pooling.py; some grid points lie outside.
    x = make_input((2, 2, 3, 4, 5), torch.float32, seed=1)
    grid = make_input((2, 2, 3, 2, 3), torch.float32, low=-1.2, high=1.2, seed=2)

    def fn(x, grid):  # every mode and padding, align_corners alternating (compile time)
        return tuple(F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=corners)
                     for mode, corners in (("bilinear", False), ("nearest", True))
                     for padding in ("zeros", "border", "reflection")) + \
            (F.grid_sample(x, grid, padding_mode="reflection", align_corners=True),)

    check(fn, x, grid, atol=1e-5, rtol=1e-5)


# ----- NHWC max pooling of channels-last regions (torch_mlir_backend/layout.py) -----------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.uint8])
@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil", [((3, 3), (2, 2), (1, 1), (1, 1), False),
                                                                 ((2, 3), (2, 1), (1, 0), (1, 2), True),
                                                                 ((3, 3), (3, 3), (0, 0), (1, 1), True)])
def test_max_pool2d_channels_last_lowering(dtype, kernel, stride, padding, dilation, ceil):
    x = make_input((2, 9, 10, 5), dtype, -5, 5, seed=4)
    if dtype.is_floating_point:
        x[0, 1, 1, 2] = float("nan")
        x[1, :3, :3, 0] = float("-inf")

    def pool(t):
        return tmb.max_pool2d_channels_last(t, kernel, stride, padding, dilation, ceil)

    want = F.max_pool2d(x.permute(0, 3, 1, 2), kernel, stride, padding, dilation, ceil_mode=ceil).permute(0, 2, 3, 1)
    torch.testing.assert_close(pool(x), want, atol=0, rtol=0, equal_nan=True)
    check(pool, x, atol=0, rtol=0)
