"""Shape ops: view/reshape, permute, expand, slicing, select, squeeze/unsqueeze, cat,
split_with_sizes, flip and constant_pad_nd.

In a functional graph a view is just a new tensor, so each op produces a value: reshapes become
`tensor.collapse_shape`/`tensor.expand_shape`, permutes `linalg.transpose`, expands
`linalg.broadcast`, slices `tensor.extract_slice`, cat `tensor.concat`, padding `tensor.pad`.
Bufferization turns most of these back into views of the same buffer.

Dimensions sliced, split, squeezed or padded must be static (a dynamic one is rejected); other
dimensions may be dynamic and are carried through with `tensor.dim`.

These rules move elements without looking at them, so they take complex tensors too
(`complex<fN>` elements); only cat's promotion and the pad value go through lowering/complex.py.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, linalg, tensor

from ..types import SUPPORTED_AND_COMPLEX_DTYPES
from . import builders as b
from . import complex as cx
from .registry import LoweringContext, lowers

aten = torch.ops.aten

_DYN = ir.ShapedType.get_dynamic_size()


# ----- helpers ---------------------------------------------------------------------------------
def bool_as_bytes(rule):
    """Run a data-movement rule on bool tensors as uint8 ones (same values, one byte each).

    Bool tensors are i1 inside a function, and the pipeline cannot allocate i1 buffers; a
    reshape, slice or concat between two elementwise ops would need one. Moving bytes instead
    keeps every temporary buffer i8; the i1 <-> i8 conversions fuse into the neighbouring
    elementwise ops. Applies only when the op's result is bool (then its bool operands are the
    data moved; bool operands of other ops are read, not moved, and stay as they are)."""
    import functools

    from ..types import TensorSpec

    def to_bytes(v, done):
        if isinstance(v, (list, tuple)):
            return type(v)(to_bytes(e, done) for e in v)
        if isinstance(v, ir.Value) and isinstance(v.type, ir.RankedTensorType) \
                and str(_elem(v)) == "i1":
            # One conversion per value and function: a second one would keep the i1 producer
            # from fusing (elementwise fusion needs a single-use producer).
            if v not in done:
                done[v] = b.cast_tensor(v, torch.bool, torch.uint8)
            return done[v]
        return v

    def spec_bytes(spec):
        return TensorSpec(spec.shape, torch.uint8) if spec is not None and spec.dtype == torch.bool else spec

    @functools.wraps(rule)
    def wrapped(ctx: LoweringContext, *args):
        if not ctx.out_specs or any(s is None or s.dtype != torch.bool for s in ctx.out_specs):
            return rule(ctx, *args)
        inner = LoweringContext(ctx.op_name, ctx.target, [spec_bytes(s) for s in ctx.in_specs],
                                [spec_bytes(s) for s in ctx.out_specs], ctx.location, ctx.state)
        done = ctx.state.setdefault("bool_as_bytes", {})
        results = rule(inner, *[to_bytes(a, done) for a in args])
        if isinstance(results, (list, tuple)):
            return tuple(b.cast_tensor(r, torch.uint8, torch.bool) for r in results)
        return b.cast_tensor(results, torch.uint8, torch.bool)

    return wrapped


def _norm_dim(ctx: LoweringContext, dim, rank: int, what: str = "dim") -> int:
    dim = ctx.static_int(dim, what)
    r = max(rank, 1)  # PyTorch accepts dim 0/-1 on 0-d tensors
    ctx.require(-r <= dim < r, f"{what} {dim} is out of range for a rank-{rank} tensor")
    return dim % r


def _elem(value: ir.Value) -> ir.Type:
    return ir.RankedTensorType(value.type).element_type


def _tensor_type(shape: Sequence[Optional[int]], elem: ir.Type) -> ir.RankedTensorType:
    return ir.RankedTensorType.get([_DYN if d is None else d for d in shape], elem)


def _mixed(values: Sequence[b.Size]) -> tuple[list[ir.Value], list[int]]:
    """(dynamic operands, static attribute) for the mixed offsets/sizes of tensor slice ops."""
    dynamic = [b.as_index(v) for v in values if not isinstance(v, int)]
    static = [v if isinstance(v, int) else _DYN for v in values]
    return dynamic, static


def extract_slice(value: ir.Value, offsets: Sequence[b.Size], sizes: Sequence[b.Size],
                  strides: Sequence[int], drop: Sequence[int] = ()) -> ir.Value:
    """`tensor.extract_slice`; dimensions in `drop` (of size 1) are removed from the result."""
    shape = [s if isinstance(s, int) else None for s in sizes]
    result_type = _tensor_type([d for i, d in enumerate(shape) if i not in drop], _elem(value))
    if 0 in b.static_shape(value) or 0 in shape:
        # Nothing to read, and MLIR's verifier rejects any offset into a size-0 dimension (and
        # an offset equal to the size for an empty piece).
        kept = [s for i, s in enumerate(sizes) if i not in drop]
        return tensor.EmptyOp([s if isinstance(s, int) else b.as_index(s) for s in kept], _elem(value)).result
    off_dyn, off_static = _mixed(offsets)
    size_dyn, size_static = _mixed(sizes)
    return tensor.ExtractSliceOp(result_type, value, off_dyn, size_dyn, [], off_static, size_static,
                                 list(strides)).result


def squeeze_dims(value: ir.Value, dims: Sequence[int]) -> ir.Value:
    """Remove size-1 dimensions `dims` with one `tensor.collapse_shape` (each removed dimension
    joins the group of a kept neighbour)."""
    rank = ir.RankedTensorType(value.type).rank
    dims = set(dims)
    if not dims:
        return value
    kept = [i for i in range(rank) if i not in dims]
    if not kept:
        return b.collapse_shape(value, [])
    groups: list[list[int]] = []
    leading: list[int] = []
    for i in range(rank):
        if i in dims:
            (groups[-1] if groups else leading).append(i)
        else:
            groups.append(leading + [i])
            leading = []
    return b.collapse_shape(value, groups)


def _shape_of(ctx: LoweringContext, i: int) -> list[Optional[int]]:
    return list(ctx.in_specs[i].shape)


# ----- view / reshape ----------------------------------------------------------------------------
def _reshape_blocks(src: Sequence[int], dst: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    """Split two static shapes of equal non-zero element count into consecutive blocks of equal
    element count: `[(src dims, dst dims), ...]`. Size-1 dimensions join a neighbouring block."""
    blocks: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(src) or j < len(dst):
        s_idx: list[int] = []
        d_idx: list[int] = []
        ps = pd = 1
        while True:
            if i < len(src) and (not s_idx or ps < pd):
                s_idx.append(i); ps *= src[i]; i += 1
            elif j < len(dst) and (not d_idx or pd < ps):
                d_idx.append(j); pd *= dst[j]; j += 1
            else:
                break
        blocks.append((s_idx, d_idx))
    # Blocks with one side empty hold only size-1 dims: merge them into a neighbour.
    merged: list[tuple[list[int], list[int]]] = []
    pending: tuple[list[int], list[int]] = ([], [])
    for s_idx, d_idx in blocks:
        if not s_idx or not d_idx:
            if merged:
                merged[-1][0].extend(s_idx); merged[-1][1].extend(d_idx)
            else:
                pending[0].extend(s_idx); pending[1].extend(d_idx)
            continue
        merged.append((pending[0] + s_idx, pending[1] + d_idx))
        pending = ([], [])
    return merged


def reshape(ctx: LoweringContext, value: ir.Value, sizes: Sequence) -> ir.Value:
    """The result of viewing `value` (a dense row-major tensor) with the result spec's shape."""
    src = b.static_shape(value)
    out = ctx.out_spec.shape
    elem = _elem(value)
    if list(src) == list(out):
        return value
    if len(src) == 0:
        return b.expand_shape(value, _tensor_type(out, elem), [], [1] * len(out))
    if len(out) == 0:
        return b.collapse_shape(value, [])
    if all(d is not None for d in src) and all(d is not None for d in out):
        if 0 in src:  # no elements: any view is an empty tensor of the new shape
            return b.empty(list(out), ctx.out_spec.dtype)
        blocks = _reshape_blocks(src, out)
        collapsed = value
        if any(len(s) > 1 for s, _ in blocks):
            collapsed = b.collapse_shape(value, [s for s, _ in blocks])
        if all(len(d) == 1 for _, d in blocks):
            return collapsed
        return b.expand_shape(collapsed, _tensor_type(out, elem), [d for _, d in blocks], list(out))
    # Dynamic: flatten and expand to the requested sizes (-1 inferred at run time).
    if all(d is not None for d in out):
        # A static result fixes the element count: flatten, cast to it, expand statically.
        numel = 1
        for d in out:
            numel *= d
        flat = tensor.CastOp(_tensor_type([numel], elem), b.collapse_shape(value, [list(range(len(src)))])).result
        return b.expand_shape(flat, _tensor_type(out, elem), [list(range(len(out)))], list(out))
    if all(d is not None for d in src):
        value = tensor.CastOp(_tensor_type([None] * len(src), elem), value).result
    new_sizes = _view_sizes(ctx, value, sizes)
    if sum(d is None for d in out) > 1:
        # An expand_shape group may hold one dynamic size only: reshape by a shape tensor
        # (a view of the same buffer once bufferized, for row-major sources).
        shape = tensor.FromElementsOp(ir.RankedTensorType.get([len(out)], b.index_type()),
                                      [b.as_index(v) for v in new_sizes]).result
        return tensor.ReshapeOp(_tensor_type(out, elem), value, shape).result
    flat = b.collapse_shape(value, [list(range(len(src)))])
    return b.expand_shape(flat, _tensor_type(out, elem), [list(range(len(out)))], new_sizes)


