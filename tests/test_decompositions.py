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


@pytest.mark.parametrize("in_hw,out_hw", [((7, 9), (3, 4)), ((8, 8), (1, 1)), ((5, 6), (5, 6)), ((4, 5), (7, 3))])
def test_adaptive_avg_pool2d_backward(in_hw, out_hw):
    # Our decomposition (window-averaging matrices, P_h^T grad P_w) against eager's kernel.
    torch.manual_seed(0)
    x = torch.randn(2, 3, *in_hw)
    grad = torch.randn(2, 3, *out_hw)
    want = aten._adaptive_avg_pool2d_backward.default(grad, x)
    got = compile_fn(lambda g, t: aten._adaptive_avg_pool2d_backward.default(g, t))(grad, x)
    assert_same(got, want, f"adaptive_avg_pool2d_backward{in_hw}->{out_hw}", [grad, x], 1e-5, 1e-5)


@pytest.mark.parametrize("name,fn", [
    ("batch_norm_legit_no_stats",
     lambda x: aten._native_batch_norm_legit.no_stats(x, None, None, True, 0.1, 1e-5)),
    ("upsample_bilinear2d_vec_scales", lambda x: aten.upsample_bilinear2d.vec(x, None, False, [2.0, 1.5])),
    ("upsample_bilinear2d_vec_align_corners", lambda x: aten.upsample_bilinear2d.vec(x, [5, 11], True, None)),
    ("upsample_nearest2d_vec_size", lambda x: aten.upsample_nearest2d.vec(x, [14, 5], None)),
])
def test_core_aten_overloads_decomposed_for_us(name, fn):
    x = torch.randn(2, 3, 7, 9)
    assert_same(compile_fn(fn)(x), fn(x), name, [x], 1e-5, 1e-5)


@pytest.mark.parametrize("name,fn,make", [
    ("angle_f32", torch.angle, lambda: torch.tensor([-2.0, -0.0, 0.0, 3.0, float("nan"), float("-inf")])),
    ("angle_i64", torch.angle, lambda: torch.tensor([-3, 0, 4])),
    ("addmv", lambda x: torch.addmv(x[:, 0], x, x[0], beta=0.5, alpha=2.0), lambda: torch.randn(5, 5)),
    ("permute_copy", lambda x: torch.permute_copy(x, (1, 0)) + 1, lambda: torch.randn(3, 4)),
    ("view_copy", lambda x: torch.view_copy(x, (4, 3)) * 2, lambda: torch.randn(3, 4)),
    ("t_copy", lambda x: torch.t_copy(x) - 1, lambda: torch.randn(3, 4)),
    ("split_with_sizes_copy_empty_piece",
     lambda x: [p * 2 for p in torch.split_with_sizes_copy(x, [1, 4, 0], dim=1)], lambda: torch.randn(5, 5, 5)),
])
def test_reference_decompositions_we_register(name, fn, make):
    x = make()
    assert_same(compile_fn(fn)(x), fn(x), name, [x], 1e-6, 1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_linear_cross_entropy_chunked_ops(reduction):
    # F.linear_cross_entropy with chunking options reaches custom ops
    # (torch_nn::_linear_cross_entropy_batch_chunked[_no_reduction]) whose implementation is a
    # loop of in-place ops; ours is the unchunked math, forward and gradients (precomputed by the
    # mean/sum op in forward), with a bias, class weights and an ignored row.
    options_module = pytest.importorskip("torch.nn.modules.linear_cross_entropy_options",
                                         reason="this PyTorch has no chunked linear_cross_entropy")
    options = options_module.LinearCrossEntropyOptions(allow_retain_graph=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=g, requires_grad=True)
    w = torch.randn(7, 5, generator=g, requires_grad=True)
    b = torch.randn(7, generator=g, requires_grad=True)
    target = torch.tensor([0, 3, -100, 6, 2, 3])
    class_weight = torch.rand(7, generator=g)

    def fn(x, w, b, target, class_weight):
        loss = torch.nn.functional.linear_cross_entropy(x, w, target, linear_bias=b, weight=class_weight,
                                                        reduction=reduction, options=options)
        return loss.sum() if reduction == "none" else loss

    want = fn(x, w, b, target, class_weight)
    want_grads = torch.autograd.grad(want, [x, w, b])
    got = compile_fn(fn)(x, w, b, target, class_weight)
    got_grads = torch.autograd.grad(got, [x, w, b])
    assert_same(got, want, f"linear_cross_entropy {reduction}", [x], 1e-5, 1e-5)
    for name, gg, wg in zip(["input", "linear_weight", "linear_bias"], got_grads, want_grads):
        assert_same(gg, wg, f"linear_cross_entropy {reduction} grad {name}", [x], 1e-5, 1e-5)
    with torch.no_grad():  # inference: the mean/sum op computes no gradients
        assert_same(compile_fn(fn)(x, w, b, target, class_weight), want, "no_grad", [x], 1e-5, 1e-5)
