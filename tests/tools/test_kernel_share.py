"""benchmarks/kernel_share.py: library-kernel time is found in a profile (a GEMM-only model is
mostly library time, an elementwise-only one has none), so its ceilings bound what it says."""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import kernel_share  # noqa: E402


def test_gemm_time_counts_as_library_time_and_elementwise_time_does_not():
    a, b = torch.randn(384, 384), torch.randn(384, 384)
    total, library, kernels = kernel_share._profile(torch.mm, (a, b), runs=3)
    assert set(kernels) == {"aten::mm"}, kernels
    assert 0 < library <= total, (library, total)
    assert library >= 0.5 * total, (library, total)  # one 384^3 GEMM: the kernel is nearly all of it

    _, library, kernels = kernel_share._profile(lambda x: torch.tanh(x) * 2 + 1, (a,), runs=3)
    assert library == 0 and kernels == {}, kernels


def test_convolution_models_are_also_profiled_channels_last():
    conv = torch.nn.Conv2d(3, 8, 3).eval()
    model, (x,) = kernel_share._channels_last(conv, (torch.randn(2, 3, 16, 16),))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert model.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(model(x), conv(x.contiguous()), atol=1e-5, rtol=1e-5)
