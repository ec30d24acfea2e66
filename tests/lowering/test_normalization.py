"""Normalization rules against eager: every output (normalized values and the saved mean/rstd,
updated running statistics) on two shapes and each float dtype, plus the nn modules compiled
with fullgraph=True."""
import pytest
import torch
import torch.nn as nn

from helpers import check, compile_fn, make_input
from torch_mlir_backend.types import FLOAT_DTYPES

aten = torch.ops.aten

# (atol, rtol): outputs are O(1) normalized values; rstd can be O(10) for small variances.
TOL = {torch.float32: (2e-5, 2e-5), torch.float64: (1e-12, 1e-12),
       torch.float16: (4e-3, 4e-3), torch.bfloat16: (3e-2, 3e-2)}
IDS = [str(d).replace("torch.", "") for d in FLOAT_DTYPES]


def tol(dtype):
    a, r = TOL[dtype]
    return dict(atol=a, rtol=r)


def stats_dtype(dtype):
    # eager's mixed-type batch norm: half inputs with float32 weight, bias and statistics
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


# ----- layer norm ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=IDS)
def test_native_layer_norm(dtype):
    x = make_input((2, 3, 4, 5), dtype)
    w, bias = make_input((4, 5), dtype, seed=1), make_input((4, 5), dtype, seed=2)
    check(lambda x, w, b: aten.native_layer_norm(x, [4, 5], w, b, 1e-5), x, w, bias, name="ln_affine", **tol(dtype))
    check(lambda x: aten.native_layer_norm(x, [7], None, None, 1e-3), make_input((6, 7), dtype, seed=3),
          name="ln_plain", **tol(dtype))
    check(lambda x, w: aten.native_layer_norm(x, [3], w, None, 1e-5), make_input((5, 3), dtype, seed=4),
          make_input((3,), dtype, seed=5), name="ln_weight_only", **tol(dtype))


# ----- group norm ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=IDS)
def test_native_group_norm(dtype):
    w, bias = make_input((6,), dtype, seed=1), make_input((6,), dtype, seed=2)
    check(lambda x, w, b: aten.native_group_norm(x, w, b, 2, 6, 20, 3, 1e-5), make_input((2, 6, 4, 5), dtype),
          w, bias, name="gn_4d", **tol(dtype))
    check(lambda x: aten.native_group_norm(x, None, None, 3, 6, 7, 2, 1e-5), make_input((3, 6, 7), dtype, seed=3),
          name="gn_3d", **tol(dtype))
    check(lambda x, w: aten.native_group_norm(x, w, None, 4, 6, 1, 3, 1e-5), make_input((4, 6), dtype, seed=4),
          w, name="gn_2d", **tol(dtype))


# ----- batch norm ----------------------------------------------------------------------------------
def _bn_params(c, dtype, seed=0):
    # all four share one dtype, as eager requires
    return (make_input((c,), dtype, seed=seed + 1), make_input((c,), dtype, seed=seed + 2),
            make_input((c,), dtype, -1, 1, seed=seed + 3), make_input((c,), dtype, 0.5, 2, seed=seed + 4))


