"""IR-building helpers shared by the lowering rules: types, constants, casts, shapes, and
`linalg.generic` with PyTorch's broadcasting.

Every helper builds at the current insertion point and location (the driver sets both).
Sizes are Python ints when static and `index` values when dynamic (`Size = int | ir.Value`).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Union

import torch

from mlir import ir
from mlir.dialects import arith, linalg, math as math_d, tensor

from ..types import FLOAT_DTYPES, TensorSpec, builtin_dtype

Size = Union[int, ir.Value]
Scalar = Union[int, float, bool, ir.Value]

_TYPE_CACHE: dict[tuple, ir.Type] = {}


# ----- types ---------------------------------------------------------------------------------
def element_type(dtype: torch.dtype) -> ir.Type:
    return ir.Type.parse(builtin_dtype(dtype))


def tensor_type(spec: TensorSpec) -> ir.RankedTensorType:
    dyn = ir.ShapedType.get_dynamic_size()
    return ir.RankedTensorType.get([dyn if d is None else d for d in spec.shape], element_type(spec.dtype))


def is_float(dtype: torch.dtype) -> bool:
    return dtype in FLOAT_DTYPES


def is_unsigned(dtype: torch.dtype) -> bool:
    return dtype in (torch.uint8, torch.bool)


def index_type() -> ir.Type:
    return ir.IndexType.get()


# ----- constants -----------------------------------------------------------------------------
def scalar_attr(value: Union[int, float, bool], dtype: torch.dtype) -> ir.Attribute:
    t = element_type(dtype)
    if is_float(dtype):
        return ir.FloatAttr.get(t, float(value))
    if dtype == torch.bool:
        return ir.IntegerAttr.get(t, int(bool(value)))
    return ir.IntegerAttr.get(t, _wrap_int(int(value), dtype))


def constant(value: Union[int, float, bool], dtype: torch.dtype) -> ir.Value:
    """An `arith.constant` scalar of a torch dtype."""
    return arith.ConstantOp(element_type(dtype), scalar_attr(value, dtype)).result


def _wrap_int(v: int, dtype: torch.dtype) -> int:
    bits = torch.iinfo(dtype).bits
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def index_constant(value: int) -> ir.Value:
    return arith.ConstantOp(index_type(), ir.IntegerAttr.get(index_type(), value)).result


def as_index(size: Size) -> ir.Value:
    if isinstance(size, ir.Value):
        if isinstance(size.type, ir.IndexType):
            return size
        return arith.IndexCastOp(index_type(), size).result
    return index_constant(size)


def scalar_operand(value: Scalar, dtype: torch.dtype, from_dtype: Optional[torch.dtype] = None) -> ir.Value:
    """A Python number or a runtime scalar (`i64`/`f64`/`i1`) as a scalar of `dtype`."""
    if isinstance(value, ir.Value):
        src = from_dtype or _dtype_of_scalar_type(value.type)
        return convert(value, src, dtype)
    return constant(value, dtype)


def _dtype_of_scalar_type(t: ir.Type) -> torch.dtype:
    text = str(t)
    dtype = {"f64": torch.float64, "f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16,
             "i64": torch.int64, "i32": torch.int32, "i16": torch.int16, "i8": torch.int8,
             "i1": torch.bool, "index": torch.int64}.get(text)
    if dtype is None:
        raise TypeError(f"no torch dtype for scalar type {text}")
    return dtype


# ----- scalar conversion ---------------------------------------------------------------------
def convert(value: ir.Value, src: torch.dtype, dst: torch.dtype) -> ir.Value:
    """Convert a scalar between torch dtypes with PyTorch's semantics (bool is `!= 0`)."""
    if str(value.type) == "index":  # before the shortcut: an index is never a torch dtype
        value = arith.IndexCastOp(ir.IntegerType.get_signless(64), value).result
        src = torch.int64
    if src == dst:
        return value
    dst_t = element_type(dst)
    if dst == torch.bool:
        zero = constant(0, src)
        if is_float(src):
            return arith.CmpFOp(arith.CmpFPredicate.UNE, value, zero).result
        return arith.CmpIOp(arith.CmpIPredicate.ne, value, zero).result
    if is_float(src) and is_float(dst):
        sbits, dbits = _float_bits(src), _float_bits(dst)
        if src in (torch.float16, torch.bfloat16) and dst in (torch.float16, torch.bfloat16):
            return arith.TruncFOp(dst_t, arith.ExtFOp(ir.F32Type.get(), value).result).result
        if src == torch.float64 and dbits == 16:
            # As c10 does (double -> float -> half); the direct truncation also needs compiler-rt.
            return arith.TruncFOp(dst_t, arith.TruncFOp(ir.F32Type.get(), value).result).result
        if dbits > sbits:
            return arith.ExtFOp(dst_t, value).result
        return arith.TruncFOp(dst_t, value).result
    if is_float(src):  # float -> int
        if is_unsigned(dst):
            # PyTorch converts through int64 then wraps; fptoui is poison for negatives.
            wide = arith.FPToSIOp(ir.IntegerType.get_signless(64), value).result
            return arith.TruncIOp(dst_t, wide).result
        return arith.FPToSIOp(dst_t, value).result
    if is_float(dst):  # int -> float
        if is_unsigned(src):
            return arith.UIToFPOp(dst_t, value).result
        return arith.SIToFPOp(dst_t, value).result
    sbits, dbits = _int_bits(src), _int_bits(dst)
    if dbits > sbits:
        if is_unsigned(src):
            return arith.ExtUIOp(dst_t, value).result
        return arith.ExtSIOp(dst_t, value).result
    if dbits < sbits:
        return arith.TruncIOp(dst_t, value).result
    return value  # same width, signedness differs (int8 <-> uint8): same bits


