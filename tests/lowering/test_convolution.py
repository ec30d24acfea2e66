"""aten.convolution.default against eager: 1-D/2-D/3-D, stride, padding, dilation, groups
(including depthwise), bias or None, transposed with output_padding; float and integer dtypes;
plus a small CNN compiled with fullgraph=True.

f32/f64 convolutions call ATen's kernel by default (lowering/extern.py); every test here but
`test_aten_kernel_path` runs with $TORCH_MLIR_BACKEND_CONVOLUTION=generated so our generated
convolution stays tested for every dtype."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import check, compile_fn, extern_kernels_called, make_input

from torch_mlir_backend.options import ENV_CONVOLUTION
from torch_mlir_backend import layout  # noqa: F401  (defines torch.ops.tmb)

tmb = torch.ops.tmb


@pytest.fixture(autouse=True)
def _generated_convolution(request, monkeypatch):
    if "aten_kernel_path" not in request.node.name:
        monkeypatch.setenv(ENV_CONVOLUTION, "generated")

# Half precision rounds the result once (f32 accumulation); eager's kernels may accumulate in a
# different order, so allow about one rounding step of the output plus summation noise.
TOL = {
    torch.float32: (1e-4, 1e-5),
    torch.float64: (1e-10, 1e-10),
    torch.float16: (1e-2, 5e-3),
    torch.bfloat16: (6e-2, 2e-2),
}


def _inputs(x_shape, w_shape, bias, dtype):
    low, high = (-1, 1) if dtype.is_floating_point else (-3, 3)
    x = make_input(x_shape, dtype, low, high, seed=0)
    w = make_input(w_shape, dtype, low, high, seed=1)
    b = make_input((w_shape[0],), dtype, low, high, seed=2) if bias else None
    return x, w, b


def _check_conv(fn, x, w, b, dtype):
    atol, rtol = TOL.get(dtype, (0, 0))
    if b is None:
        check(lambda x, w: fn(x, w, None), x, w, name=fn.__name__, atol=atol, rtol=rtol)
    else:
        check(fn, x, w, b, name=fn.__name__, atol=atol, rtol=rtol)


# (input shape, weight shape, bias, stride, padding, dilation, groups)
CONV2D = {
    "basic": ((2, 3, 8, 8), (4, 3, 3, 3), True, 1, 1, 1, 1),
    "strided_dilated": ((1, 3, 11, 9), (5, 3, 3, 2), False, (2, 1), (1, 0), (2, 1), 1),
    "pointwise": ((2, 4, 5, 6), (3, 4, 1, 1), True, 1, 0, 1, 1),
    "grouped": ((2, 4, 7, 7), (6, 2, 3, 3), True, 2, 1, 1, 2),
    "depthwise": ((1, 4, 9, 9), (4, 1, 3, 3), True, 1, 2, 2, 4),
    "depthwise_multiplier": ((2, 3, 6, 6), (6, 1, 3, 3), False, 2, 1, 1, 3),
}


@pytest.mark.parametrize("case", list(CONV2D))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv2d(case, dtype):
    xs, ws, bias, stride, padding, dilation, groups = CONV2D[case]

    def conv2d(x, w, b):
        return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    _check_conv(conv2d, *_inputs(xs, ws, bias, dtype), dtype)


@pytest.mark.parametrize("case", ["basic", "grouped", "depthwise", "strided_dilated"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int8, torch.uint8])
def test_conv2d_half_and_integer(case, dtype):
    xs, ws, bias, stride, padding, dilation, groups = CONV2D[case]
    if dtype in (torch.int32, torch.int8, torch.uint8) and dilation != 1:
        dilation = 1  # eager has no dilated convolution for these dtypes (see test_conv_rejects_...)

    def conv2d(x, w, b):
        return F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    _check_conv(conv2d, *_inputs(xs, ws, bias, dtype), dtype)


def test_conv2d_int8_wraps_like_eager():
    x = torch.full((1, 4, 3, 3), 100, dtype=torch.int8)
    w = torch.full((2, 4, 3, 3), 3, dtype=torch.int8)
    check(lambda x, w: F.conv2d(x, w, padding=1), x, w)


def test_conv2d_padding_same():
    x, w, b = _inputs((1, 3, 8, 7), (4, 3, 4, 3), True, torch.float32)
    check(lambda x, w, b: F.conv2d(x, w, b, padding="same", dilation=(1, 2)), x, w, b, atol=1e-4, rtol=1e-5)


CONV1D = {
    "basic": ((2, 3, 10), (4, 3, 3), True, 1, 1, 1, 1),
    "strided_dilated": ((1, 4, 13), (2, 4, 3), False, 2, 2, 3, 1),
    "grouped": ((2, 4, 9), (6, 2, 3), True, 2, 0, 1, 2),
    "depthwise": ((1, 3, 8), (3, 1, 5), False, 1, 2, 1, 3),
}


@pytest.mark.parametrize("case", list(CONV1D))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int64])
def test_conv1d(case, dtype):
    xs, ws, bias, stride, padding, dilation, groups = CONV1D[case]

    def conv1d(x, w, b):
        return F.conv1d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    _check_conv(conv1d, *_inputs(xs, ws, bias, dtype), dtype)


CONV3D = {
    "basic": ((1, 2, 5, 6, 5), (3, 2, 3, 3, 3), True, 1, 1, 1, 1),
    "strided": ((2, 2, 7, 5, 6), (2, 2, 3, 2, 3), False, (2, 1, 2), (1, 0, 1), (1, 2, 1), 1),
    "grouped": ((1, 4, 5, 5, 5), (4, 2, 3, 3, 3), True, 2, 1, 1, 2),
    "depthwise": ((1, 3, 5, 4, 5), (3, 1, 3, 3, 3), True, 1, 1, 1, 3),
}


@pytest.mark.parametrize("case", list(CONV3D))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int32])
def test_conv3d(case, dtype):
    xs, ws, bias, stride, padding, dilation, groups = CONV3D[case]
    if dtype == torch.int32:
        dilation = 1  # eager has no dilated int32 convolution

    def conv3d(x, w, b):
        return F.conv3d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)

    _check_conv(conv3d, *_inputs(xs, ws, bias, dtype), dtype)


# (input shape, weight shape [Cin, Cout/G, *k], bias, stride, padding, output_padding, groups, dilation)
CONV_T2D = {
    "basic": ((2, 3, 5, 5), (3, 4, 3, 3), True, 1, 0, 0, 1, 1),
    "strided_output_padding": ((1, 3, 5, 4), (3, 2, 3, 3), False, 2, 1, 1, 1, 1),
    "grouped_dilated": ((2, 4, 4, 5), (4, 3, 3, 2), True, (2, 3), (1, 0), (1, 2), 2, (2, 1)),
    "padding_beyond_kernel": ((1, 2, 6, 6), (2, 3, 3, 3), True, 3, 3, 2, 1, 1),  # crops the dilated input
    "depthwise": ((1, 4, 5, 5), (4, 1, 3, 3), False, 2, 1, 0, 4, 1),
}


@pytest.mark.parametrize("case", list(CONV_T2D))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.int64])
def test_conv_transpose2d(case, dtype):
    xs, ws, bias, stride, padding, output_padding, groups, dilation = CONV_T2D[case]

    def conv_transpose2d(x, w, b):
        return F.conv_transpose2d(x, w, b, stride=stride, padding=padding, output_padding=output_padding,
                                  groups=groups, dilation=dilation)

    x, w, _ = _inputs(xs, ws, False, dtype)
    b = make_input((ws[1] * groups,), dtype, -1, 1, seed=2) if bias else None
    _check_conv(conv_transpose2d, x, w, b, dtype)


@pytest.mark.parametrize("nd, xs, ws, stride, padding, output_padding, groups", [
    (1, (2, 4, 7), (4, 3, 3), 2, 1, 1, 2),
    (1, (1, 2, 5), (2, 2, 4), 3, 0, 2, 1),
    (3, (1, 2, 3, 4, 3), (2, 3, 3, 2, 3), 2, 1, 1, 1),
    (3, (1, 4, 3, 3, 4), (4, 1, 2, 3, 2), (1, 2, 2), (0, 1, 0), (0, 1, 1), 2),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_conv_transpose_1d_3d(nd, xs, ws, stride, padding, output_padding, groups, dtype):
    fn = F.conv_transpose1d if nd == 1 else F.conv_transpose3d

    def conv_transpose(x, w, b):
        return fn(x, w, b, stride=stride, padding=padding, output_padding=output_padding, groups=groups)

    x, w, _ = _inputs(xs, ws, False, dtype)
    b = make_input((ws[1] * groups,), dtype, -1, 1, seed=2)
    _check_conv(conv_transpose, x, w, b, dtype)


def test_conv_rejects_bool():
    x = torch.ones(1, 2, 4, 4, dtype=torch.bool)
    w = torch.ones(2, 2, 3, 3, dtype=torch.bool)
    with pytest.raises(Exception, match=r"aten\.convolution\.default: dtype torch\.bool is not supported"):
        compile_fn(lambda x, w: F.conv2d(x, w))(x, w)


@pytest.mark.parametrize("transposed", [False, True])
def test_conv_rejects_dilated_or_transposed_int32(transposed):
    x = torch.ones(1, 2, 5, 5, dtype=torch.int32)
    w = torch.ones(2, 2, 3, 3, dtype=torch.int32)
    fn = (lambda x, w: F.conv_transpose2d(x, w)) if transposed else (lambda x, w: F.conv2d(x, w, dilation=2))
    with pytest.raises(NotImplementedError):
        fn(x, w)  # eager has no such kernel either
    with pytest.raises(Exception, match=r"aten\.convolution\.default: dilated or transposed convolution of torch\.int32"):
        compile_fn(fn)(x, w)


class SmallCNN(nn.Module):
    def __init__(self, pool: nn.Module):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), pool, nn.Flatten(),
        )
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(self.features(x))


@pytest.mark.parametrize("pool", ["avg_pool", "adaptive_avg_pool"])
@pytest.mark.parametrize("batch", [1, 3])
def test_small_cnn_matches_eager(pool, batch):
    torch.manual_seed(0)
    model = SmallCNN(nn.AvgPool2d(2) if pool == "avg_pool" else nn.AdaptiveAvgPool2d((4, 4))).eval()
    with torch.no_grad():
        bn = model.features[1]
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        check(model, make_input((batch, 3, 16, 16), torch.float32), name=f"SmallCNN[{pool}]", atol=1e-4, rtol=1e-4)


ATEN_PATH_CASES = {
    **{f"2d_{k}": (F.conv2d, v) for k, v in CONV2D.items()},
    "1d": (F.conv1d, ((2, 3, 9), (4, 3, 3), True, 2, 1, 1, 1)),
    "3d": (F.conv3d, ((1, 2, 5, 6, 4), (3, 2, 2, 3, 2), False, 1, (1, 0, 1), 1, 1)),
}


@pytest.mark.parametrize("case", list(ATEN_PATH_CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_aten_kernel_path(case, dtype, monkeypatch):
    monkeypatch.delenv(ENV_CONVOLUTION, raising=False)  # the default policy: ATen's kernel
    conv, (xs, ws, bias, stride, padding, dilation, groups) = ATEN_PATH_CASES[case]
    x, w, b = _inputs(xs, ws, bias, dtype)

    def fn(x, w, *b):
        return torch.relu(conv(x, w, b[0] if b else None, stride, padding, dilation, groups)) * 2

    inputs = (x, w) if b is None else (x, w, b)
    assert extern_kernels_called(fn, *inputs) == ["aten.convolution.default"]
    atol, rtol = TOL[dtype]
    check(fn, *inputs, name=case, atol=atol, rtol=rtol)


def test_aten_kernel_path_transposed_and_dynamic_batch(monkeypatch):
    monkeypatch.delenv(ENV_CONVOLUTION, raising=False)
    x, w, b = _inputs((2, 4, 5, 5), (4, 3, 3, 3), True, torch.float32)
    b = b[:3]  # transposed: [in, out, kh, kw] weights, 3 output channels
    check(lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1), x, w, b,
          atol=1e-4, rtol=1e-5)
    conv = nn.Conv2d(3, 4, 3, padding=1).eval()
    compiled = compile_fn(conv, dynamic=True)
    with torch.no_grad():
        for batch in (2, 5, 3):
            x = make_input((batch, 3, 6, 6), torch.float32, -1, 1, seed=batch)
            torch.testing.assert_close(compiled(x), conv(x), atol=1e-4, rtol=1e-5)


# ----- NHWC convolution of channels-last regions (torch_mlir_backend/layout.py) -----------------
@pytest.mark.parametrize("stride,padding,dilation,groups", [((1, 1), (1, 1), (1, 1), 1), ((2, 1), (3, 0), (1, 2), 1),
                                                             ((1, 1), (1, 1), (1, 1), 4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_convolution_channels_last_is_atens_convolution(stride, padding, dilation, groups, dtype):
    x, w, b = make_input((2, 8, 9, 11), dtype, seed=1), make_input((12, 8 // groups, 3, 3), dtype, seed=2), \
        make_input((12,), dtype, seed=3)
    want = torch.ops.aten.convolution(x, w, b, stride, padding, dilation, False, [0, 0], groups)
    eager = tmb.convolution_channels_last(x.permute(0, 2, 3, 1).contiguous(), w, b, stride, padding, dilation, groups)
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(eager.permute(0, 3, 1, 2), want, **tol)
    compiled = check(lambda t: tmb.convolution_channels_last(t, w, b, stride, padding, dilation, groups),
                     x.permute(0, 2, 3, 1).contiguous(), **tol)
    assert compiled >= 0
