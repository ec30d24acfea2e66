"""Writes to positions held in integer tensors: scatter (src / value) and scatter_reduce
(sum / prod / mean / amax / amin, with or without the destination's own value); and
masked_scatter, which writes the source's elements in order to the positions a mask selects;
slice_scatter, a strided `tensor.insert_slice`; diagonal_scatter, a generic choosing src on the diagonal. `scatter_add`
and `index_put` (which index_add and `x[i] = v` reach us as) are lowered in backward.py, as
sequential read-modify-write loops.

A scatter cannot be a `linalg.generic` over its sources (a generic writes only its own output
element), so each is written from the destination's side: one `linalg.generic` whose iteration
space is the result's dimensions (parallel) followed by the scattered dimension of the index
(reduction). At result position p and contribution j the body loads the index, and if it names
p, combines the source element into the accumulator. Contributions arrive in increasing j, the order eager's CPU
loops apply them, so "last write wins" for duplicate indices and float sums round as eager's do.
Work is numel(result) x index.size(dim), all of it parallel over the result.

Indices that name no position in the dimension (out of range) contribute nothing, instead of
raising as eager does: compiled code cannot raise, and this never reads or writes outside a
buffer. Negative indices are out of range too, as in eager's scatter.

`DECOMPOSITIONS` (end of the module) brings index_put to the form its rule takes (index tensors
in non-leading dims, index shapes that broadcast, bool masks whose values do not depend on the
number of selected positions, bool tensors) and writes put, index_reduce, as_strided_scatter and
segment_reduce as the scatters above.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, bufferization, linalg, scf, tensor

from ..types import SUPPORTED_AND_COMPLEX_DTYPES
from . import builders as b
from .registry import LoweringContext, lowers
from .shape import _mixed, _norm_dim, _slice_bounds, bool_as_bytes
from ..types import FLOAT_DTYPES, INT_DTYPES

aten = torch.ops.aten

REDUCE_DTYPES = FLOAT_DTYPES + INT_DTYPES  # eager has no bool add/prod/mean reductions here

# (combine, identity) per scatter_reduce reduction; `mean` sums and divides at the end.
def _combiner(reduce: str, dtype: torch.dtype) -> tuple[Callable[[ir.Value, ir.Value], ir.Value], object]:
    flt = b.is_float(dtype)
    if reduce in ("sum", "mean"):
        return (lambda a, s: arith.AddFOp(a, s).result if flt else arith.AddIOp(a, s).result), 0
    if reduce == "prod":
        return (lambda a, s: arith.MulFOp(a, s).result if flt else arith.MulIOp(a, s).result), 1
    if reduce == "amax":
        return (lambda a, s: b.max_value(a, s, dtype)), b.lowest(dtype)
    if reduce == "amin":
        return (lambda a, s: b.min_value(a, s, dtype)), b.highest(dtype)
    raise ValueError(reduce)


def _iv(d: int) -> ir.Value:
    return linalg.IndexOp(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), d)).result


def _all(conditions: Sequence[ir.Value]) -> ir.Value:
    result = b.constant(True, torch.bool)
    for c in conditions:
        result = arith.AndIOp(result, c).result
    return result


def scatter_generic(ctx: LoweringContext, dest: ir.Value, contributions: Sequence[int],
                    contribution: Callable[[list[ir.Value], list[ir.Value]], tuple[ir.Value, ir.Value]],
                    combine: Callable[[ir.Value, ir.Value], ir.Value], identity, include_self: bool,
                    finish: Optional[Callable[[ir.Value, ir.Value, ir.Value], ir.Value]] = None) -> ir.Value:
    """result[p] = fold(combine, contributions j with contribution(p, j) = (applies, value)),
    starting from dest[p] (include_self) or `identity`; `finish(acc, count, dest)` (scalars) maps
    the accumulator and the number of applied contributions to the result element."""
    dtype = ctx.out_spec.dtype
    sizes = b.sizes_of(dest)
    rank = len(sizes)
    if any(c == 0 for c in contributions):  # nothing is written: the result is the destination
        return b.generic([dest], [b.empty(sizes, dtype)], [b.identity_map(rank)] * 2, ["parallel"] * rank,
                         lambda e, _: e)
    space = rank + len(contributions)
    project = ir.AffineMap.get(space, 0, [ir.AffineDimExpr.get(d) for d in range(rank)])
    need_count = finish is not None
    outs = [b.empty(sizes, dtype)] + ([b.empty(sizes, torch.int64)] if need_count else [])
    i64 = b.element_type(torch.int64)

    # An operand spanning the contribution dimensions gives the generic their sizes (its
    # elements are never read).
    extent = b.empty(list(contributions), torch.int8)
    extent_map = ir.AffineMap.get(space, 0, [ir.AffineDimExpr.get(rank + k) for k in range(len(contributions))])

    def body(_, self_elem, acc, *count):
        p = [_iv(d) for d in range(rank)]
        j = [_iv(rank + k) for k in range(len(contributions))]
        # The outputs start uninitialized: the first contribution starts from the initial value.
        first = _all([arith.CmpIOp(arith.CmpIPredicate.eq, v, b.index_constant(0)).result for v in j])
        start = self_elem if include_self else b.constant(identity, dtype)
        acc = b.select(first, start, acc)
        applies, value = contribution(p, j)
        new_acc = b.select(applies, combine(acc, value), acc)
        if not need_count:
            return new_acc
        n = b.select(first, b.constant(0, torch.int64), count[0])
        return [new_acc, arith.AddIOp(n, arith.ExtUIOp(i64, applies).result).result]

    results = b.generic([extent, dest], outs, [extent_map] + [project] * (1 + len(outs)),
                        ["parallel"] * rank + ["reduction"] * len(contributions), body)
    if not need_count:
        return results
    acc, count = results
    return b.generic([acc, count, dest], [b.empty(sizes, dtype)], [b.identity_map(rank)] * 4,
                     ["parallel"] * rank, lambda a, c, s, _: finish(a, c, s))


def _scatter(ctx: LoweringContext, x, dim, index, src, combine, identity=0, include_self=True,
             finish=None, src_is_scalar=False):
    ctx.require(ctx.in_specs[2] is not None and ctx.in_specs[2].dtype == torch.int64,
                "scatter index must be int64")
    rank = ctx.in_specs[0].rank
    dim = _norm_dim(ctx, dim, rank)
    index_shape = list(ctx.in_specs[2].shape)
    ctx.require(all(s is not None for s in index_shape), "scatter with a dynamic index shape is not supported")
    ctx.require(len(index_shape) == rank, "scatter index must have the destination's rank")
    dtype = ctx.out_spec.dtype
    if rank == 0:  # a 0-d scatter writes the one element (index must be 0)
        index_shape, dim = [1], 0
        x = b.expand_dims(x, [0], 1)
        index = b.expand_dims(index, [0], 1)
        if not src_is_scalar:
            src = b.expand_dims(src, [0], 1)
        result = _scatter_nd(x, dim, index, src, index_shape, dtype, combine, identity, include_self,
                             finish, src_is_scalar, ctx)
        return b.collapse_shape(result, [])
    return _scatter_nd(x, dim, index, src, index_shape, dtype, combine, identity, include_self, finish,
                       src_is_scalar, ctx)


def _scatter_nd(x, dim, index, src, index_shape, dtype, combine, identity, include_self, finish,
                src_is_scalar, ctx):
    rank = len(index_shape)
    value_const = None
    if src_is_scalar:
        value_const = src

    def contribution(p, j):
        q = list(p)
        q[dim] = j[0]
        in_index = [arith.CmpIOp(arith.CmpIPredicate.ult, p[k], b.index_constant(index_shape[k])).result
                    for k in range(rank) if k != dim]
        # Positions outside the index are not read (clamped) and do not apply.
        q_read = [q[k] if k == dim else arith.MinUIOp(q[k], b.index_constant(index_shape[k] - 1)).result
                  for k in range(rank)]
        # A negative index never equals p[dim] (index casts keep the bits, p[dim] >= 0).
        target = arith.IndexCastOp(b.index_type(), tensor.ExtractOp(index, q_read).result).result
        names_me = arith.CmpIOp(arith.CmpIPredicate.eq, target, p[dim]).result
        if src_is_scalar:
            value = b.scalar_operand(value_const, dtype)
        else:
            value = tensor.ExtractOp(src, q_read).result
        return _all(in_index + [names_me]), value

    return scatter_generic(ctx, x, [index_shape[dim]], contribution, combine, identity, include_self, finish)


def _replace(a, s):
    return s


@lowers(aten.scatter.src)
@bool_as_bytes
def scatter_src(ctx, x, dim, index, src):
    return _scatter(ctx, x, dim, index, src, _replace)


@lowers(aten.scatter.value)
@bool_as_bytes
def scatter_value(ctx, x, dim, index, value):
    return _scatter(ctx, x, dim, index, value, _replace, src_is_scalar=True)


@lowers(aten.scatter_reduce.two, dtypes=REDUCE_DTYPES + (torch.bool,))
def scatter_reduce(ctx, x, dim, index, src, reduce, include_self=True):
    ctx.require(reduce in ("sum", "prod", "mean", "amax", "amin"), f"unknown reduction {reduce!r}")
    if ctx.out_spec.dtype == torch.bool:
        # Eager's bool sum is `or` and its prod `and`: amax / amin of the bytes, which (unlike a
        # byte sum) cannot wrap around to False.
        ctx.require(reduce != "mean", "eager has no mean of bool tensors")
        return _bool_scatter_reduce(ctx, x, dim, index, src, {"sum": "amax", "prod": "amin"}.get(reduce, reduce),
                                    include_self)
    return _scatter_reduce(ctx, x, dim, index, src, reduce, include_self)


def _scatter_reduce(ctx, x, dim, index, src, reduce, include_self):
    ctx.require(isinstance(include_self, bool), "include_self must be a compile-time bool")
    dtype = ctx.out_spec.dtype
    combine, identity = _combiner(reduce, dtype)

    def finish(acc, count, dest):
        # Positions no index names keep the destination's value.
        untouched = arith.CmpIOp(arith.CmpIPredicate.eq, count, b.constant(0, torch.int64)).result
        if reduce == "mean":
            n = arith.AddIOp(count, b.constant(1, torch.int64)).result if include_self else count
            n = b.select(untouched, b.constant(1, torch.int64), n)
            n = b.convert(n, torch.int64, dtype)
            if b.is_float(dtype):
                acc = arith.DivFOp(acc, n).result
            else:  # eager divides integer means with rounding_mode="floor"
                acc = arith.FloorDivSIOp(acc, n).result if not b.is_unsigned(dtype) else arith.DivUIOp(acc, n).result
        return acc if include_self else b.select(untouched, dest, acc)

    needs_finish = reduce == "mean" or not include_self
    return _scatter(ctx, x, dim, index, src, combine, identity, include_self,
                    finish if needs_finish else None)


_bool_scatter_reduce = bool_as_bytes(_scatter_reduce)


@lowers(aten.masked_scatter.default)
@bool_as_bytes
def masked_scatter(ctx, x, mask, source):
    """result[p] = mask[p] ? source.flatten()[number of selected positions before p] : x[p]:
    the positions come from a prefix count of the mask (scan.py), so the result shape is static."""
    from .scan import scan_along

    dtype = ctx.out_spec.dtype
    mask_dtype = ctx.in_specs[1].dtype
    rank = ctx.out_spec.rank
    ctx.require(all(s is not None for s in ctx.out_spec.shape) and all(
        s is not None for s in ctx.in_specs[2].shape), "masked_scatter with dynamic shapes is not supported")
    if rank == 0:
        x = b.expand_dims(x, [0], 1)
        mask = b.expand_dims(mask, [0], 1) if ctx.in_specs[1].rank == 0 else mask
    shape = list(ctx.out_spec.shape) or [1]
    flat = [list(range(len(shape)))]
    selected = b.elementwise([mask], [mask_dtype], type(ctx.out_spec)(tuple(shape), torch.int64),
                             lambda m: m, compute_dtype=torch.int64)
    selected = b.collapse_shape(selected, flat)
    count = scan_along(selected, 0, torch.int64, torch.int64, 0,
                       lambda a, e: arith.AddIOp(a, e).result, torch.int64)
    source_flat = b.collapse_shape(source, [list(range(ctx.in_specs[2].rank))]) if ctx.in_specs[2].rank \
        else b.expand_dims(source, [0], 1)
    source_numel = 1
    for s in ctx.in_specs[2].shape:
        source_numel *= s
    numel = 1
    for s in shape:
        numel *= s
    last = b.index_constant(max(source_numel - 1, 0))

    def body(x_elem, sel, n, _):
        take = arith.CmpIOp(arith.CmpIPredicate.ne, sel, b.constant(0, torch.int64)).result
        if source_numel == 0:  # nothing to take (eager requires no selected position then)
            return x_elem
        at = arith.IndexCastOp(b.index_type(), arith.SubIOp(n, b.constant(1, torch.int64)).result).result
        at = arith.MaxSIOp(arith.MinSIOp(at, last).result, b.index_constant(0)).result
        return b.select(take, tensor.ExtractOp(source_flat, [at]).result, x_elem)

    result = b.generic([b.collapse_shape(x, flat), selected, count], [b.empty([numel], dtype)],
                       [b.identity_map(1)] * 4, ["parallel"], body)
    if rank == 0:
        return b.collapse_shape(result, [])
    return b.expand_shape(result, b.tensor_type(ctx.out_spec), flat, list(shape))


@lowers(aten.slice_scatter.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def slice_scatter(ctx, x, src, dim=0, start=None, end=None, step=1):
    """x with x[..., start:end:step, ...] (along `dim`) replaced by src."""
    shape = list(ctx.in_specs[0].shape)
    rank = len(shape)
    dim = _norm_dim(ctx, dim, rank)
    step = ctx.static_int(step, "step")
    ctx.require(step > 0, f"slice step must be positive, got {step}")
    ctx.require(shape[dim] is not None, f"slice_scatter along dynamic dim {dim} is not supported")
    start = None if start is None else ctx.static_int(start, "start")
    end = None if end is None else ctx.static_int(end, "end")
    offset, length = _slice_bounds(shape[dim], start, end, step)
    ctx.require(ctx.in_specs[1].shape[dim] in (length, None), f"src has {ctx.in_specs[1].shape[dim]} elements "
                f"along dim {dim}, the slice {length}")
    # The destination is a fresh copy of x (`alloc_tensor`, which CSE never merges: a copy shared
    # with another use and then written in place is mis-bufferized today, see the op-coverage
    # report).
    dyn = [b.as_index(d) for d in b.sizes_of(x) if not isinstance(d, int)]
    dest = bufferization.AllocTensorOp(x.type, dyn, copy=x).result
    if length == 0 or 0 in shape:
        return dest  # nothing to write (and MLIR rejects offsets into a size-0 dimension)
    offsets, sizes, strides = [0] * rank, b.sizes_of(src), [1] * rank
    offsets[dim], strides[dim] = offset, step
    off_dyn, off_static = _mixed(offsets)
    size_dyn, size_static = _mixed(sizes)
    return tensor.InsertSliceOp(src, dest, off_dyn, size_dyn, [], off_static, size_static, strides).result


@lowers(aten.diagonal_scatter.default)
@bool_as_bytes
def diagonal_scatter(ctx, x, src, offset=0, dim1=0, dim2=1):
    """x with its diagonal `torch.diagonal(x, offset, dim1, dim2)` replaced by src: one generic
    over the result; a position on the diagonal (i[dim2] - i[dim1] == offset) reads src at the
    other dims and its place k along the diagonal (src's last dim), the others keep x.
    (PyTorch's decomposition writes into a clone's diagonal view: not functional.)"""
    rank = ctx.in_specs[0].rank
    ctx.require(rank >= 2, "diagonal_scatter needs a tensor of rank >= 2")
    offset = ctx.static_int(offset, "offset")
    dim1, dim2 = _norm_dim(ctx, dim1, rank, "dim1"), _norm_dim(ctx, dim2, rank, "dim2")
    ctx.require(dim1 != dim2, f"diagonal dimensions cannot be identical ({dim1}, {dim2})")
    dtype = ctx.out_spec.dtype
    others = [d for d in range(rank) if d not in (dim1, dim2)]
    along = dim1 if offset >= 0 else dim2  # k = i[dim1] (offset >= 0) or i[dim2]
    elem = b.element_type(dtype)

    def body(x_elem, _):
        idx = [linalg.IndexOp(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), d)).result for d in range(rank)]
        on_diagonal = arith.CmpIOp(arith.CmpIPredicate.eq, arith.SubIOp(idx[dim2], idx[dim1]).result,
                                   b.index_constant(offset)).result
        # src is read only on the diagonal: elsewhere k may pass its end (or src may be empty).
        branch = scf.IfOp(on_diagonal, [elem], has_else=True)
        with ir.InsertionPoint(branch.then_block):
            scf.YieldOp([tensor.ExtractOp(src, [idx[d] for d in others] + [idx[along]]).result])
        with ir.InsertionPoint(branch.else_block):
            scf.YieldOp([x_elem])
        return branch.results[0]

    identity = b.identity_map(rank)
    return b.generic([x], [b.empty(b.sizes_of(x), dtype)], [identity] * 2, ["parallel"] * rank, body)


# ----- decompositions -------------------------------------------------------------------------
# Scatter-like ops written with torch ops that reach the rules above (and `index_put` in
# backward.py); `decompositions.decomposition_table()` merges them in. Each returns
# NotImplemented for the inputs the rules take as they are, so AOTAutograd keeps the op.
DECOMPOSITIONS: dict = {}


def _decomposes(*ops):
    def register(fn):
        for op in ops:
            DECOMPOSITIONS[op] = fn
        return fn

    return register


def _index_result_shape(shape: Sequence[int], indices: Sequence, bshape: Sequence[int]) -> tuple[list, int]:
    """Shape of `x[indices]` (advanced indexing) and where the broadcast index dims go in it:
    in place of the indexed dims when those are adjacent, else first (NumPy's rule)."""
    positions = [d for d, i in enumerate(indices) if i is not None]
    adjacent = positions == list(range(positions[0], positions[-1] + 1))
    first = positions[0] if adjacent else 0
    rest = [shape[d] for d in range(len(shape)) if d not in positions]
    return rest[:first] + list(bshape) + rest[first:], first


@_decomposes(aten.index_put.default)
def index_put(x, indices, values, accumulate=False):
    """Brings `index_put` to the form the rule lowers (int index tensors of one shape in the
    leading dims of a non-bool tensor): bool tensors go through int32 (an accumulated count
    cannot wrap to zero); a single bool mask whose values do not depend on the number of
    selected positions becomes a `where`; index tensors are broadcast to one shape; indexed dims
    are moved to the front (x[:, i] = v)."""
    indices = list(indices)
    while indices and indices[-1] is None:
        indices.pop()
    if not indices:
        return NotImplemented
    if x.dtype == torch.bool:
        as_ints = aten.index_put.default(x.to(torch.int32), indices, values.to(torch.int32), accumulate)
        return as_ints != 0
    given = [(d, i) for d, i in enumerate(indices) if i is not None]
    if any(i.dtype in (torch.bool, torch.uint8) for _, i in given):
        if len(given) != 1:
            return NotImplemented
        d, mask = given[0]
        k = mask.dim()
        # values broadcast to x.shape[:d] + [number selected] + x.shape[d + k:]; only a size-1
        # (or absent) selected dim keeps the result's values independent of the mask's data.
        trailing = x.dim() - d - k
        selected_at = values.dim() - trailing - 1
        if selected_at >= 0 and values.shape[selected_at] != 1:
            return NotImplemented
        lead = list(x.shape[:d]) + [1] + list(x.shape[d + k:])
        v = values.to(x.dtype).expand(lead)
        v = v.reshape(list(x.shape[:d]) + [1] * k + list(x.shape[d + k:]))
        m = mask.to(torch.bool).reshape([1] * d + list(mask.shape) + [1] * trailing)
        return torch.where(m, x + v if accumulate else v, x)
    if any(i.dtype not in (torch.int64, torch.int32) for _, i in given):
        return NotImplemented
    shapes = {tuple(i.shape) for _, i in given}
    leading = [d for d, _ in given] == list(range(len(indices)))
    if leading and len(shapes) == 1:
        return NotImplemented  # the rule's own form
    index_tensors = torch.broadcast_tensors(*[i for _, i in given])
    bshape = list(index_tensors[0].shape)
    positions = [d for d, _ in given]
    rest = [d for d in range(x.dim()) if d not in positions]
    result_shape, first = _index_result_shape(list(x.shape), indices, bshape)
    v = values.expand(result_shape)
    nb = len(bshape)
    if first:  # the index dims go first in the permuted tensor's x[indices]
        v = v.movedim(list(range(first, first + nb)), list(range(nb)))
    perm = positions + rest
    out = aten.index_put.default(x.permute(perm), list(index_tensors), v, accumulate)
    inverse = [perm.index(d) for d in range(x.dim())]
    return out.permute(inverse)


@_decomposes(aten.scatter_add.default)
def scatter_add(x, dim, index, src):
    """A bool scatter_add is an `or` of the sources into the destination: scatter_reduce's amax
    (other dtypes keep the scatter_add rule of backward.py)."""
    if x.dtype != torch.bool:
        return NotImplemented
    return x.scatter_reduce(dim, index, src, "amax")


@_decomposes(aten.put.default)
def put(x, index, source, accumulate=False):
    """`x.put(index, source)`: index_put on the flattened tensor (as Inductor decomposes it)."""
    flat = aten.index_put.default(x.reshape(-1), [index.reshape(-1)], source.reshape(-1), accumulate)
    return flat.reshape(x.shape)


@_decomposes(aten.index_reduce.default)
def index_reduce(x, dim, index, source, reduce, include_self=True):
    """index_reduce along `dim` as scatter_reduce with the 1-D index spread over the source's
    shape (same reductions, same mean with or without the destination's value)."""
    if x.dim() == 0:
        return index_reduce(x.reshape(1), 0, index.reshape(-1), source.reshape(-1), reduce,
                            include_self).reshape(())
    dim = dim % x.dim()
    index = index.reshape(-1).to(torch.int64)
    spread = index.reshape([1] * dim + [-1] + [1] * (x.dim() - dim - 1)).expand(source.shape)
    return x.scatter_reduce(dim, spread, source, reduce, include_self=include_self)


@_decomposes(aten.as_strided_scatter.default)
def as_strided_scatter(x, src, size, stride, storage_offset=None):
    """src written to the positions `x.as_strided(size, stride, storage_offset)` reads, in the
    dense row-major layout the `as_strided` rule (creation.py) reads too."""
    positions = torch.arange(x.numel(), device=x.device).as_strided(size, stride, storage_offset or 0)
    flat = aten.index_put.default(x.reshape(-1), [positions.reshape(-1)], src.reshape(-1), False)
    return flat.reshape(x.shape)


_SEGMENT_REDUCTIONS = {"max": "amax", "min": "amin", "sum": "sum", "mean": "sum", "prod": "prod"}


@_decomposes(aten.segment_reduce.default)
def segment_reduce(data, reduce, lengths=None, indices=None, offsets=None, axis=0, unsafe=False,
                   initial=None):
    """Segments along `axis` (sizes from `lengths` or `offsets`, per leading batch) as a
    scatter_reduce onto a start value: `initial`, else the reduction's identity. Positions past the
    last segment go to an extra segment that is dropped. Empty segments give the start value
    (NaN for a mean without `initial`), as eager's kernel."""
    if indices is not None or reduce not in _SEGMENT_REDUCTIONS:
        return NotImplemented
    axis = axis % data.dim()
    if lengths is None and offsets is None:
        return NotImplemented
    if lengths is None:
        lengths = offsets[..., 1:] - offsets[..., :-1]
    batch = list(data.shape[:axis])
    if list(lengths.shape[:-1]) != batch:
        return NotImplemented
    segments = lengths.shape[-1]
    n = data.shape[axis]
    trailing = data.dim() - axis - 1
    ends = torch.cumsum(lengths, -1)
    position = torch.arange(n, device=data.device)
    # Segment of each position: how many segments end at or before it.
    segment = (ends.unsqueeze(-1) <= position).sum(-2)
    segment = segment.reshape(batch + [n] + [1] * trailing).expand(data.shape)
    dtype = data.dtype
    if initial is not None:
        start = initial
    elif reduce in ("max", "min"):
        start = float("-inf") if reduce == "max" else float("inf")
        if not dtype.is_floating_point:
            start = torch.iinfo(dtype).min if reduce == "max" else torch.iinfo(dtype).max
    else:
        start = 1 if reduce == "prod" else 0
    dest_shape = batch + [segments + 1] + list(data.shape[axis + 1:])
    dest = torch.full(dest_shape, start, dtype=dtype, device=data.device)
    out = dest.scatter_reduce(axis, segment, data, _SEGMENT_REDUCTIONS[reduce], include_self=True)
    out = out.narrow(axis, 0, segments)
    if reduce == "mean":
        count = lengths.reshape(batch + [segments] + [1] * trailing)
        out = out / count.clamp(min=1).to(dtype)
        if initial is None:
            out = torch.where(count == 0, float("nan"), out)
    return out