def _float_bits(dtype: torch.dtype) -> int:
    return {torch.float16: 16, torch.bfloat16: 16, torch.float32: 32, torch.float64: 64}[dtype]


def _int_bits(dtype: torch.dtype) -> int:
    return 1 if dtype == torch.bool else torch.iinfo(dtype).bits


# ----- shapes --------------------------------------------------------------------------------
def sizes_of(value: ir.Value) -> list[Size]:
    """Each dimension of a ranked tensor: an int when static, a `tensor.dim` when dynamic."""
    t = ir.RankedTensorType(value.type)
    return [d if not t.is_dynamic_dim(i) else tensor.DimOp(value, index_constant(i)).result
            for i, d in enumerate(t.shape)]


def empty(sizes: Sequence[Size], dtype: torch.dtype) -> ir.Value:
    # The builder takes ints for static sizes and `index` values for dynamic ones.
    mixed = [s if isinstance(s, int) else as_index(s) for s in sizes]
    return tensor.EmptyOp(mixed, element_type(dtype)).result


def full(sizes: Sequence[Size], value: Scalar, dtype: torch.dtype) -> ir.Value:
    return linalg.fill(scalar_operand(value, dtype), outs=[empty(sizes, dtype)])


def out_sizes(spec: TensorSpec, like: Sequence[ir.Value] = ()) -> list[Size]:
    """Sizes of a result: static dims from the spec, dynamic ones taken from a same-rank-aligned
    operand whose dimension is not broadcast (right-aligned, as PyTorch broadcasts)."""
    sizes: list[Size] = []
    for i, d in enumerate(spec.shape):
        if d is not None:
            sizes.append(d)
            continue
        found = None
        for v in like:
            t = ir.RankedTensorType(v.type)
            j = i - (spec.rank - t.rank)
            if j >= 0 and t.is_dynamic_dim(j):
                found = tensor.DimOp(v, index_constant(j)).result
                break
        if found is None:
            raise ValueError(f"cannot find the size of dynamic dimension {i} of {spec}")
        sizes.append(found)
    return sizes


def cast_tensor(value: ir.Value, src: torch.dtype, dst: torch.dtype) -> ir.Value:
    if src == dst:
        return value
    t = ir.RankedTensorType(value.type)
    spec = TensorSpec(tuple(None if t.is_dynamic_dim(i) else d for i, d in enumerate(t.shape)), dst)
    return elementwise([value], [src], spec, lambda x: x, compute_dtype=src)


# ----- linalg.generic ------------------------------------------------------------------------
def _iterators(kinds: Sequence[str]) -> ir.ArrayAttr:
    return ir.ArrayAttr.get([ir.Attribute.parse(f"#linalg.iterator_type<{k}>") for k in kinds])


def generic(inputs: Sequence[ir.Value], outputs: Sequence[ir.Value], maps: Sequence[ir.AffineMap],
            iterators: Sequence[str], body: Callable[..., Union[ir.Value, Sequence[ir.Value]]]):
    """`linalg.generic`; `body(*input_elems, *output_elems)` returns the yielded value(s).
    Returns the single result value, or the list of results when there are several."""
    result_types = [o.type for o in outputs]
    op = linalg.GenericOp(result_types, list(inputs), list(outputs),
                          ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
                          _iterators(iterators))
    element_types = [ir.ShapedType(v.type).element_type for v in list(inputs) + list(outputs)]
    block = op.regions[0].blocks.append(*element_types)
    with ir.InsertionPoint(block):
        yielded = body(*block.arguments)
        if isinstance(yielded, ir.Value):
            yielded = [yielded]
        linalg.YieldOp(list(yielded))
    return op.results[0] if len(op.results) == 1 else list(op.results)


