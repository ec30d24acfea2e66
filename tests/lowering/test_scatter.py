"""Scatters (lowering/scatter.py) against eager: scatter (src / value), scatter_reduce (every
reduction, with and without the destination's value) and masked_scatter, on two shapes per
dtype. Sums of float16/bfloat16 round per added element as eager's loops do."""
import pytest
import torch

from helpers import assert_same, check, compile_fn, make_input
from torch_mlir_backend.types import SUPPORTED_DTYPES

COVERED = ["aten.scatter.src", "aten.scatter.value", "aten.scatter_reduce.two", "aten.masked_scatter.default",
           "aten.slice_scatter.default", "aten.diagonal_scatter.default"]

DTYPES = [pytest.param(d, id=str(d).replace("torch.", "")) for d in SUPPORTED_DTYPES]
REDUCE_DTYPES = [d for d in DTYPES if d.values[0] != torch.bool]
EXACT = dict(atol=0, rtol=0)

# Distinct targets within each row/column (eager leaves duplicate writes of `scatter` unordered).
ROW_INDEX = torch.tensor([[0, 4, 2], [1, 3, 0], [4, 0, 1]])  # along dim 1 of a [3, 5] tensor
COL_INDEX = torch.tensor([[[1, 0], [0, 2]], [[2, 1], [1, 0]]])  # along dim 0 of a [3, 2, 2] tensor
# Repeated targets for the reductions.
DUP_INDEX = torch.tensor([[0, 4, 0, 4], [1, 1, 1, 3], [2, 0, 2, 2]])


def tolerance(dtype):
    if dtype in (torch.float16, torch.bfloat16):
        return dict(atol=3e-2, rtol=3e-2)
    if dtype.is_floating_point:
        return dict(atol=1e-6, rtol=1e-6)
    return EXACT


@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_src_and_value(dtype):
    a, c = make_input((3, 5), dtype, seed=1), make_input((3, 2, 2), dtype, seed=2)
    sa, sc = make_input((3, 4), dtype, seed=3), make_input((2, 2, 3), dtype, seed=4)
    i, j = ROW_INDEX, COL_INDEX

    def fn(a, c, sa, sc, i, j):
        return a.scatter(1, i, sa), c.scatter(0, j, sc), a.scatter(1, i, 1), c.scatter(0, j, 0)

    check(fn, a, c, sa, sc, i, j, **EXACT)


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64], ids=["float32", "int64"])
def test_scatter_reduce(dtype, reduce):
    a, c = make_input((3, 5), dtype, seed=1), make_input((3, 2, 2), dtype, seed=2)
    sa, sc = make_input((3, 4), dtype, seed=3), make_input((2, 2, 3), dtype, seed=4)

    def fn(a, c, sa, sc, i, j):
        return tuple(r for include_self in (True, False) for r in (
            a.scatter_reduce(1, i, sa, reduce, include_self=include_self),
            c.scatter_reduce(0, j, sc, reduce, include_self=include_self)))

    check(fn, a, c, sa, sc, DUP_INDEX, COL_INDEX, **tolerance(dtype))


@pytest.mark.parametrize("dtype", REDUCE_DTYPES)
def test_scatter_reduce_dtypes(dtype):
    a, c = make_input((3, 5), dtype, seed=1), make_input((3, 2, 2), dtype, seed=2)
    sa, sc = make_input((3, 4), dtype, seed=3), make_input((2, 2, 3), dtype, seed=4)

    def fn(a, c, sa, sc, i, j):
        return (a.scatter_reduce(1, i, sa, "sum"), c.scatter_reduce(0, j, sc, "amax", include_self=False),
                a.scatter_reduce(1, i, sa, "mean", include_self=False), c.scatter_reduce(0, j, sc, "amin"),
                a.scatter_add(1, i, sa), c.scatter_add(0, j, sc))  # scatter_add: see the end of the file

    check(fn, a, c, sa, sc, DUP_INDEX, COL_INDEX, **tolerance(dtype))


