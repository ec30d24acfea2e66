"""Ops with no family of their own: runtime assertions (`_assert_async`), triu/tril_indices
(constants of the compile-time sizes) and the view ops diagonal and unfold, as gathers (PyTorch decomposes those two into `as_strided` with the strides
of the input view, which a functional value of ours does not have).

Decompositions (one_hot, repeat_interleave, ...) assert properties of the data, such as an
index being in range, with `_assert_async`. Compiled code cannot raise, and the project's rule
for bad indices is to stay inside buffers rather than crash (see indexing.py), so an assertion
compiles to nothing: its condition is then unused and erased with it.
"""
from __future__ import annotations

import torch

from mlir import ir
from mlir.dialects import arith

from ..types import SUPPORTED_AND_COMPLEX_DTYPES
from . import builders as b
from .indexing import gather_generic
from .registry import lowers
from .shape import _norm_dim, bool_as_bytes

aten = torch.ops.aten


@lowers(aten._assert_async.msg, aten._assert_async.default)
def assert_async(ctx, condition, message=None):
    return [None]  # its one result is `!torch.none`


@lowers(aten.diagonal.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def diagonal(ctx, x, offset=0, dim1=0, dim2=1):
    rank = ctx.in_specs[0].rank
    ctx.require(rank >= 2, "diagonal needs at least two dimensions")
    offset = ctx.static_int(offset, "offset")
    d1, d2 = _norm_dim(ctx, dim1, rank, "dim1"), _norm_dim(ctx, dim2, rank, "dim2")
    ctx.require(d1 != d2, "diagonal dimensions cannot be identical")
    s1, s2 = ctx.in_specs[0].shape[d1], ctx.in_specs[0].shape[d2]
    ctx.require(s1 is not None and s2 is not None, "diagonal of dynamic dimensions is not supported")
    length = max(min(s1, s2 - offset), 0) if offset >= 0 else max(min(s1 + offset, s2), 0)
    sizes = b.sizes_of(x)
    rest = [d for d in range(rank) if d not in (d1, d2)]

    def position(_, iv):
        pos = [None] * rank
        for o, d in enumerate(rest):
            pos[d] = iv[o]
        k = iv[-1]
        pos[d1] = arith.AddIOp(k, b.index_constant(max(0, -offset))).result
        pos[d2] = arith.AddIOp(k, b.index_constant(max(0, offset))).result
        return pos

    return gather_generic(x, [sizes[d] for d in rest] + [length], ctx.out_spec.dtype, [], position)


@lowers(aten.unfold.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def unfold(ctx, x, dimension, size, step):
    rank = ctx.in_specs[0].rank
    d = _norm_dim(ctx, dimension, rank, "dimension")
    size, step = ctx.static_int(size, "size"), ctx.static_int(step, "step")
    ctx.require(step > 0, f"step must be positive, got {step}")
    n = ctx.in_specs[0].shape[d] if rank else 1
    ctx.require(n is not None, "unfold of a dynamic dimension is not supported")
    ctx.require(0 <= size <= n, f"size {size} is larger than the dimension ({n})")
    sizes = b.sizes_of(x)
    if rank == 0:  # a 0-d tensor unfolds to [size] (size is 0 or 1)
        return gather_generic(x, [size], ctx.out_spec.dtype, [], lambda _, iv: [])
    out_sizes = list(sizes)
    out_sizes[d] = (n - size) // step + 1
    out_sizes.append(size)

    def position(_, iv):
        pos = list(iv[:rank])
        start = arith.MulIOp(iv[d], b.index_constant(step)).result
        pos[d] = arith.AddIOp(start, iv[-1]).result
        return pos

    return gather_generic(x, out_sizes, ctx.out_spec.dtype, [], position)


@lowers(aten.triu_indices.default, aten.tril_indices.default, dtypes=(torch.int64, torch.int32))
def triangle_indices(ctx, row, col, offset=0, dtype=None, layout=None, device=None, pin_memory=None):
    """The [2, n] coordinates of a triangle: a constant of the compile-time sizes (pdist's
    decomposition pairs rows with them)."""
    row, col = ctx.static_int(row, "row"), ctx.static_int(col, "col")
    offset = ctx.static_int(offset, "offset")
    upper = ctx.target is aten.triu_indices.default
    # Computed in Python: rules run under FakeTensorMode, where torch.triu_indices has no values.
    coords = [(i, j) for i in range(row) for j in range(col) if (j - i >= offset if upper else j - i <= offset)]
    if not coords:
        return b.empty(list(ctx.out_spec.shape), ctx.out_spec.dtype)
    element = b.element_type(ctx.out_spec.dtype)
    values = [ir.IntegerAttr.get(element, c[0]) for c in coords] + [ir.IntegerAttr.get(element, c[1]) for c in coords]
    result_type = b.tensor_type(ctx.out_spec)
    return arith.ConstantOp(result_type, ir.DenseElementsAttr.get(values, type=result_type)).result