def _view_sizes(ctx: LoweringContext, value: ir.Value, sizes: Sequence) -> list[b.Size]:
    ctx.require(len(sizes) == ctx.out_spec.rank, f"size list {sizes} does not match the result rank")
    result: list[b.Size] = []
    infer = None
    for i, (s, d) in enumerate(zip(sizes, ctx.out_spec.shape)):
        if d is not None:
            result.append(d)
        elif isinstance(s, int) and s == -1:
            infer = i
            result.append(0)
        else:
            result.append(s)
    if infer is not None:
        numel = b.index_constant(1)
        for s in b.sizes_of(value):
            numel = arith.MulIOp(numel, b.as_index(s)).result
        known = b.index_constant(1)
        for i, s in enumerate(result):
            if i != infer:
                known = arith.MulIOp(known, b.as_index(s)).result
        result[infer] = arith.DivUIOp(numel, known).result
    return result


# reshape/_unsafe_view/flatten/unflatten reach us as view (Core ATen decomposes them).
@lowers(aten.view.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _view(ctx, x, size):
    return reshape(ctx, x, size)


# ----- permute / expand ---------------------------------------------------------------------
@lowers(aten.permute.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _permute(ctx, x, dims):
    rank = ctx.in_specs[0].rank
    perm = [_norm_dim(ctx, d, rank) for d in dims]
    ctx.require(sorted(perm) == list(range(rank)), f"{dims} is not a permutation of {rank} dims")
    if perm == list(range(rank)):
        return x
    sizes = b.sizes_of(x)
    init = b.empty([sizes[p] for p in perm], ctx.out_spec.dtype)
    return linalg.transpose(x, outs=[init], permutation=perm).results[0]


@lowers(aten.expand.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _expand(ctx, x, size, implicit=False):
    in_shape = _shape_of(ctx, 0)
    out_shape = ctx.out_spec.shape
    offset = len(out_shape) - len(in_shape)
    ctx.require(offset >= 0, f"cannot expand a rank-{len(in_shape)} tensor to {size}")
    in_sizes = b.sizes_of(x)
    out_sizes: list[b.Size] = []
    for i, d in enumerate(out_shape):
        j = i - offset
        if d is not None:
            out_sizes.append(d)
        elif j >= 0 and (size[i] == -1 or in_shape[j] is None):
            out_sizes.append(in_sizes[j])
        else:
            out_sizes.append(size[i])
    # Input dims that are broadcast (static 1 against something else) are dropped, then
    # linalg.broadcast adds them back together with the new leading dims.
    dropped = []
    for j, d in enumerate(in_shape):
        o = out_shape[j + offset]
        if d == 1 and o != 1:
            dropped.append(j)
        elif d is None and o == 1:
            pass  # expand never shrinks: the input's size is 1 as well
        elif d is None and not ctx.same_size(0, j, 0, j + offset) and \
                (o is not None or not (isinstance(size[j + offset], int) and size[j + offset] == -1)):
            # From a dynamic size: a broadcast only if the input's size is 1 at run time.
            x = _expand_if_one(x, j, out_sizes[j + offset])
            in_sizes = b.sizes_of(x)
        else:
            ctx.require(d is not None or o is None,
                        f"cannot tell whether dynamic dim {j} is broadcast to {o}")
    if not dropped and offset == 0:
        return x
    squeezed = squeeze_dims(x, dropped)
    added = list(range(offset)) + [j + offset for j in dropped]
    init = b.empty(out_sizes, ctx.out_spec.dtype)
    return linalg.broadcast(squeezed, outs=[init], dimensions=sorted(added)).results[0]


def _expand_if_one(x: ir.Value, dim: int, size: b.Size) -> ir.Value:
    """`x` with dynamic dimension `dim` expanded to `size`: read at index 0 along `dim` when the
    input's size is 1 at run time (a broadcast), at the output's index otherwise (then the sizes
    agree, or PyTorch would have rejected the expand while tracing). A copy, but no control flow
    (`scf.if` on tensors would make deallocation track ownership in i1 buffers)."""
    sizes = b.sizes_of(x)
    rank = len(sizes)
    is_one = arith.CmpIOp(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 0),
                          b.as_index(sizes[dim]), b.index_constant(1)).result
    out_sizes = [size if i == dim else s for i, s in enumerate(sizes)]
    init = tensor.EmptyOp([s if isinstance(s, int) else b.as_index(s) for s in out_sizes], _elem(x)).result

    def body(_out):
        index = [linalg.IndexOp(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), i)).result
                 for i in range(rank)]
        index[dim] = arith.SelectOp(is_one, b.index_constant(0), index[dim]).result
        return tensor.ExtractOp(x, index).result

    spread = b.generic([], [init], [b.identity_map(rank)], ["parallel"] * rank, body)
    return spread if spread.type == x.type else tensor.CastOp(x.type, spread).result


