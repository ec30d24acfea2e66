"""Our own decompositions of fused fast-path ops (transformer encoder layer, multi-head
attention) against eager's fused CPU kernels."""
import pytest
import torch

from helpers import assert_same, compile_fn
from torch_mlir_backend.decompositions import OWN, decomposition_table

aten = torch.ops.aten


def test_own_decompositions_are_in_the_table():
    table = decomposition_table()
    assert aten._transformer_encoder_layer_fwd.default in table
    assert aten._native_multi_head_attention.default in table
    assert all(table[op] is fn for op, fn in OWN.items())


def _run(module, *inputs, atol=1e-4, rtol=1e-4, **kwargs):
    module.eval()
    with torch.no_grad():
        want = module(*inputs, **kwargs)
        got = compile_fn(lambda *xs: module(*xs, **kwargs))(*inputs)
    assert_same(got, want, type(module).__name__, inputs, atol, rtol)


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_transformer_encoder_layer_fast_path(norm_first, activation):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True,
                                             norm_first=norm_first, activation=activation)
    _run(layer, torch.randn(3, 7, 32))


def test_transformer_encoder_layer_with_causal_mask():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(7)
    _run(layer, torch.randn(2, 7, 32), src_mask=mask)


def test_multihead_attention_fast_path():
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    x = torch.randn(2, 5, 32)
    _run(mha, x, x, x, need_weights=False)
    _run(mha, x, x, x)  # with averaged attention weights