def broadcast_map(operand_shape: Sequence[Optional[int]], out_shape: Sequence[Optional[int]]) -> ir.AffineMap:
    """Right-aligned broadcasting map from the output's iteration space to an operand.
    A static size-1 dimension against a larger output reads index 0."""
    rank = len(out_shape)
    offset = rank - len(operand_shape)
    exprs = []
    for i, d in enumerate(operand_shape):
        o = out_shape[offset + i]
        if d == 1 and o != 1:
            exprs.append(ir.AffineConstantExpr.get(0))
        else:
            exprs.append(ir.AffineDimExpr.get(offset + i))
    return ir.AffineMap.get(rank, 0, exprs)


def identity_map(rank: int) -> ir.AffineMap:
    return ir.AffineMap.get_identity(rank)


def static_shape(value: ir.Value) -> list[Optional[int]]:
    t = ir.RankedTensorType(value.type)
    return [None if t.is_dynamic_dim(i) else d for i, d in enumerate(t.shape)]


def elementwise(operands: Sequence[Union[ir.Value, Scalar]], dtypes: Sequence[torch.dtype],
                out_spec: TensorSpec, body: Callable[..., ir.Value],
                compute_dtype: Optional[torch.dtype] = None,
                sizes: Optional[Sequence[Size]] = None,
                operand_compute_dtypes: Optional[Sequence[Optional[torch.dtype]]] = None) -> ir.Value:
    """One `linalg.generic` applying `body` elementwise with PyTorch broadcasting.

    Tensor operands are converted to `compute_dtype` (default: the result dtype) before `body`,
    and the body's value is converted to the result dtype. Python-number operands become
    constants of the compute dtype. `operand_compute_dtypes[i]`, when given and not None,
    overrides the compute dtype for operand i (e.g. `where`'s boolean condition).
    """
    compute = compute_dtype or out_spec.dtype
    tensors = [(i, v) for i, v in enumerate(operands) if isinstance(v, ir.Value)
               and isinstance(v.type, ir.RankedTensorType)]
    out_shape = list(out_spec.shape)
    if sizes is None:
        sizes = out_sizes(out_spec, [v for _, v in tensors])
    init = empty(sizes, out_spec.dtype)
    maps = [broadcast_map(static_shape(v), out_shape) for _, v in tensors] + [identity_map(len(out_shape))]
    per_operand = [(operand_compute_dtypes[i] if operand_compute_dtypes and operand_compute_dtypes[i]
                    else compute) for i in range(len(operands))]
    scalars = {i: (scalar_operand(v, per_operand[i], dtypes[i] if i < len(dtypes) else None))
               for i, v in enumerate(operands) if i not in dict(tensors)}

    def _body(*elems):
        args = []
        it = iter(elems[: len(tensors)])
        tensor_index = dict(tensors)
        for i in range(len(operands)):
            if i in tensor_index:
                args.append(convert(next(it), dtypes[i], per_operand[i]))
            else:
                args.append(scalars[i])
        result = body(*args)
        return convert(result, _result_dtype(result, compute), out_spec.dtype)

    return generic([v for _, v in tensors], [init], maps, ["parallel"] * len(out_shape), _body)


def _result_dtype(value: ir.Value, compute: torch.dtype) -> torch.dtype:
    # Comparison bodies produce i1 whatever the compute dtype is.
    if str(value.type) == "i1" and compute != torch.bool:
        return torch.bool
    return compute


# ----- reductions ----------------------------------------------------------------------------
def reduce(value: ir.Value, dims: Sequence[int], keepdim: bool, init_value: Scalar,
           out_dtype: torch.dtype, combine: Callable[[ir.Value, ir.Value], ir.Value],
           in_dtype: Optional[torch.dtype] = None, acc_dtype: Optional[torch.dtype] = None) -> ir.Value:
    """Reduce `value` over `dims` with `combine(element, accumulator)` starting at `init_value`;
    the accumulator has `acc_dtype` (default out_dtype) and is converted to out_dtype at the end."""
    acc = acc_dtype or out_dtype
    src = in_dtype or acc
    sizes = sizes_of(value)
    rank = len(sizes)
    dims = sorted(d % rank if rank else 0 for d in dims)
    kept = [i for i in range(rank) if i not in dims]
    acc_sizes = [sizes[i] for i in kept]
    init = linalg.fill(scalar_operand(init_value, acc), outs=[empty(acc_sizes, acc)])
    in_map = identity_map(rank)
    out_map = ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(i) for i in kept])
    iterators = ["reduction" if i in dims else "parallel" for i in range(rank)]
    result = generic([value], [init], [in_map, out_map], iterators,
                     lambda x, a: combine(convert(x, src, acc), a))
    if acc != out_dtype:
        spec = TensorSpec(tuple(static_shape(result)), out_dtype)
        result = elementwise([result], [acc], spec, lambda x: x, compute_dtype=acc)
    if keepdim:
        result = expand_dims(result, dims, rank)
    return result


