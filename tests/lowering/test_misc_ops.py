"""Ops that reach us through decompositions (ours in decompositions.py or PyTorch's) or have no
family module: runtime assertions (lowering/misc.py), embedding_bag, vector_norm, repeat,
diagonal, unfold, one_hot, reflect/replicate padding, scaled_dot_product_attention, einsum,
tril/triu, roll, clamp with tensor bounds, scalar `where`, logsumexp and dropout off; each on two
shapes against eager."""
import pytest
import torch
import torch.nn.functional as F

from helpers import check, make_input
from torch_mlir_backend.types import SUPPORTED_DTYPES

# `_assert_async` is what one_hot's decomposition checks its indices with.
COVERED = ["aten._assert_async.msg", "aten._assert_async.default", "aten._embedding_bag_forward_only.default",
           "aten._embedding_bag.default", "aten.linalg_vector_norm.default", "aten.repeat.default",
           "aten.diagonal.default", "aten.unfold.default"]

DTYPES = [pytest.param(d, id=str(d).replace("torch.", "")) for d in SUPPORTED_DTYPES]
FLOATS = [pytest.param(d, id=str(d).replace("torch.", ""))
          for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16)]
EXACT = dict(atol=0, rtol=0)


def tolerance(dtype):
    if dtype in (torch.float16, torch.bfloat16):
        return dict(atol=3e-2, rtol=3e-2)
    return dict(atol=1e-5, rtol=1e-5)


def test_one_hot():
    check(lambda i, j: (F.one_hot(i, 4), F.one_hot(j, 6)), torch.tensor([0, 3, 1]),
          torch.tensor([[5, 0], [2, 2]]), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_repeat_diagonal_unfold(dtype):
    a, c = make_input((4, 5), dtype, seed=1), make_input((2, 3, 4), dtype, seed=2)
    check(lambda a, c: (a.repeat(2, 1, 3), c.repeat(1, 2, 1), torch.diagonal(a, 1), torch.diagonal(c, -1, 0, 2),
                        torch.diagonal(a.t(), -2), torch.diagonal(c[:, 1:, ::2], 0, 2, 1), torch.diagonal(a, 7),
                        a.unfold(1, 2, 2), c.unfold(-1, 3, 1), a.unfold(0, 4, 1), a.t().unfold(1, 3, 2),
                        c[:, :, 1::2].unfold(1, 2, 1)), a, c, **EXACT)


@pytest.mark.parametrize("dtype", FLOATS)
def test_vector_norm(dtype):
    a, c = make_input((4, 5), dtype, seed=1), make_input((2, 3, 4), dtype, seed=2)
    inf = float("inf")
    check(lambda a, c: (torch.linalg.vector_norm(a, dim=1), torch.linalg.vector_norm(c, 3.0, dim=(0, 2), keepdim=True),
                        torch.linalg.vector_norm(a, inf), torch.linalg.vector_norm(c, -inf, dim=-1),
                        torch.linalg.vector_norm(a, 0), torch.linalg.vector_norm(c, 1)), a, c, **tolerance(dtype))


@pytest.mark.parametrize("mode", [0, 1, 2], ids=["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [-1, 2], ids=["no_padding", "padding_2"])
def test_embedding_bag_all_outputs(mode, padding_idx):
    # All four outputs: training's `_embedding_bag_backward` reads offset2bag, bag_size and
    # max_indices, so they must be eager's.
    w = make_input((10, 3), torch.float32)
    i, o = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9]), torch.tensor([0, 4, 4])  # the middle bag is empty
    aten = torch.ops.aten
    check(lambda w, i, o: (aten._embedding_bag_forward_only.default(w, i, o, False, mode, False, None, False, padding_idx),
                           aten._embedding_bag.default(w, i, o, False, mode, False, None, False, padding_idx)),
          w, i, o, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_embedding_bag_functional(dtype):
    w = make_input((10, 3), dtype)
    i, o = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9]), torch.tensor([0, 3, 8])
    check(lambda w, i, o, p: (F.embedding_bag(i.view(2, 4), w, mode="max"),
                              F.embedding_bag(i.view(4, 2), w, mode="mean", padding_idx=4),
                              F.embedding_bag(i, w, o, per_sample_weights=p, include_last_offset=True, mode="sum")),
          w, i, o, torch.rand(8, dtype=dtype), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_module_trains(mode):
    # With grad, the forward runs our decomposition of `_embedding_bag`; the backward is
    # `_embedding_bag_backward` on its saved outputs (eager fallback until it has a rule).
    bag = torch.nn.EmbeddingBag(10, 3, mode=mode)
    i, o = torch.tensor([1, 2, 4, 5, 4, 3]), torch.tensor([0, 2])
    want = bag(i, o).square().sum()
    want.backward()
    grad_want = bag.weight.grad.clone()
    bag.weight.grad = None
    got = torch.compile(lambda i, o: bag(i, o).square().sum(), backend="torch_mlir", fullgraph=True)(i, o)
    got.backward()
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(bag.weight.grad, grad_want, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_reflect_and_replicate_pad(dtype):  # eager pads no bool tensors this way
    a, c = make_input((1, 2, 5), dtype, seed=1), make_input((1, 2, 3, 4), dtype, seed=2)
    check(lambda a, c: tuple(r for m in ("replicate", "reflect") for r in (
        F.pad(a, (2, 1), mode=m), F.pad(c, (1, 2, 2, 1), mode=m), F.pad(c[None], (1, 1, 1, 0, 1, 1), mode=m))),
        a, c, **EXACT)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=lambda d: str(d).replace("torch.", ""))
def test_scaled_dot_product_attention(dtype):
    q, k, v = (make_input((2, 4, 6, 8), dtype, seed=s) for s in (1, 2, 3))
    kv = make_input((2, 2, 5, 8), dtype, seed=4)
    float_mask = make_input((6, 6), dtype, seed=5)
    bool_mask = make_input((2, 1, 6, 5), torch.bool, seed=6)
    bool_mask[..., 0] = True  # no fully masked row (eager gives NaN rows there)

    def fn(q, k, v, kv, fm, bm):
        return (F.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v, is_causal=True),
                F.scaled_dot_product_attention(q, k, v, attn_mask=fm, scale=0.3),
                F.scaled_dot_product_attention(q, kv, kv, attn_mask=bm, enable_gqa=True))

    check(fn, q, k, v, kv, float_mask, bool_mask, **tolerance(dtype))


