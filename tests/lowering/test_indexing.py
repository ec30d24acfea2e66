"""Indexing ops (lowering/indexing.py) against eager; reads are exact (tolerance 0).

Each dtype case compiles one function applying the op to two sources of different shapes."""
import pytest
import torch
import torch.nn.functional as F

from helpers import check, compile_fn, make_input
from torch_mlir_backend.types import SUPPORTED_DTYPES

DTYPES = [pytest.param(d, id=str(d).replace("torch.", "")) for d in SUPPORTED_DTYPES]
EXACT = dict(atol=0, rtol=0)
INDEX_DTYPES = [torch.int64, torch.int32]


def two(shape_a, shape_b, dtype):
    return make_input(shape_a, dtype, seed=1), make_input(shape_b, dtype, seed=2)


def idx(values, dtype=torch.int64):
    return torch.tensor(values, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding(dtype):
    i = INDEX_DTYPES[SUPPORTED_DTYPES.index(dtype) % 2]  # both index dtypes across the cases
    check(lambda w, v, a, c: (F.embedding(a, w), F.embedding(c, v)),
          *two((5, 3), (7, 4), dtype), idx([0, 4, 2, 4], i), idx([[6, 0], [1, 3]], i), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_select(dtype):
    def fn(a, c, i):
        return a.index_select(1, i), c.index_select(0, i), c.index_select(2, i[1])

    check(fn, *two((4, 6), (3, 4, 5), dtype), idx([2, 0, 2]), **EXACT)


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
def test_index_select_index_dtypes(index_dtype):
    check(lambda a, i: a.index_select(0, i), make_input((5, 3), torch.float32), idx([4, 1], index_dtype),
          **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather(dtype):
    def fn(a, c, i, j):
        return a.gather(1, i), c.gather(0, j), torch.take_along_dim(a[:3], i[:, :1], 1)

    i = idx([[0, 5], [1, 1], [2, 3]])
    j = idx([[[2, 0], [1, 1]], [[0, 2], [2, 2]]], torch.int32)
    check(fn, *two((4, 6), (3, 2, 2), dtype), i, j, **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_index_tensor(dtype):
    def fn(a, c, i):
        return a[i], a[:, i], c[i, :, i], c[..., i], c[i[:, None], i[None, :2]]

    check(fn, *two((4, 6), (3, 4, 3), dtype), idx([2, 0, -1]), **EXACT)


@pytest.mark.parametrize("pattern", [
    "single_dim0", "single_dim1", "negative", "adjacent_pair", "separated_pair", "broadcast_2d",
    "none_entries", "int_and_tensor", "int32",
])
def test_index_tensor_patterns(pattern):
    x = make_input((3, 4, 5), torch.float32)
    i = idx([0, 2, 1])
    fns = {
        "single_dim0": lambda a, i: a[i],
        "single_dim1": lambda a, i: a[:, i],
        "negative": lambda a, i: a[:, -i - 1, :],
        "adjacent_pair": lambda a, i: a[:, i, i],
        "separated_pair": lambda a, i: a[i, :, i],
        "broadcast_2d": lambda a, i: a[i.view(3, 1), i[:2].view(1, 2)],
        "none_entries": lambda a, i: a[None, i, None],
        "int_and_tensor": lambda a, i: a[1, i],
        "int32": lambda a, i: a[i.int()],
    }
    check(fns[pattern], x, i, **EXACT)


def test_out_of_range_indices_are_clamped_not_a_crash():
    # Eager raises; compiled code clamps into range (documented in lowering/indexing.py).
    w = make_input((4, 3), torch.float32)
    got = compile_fn(lambda w, i: (F.embedding(i, w), w[i], w.gather(0, i[:, None].expand(2, 3))))(
        w, idx([7, -9]))
    assert torch.equal(got[0], w[[3, 0]])
    assert torch.equal(got[1], w[[3, 0]])
    assert torch.equal(got[2], w[[3, 0]])


def test_boolean_mask_index_is_rejected():
    with pytest.raises(Exception, match="aten.index.Tensor"):
        compile_fn(lambda a: a[a > 0])(make_input((4, 6), torch.float32))


def test_gradient_of_non_leading_advanced_indexing():
    # The backward of x[:, i, j] is an accumulating index_put with a None before the index
    # tensors (and index shapes that broadcast), brought to the rule's form by lowering/scatter.py.
    i, j = idx([[2], [0], [2]]), idx([1, 3])

    def loss(x):
        return (x[:, i, j] * torch.arange(6.0).view(3, 2)).sum()

    x = make_input((2, 3, 4), torch.float32)
    want_x = x.clone().requires_grad_(True)
    loss(want_x).backward()
    got_x = x.clone().requires_grad_(True)
    compile_fn(loss)(got_x).backward()
    torch.testing.assert_close(got_x.grad, want_x.grad, atol=0, rtol=0)