def test_scatter_reduce_nan_propagates():
    a = torch.tensor([[1.0, float("nan"), 3.0], [0.0, 2.0, -1.0]])
    s = torch.tensor([[float("nan"), 5.0], [4.0, 4.0]])
    i = torch.tensor([[0, 1], [2, 2]])
    check(lambda a, s, i: (a.scatter_reduce(1, i, s, "amax"), a.scatter_reduce(1, i, s, "amin", include_self=False),
                           a.scatter_reduce(1, i, s, "sum")), a, s, i, atol=0, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_scatter(dtype):
    a, c = make_input((3, 4), dtype, seed=1), make_input((2, 3, 2), dtype, seed=2)
    mask_a, mask_c = make_input((3, 4), torch.bool, seed=5), make_input((3, 2), torch.bool, seed=6)
    source = make_input((4, 5), dtype, seed=7)  # more elements than any mask selects
    check(lambda a, c, ma, mc, s: (a.masked_scatter(ma, s), c.masked_scatter(mc, s), a.masked_scatter(ma[1], s)),
          a, c, mask_a, mask_c, source, **EXACT)


def test_out_of_range_scatter_index_writes_nothing():
    # Eager raises; compiled code drops the contribution (documented in lowering/scatter.py):
    # the result equals eager's scatter of the in-range entries only.
    from helpers import compile_fn

    a, s = make_input((2, 4), torch.float32), make_input((2, 2), torch.float32, seed=3)
    got = compile_fn(lambda a, s, i: a.scatter(1, i, s))(a, s, torch.tensor([[1, 9], [-1, 2]]))
    want = a.clone()
    want[0, 1], want[1, 2] = s[0, 0], s[1, 1]
    assert torch.equal(got, want)


# scatter_add and index_put are lowered in lowering/backward.py (loops over the source); these
# (and test_scatter_reduce_dtypes for scatter_add) hold their forward uses to eager too.
COVERED += ["aten.scatter_add.default", "aten.index_put.default"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32], ids=lambda d: str(d).replace("torch.", ""))
def test_index_put_and_index_add(dtype):
    a, c = make_input((4, 5), dtype, seed=1), make_input((3, 2, 4), dtype, seed=2)
    v = make_input((3, 5), dtype, seed=3)
    unique, repeated = torch.tensor([0, 3, -1]), torch.tensor([2, 0, 2])

    def fn(a, c, v, i, r):
        return (a.index_put((i,), v), a.index_put((r,), v, accumulate=True), a.index_put((i, r), v[:, 0]),
                c.index_put((r,), v[0, :4], accumulate=True), a.index_add(0, r, v), c.index_add(0, r[:2], c[:2]))

    check(fn, a, c, v, unique, repeated, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.int8, torch.bool], ids=lambda d: str(d).replace("torch.", ""))
def test_slice_scatter(dtype):
    x, c = make_input((2, 3, 5), dtype, seed=1), make_input((4, 6), dtype, seed=2)
    s, r = make_input((2, 3, 2), dtype, seed=3), make_input((1, 3, 5), dtype, seed=4)
    aten = torch.ops.aten

    def fn(x, c, s, r):
        return (aten.slice_scatter.default(x, s, 2, 1, 4, 2), aten.slice_scatter.default(x, r, 0, -1),
                aten.slice_scatter.default(x, x[:, :0], 1, 3, 3),  # an empty slice: a copy of x
                aten.slice_scatter.default(c, c[:2], 0, 2), aten.slice_scatter.default(c, c[:, ::3], 1, None, None, 3))

    check(fn, x, c, s, r, **EXACT)


def test_slice_assignment():
    # `y[a:b] = v` on a clone is functionalized into slice_scatter.
    def fn(x):
        y = x.clone()
        y[:, 1:3] = x[:, :2] * 2
        y[0, :, ::2] += 1
        return y

    check(fn, make_input((2, 3, 5), torch.float32), **EXACT)


# ----- decompositions of lowering/scatter.py: index_put forms, put, index_reduce,
# as_strided_scatter, segment_reduce (each reaches the rules above) ------------------------------
aten = torch.ops.aten


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool], ids=lambda d: str(d).replace("torch.", ""))
def test_index_put_non_leading_broadcast_and_bool(dtype):
    x = make_input((3, 4, 5), dtype, seed=1)
    v = make_input((3, 2, 5), dtype, seed=2)
    i, j = torch.tensor([3, 0]), torch.tensor([[1], [2]])  # j broadcasts against i: [2, 2]

    def fn(x, v, i, j):
        return (aten.index_put.default(x, [None, i], v),               # x[:, i] = v
                aten.index_put.default(x, [None, i], v, True),         # x[:, i] += v (i unique)
                aten.index_put.default(x, [j, i], v[0, 0, :]),         # index shapes [2, 1] and [2]
                aten.index_put.default(x, [j, None, i], v[0, 0, :4]),  # non-adjacent: index dims first
                aten.index_put.default(x, [None, None, i], v[0, 0, 0]))

    check(fn, x, v, i, j, **EXACT)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool], ids=lambda d: str(d).replace("torch.", ""))
def test_index_put_bool_mask(dtype):
    # A mask whose values broadcast over the selected rows: no data-dependent size.
    x, v = make_input((5, 4), dtype, seed=1), make_input((4,), dtype, seed=2)
    rows, cells = torch.tensor([True, False, True, True, False]), make_input((5, 4), torch.bool, seed=3)

    def fn(x, v, rows, cells):
        return (aten.index_put.default(x, [rows], v), aten.index_put.default(x, [rows], v, True),
                aten.index_put.default(x, [cells], v[0]), aten.index_put.default(x, [None, rows[:4]], v[:1]))

    check(fn, x, v, rows, cells, **EXACT)


