"""Resizing (F.interpolate) against eager. The upsample ops never reach the lowering: PyTorch's
Core ATen decompositions turn them into arange/index/clamp/arithmetic, which the elementwise and
indexing rules lower; these tests hold that path to eager on two shapes per dtype."""
import pytest
import torch
import torch.nn.functional as F

from helpers import check, make_input

def tolerance(dtype):
    if dtype in (torch.float16, torch.bfloat16):
        return dict(atol=3e-2, rtol=3e-2)
    return dict(atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.uint8], ids=lambda d: str(d).replace("torch.", ""))
def test_nearest_and_nearest_exact(dtype):
    a, c = make_input((1, 2, 5, 6), dtype, seed=1), make_input((2, 1, 3, 4), dtype, seed=2)
    check(lambda a, c: (F.interpolate(a, scale_factor=2, mode="nearest"), F.interpolate(c, size=(7, 5), mode="nearest"),
                        F.interpolate(a, size=(7, 9), mode="nearest-exact"),
                        F.interpolate(c, scale_factor=(1.5, 2.5), mode="nearest-exact"),
                        F.interpolate(a, size=(3, 4), mode="nearest")), a, c, atol=0, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=lambda d: str(d).replace("torch.", ""))
def test_bilinear(dtype):
    a, c = make_input((1, 2, 5, 6), dtype, seed=1), make_input((2, 1, 3, 4), dtype, seed=2)
    check(lambda a, c: (F.interpolate(a, scale_factor=2, mode="bilinear"),
                        F.interpolate(c, size=(7, 5), mode="bilinear", align_corners=True),
                        F.interpolate(a, size=(3, 4), mode="bilinear"),
                        F.interpolate(c, scale_factor=(1.5, 2.5), mode="bilinear", align_corners=False),
                        F.interpolate(a, scale_factor=0.5, mode="bilinear", align_corners=True)), a, c, **tolerance(dtype))


def test_one_and_three_dimensional_and_bicubic():
    a, c = make_input((1, 2, 5), torch.float32, seed=1), make_input((1, 1, 2, 3, 4), torch.float32, seed=2)
    check(lambda a, c: (F.interpolate(a, scale_factor=2, mode="nearest"), F.interpolate(a, size=7, mode="linear"),
                        F.interpolate(c, scale_factor=2, mode="nearest"), F.interpolate(c, size=(3, 4, 5), mode="trilinear"),
                        F.interpolate(a[None], size=(4, 9), mode="bicubic")), a, c, atol=1e-5, rtol=1e-5)


def test_upsample_modules():
    a = make_input((1, 3, 4, 4), torch.float32)
    nearest, bilinear = torch.nn.Upsample(scale_factor=2), torch.nn.UpsamplingBilinear2d(scale_factor=2)
    check(lambda a: (nearest(a), bilinear(a)), a, atol=1e-5, rtol=1e-5)


def test_core_aten_upsample_overloads():
    # The Core ATen overloads themselves (what exported programs hold), through the same decompositions.
    aten = torch.ops.aten
    a = make_input((1, 2, 4, 5), torch.float32)
    check(lambda a: (aten.upsample_nearest2d.vec(a, None, [2.0, 1.5]), aten.upsample_nearest2d.vec(a, [7, 9], None),
                     aten.upsample_bilinear2d.vec(a, None, False, [2.0, 1.5]), aten.upsample_bilinear2d.vec(a, [7, 9], True, None),
                     aten.upsample_nearest2d.default(a, [7, 9]), aten.upsample_bilinear2d.default(a, [3, 4], False)),
          a, atol=1e-5, rtol=1e-5)