def expand_dims(value: ir.Value, dims: Sequence[int], new_rank: int) -> ir.Value:
    """Insert size-1 dimensions at positions `dims` of a rank-`new_rank` result."""
    t = ir.RankedTensorType(value.type)
    src_shape = static_shape(value)
    out_shape: list[Optional[int]] = []
    it = iter(src_shape)
    for i in range(new_rank):
        out_shape.append(1 if i in dims else next(it))
    # reassociation: group each kept dim with the unit dims that follow/precede it
    groups: list[list[int]] = []
    current: list[int] = []
    for i in range(new_rank):
        current.append(i)
        if i not in dims:
            groups.append(current)
            current = []
    if current:
        if groups:
            groups[-1].extend(current)
        else:
            groups.append(current)
    if t.rank == 0:
        groups = []
    dyn = ir.ShapedType.get_dynamic_size()
    result_type = ir.RankedTensorType.get([dyn if d is None else d for d in out_shape], t.element_type)
    out_sizes_ = []
    src_sizes = sizes_of(value)
    it2 = iter(src_sizes)
    for i in range(new_rank):
        out_sizes_.append(1 if i in dims else next(it2))
    return expand_shape(value, result_type, groups, out_sizes_)


def expand_shape(value: ir.Value, result_type: ir.RankedTensorType, groups: Sequence[Sequence[int]],
                 sizes: Sequence[Size]) -> ir.Value:
    dyn_sizes = [as_index(s) for s in sizes if not isinstance(s, int)]
    static = [s if isinstance(s, int) else ir.ShapedType.get_dynamic_size() for s in sizes]
    return tensor.ExpandShapeOp(result_type, value, _reassociation(groups), dyn_sizes,
                                static).result


def collapse_shape(value: ir.Value, groups: Sequence[Sequence[int]]) -> ir.Value:
    t = ir.RankedTensorType(value.type)
    shape = static_shape(value)
    dyn = ir.ShapedType.get_dynamic_size()
    out = []
    for g in groups:
        if any(shape[i] is None for i in g):
            out.append(dyn)
        else:
            n = 1
            for i in g:
                n *= shape[i]
            out.append(n)
    result_type = ir.RankedTensorType.get(out, t.element_type)
    return tensor.CollapseShapeOp(result_type, value, _reassociation(groups)).result


def _reassociation(groups: Sequence[Sequence[int]]) -> ir.ArrayAttr:
    i64 = ir.IntegerType.get_signless(64)
    return ir.ArrayAttr.get([ir.ArrayAttr.get([ir.IntegerAttr.get(i64, i) for i in g]) for g in groups])


# ----- scalar math helpers used by several families -------------------------------------------
def select(cond: ir.Value, a: ir.Value, b: ir.Value) -> ir.Value:
    return arith.SelectOp(cond, a, b).result


def max_value(a: ir.Value, b: ir.Value, dtype: torch.dtype) -> ir.Value:
    """PyTorch's maximum: NaN-propagating for floats."""
    if is_float(dtype):
        return arith.MaximumFOp(a, b).result
    if is_unsigned(dtype):
        return arith.MaxUIOp(a, b).result
    return arith.MaxSIOp(a, b).result


def min_value(a: ir.Value, b: ir.Value, dtype: torch.dtype) -> ir.Value:
    if is_float(dtype):
        return arith.MinimumFOp(a, b).result
    if is_unsigned(dtype):
        return arith.MinUIOp(a, b).result
    return arith.MinSIOp(a, b).result


def lowest(dtype: torch.dtype) -> Union[int, float]:
    return float("-inf") if is_float(dtype) else (0 if dtype == torch.bool else torch.iinfo(dtype).min)


def highest(dtype: torch.dtype) -> Union[int, float]:
    return float("inf") if is_float(dtype) else (1 if dtype == torch.bool else torch.iinfo(dtype).max)


def ops_named(module: ir.Module, *names: str) -> list:
    """Every op of `module` (nested ones included) whose name is one of `names`, in walk order:
    what a rewrite stage collects before changing the IR it walks."""
    found = []

    def collect(op):
        if op.name in names:
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(collect)
    return found