# Where PyTorch's fake-tensor kernels (whose types the graph carries, and rules must follow)
# disagree with eager on a result dtype, that result is left out: for half inputs with float32
# weight/bias/statistics the saved mean/invstd (fake: input dtype, eager: float32), and for
# all-half training batch norm the updated running statistics (fake: float32, eager: half; the
# module test below checks them through BatchNorm2d's buffer update in half precision).
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=IDS)
def test_batch_norm_no_training(dtype):
    w, bias, rm, rv = _bn_params(3, dtype)
    check(lambda x, w, b, rm, rv: aten._native_batch_norm_legit_no_training(x, w, b, rm, rv, 0.1, 1e-5),
          make_input((2, 3, 4, 5), dtype), w, bias, rm, rv, name="bn_eval_4d", **tol(dtype))
    w, bias, rm, rv = _bn_params(3, stats_dtype(dtype), seed=5)
    check(lambda x, w, b, rm, rv: aten._native_batch_norm_legit_no_training(x, w, b, rm, rv, 0.1, 1e-3)[0],
          make_input((5, 3), dtype, seed=7), w, bias, rm, rv, name="bn_eval_2d_mixed", **tol(dtype))
    check(lambda x, rm, rv: aten._native_batch_norm_legit_no_training(x, None, None, rm, rv, 0.1, 1e-5),
          make_input((4, 3, 2), dtype, seed=8), rm.to(dtype), rv.to(dtype), name="bn_eval_no_affine", **tol(dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=IDS)
def test_batch_norm_functional(dtype):
    # the running-statistics update is returned as results 3 and 4 (unbiased variance)
    w, bias, rm, rv = _bn_params(3, dtype)
    n = 5 if stats_dtype(dtype) == dtype else 3
    check(lambda x, w, b, rm, rv: aten._native_batch_norm_legit_functional(x, w, b, rm, rv, True, 0.1, 1e-5)[:n],
          make_input((2, 3, 4, 5), dtype), w, bias, rm, rv, name="bn_train_4d", **tol(dtype))
    # training=False: running statistics, empty saved statistics, running stats unchanged
    check(lambda x, rm, rv: aten._native_batch_norm_legit_functional(x, None, None, rm, rv, False, 0.1, 1e-5)[:n],
          make_input((4, 3), dtype, seed=8), rm, rv, name="bn_functional_eval", **tol(dtype))

    def mixed(x, rm, rv):
        out = aten._native_batch_norm_legit_functional(x, None, None, rm, rv, True, 0.3, 1e-5)
        return out[0], out[3], out[4]

    _, _, rm, rv = _bn_params(3, stats_dtype(dtype), seed=5)
    check(mixed, make_input((6, 3, 2), dtype, seed=7), rm, rv, name="bn_train_3d_mixed", **tol(dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=IDS)
def test_batch_norm_no_stats(dtype):
    w, bias, _, _ = _bn_params(4, dtype)
    check(lambda x, w, b: aten._native_batch_norm_legit.no_stats(x, w, b, True, 0.1, 1e-5),
          make_input((2, 4, 3, 3), dtype), w, bias, name="bn_no_stats_4d", **tol(dtype))
    check(lambda x: aten._native_batch_norm_legit.no_stats(x, None, None, True, 0.1, 1e-5),
          make_input((7, 4), dtype, seed=5), name="bn_no_stats_2d", **tol(dtype))


def test_complex_group_norm_is_rejected():
    fn = compile_fn(lambda x: aten.native_group_norm(x, None, None, 2, 4, 3, 2, 1e-5))
    with pytest.raises(Exception, match=r"aten.native_group_norm.default: dtype torch.complex64 is not supported"):
        fn(torch.ones(2, 4, 3, dtype=torch.complex64))


# ----- modules -----------------------------------------------------------------------------------
class NormBlock(nn.Module):
    """BatchNorm2d -> LayerNorm over the last dim -> softmax, the pieces of a small model."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(4)
        self.ln = nn.LayerNorm(6)
        self.gn = nn.GroupNorm(2, 4)
        with torch.no_grad():
            for p in (self.bn.weight, self.bn.bias, self.ln.weight, self.ln.bias, self.gn.weight, self.gn.bias):
                p.copy_(make_input(p.shape, torch.float32, seed=p.numel()))
            self.bn.running_mean.copy_(make_input((4,), torch.float32, -1, 1, seed=11))
            self.bn.running_var.copy_(make_input((4,), torch.float32, 0.5, 2, seed=12))

    def forward(self, x):
        y = self.ln(self.bn(x))
        return torch.softmax(y, -1) + self.gn(x).log_softmax(1)


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_modules_eval_fullgraph(grad):
    # with grad enabled AOTAutograd also returns the saved mean/rstd as graph outputs
    model = NormBlock().eval()
    x = make_input((2, 4, 5, 6), torch.float32)
    with torch.set_grad_enabled(grad):
        check(model, x, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def test_batch_norm_module_train_updates_running_stats(dtype):
    def make():
        m = NormBlock().train().to(dtype)
        return m.bn

    eager_bn, compiled_bn = make(), make()
    x = make_input((3, 4, 5, 6), dtype)
    with torch.no_grad():
        want = eager_bn(x)
        compiled = compile_fn(compiled_bn)
        got = compiled(x)
        want2, got2 = eager_bn(x * 2), compiled(x * 2)  # second step uses the updated statistics
    for g, w in ((got, want), (got2, want2), (compiled_bn.running_mean, eager_bn.running_mean),
                 (compiled_bn.running_var, eager_bn.running_var)):
        torch.testing.assert_close(g, w, **tol(dtype))
    assert int(compiled_bn.num_batches_tracked) == int(eager_bn.num_batches_tracked) == 2