def test_put_and_unsafe_masked_index_put_accumulate():
    x, src = make_input((3, 4), torch.float32, seed=1), make_input((2, 3), torch.float32, seed=2)
    index = torch.tensor([[0, 11, -1], [5, 5, 2]])
    mask = torch.tensor([[True], [False], [True]])
    rows, cols = torch.tensor([[0], [2], [1]]), torch.tensor([1, 3])

    def fn(x, src, index, mask, rows, cols):
        return (x.put(index[0], src[0]), x.put(index, src, accumulate=True),
                aten._unsafe_masked_index_put_accumulate.default(x, mask, [rows, cols], src.t()[:, :1]))

    check(fn, x, src, index, mask, rows, cols, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64], ids=["float32", "int64"])
def test_index_reduce(dtype):
    x, src = make_input((4, 3), dtype, seed=1), make_input((4, 5), dtype, seed=2)
    index = torch.tensor([0, 2, 0, 1, 0])  # position 2 of dim 1 gets one contribution, 0 gets three

    def fn(x, src, index):
        return tuple(r for reduce in ("prod", "mean", "amax", "amin") for r in (
            x.index_reduce(1, index, src, reduce), x.index_reduce(1, index, src, reduce, include_self=False),
            x.t().index_reduce(0, index, src.t(), reduce, include_self=False)))

    check(fn, x, src, index, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool], ids=["float32", "bool"])
def test_as_strided_scatter_and_copy(dtype):
    x, src = make_input((3, 4), dtype, seed=1), make_input((2, 2), dtype, seed=2)

    def fn(x, src):
        return (aten.as_strided_scatter.default(x, src, (2, 2), (1, 4), 1),
                aten.as_strided_scatter.default(x, src, (2, 2), (4, 1)),
                aten.as_strided_copy.default(x, (2, 3), (1, 2), 2))

    check(fn, x, src, **EXACT)


def test_segment_reduce():
    data = make_input((7, 3), torch.float32, seed=1)
    lengths = torch.tensor([2, 0, 4, 1])  # an empty segment: `initial`, else the reduction's start
    offsets = torch.tensor([[0, 1, 1, 3], [0, 2, 3, 3]])  # per row of the [2, 3] batch below

    def fn(data, lengths, offsets):
        return tuple(r for reduce in ("max", "min", "sum", "mean", "prod") for r in (
            torch.segment_reduce(data, reduce, lengths=lengths),
            torch.segment_reduce(data, reduce, lengths=lengths, initial=0.5),
            torch.segment_reduce(data[:2].t().contiguous().t(), reduce, offsets=offsets, axis=1, initial=-1.0)))

    check(fn, data, lengths, offsets, atol=1e-5, rtol=1e-5)


def test_scatter_reduce_and_scatter_add_of_bool():
    # Eager's bool sum is `or`, prod `and` (lowered as amax / amin of bytes); scatter_add of bool
    # is decomposed to the amax.
    a, sa = make_input((3, 5), torch.bool, seed=1), make_input((3, 4), torch.bool, seed=3)

    def fn(a, sa, i):
        return tuple(a.scatter_reduce(1, i, sa, reduce, include_self=include_self)
                     for reduce in ("sum", "prod", "amax", "amin") for include_self in (True, False)) + \
            (a.scatter_add(1, i, sa),)

    check(fn, a, sa, DUP_INDEX, **EXACT)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool], ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_diagonal_scatter(dtype, dynamic):
    # Offsets above/below the diagonal and past the matrix (an empty diagonal), dims in either
    # order and negative, a batch dim between the two, and an empty dim.
    mats = [make_input((4, 5), dtype, seed=1), make_input((3, 4, 5), dtype, seed=2), make_input((2, 0, 3), dtype, seed=3)]
    variants = [(0, dict()), (0, dict(offset=2)), (0, dict(offset=-3)), (0, dict(offset=9)),
                (1, dict(offset=1, dim1=0, dim2=2)), (1, dict(offset=-2, dim1=2, dim2=0)),
                (1, dict(offset=-1, dim1=-1, dim2=-2)), (2, dict(dim1=0, dim2=2))]
    srcs = [make_input(tuple(torch.diagonal(mats[m], **kw).shape), dtype, seed=10 + i)
            for i, (m, kw) in enumerate(variants)]

    def fn(x, c, e, *srcs):
        return tuple(torch.diagonal_scatter((x, c, e)[m], s, **kw) for (m, kw), s in zip(variants, srcs))

    want = fn(*mats, *srcs)
    got = compile_fn(fn, dynamic=dynamic)(*mats, *srcs)
    for (m, kw), g, w in zip(variants, got, want):
        assert_same(g, w, f"aten.diagonal_scatter.default {kw}", [], **EXACT)
