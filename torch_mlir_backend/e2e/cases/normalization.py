"""Normalization cases: layer norm, batch norm in inference, group norm."""
import torch

from ..registry import conformance_case
from ._util import inputs, rand


def _bn_eval():
    bn = torch.nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return bn


conformance_case("BatchNorm2dModule_eval", inputs=inputs(rand(2, 4, 5, 5)), atol=1e-5)(_bn_eval)
conformance_case("LayerNormModule_basic", inputs=inputs(rand(2, 5, 8)), atol=1e-5)(lambda: torch.nn.LayerNorm(8))
conformance_case("LayerNormModule_2d", inputs=inputs(rand(2, 5, 8)), atol=1e-5)(lambda: torch.nn.LayerNorm([5, 8]))
conformance_case("LayerNormModule_noAffine", inputs=inputs(rand(3, 8)), atol=1e-5)(
    lambda: torch.nn.LayerNorm(8, elementwise_affine=False))
conformance_case("GroupNormModule_basic", inputs=inputs(rand(2, 6, 4, 4)), atol=1e-5)(lambda: torch.nn.GroupNorm(3, 6))