# ----- slices -----------------------------------------------------------------------------------
def _slice_bounds(size: int, start: Optional[int], end: Optional[int], step: int) -> tuple[int, int]:
    """(offset, length) of `x[start:end:step]` along a dimension of `size`, as eager clamps."""
    start = 0 if start is None else start
    end = size if end is None else end
    if start < 0:
        start += size
    if end < 0:
        end += size
    start = min(max(start, 0), size)
    end = min(max(end, start), size)
    length = (end - start + step - 1) // step
    return (start if length else 0), length  # an empty slice at offset == size does not verify


def _index_value(v: b.Size) -> ir.Value:
    """An int (Python, `i64` or `index` value) as an `index` value."""
    return b.as_index(v)


def _clamp_index(v: ir.Value, low: ir.Value, high: ir.Value) -> ir.Value:
    return arith.MinSIOp(arith.MaxSIOp(v, low).result, high).result


def _wrap_negative(v: ir.Value, size: ir.Value) -> ir.Value:
    """`v + size` where v < 0 (Python's negative indexing), at run time."""
    zero = b.index_constant(0)
    negative = arith.CmpIOp(arith.CmpIPredicate.slt, v, zero).result
    return arith.SelectOp(negative, arith.AddIOp(v, size).result, v).result


def _dynamic_slice_bounds(size: b.Size, start, end, step: int) -> tuple[b.Size, b.Size]:
    """`_slice_bounds` computed at run time, for a dynamic dimension or SymInt start/end."""
    size_v = _index_value(size)
    zero = b.index_constant(0)
    start_v = zero if start is None else _wrap_negative(_index_value(start), size_v)
    end_v = size_v if end is None else _wrap_negative(_index_value(end), size_v)
    start_v = _clamp_index(start_v, zero, size_v)
    end_v = _clamp_index(end_v, start_v, size_v)
    span = arith.SubIOp(end_v, start_v).result
    length = span if step == 1 else arith.DivUIOp(
        arith.AddIOp(span, b.index_constant(step - 1)).result, b.index_constant(step)).result
    is_empty = arith.CmpIOp(arith.CmpIPredicate.eq, length, zero).result
    return arith.SelectOp(is_empty, zero, start_v).result, length


