"""Shape ops (lowering/shape.py) against eager. Data movement is exact: tolerances are 0.

Each dtype case compiles one function applying the op to two inputs of different shapes, so
both shapes are covered by a single compile."""
import pytest
import torch
import torch.nn.functional as F

from helpers import check, compile_fn, make_input
from torch_mlir_backend.errors import UnsupportedOpError
from torch_mlir_backend.types import SUPPORTED_DTYPES

DTYPES = [pytest.param(d, id=str(d).replace("torch.", "")) for d in SUPPORTED_DTYPES]
EXACT = dict(atol=0, rtol=0)


def two(shape_a, shape_b, dtype):
    return make_input(shape_a, dtype, seed=1), make_input(shape_b, dtype, seed=2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_view(dtype):
    def fn(a, c):
        return a.view(2, 12), a.reshape(-1), c.view(3, 1, 2, 4, 1), c.flatten(), a.view(4, 3, 2)

    check(fn, *two((4, 6), (3, 8), dtype), **EXACT)


@pytest.mark.parametrize("shape,new", [
    ((2, 3, 4), (6, 4)), ((2, 3, 4), (3, 8)), ((6, 4), (2, 3, 2, 2)), ((1, 4, 1), (4,)),
    ((4,), (1, 1, 4, 1)), ((1, 1), ()), ((), (1, 1)), ((2, 0, 3), (0, 6)), ((2, 3, 4), (4, 3, 2)),
])
def test_view_shapes(shape, new):
    check(lambda a: a.view(new), make_input(shape, torch.float32), **EXACT)


def test_view_of_noncontiguous_is_a_copy():
    # reshape of a transpose: clone + view; the permuted order must survive.
    check(lambda a: a.t().reshape(24) + 0, make_input((4, 6), torch.float32), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_permute(dtype):
    def fn(a, c):
        return a.permute(2, 0, 1), a.transpose(0, 1), c.t(), c.mT

    check(fn, *two((2, 3, 4), (5, 3), dtype), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_expand(dtype):
    def fn(a, c):
        return a[:, :1].expand(4, 5), a.expand(2, 4, 6), c.expand(3, -1, 5), c[None].expand(2, 3, 1, 5)

    check(fn, *two((4, 6), (3, 1, 5), dtype), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_slice_and_select(dtype):
    def fn(a, c):
        return a[1:-1, ::2], a[:, 1::4], a[-1], a[:, -2], c[::3, 2:3, -100:100], c[1, :, 0]

    check(fn, *two((4, 6), (7, 3, 5), dtype), **EXACT)


@pytest.mark.parametrize("start,end,step", [
    (None, None, 1), (-100, 100, 1), (5, 2, 1), (2, None, 3), (-3, -1, 2), (9, 20, 1), (0, 0, 1),
])
def test_slice_bounds_clamp_as_eager(start, end, step):
    check(lambda a: a[:, start:end:step], make_input((3, 8), torch.float32), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_split_with_sizes(dtype):
    def fn(a, c):
        return a.split(4, 1), a.chunk(3, 0), c.split([1, 0, 4], -1), c.unbind(0)

    check(fn, *two((6, 10), (2, 5), dtype), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_squeeze_unsqueeze(dtype):
    def fn(a, c):
        return a.squeeze(), a.squeeze(2), a.squeeze((0, 1)), c.unsqueeze(0), c.unsqueeze(-1), c[None, :, None]

    check(fn, *two((1, 4, 1, 6), (3, 5), dtype), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cat(dtype):
    def fn(a, c):
        return torch.cat([a, a[:, :2]], 1), torch.cat([c, c, c[:1]]), torch.stack([a, a], 1)

    check(fn, *two((4, 6), (2, 3, 4), dtype), **EXACT)


@pytest.mark.parametrize("first,second", [
    (torch.float32, torch.int32), (torch.int64, torch.bool), (torch.float16, torch.bfloat16),
    (torch.uint8, torch.uint8), (torch.int8, torch.bool), (torch.int16, torch.float64),
])
def test_cat_promotes_mixed_dtypes(first, second):
    check(lambda a, c: torch.cat([a, c], 0), make_input((2, 3), first), make_input((4, 3), second),
          **EXACT)


def test_cat_skips_legacy_empty_tensors():
    def fn(a):
        return torch.cat([a, torch.empty(0), a[:0]]), torch.cat([a[:, :0], a[:, :0]], 1)

    check(fn, make_input((2, 3), torch.float32), **EXACT)


def test_cat_of_int8_and_uint8_is_rejected():
    # The driver gives list operands no spec and both are i8: the signedness is unknowable.
    with pytest.raises(Exception, match="aten.cat.default"):
        compile_fn(lambda a, c: torch.cat([a, c]))(make_input((2,), torch.int8), make_input((2,), torch.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
def test_flip(dtype):
    def fn(a, c):
        return a.flip(0, 1), c.flip(-1), c.flip(0, 2)

    check(fn, *two((4, 6), (2, 3, 5), dtype), **EXACT)


@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_pad_nd(dtype):
    def fn(a, c):
        return F.pad(a, (1, 2, 0, 1), value=1), F.pad(c, (2, 1)), F.pad(c, (-1, 2, 1, -2), value=0)

    check(fn, *two((4, 6), (3, 4, 5), dtype), **EXACT)


def test_constant_pad_nd_float_value_on_ints_truncates():
    check(lambda a: F.pad(a, (1, 1), value=2.7), make_input((3, 4), torch.int32), **EXACT)



@pytest.mark.parametrize("name,fn,shape", [
    ("select_of_size0_columns", lambda x: x[1] + 1, (2, 0)),
    ("slice_rows_of_size0_columns", lambda x: x[1:, :] + 1, (3, 0)),
    ("unbind_size0_rows", lambda x: torch.unbind(x, 1)[0] + 1, (0, 3)),
    ("split_size0_columns", lambda x: torch.split(x, 1, dim=0)[1] * 2, (2, 0)),
])
def test_slicing_a_tensor_with_a_size_0_dim(name, fn, shape):
    # MLIR rejects any offset into a size-0 dimension: such slices are empty results.
    x = torch.randn(*shape)
    check(fn, x, name=name, atol=0, rtol=0)


def test_circular_pad_of_an_empty_batch():
    # slice_scatter into a size-0 destination writes nothing (MLIR rejects the offsets).
    check(lambda x: F.pad(x, (1, 2), "circular"), torch.randn(0, 3, 3), name="circular_pad_empty_batch", atol=0, rtol=0)
