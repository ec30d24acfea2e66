"""Convolution cases: 2-D NCHW with stride, padding, dilation, groups, bias."""
import torch

from ..registry import conformance_case
from ._util import inputs, rand


def _conv_case(name, *args, shape=(2, 4, 10, 10), **kwargs):
    conformance_case(name, inputs=inputs(rand(*shape)), atol=1e-4, rtol=1e-4)(
        lambda: torch.nn.Conv2d(*args, **kwargs))


_conv_case("Conv2dModule_basic", 4, 8, 3)
_conv_case("Conv2dModule_noBias", 4, 8, 3, bias=False)
_conv_case("Conv2dModule_stride2", 4, 8, 3, stride=2)
_conv_case("Conv2dModule_padding", 4, 8, 3, padding=1)
_conv_case("Conv2dModule_paddingAsym", 4, 8, (3, 5), padding=(1, 2))
_conv_case("Conv2dModule_dilation", 4, 8, 3, dilation=2)
_conv_case("Conv2dModule_groups", 4, 8, 3, groups=2)
_conv_case("Conv2dModule_depthwise", 4, 4, 3, groups=4, padding=1)
_conv_case("Conv2dModule_1x1", 4, 16, 1)
_conv_case("Conv2dModule_strideDilationPadding", 4, 6, 3, stride=2, padding=2, dilation=2)
_conv_case("Conv2dModule_paddingSame", 4, 6, 3, padding="same")