@lowers(aten.slice.Tensor, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _slice(ctx, x, dim=0, start=None, end=None, step=1):
    shape = _shape_of(ctx, 0)
    dim = _norm_dim(ctx, dim, len(shape))
    step = ctx.static_int(step, "step")
    ctx.require(step > 0, f"slice step must be positive, got {step}")
    sizes = b.sizes_of(x)
    offsets: list[b.Size] = [0] * len(shape)
    strides = [1] * len(shape)
    if shape[dim] is not None and not isinstance(start, ir.Value) and not isinstance(end, ir.Value):
        start = None if start is None else ctx.static_int(start, "start")
        end = None if end is None else ctx.static_int(end, "end")
        offset, length = _slice_bounds(shape[dim], start, end, step)
        if offset == 0 and length == shape[dim] and step == 1:
            return x
    else:
        # A dynamic dimension or run-time bounds: eager's clamping, computed at run time.
        for what, v in (("start", start), ("end", end)):
            ctx.require(v is None or isinstance(v, ir.Value) or isinstance(v, int) and not isinstance(v, bool),
                        f"slice {what} must be an integer, got {v!r}")
        if (start is None or isinstance(start, int) and start == 0) and end is None and step == 1:  # not `in`: ir.Value == None raises
            return x
        offset, length = _dynamic_slice_bounds(sizes[dim], start, end, step)
    offsets[dim], sizes[dim], strides[dim] = offset, length, step
    return extract_slice(x, offsets, sizes, strides)


@lowers(aten.select.int, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _select(ctx, x, dim, index):
    shape = _shape_of(ctx, 0)
    dim = _norm_dim(ctx, dim, len(shape))
    sizes = b.sizes_of(x)
    offsets: list[b.Size] = [0] * len(shape)
    if shape[dim] is not None and not isinstance(index, ir.Value):
        index = ctx.static_int(index, "index")
        ctx.require(-shape[dim] <= index < shape[dim],
                    f"index {index} is out of range for dim {dim} of size {shape[dim]}")
        offsets[dim] = index % shape[dim]
    else:
        # Dynamo guards the index in range for this size; a negative one counts from the end.
        ctx.require(isinstance(index, (int, ir.Value)) and not isinstance(index, bool),
                    f"select index must be an integer, got {index!r}")
        offsets[dim] = _wrap_negative(_index_value(index), _index_value(sizes[dim]))
    sizes[dim] = 1
    return extract_slice(x, offsets, sizes, [1] * len(shape), drop=[dim])


@lowers(aten.split_with_sizes.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _split_with_sizes(ctx, x, split_sizes, dim=0):
    shape = _shape_of(ctx, 0)
    dim = _norm_dim(ctx, dim, len(shape))
    static = shape[dim] is not None and not any(isinstance(s, ir.Value) for s in split_sizes)
    if static:
        split_sizes = [ctx.static_int(s, "split size") for s in split_sizes]
        ctx.require(sum(split_sizes) == shape[dim] and all(s >= 0 for s in split_sizes),
                    f"split sizes {split_sizes} do not add up to dim {dim} of size {shape[dim]}")
    results = []
    offset: b.Size = 0
    for s in split_sizes:
        sizes = b.sizes_of(x)
        offsets: list[b.Size] = [0] * len(shape)
        offsets[dim], sizes[dim] = offset, s
        results.append(extract_slice(x, offsets, sizes, [1] * len(shape)))
        # SymInt sizes (dynamic dims) are added at run time; Dynamo guarded that they add up.
        if isinstance(offset, int) and isinstance(s, int):
            offset += s
        else:
            offset = arith.AddIOp(_index_value(offset), _index_value(s)).result
    return tuple(results)


# ----- squeeze / unsqueeze -----------------------------------------------------------------------
def _squeeze(ctx, x, dims):
    shape = _shape_of(ctx, 0)
    if not shape:
        return x
    dims = sorted({_norm_dim(ctx, d, len(shape)) for d in dims})
    # A dynamic dim is not squeezed: Dynamo traced it as != 1 (guarded, or size-oblivious);
    # the result rank the trace recorded must agree.
    squeezed = [d for d in dims if shape[d] == 1]
    ctx.require(ctx.out_spec.rank == len(shape) - len(squeezed),
                f"squeeze of dims {dims} of {shape}: the traced result has rank {ctx.out_spec.rank}")
    return squeeze_dims(x, squeezed)


# squeeze.dim and squeeze.default reach us as squeeze.dims (Core ATen decomposes them).
@lowers(aten.squeeze.dims, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _squeeze_dims(ctx, x, dims):
    return _squeeze(ctx, x, dims)


@lowers(aten.unsqueeze.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _unsqueeze(ctx, x, dim):
    rank = ctx.in_specs[0].rank
    dim = _norm_dim(ctx, dim, rank + 1)
    return b.expand_dims(x, [dim], rank + 1)


# ----- cat ----------------------------------------------------------------------------------------
@lowers(aten.cat.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _cat(ctx, tensors, dim=0):
    out = ctx.out_spec
    # Legacy: 1-D empty tensors are skipped whatever the other operands' rank.
    parts = [t for t in tensors if not (b.static_shape(t) == [0] and out.rank != 1)]
    dim = _norm_dim(ctx, dim, out.rank)
    parts = [t for t in parts if b.static_shape(t)[dim] != 0]
    if not parts:
        return b.empty([0 if d is None else d for d in out.shape], out.dtype)
    values = [cx.cast_tensor(t, list_element_dtype(ctx, t, out.dtype), out.dtype, ctx) for t in parts]
    if len(values) == 1:
        return values[0]
    return tensor.ConcatOp(b.tensor_type(out), dim, values).result


_UNAMBIGUOUS = {"f32": torch.float32, "f64": torch.float64, "f16": torch.float16, "bf16": torch.bfloat16,
                "i64": torch.int64, "i32": torch.int32, "i16": torch.int16, "i1": torch.bool,
                "complex<f32>": torch.complex64, "complex<f64>": torch.complex128,
                "complex<f16>": torch.complex32}


def list_element_dtype(ctx: LoweringContext, value: ir.Value, out_dtype: torch.dtype) -> torch.dtype:
    """The torch dtype of a tensor that arrived in a list operand (the driver gives list operands
    no TensorSpec). `i8` is int8 or uint8: when the result dtype does not tell which, and the
    difference matters for the conversion, the op is rejected rather than guessed."""
    elem = str(_elem(value))
    if elem in _UNAMBIGUOUS:
        return _UNAMBIGUOUS[elem]
    if out_dtype in (torch.int8, torch.uint8):
        return out_dtype  # same bits; promotion to uint8/int8 implies this operand's dtype
    raise ctx.reject(f"cannot tell whether an 8-bit operand of the list is int8 or uint8 "
                     f"(result {out_dtype})")


# ----- flip ---------------------------------------------------------------------------------------
@lowers(aten.flip.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _flip(ctx, x, dims):
    shape = _shape_of(ctx, 0)
    rank = len(shape)
    dims = {_norm_dim(ctx, d, rank) for d in dims}
    if rank == 0 or not dims:
        return x
    if any(shape[d] is None for d in dims):
        return _flip_dynamic(ctx, x, dims)
    exprs = [ir.AffineExpr.get_add(ir.AffineConstantExpr.get(shape[i] - 1),
                                   ir.AffineExpr.get_mul(ir.AffineDimExpr.get(i), ir.AffineConstantExpr.get(-1)))
             if i in dims else ir.AffineDimExpr.get(i) for i in range(rank)]
    in_map = ir.AffineMap.get(rank, 0, exprs)
    init = b.empty(b.sizes_of(x), ctx.out_spec.dtype)
    return b.generic([x], [init], [in_map, b.identity_map(rank)], ["parallel"] * rank, lambda v, _: v)


def _flip_dynamic(ctx: LoweringContext, x: ir.Value, dims: set) -> ir.Value:
    """Flip with run-time sizes: each output element reads x at `size - 1 - i` along `dims`."""
    rank = ir.RankedTensorType(x.type).rank
    sizes = b.sizes_of(x)
    init = b.empty(sizes, ctx.out_spec.dtype)
    last = {d: arith.SubIOp(_index_value(sizes[d]), b.index_constant(1)).result for d in dims}

    def body(_out):
        index = [linalg.IndexOp(ir.IntegerAttr.get(ir.IntegerType.get_signless(64), i)).result for i in range(rank)]
        index = [arith.SubIOp(last[i], index[i]).result if i in dims else index[i] for i in range(rank)]
        return tensor.ExtractOp(x, index).result

    return b.generic([], [init], [b.identity_map(rank)], ["parallel"] * rank, body)


# ----- constant_pad_nd ------------------------------------------------------------------------------
@lowers(aten.constant_pad_nd.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
@bool_as_bytes
def _constant_pad_nd(ctx, x, pad, value=0):
    shape = _shape_of(ctx, 0)
    rank = len(shape)
    pad = [ctx.static_int(p, "pad") for p in pad]
    ctx.require(len(pad) % 2 == 0 and len(pad) // 2 <= rank, f"bad pad list {pad}")
    low = [0] * rank
    high = [0] * rank
    for k in range(len(pad) // 2):
        d = rank - 1 - k
        low[d], high[d] = pad[2 * k], pad[2 * k + 1]
        ctx.require(shape[d] is not None or (low[d] >= 0 and high[d] >= 0),
                    f"cropping (negative padding of) dynamic dim {d} is not supported yet")
    dtype = ctx.out_spec.dtype
    # Negative padding crops: slice first, then pad with the non-negative amounts.
    if any(p < 0 for p in low + high):
        sizes = b.sizes_of(x)
        offsets = [0] * rank
        for d in range(rank):
            if low[d] < 0 or high[d] < 0:
                offsets[d] = max(-low[d], 0)
                sizes[d] = max(shape[d] - offsets[d] - max(-high[d], 0), 0)
        x = extract_slice(x, offsets, sizes, [1] * rank)
        low = [max(p, 0) for p in low]
        high = [max(p, 0) for p in high]
    if any(d == 0 for d in ctx.out_spec.shape) or all(p == 0 for p in low + high):
        if any(d == 0 for d in ctx.out_spec.shape):
            return b.empty([0 if d is None else d for d in ctx.out_spec.shape], dtype)
        return x
    if isinstance(value, float) and not b.is_float(dtype) and dtype != torch.bool and not cx.is_complex(dtype):
        value = int(value)  # eager converts the fill value to the tensor's dtype
    src_shape = b.static_shape(x)
    out_shape = [None if s is None else s + l + h for s, l, h in zip(src_shape, low, high)]
    op = tensor.PadOp(_tensor_type(out_shape, _elem(x)), x, [], [], low, high)
    block = op.regions[0].blocks.append(*([b.index_type()] * rank))
    with ir.InsertionPoint(block):
        tensor.YieldOp(cx.scalar_operand(value, dtype))
    return op.result