def test_einsum():
    a, c = make_input((2, 3, 4), torch.float32, seed=1), make_input((2, 4, 5), torch.float32, seed=2)
    check(lambda a, c: (torch.einsum("bij,bjk->bik", a, c), torch.einsum("bij->bji", a), torch.einsum("bij,bik->jk", a, a),
                        torch.einsum("bii->bi", a[:, :, :3]), torch.einsum("i,j->ij", a[0, 0], c[0, 0]),
                        torch.einsum("bij,bjk,bkl->bil", a, c, c.transpose(1, 2))),
          a, c, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.int64, torch.uint8, torch.bool],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_tril_triu_roll(dtype):
    a, c = make_input((4, 5), dtype, seed=1), make_input((2, 3, 4), dtype, seed=2)
    check(lambda a, c: (torch.tril(a), torch.triu(a, 1), torch.tril(c, -1), torch.triu(c, 2), torch.roll(a, 2, 1),
                        torch.roll(c, (-1, 5), (0, 2)), torch.roll(a, 3)), a, c, **EXACT)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.int8], ids=lambda d: str(d).replace("torch.", ""))
def test_clamp_tensor_bounds_and_scalar_where(dtype):
    a, c = make_input((4, 5), dtype, seed=1), make_input((2, 3, 4), dtype, seed=2)
    lo, hi = make_input((5,), dtype, -2, 0, seed=3), make_input((4, 1), dtype, 0, 2, seed=4)
    check(lambda a, c, lo, hi: (torch.clamp(a, lo, hi), torch.clamp(c, min=lo[:4]), torch.clamp(a, max=hi),
                                torch.where(a > 0, a, 0), torch.where(c > 0, 1, c), torch.where(c > 0, 2, -1)),
          a, c, lo, hi, **EXACT)


@pytest.mark.parametrize("dtype", FLOATS)
def test_logsumexp_and_dropout_off(dtype):
    a, c = make_input((4, 5), dtype, seed=1), make_input((2, 3, 4), dtype, seed=2)
    c[0, 0] = float("-inf")
    check(lambda a, c: (torch.logsumexp(a, 1), torch.logsumexp(c, (0, 2), keepdim=True), torch.logsumexp(c, -1),
                        F.dropout(a, 0.5, training=False), F.dropout(c, 0.0, training=True)), a, c, **tolerance(dtype))


