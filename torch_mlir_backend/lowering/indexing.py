"""Indexing ops that read elements at positions held in integer tensors: embedding,
index_select, gather and advanced indexing (`index.Tensor`).

Each is one `linalg.generic` over the result: the index tensors are its inputs, and the body
reads the source with `tensor.extract` at the computed position.

Out-of-range indices raise in eager; compiled code cannot raise, so every loaded index is
clamped into the dimension (after Python-style wrapping of negatives where eager wraps them,
i.e. for `index.Tensor`): a bad index reads a wrong element instead of crashing the process.
Boolean (mask) indices give data-dependent shapes and are rejected.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, linalg, tensor

from ..types import SUPPORTED_AND_COMPLEX_DTYPES
from . import builders as b
from .registry import LoweringContext, lowers
from .shape import bool_as_bytes

aten = torch.ops.aten

INDEX_DTYPES = (torch.int64, torch.int32)


def _check_index(ctx: LoweringContext, i: int) -> None:
    spec = ctx.in_specs[i]
    ctx.require(spec is not None and spec.dtype in INDEX_DTYPES,
                f"index tensors must be int64 or int32, got {spec.dtype if spec else None}")


def _position(elem: ir.Value, size: b.Size, wrap_negative: bool) -> ir.Value:
    """An `index` position in [0, size) from a loaded integer index (clamped, see module doc)."""
    i = arith.IndexCastOp(b.index_type(), elem).result
    size = b.as_index(size)
    zero = b.index_constant(0)
    if wrap_negative:
        negative = arith.CmpIOp(arith.CmpIPredicate.slt, i, zero).result
        i = b.select(negative, arith.AddIOp(i, size).result, i)
    last = arith.SubIOp(size, b.index_constant(1)).result
    return arith.MaxSIOp(arith.MinSIOp(i, last).result, zero).result


def gather_generic(source: ir.Value, out_sizes: Sequence[b.Size], out_dtype: torch.dtype,
                   index_inputs: Sequence[tuple[ir.Value, ir.AffineMap]],
                   position: Callable[[list[ir.Value], list[ir.Value]], list[ir.Value]]) -> ir.Value:
    """A result of `out_sizes` whose element at `iv` is `source[position(index_elems, iv)]`,
    where `index_elems` are the elements of `index_inputs` (tensor, map from the result's
    iteration space) at `iv`."""
    rank = len(out_sizes)
    init = b.empty(out_sizes, out_dtype)
    maps = [m for _, m in index_inputs] + [b.identity_map(rank)]

    def body(*elems):
        iv = [linalg.IndexOp(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), d)).result
              for d in range(rank)]
        pos = position(list(elems[:-1]), iv)
        return tensor.ExtractOp(source, pos).result

    return b.generic([v for v, _ in index_inputs], [init], maps, ["parallel"] * rank, body)


def _dims_map(rank: int, dims: Sequence[Optional[int]]) -> ir.AffineMap:
    """Map from a rank-`rank` iteration space; None entries read index 0 (broadcast)."""
    return ir.AffineMap.get(rank, 0, [ir.AffineConstantExpr.get(0) if d is None else ir.AffineDimExpr.get(d)
                                      for d in dims])


@lowers(aten.embedding.default)
@bool_as_bytes
def _embedding(ctx, weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    # padding_idx and the other flags only affect the backward pass.
    _check_index(ctx, 1)
    ctx.require(ctx.in_specs[0].rank == 2, "embedding weight must be 2-D")
    idx_rank = ctx.in_specs[1].rank
    w_sizes = b.sizes_of(weight)
    out_sizes = b.sizes_of(indices) + [w_sizes[1]]
    rank = idx_rank + 1
    index_map = _dims_map(rank, list(range(idx_rank)))
    return gather_generic(weight, out_sizes, ctx.out_spec.dtype, [(indices, index_map)],
                          lambda e, iv: [_position(e[0], w_sizes[0], False), iv[-1]])


@lowers(aten.index_select.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _index_select(ctx, x, dim, index):
    _check_index(ctx, 2)
    shape = ctx.in_specs[0].shape
    rank = len(shape)
    dim = ctx.static_int(dim, "dim")
    ctx.require(-max(rank, 1) <= dim < max(rank, 1), f"dim {dim} out of range")
    dim = dim % max(rank, 1)
    ctx.require(ctx.in_specs[2].rank <= 1, "index_select index must be 0-D or 1-D")
    sizes = b.sizes_of(x)
    if rank == 0:  # 0-d source: the result is the source (index must be 0)
        ctx.require(ctx.out_spec.rank == 0, "index_select of a 0-d tensor with a 1-D index")
        return gather_generic(x, [], ctx.out_spec.dtype, [], lambda e, iv: [])
    out_sizes = list(sizes)
    out_sizes[dim] = b.sizes_of(index)[0] if ctx.in_specs[2].rank == 1 else 1
    index_map = _dims_map(rank, [dim] if ctx.in_specs[2].rank == 1 else [])

    def position(e, iv):
        pos = list(iv)
        pos[dim] = _position(e[0], sizes[dim], False)
        return pos

    return gather_generic(x, out_sizes, ctx.out_spec.dtype, [(index, index_map)], position)


@lowers(aten.gather.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _gather(ctx, x, dim, index, sparse_grad=False):
    _check_index(ctx, 2)
    rank = ctx.in_specs[0].rank
    dim = ctx.static_int(dim, "dim")
    ctx.require(-max(rank, 1) <= dim < max(rank, 1), f"dim {dim} out of range")
    dim = dim % max(rank, 1)
    ctx.require(ctx.in_specs[2].rank == rank, "gather index must have the source's rank")
    sizes = b.sizes_of(x)
    if rank == 0:
        return gather_generic(x, [], ctx.out_spec.dtype, [(index, _dims_map(0, []))], lambda e, iv: [])

    def position(e, iv):
        pos = list(iv)
        pos[dim] = _position(e[0], sizes[dim], False)
        return pos

    return gather_generic(x, b.sizes_of(index), ctx.out_spec.dtype,
                          [(index, b.identity_map(rank))], position)


def _broadcast_shape(shapes: Sequence[Sequence[Optional[int]]]) -> list[Optional[int]]:
    rank = max(len(s) for s in shapes)
    out: list[Optional[int]] = []
    for i in range(rank):
        size: Optional[int] = 1
        for s in shapes:
            j = i - (rank - len(s))
            if j < 0 or s[j] == 1:
                continue
            size = s[j] if size == 1 else size
        out.append(size)
    return out


@lowers(aten.index.Tensor, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _index(ctx, x, indices):
    shape = list(ctx.in_specs[0].shape)
    rank = len(shape)
    ctx.require(len(indices) <= rank, f"too many indices ({len(indices)}) for a rank-{rank} tensor")
    indexed = [(d, v) for d, v in enumerate(indices) if v is not None]
    ctx.require(bool(indexed), "index.Tensor without index tensors")
    for _, v in indexed:
        elem = str(ir.RankedTensorType(v.type).element_type)
        ctx.require(elem in ("i64", "i32"),
                    "only int64/int32 index tensors are supported (bool/uint8 masks give "
                    "data-dependent shapes)")
    positions = [d for d, _ in indexed]
    adjacent = positions == list(range(positions[0], positions[-1] + 1))
    idx_shapes = [b.static_shape(v) for _, v in indexed]
    ctx.require(all(all(s is not None for s in sh) for sh in idx_shapes),
                "index tensors with dynamic shapes are not supported yet")
    bshape = _broadcast_shape(idx_shapes)
    rest = [d for d in range(rank) if d not in positions]
    # Where the broadcast index dims go in the result: in place of the indexed dims when those
    # are adjacent, else first (NumPy's rule).
    b0 = positions[0] if adjacent else 0
    out_rank = len(rest) + len(bshape)
    ctx.require(out_rank == ctx.out_spec.rank, "result rank does not match advanced indexing")
    src_sizes = b.sizes_of(x)
    out_dim_of_rest = {}
    out_sizes: list[b.Size] = []
    k = 0
    for o in range(out_rank):
        if b0 <= o < b0 + len(bshape):
            out_sizes.append(bshape[o - b0])
        else:
            d = rest[k]
            out_dim_of_rest[d] = o
            out_sizes.append(src_sizes[d])
            k += 1
    index_inputs = []
    for v, sh in zip([v for _, v in indexed], idx_shapes):
        off = len(bshape) - len(sh)
        dims = [None if (s == 1 and bshape[off + j] != 1) else b0 + off + j for j, s in enumerate(sh)]
        index_inputs.append((v, _dims_map(out_rank, dims)))

    def position(e, iv):
        loaded = dict(zip(positions, e))
        return [_position(loaded[d], src_sizes[d], True) if d in loaded else iv[out_dim_of_rest[d]]
                for d in range(rank)]

    return gather_generic(x, out_sizes, ctx.out_spec.dtype, index_inputs, position)
