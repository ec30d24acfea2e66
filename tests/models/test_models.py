"""Whole models through torch.compile(fullgraph=True) against eager with explicit tolerances."""
import pytest
import torch

from helpers import assert_same, compile_fn
from torch_mlir_backend.e2e.cases.models import MLP, SmallCNN


def _check_model(model, x, atol, rtol):
    model.eval()
    with torch.no_grad():
        want = model(x)
        got = compile_fn(model)(x)
    return assert_same(got, want, type(model).__name__, [x], atol, rtol)


def test_mlp():
    torch.manual_seed(0)
    _check_model(MLP((784, 512, 512, 10)), torch.randn(16, 784), atol=1e-4, rtol=1e-4)


def test_cnn_conv_bn_relu_pool_linear():
    torch.manual_seed(0)
    model = SmallCNN()
    for m in model.modules():  # non-trivial running statistics so batch norm matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    _check_model(model, torch.randn(4, 3, 32, 32), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_encoder_layer(batch_first):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=64, nhead=4, dim_feedforward=128, dropout=0.0,
                                             batch_first=batch_first)
    x = torch.randn(2, 10, 64) if batch_first else torch.randn(10, 2, 64)
    _check_model(layer, x, atol=1e-4, rtol=1e-4)