# ----- contraction-like decompositions (lowering/linear_algebra.py) and triangle indices -----
COVERED += ["aten.triu_indices.default", "aten.tril_indices.default"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64], ids=lambda d: str(d).replace("torch.", ""))
def test_addbmm_bilinear_and_distances(dtype):
    bias, b1, b2 = make_input((3, 4), dtype, seed=1), make_input((2, 3, 5), dtype, seed=2), make_input((2, 5, 4), dtype, seed=3)
    x1, x2, w = make_input((6, 3), dtype, seed=4), make_input((6, 5), dtype, seed=5), make_input((2, 3, 5), dtype, seed=6)

    def products(bias, b1, b2, x1, x2, w):
        return (torch.addbmm(bias, b1, b2), torch.addbmm(bias[0], b1, b2, beta=0.5 if dtype.is_floating_point else 2.7,
                                                         alpha=2), F.bilinear(x1, x2, w), F.bilinear(x1[:2], x2[:2], w, w[:, 0, 0]))

    tol = EXACT if not dtype.is_floating_point else dict(atol=1e-5, rtol=1e-5)
    check(products, bias, b1, b2, x1, x2, w, **tol)
    if not dtype.is_floating_point:
        return  # eager's distances are float-only

    def distances(x1, x2, b1):
        return (torch.dist(x1, x2[:, :3]), torch.dist(x1, x1[0], 3), torch.cdist(x1, x2[:4, :3]),
                torch.cdist(b1, b1[:, :2], p=1), torch.cdist(x1, x1, p=0), torch.cdist(x1, x1, p=float("inf")),
                F.pdist(x1), F.pdist(x2, p=1.5), F.pdist(x1[:1]),
                torch.cdist(x1.repeat(5, 1), x2[:, :3]),  # 30 rows: eager's matmul form, as ours
                torch.cdist(x1, x2[:, :3], compute_mode="use_mm_for_euclid_dist"))

    check(distances, x1, x2, b1, atol=1e-5, rtol=1e-5)


def test_triangle_indices():
    def fn(x):
        return (x + torch.triu_indices(4, 5, 1), torch.tril_indices(3, 3, -1), torch.triu_indices(4, 3, -1))

    check(fn, torch.arange(20).view(2, 10), **EXACT)


# ----- PyTorch's decompositions listed in decompositions.EXTRA ------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.bool], ids=["float32", "bool"])
def test_view_copies(dtype):
    x = make_input((3, 4, 5), dtype, seed=1)
    aten = torch.ops.aten

    def fn(x):
        return (aten.narrow_copy.default(x, 1, 1, 2), aten.narrow_copy.default(x, -1, 0, 0),
                *aten.unbind_copy.int(x, 2), aten.as_strided_copy.default(x, (2, 2), (1, 5), 3))

    check(fn, x, **EXACT)


def test_batch_norm_with_update_functional():
    x = make_input((4, 3, 5), torch.float32, seed=1)
    w, b = make_input((3,), torch.float32, seed=2), make_input((3,), torch.float32, seed=3)
    mean, var = make_input((3,), torch.float32, seed=4), make_input((3,), torch.float32, low=0.5, high=2, seed=5)

    def fn(x, w, b, mean, var):
        return torch.ops.aten._batch_norm_with_update_functional.default(x, w, b, mean, var, 0.3, 1e-5)[:3] + \
            torch.ops.aten._batch_norm_with_update_functional.default(x * 2, w, b, mean, var, 0.1, 1e-3)[4:]

    check(fn, x, w, b, mean, var, atol=1e-5, rtol=1e-5)


def test_grid_sample():
    x = make_input((2, 3, 5, 6), torch.float32, seed=1)
    grid = make_input((2, 4, 3, 2), torch.float32, low=-1.2, high=1.2, seed=2)  # some points outside

    def fn(x, grid):
        return tuple(F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=corners)
                     for mode in ("bilinear", "nearest") for padding in ("zeros", "border", "reflection")
                     for corners in (False, True))

    check(fn, x, grid, atol=1e-5, rtol=1e-5)
