"""Ops whose output size depends on the data: `nonzero`, `masked_select`, `_unique2`,
`unique_consecutive`, `bincount`, and `_local_scalar_dense` (`tensor.item()`, whose value may
bound a slice).

FakeTensor gives such a result an unbacked size symbol (`u0`). Inside the generated code it is
an ordinary dynamic dimension: a rule computes the count and the elements into a worst-case
buffer (as many rows as the input has elements) with one sequential `scf.for`, then
`tensor.extract_slice`s the first `count` rows, a `tensor<?x...>` that later ops consume as any
dynamic dimension.

A graph *output* of such a size cannot be allocated by Python from the input sizes, so each node
creating an unbacked size must also state an upper bound of it from its inputs' sizes
(`SIZE_BOUNDS`, next to the rules, so the two agree): nonzero, masked_select and unique have at
most as many elements as their input, a slice with data-dependent bounds at most the sliced
dimension. How the bound is used at the graph's boundary (capacity input, flat output buffers,
a report of the real sizes) is `driver.DataDependentAbi` and `dynamic_shapes.DataDependentOutputs`.
bincount's length, max(x) + 1, is bounded by no size: when x is a graph input, Python reads it
from x before the call (`data_bounds`: a first pass in eager PyTorch, which also raises eager's
error for negative values); bincount of a tensor computed in the graph is not lowered: it runs
eagerly (strict mode: raises), with that reason.

Runtime assertions Dynamo adds about unbacked symbols (`u0 <= 6`, `torch._check(...)`) are
checked at run time: `_assert_scalar` records its condition, the driver reports it next to the
sizes and Python raises when it is false. Assertions that only restate PyTorch's view and size
arithmetic (storage offsets of views, each op's own size range) are dropped before partitioning
(`drop_restated_asserts`).
"""
from __future__ import annotations

from typing import Callable, Optional

import sympy
import torch
import torch.fx

from mlir import ir
from mlir.dialects import arith, scf, tensor

from . import builders as b
from .registry import LoweringContext, lowers
from .shape import extract_slice
from .sorting import SORT_DTYPES, sort_along, std_sort_along
from ..types import FLOAT_DTYPES, INT_DTYPES

aten = torch.ops.aten

# ----- FX level: upper bounds of data-dependent sizes ------------------------------------------


def _size_expr(size) -> sympy.Expr:
    if isinstance(size, torch.SymInt):
        return size.node.expr
    return sympy.Integer(int(size))


def _sizes(val) -> list:
    return [_size_expr(d) for d in val.shape]


def _numel(val) -> sympy.Expr:
    return sympy.Mul(*_sizes(val)) if val.dim() else sympy.Integer(1)


def _arg_val(node: torch.fx.Node, i: int):
    arg = node.args[i]
    return arg.meta.get("val") if isinstance(arg, torch.fx.Node) else arg


def _tensor_results(node: torch.fx.Node) -> list:
    val = node.meta.get("val")
    vals = val if isinstance(val, (tuple, list)) else [val]
    return [v for v in vals if isinstance(v, torch.Tensor)]


def new_unbacked_sizes(node: torch.fx.Node) -> set:
    """Unbacked symbols first appearing in the sizes of this node's tensor results."""
    from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols

    made = set()
    for v in _tensor_results(node):
        for d in v.shape:
            made |= free_unbacked_symbols(d)
    for arg in node.all_input_nodes:
        made -= free_unbacked_symbols(arg.meta.get("val"))
    return made


def _bound_by_input_numel(node: torch.fx.Node) -> sympy.Expr:
    return _numel(_arg_val(node, 0))


def _bound_masked_select(node: torch.fx.Node) -> sympy.Expr:
    a, m = _sizes(_arg_val(node, 0)), _sizes(_arg_val(node, 1))
    rank = max(len(a), len(m))
    a = [sympy.Integer(1)] * (rank - len(a)) + a
    m = [sympy.Integer(1)] * (rank - len(m)) + m
    return sympy.Mul(*[sympy.Max(x, y) for x, y in zip(a, m)]) if rank else sympy.Integer(1)


# overload -> fn(node) giving an upper bound of every unbacked size the node creates, or a
# per-dimension bound through `_slice_bounds`.
def _bound_along_dim(dim_arg: int, dim_kwarg: str) -> Callable:
    """The size of the dimension an op works along (the input's numel when it has none)."""
    def bound(node: torch.fx.Node) -> sympy.Expr:
        dim = node.args[dim_arg] if len(node.args) > dim_arg else node.kwargs.get(dim_kwarg)
        x = _arg_val(node, 0)
        if isinstance(dim, int) and x.dim():
            return _sizes(x)[dim % x.dim()]
        return _numel(x)
    return bound


SIZE_BOUNDS: dict = {
    aten.nonzero.default: _bound_by_input_numel,
    aten.masked_select.default: _bound_masked_select,
    aten._unique2.default: _bound_by_input_numel,
    aten.unique_consecutive.default: _bound_along_dim(3, "dim"),
    aten.unique_dim.default: _bound_along_dim(1, "dim"),
}


def _slice_bounds(node: torch.fx.Node, made: set) -> Optional[dict]:
    """A slice with data-dependent bounds: its size is at most the sliced dimension's."""
    src, out = _arg_val(node, 0), node.meta.get("val")
    bounds = {}
    for d, (s, o) in enumerate(zip(src.shape, out.shape)):
        e = _size_expr(o)
        if e in made:
            bounds[e] = _size_expr(s)
    return bounds if set(bounds) == made else None


def data_bound_symbol(node: torch.fx.Node) -> sympy.Symbol:
    """The symbol standing for a size read from a graph input's data before the call."""
    return sympy.Symbol(f"data_{node.name}", integer=True, nonnegative=True)


def bincount_length(x: torch.Tensor, minlength: int) -> int:
    """bincount's output length, read from its input before the call (the first of two passes;
    the generated code is the second). Raises eager's error for inputs bincount rejects."""
    if x.numel() and int(x.min()) < 0:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    return max(int(x.max()) + 1 if x.numel() else 0, minlength)


def data_bounds(node: torch.fx.Node) -> Optional[tuple]:
    """(symbol, graph input node, Python text of the size with `{x}` for that input) for a size
    read from the data of a graph input: bincount of a graph input (max(x) + 1, at least
    minlength). None otherwise."""
    if node.target is not aten.bincount.default:
        return None
    x = node.args[0]
    minlength = node.args[2] if len(node.args) > 2 else node.kwargs.get("minlength", 0)
    if not isinstance(x, torch.fx.Node) or x.op != "placeholder" or not isinstance(minlength, int):
        return None
    return data_bound_symbol(node), x, f"_bincount_length({{x}}, {minlength})"


def size_bounds(node: torch.fx.Node) -> Optional[dict]:
    """{unbacked symbol: upper bound (sympy, over the node's input sizes)} for every size this
    node makes data-dependent; {} when it makes none; None when one has no known bound."""
    made = new_unbacked_sizes(node)
    if not made:
        return {}
    if node.target is aten.slice.Tensor:
        return _slice_bounds(node, made)
    read = data_bounds(node)
    if read is not None:
        return {sym: read[0] for sym in made}
    fn = SIZE_BOUNDS.get(node.target)
    if fn is None:
        return None
    bound = fn(node)
    return {sym: bound for sym in made}


def unbounded_size_reason(node: torch.fx.Node) -> Optional[str]:
    """Why a node's data-dependent result size cannot be compiled (None when it can)."""
    if size_bounds(node) is not None:
        return None
    made = ", ".join(sorted(map(str, new_unbacked_sizes(node))))
    return (f"its output size depends on the data ({made}) with no upper bound known from the input "
            f"sizes; data-dependent sizes are compiled for nonzero, masked_select, unique, "
            f"unique_consecutive, slices with data-dependent bounds and bincount of a graph input")


def graph_size_bounds(gm: torch.fx.GraphModule) -> dict:
    """{unbacked symbol: bound} over every node of the graph that has one."""
    bounds = {}
    for node in gm.graph.nodes:
        if node.op == "call_function":
            found = size_bounds(node)
            if found:
                bounds.update(found)
    return bounds


def resolve_bound(expr: sympy.Expr, bounds: dict, known: set) -> Optional[sympy.Expr]:
    """`expr` with every unbacked symbol not in `known` replaced by its bound (repeatedly: a
    bound may name an earlier unbacked size). Sizes only grow with their symbols (products and
    maxima of sizes), so the result bounds `expr`. None when a symbol has no bound."""
    for _ in range(64):
        free = [s for s in expr.free_symbols if s not in known and str(s).startswith("u")]
        if not free:
            return expr
        if any(s not in bounds for s in free):
            return None
        expr = expr.xreplace({s: bounds[s] for s in free})
    return None


def _fake_range_bound(node: torch.fx.Node) -> Optional[sympy.Expr]:
    """The upper bound PyTorch's fake implementation states for the size `node` creates (the
    input's numel; for masked_select that of `self`, not of the broadcast)."""
    if node.target is aten.slice.Tensor:
        return None  # per dimension: see `_restated_range`
    if node.target is aten.masked_select.default:
        return _numel(_arg_val(node, 0))
    if node.target in SIZE_BOUNDS:
        return SIZE_BOUNDS[node.target](node)
    return None  # (bincount's fake range has no upper bound)


def _restated_range(condition, creators: dict) -> bool:
    """Whether a SymBool is `u >= 0` or `u <= <the fake implementation's bound>` for a size `u`
    created by one of our ops."""
    expr = condition.node.expr if isinstance(condition, torch.SymBool) else None
    if not isinstance(expr, (sympy.GreaterThan, sympy.LessThan)) or expr.lhs not in creators:
        return False
    node = creators[expr.lhs]
    if isinstance(expr, sympy.GreaterThan):
        return expr.rhs == 0
    if node.target is aten.slice.Tensor:
        bounds = _slice_bounds(node, {expr.lhs}) or {}
        return bounds.get(expr.lhs) == expr.rhs
    return _fake_range_bound(node) == expr.rhs


def drop_restated_asserts(gm: torch.fx.GraphModule) -> None:
    """Remove runtime assertions that are not the user's checks but restate PyTorch's view and
    size arithmetic, and the nodes only they used:
    - those reading `sym_storage_offset` (a slice's storage offset is >= 0): the lowered code
      computes values, not views, and has no storage offsets;
    - `u >= 0` and `u <= N` for a size `u` that nonzero, masked_select, unique or a slice creates,
      the range its fake implementation states: the lowering computes the size as eager does, and
      for masked_select that range is wrong (N is `self`'s numel, not the broadcast's: a mask
      larger than `self` selects more). A user's `torch._check` of exactly that form is dropped too.
    """
    creators = {}
    for node in gm.graph.nodes:
        if node.op == "call_function" and size_bounds(node):
            for sym in new_unbacked_sizes(node):
                creators[sym] = node
    offsets = [n for n in gm.graph.nodes if n.op == "call_function" and n.target is aten.sym_storage_offset.default]

    def reads_offset(node) -> bool:
        if node in offsets:
            return True
        return any(reads_offset(a) for a in node.all_input_nodes
                   if not isinstance(a.meta.get("val"), torch.Tensor))

    dropped = False
    for node in list(gm.graph.nodes):
        if node.op == "call_function" and node.target is aten._assert_scalar.default:
            condition = node.args[0].meta.get("val") if isinstance(node.args[0], torch.fx.Node) else None
            if reads_offset(node) or _restated_range(condition, creators):
                gm.graph.erase_node(node)
                dropped = True
    if not dropped:
        return
    changed = True
    while changed:
        changed = False
        for node in reversed(list(gm.graph.nodes)):
            if node.op == "call_function" and not node.users and _is_scalar_node(node):
                gm.graph.erase_node(node)
                changed = True
    gm.recompile()


def _is_scalar_node(node: torch.fx.Node) -> bool:
    """Pure integer computations (comparisons, arithmetic, sizes) whose results may be dropped."""
    import operator

    return node.target in (aten.sym_storage_offset.default, aten.sym_size.int, operator.ge, operator.le,
                           operator.gt, operator.lt, operator.eq, operator.ne, operator.add, operator.sub,
                           operator.mul)


# ----- lowering rules ----------------------------------------------------------------------------

def _i64() -> ir.Type:
    return ir.IntegerType.get_signless(64)


def _idx(value: int) -> ir.Value:
    return b.index_constant(value)


def _flat(x: ir.Value) -> ir.Value:
    """A tensor as 1-D, row-major (a 0-d tensor as one element)."""
    t = ir.RankedTensorType(x.type)
    if t.rank == 1:
        return x
    if t.rank == 0:
        return b.expand_shape(x, ir.RankedTensorType.get([1], t.element_type), [], [1])
    return b.collapse_shape(x, [list(range(t.rank))])


def _bytes(x: ir.Value, dtype: torch.dtype) -> tuple[ir.Value, torch.dtype]:
    """Bool tensors are handled as bytes (bool temporaries cannot live in buffers)."""
    if dtype == torch.bool:
        return b.cast_tensor(x, torch.bool, torch.uint8), torch.uint8
    return x, dtype


def _not_zero(v: ir.Value, dtype: torch.dtype) -> ir.Value:
    if b.is_float(dtype):  # NaN is nonzero, as in eager
        return arith.CmpFOp(arith.CmpFPredicate.UNE, v, b.constant(0.0, dtype)).result
    return arith.CmpIOp(arith.CmpIPredicate.ne, v, b.constant(0, dtype)).result


def _differs(a: ir.Value, c: ir.Value, dtype: torch.dtype) -> ir.Value:
    """`a != c` as eager compares elements (NaN differs from everything, itself included)."""
    if b.is_float(dtype):
        return arith.CmpFOp(arith.CmpFPredicate.UNE, a, c).result
    return arith.CmpIOp(arith.CmpIPredicate.ne, a, c).result


def _for(n: b.Size, inits: list, body: Callable) -> list:
    """`scf.for i in [0, n)` carrying `inits`; `body(i, *carried) -> new carried values`."""
    loop = scf.ForOp(_idx(0), b.as_index(n), _idx(1), inits)
    with ir.InsertionPoint(loop.body):
        scf.YieldOp(body(loop.induction_variable, *loop.inner_iter_args))
    return list(loop.results)


def _if(cond: ir.Value, values: list, then_fn: Callable) -> list:
    """`scf.if cond` yielding `then_fn()` or `values` unchanged."""
    op = scf.IfOp(cond, [v.type for v in values], has_else=True)
    with ir.InsertionPoint(op.then_block):
        scf.YieldOp(then_fn())
    with ir.InsertionPoint(op.else_block):
        scf.YieldOp(values)
    return list(op.results)


def _inc(i: ir.Value) -> ir.Value:
    return arith.AddIOp(i, _idx(1)).result


def _as_i64(i: ir.Value) -> ir.Value:
    return arith.IndexCastOp(_i64(), i).result


def _numel_of(x: ir.Value) -> b.Size:
    total = 1
    for s in b.sizes_of(x):
        if isinstance(total, int) and isinstance(s, int):
            total *= s
        else:
            total = arith.MulIOp(b.as_index(total), b.as_index(s)).result
    return total


@lowers(aten.nonzero.default, dtypes=SORT_DTYPES)
def nonzero(ctx: LoweringContext, x: ir.Value):
    spec = ctx.in_specs[0]
    x, dtype = _bytes(x, spec.dtype)
    rank = spec.rank
    sizes = b.sizes_of(x)
    flat = _flat(x)
    n = _numel_of(x)
    if n == 0:
        return b.empty([0, rank], torch.int64)

    def body(i, out, count):
        def write():
            rest, result = i, out
            for d in reversed(range(rank)):
                size = b.as_index(sizes[d])
                coord = arith.RemUIOp(rest, size).result if d else rest
                rest = arith.DivUIOp(rest, size).result
                result = tensor.InsertOp(_as_i64(coord), result, [count, _idx(d)]).result
            return [result, _inc(count)]

        return _if(_not_zero(tensor.ExtractOp(flat, [i]).result, dtype), [out, count], write)

    out, count = _for(n, [b.empty([n, rank], torch.int64), _idx(0)], body)
    return extract_slice(out, [0, 0], [count, rank], [1, 1])


def _broadcast_sizes(xs: list) -> list:
    """Sizes of the broadcast of tensors (right-aligned; a dynamic pair takes the max)."""
    rank = max(ir.RankedTensorType(x.type).rank for x in xs)
    out = []
    for d in range(rank):
        found: list = []
        for x in xs:
            sizes = b.sizes_of(x)
            j = d - (rank - len(sizes))
            if j >= 0:
                found.append(sizes[j])
        static = [s for s in found if isinstance(s, int) and s != 1]
        dynamic = [s for s in found if not isinstance(s, int)]
        if static:
            out.append(static[0])
        elif dynamic:
            size = dynamic[0]
            for other in dynamic[1:]:
                size = arith.MaxUIOp(b.as_index(size), b.as_index(other)).result
            out.append(size)
        else:
            out.append(1)
    return out


def _broadcast_to(x: ir.Value, sizes: list, dtype: torch.dtype) -> ir.Value:
    if b.sizes_of(x) == sizes and all(isinstance(s, int) for s in sizes):
        return x
    out_shape = [s if isinstance(s, int) else None for s in sizes]
    operand_shape = list(b.static_shape(x))
    # A dynamic dim is taken as not broadcast (size 1 at run time would need another map): Dynamo
    # specializes sizes 0 and 1, so a `?` dim is >= 2 and equals the other operand's.
    return b.generic([x], [b.empty(sizes, dtype)],
                     [b.broadcast_map(operand_shape, out_shape), b.identity_map(len(sizes))],
                     ["parallel"] * len(sizes), lambda e, _: e)


@lowers(aten.masked_select.default, dtypes=SORT_DTYPES)
def masked_select(ctx: LoweringContext, x: ir.Value, mask: ir.Value):
    dtype = ctx.in_specs[0].dtype
    x, work = _bytes(x, dtype)
    mask, _ = _bytes(mask, torch.bool)
    sizes = _broadcast_sizes([x, mask])
    flat_x = _flat(_broadcast_to(x, sizes, work))
    flat_mask = _flat(_broadcast_to(mask, sizes, torch.uint8))
    n = 1
    for s in sizes:
        n = n * s if isinstance(n, int) and isinstance(s, int) else arith.MulIOp(b.as_index(n), b.as_index(s)).result
    if n == 0:
        return b.empty([0], dtype)

    def body(i, out, count):
        def write():
            v = tensor.ExtractOp(flat_x, [i]).result
            return [tensor.InsertOp(v, out, [count]).result, _inc(count)]

        return _if(_not_zero(tensor.ExtractOp(flat_mask, [i]).result, torch.uint8), [out, count], write)

    out, count = _for(n, [b.empty([n], work), _idx(0)], body)
    result = extract_slice(out, [0], [count], [1])
    return b.cast_tensor(result, work, dtype)


def _runs(values: ir.Value, dtype: torch.dtype, n: b.Size, source_of=None):
    """Groups of equal neighbours in a 1-D tensor: (first value of each group, group index of
    each element, group sizes, group count). `source_of(i)` is where element i came from (for
    the group index per element); default i."""
    def body(i, firsts, groups, counts, count):
        v = tensor.ExtractOp(values, [i]).result
        is_first = arith.CmpIOp(arith.CmpIPredicate.eq, i, _idx(0)).result
        previous = tensor.ExtractOp(values, [b.select(is_first, i, arith.SubIOp(i, _idx(1)).result)]).result
        new = arith.OrIOp(is_first, _differs(v, previous, dtype)).result
        count = arith.AddIOp(count, arith.IndexCastOp(b.index_type(), arith.ExtUIOp(_i64(), new).result).result).result
        group = arith.SubIOp(count, _idx(1)).result
        firsts = tensor.InsertOp(v, firsts, [group]).result
        source = source_of(i) if source_of is not None else i
        groups = tensor.InsertOp(_as_i64(group), groups, [source]).result
        old = tensor.ExtractOp(counts, [group]).result
        counts = tensor.InsertOp(arith.AddIOp(old, b.constant(1, torch.int64)).result, counts, [group]).result
        return [firsts, groups, counts, count]

    inits = [b.empty([n], dtype), b.empty([n], torch.int64), b.full([n], 0, torch.int64), _idx(0)]
    firsts, groups, counts, count = _for(n, inits, body)
    return firsts, groups, counts, count


def _unique_results(ctx: LoweringContext, x: ir.Value, firsts, groups, counts, count, work: torch.dtype,
                    return_inverse: bool, return_counts: bool):
    dtype = ctx.in_specs[0].dtype
    values = b.cast_tensor(extract_slice(firsts, [0], [count], [1]), work, dtype)
    spec = ctx.in_specs[0]
    if return_inverse:
        if spec.rank == 1:
            inverse = groups
        elif spec.rank == 0:
            inverse = b.collapse_shape(groups, [])
        else:
            out_type = ir.RankedTensorType.get([ir.ShapedType.get_dynamic_size() if s is None else s
                                                for s in spec.shape], _i64())
            inverse = b.expand_shape(groups, out_type, [list(range(spec.rank))], b.sizes_of(x))
    else:
        inverse = b.empty([0], torch.int64)
    counted = extract_slice(counts, [0], [count], [1]) if return_counts else b.empty([0], torch.int64)
    return values, inverse, counted


def _empty_unique(ctx, x, return_inverse):
    dtype = ctx.in_specs[0].dtype
    spec = ctx.in_specs[0]
    inverse = b.empty([0] * spec.rank if return_inverse else [0], torch.int64)
    return b.empty([0], dtype), inverse, b.empty([0], torch.int64)


@lowers(aten._unique2.default, dtypes=SORT_DTYPES)
def unique2(ctx: LoweringContext, x: ir.Value, sorted=True, return_inverse=False, return_counts=False):
    # sorted=False: eager's CPU kernel returns sorted values too, so one answer serves both.
    for name, flag in (("sorted", sorted), ("return_inverse", return_inverse), ("return_counts", return_counts)):
        ctx.require(isinstance(flag, bool), f"{name} must be a compile-time bool")
    return _unique_sorted(ctx, x, return_inverse, return_counts)


@lowers(aten.unique_dim.default, dtypes=SORT_DTYPES)
def unique_dim(ctx: LoweringContext, x: ir.Value, dim, sorted=True, return_inverse=False, return_counts=False):
    """Along the one dimension of a 1-d tensor: unique elements, as `_unique2`. A tensor of more
    dimensions needs a lexicographic sort of its slices, which is not lowered."""
    spec = ctx.in_specs[0]
    ctx.require(spec.rank == 1 and ctx.static_int(dim, "dim") in (0, -1),
                "unique along a dimension of a tensor of more than one dimension is not supported "
                "(it sorts slices lexicographically)")
    # (eager's unique_dim returns the inverse and the counts whether asked for or not)
    return _unique_sorted(ctx, x, True, True)


def _flat_operand(ctx: LoweringContext, x: ir.Value):
    """x flattened (bool as bytes), the dtype to work in, and its element count."""
    src, work = _bytes(x, ctx.in_specs[0].dtype)
    return _flat(src), work, _numel_of(src)


def _unique_sorted(ctx: LoweringContext, x: ir.Value, return_inverse: bool, return_counts: bool):
    flat, work, n = _flat_operand(ctx, x)
    if n == 0:
        return _empty_unique(ctx, x, return_inverse)
    # Equal values need no particular order here: eager's std::sort replay is O(n log n) for a
    # static size; the stable odd-even sort serves a dynamic one (n passes).
    static = isinstance(n, int)
    values, positions = (std_sort_along if static else sort_along)(flat, 0, work, False)
    firsts, groups, counts, count = _runs(
        values, work, n,
        source_of=lambda i: arith.IndexCastOp(b.index_type(), tensor.ExtractOp(positions, [i]).result).result)
    return _unique_results(ctx, x, firsts, groups, counts, count, work, return_inverse, return_counts)


@lowers(aten.unique_consecutive.default, dtypes=SORT_DTYPES)
def unique_consecutive(ctx: LoweringContext, x: ir.Value, return_inverse=False, return_counts=False, dim=None):
    for name, flag in (("return_inverse", return_inverse), ("return_counts", return_counts)):
        ctx.require(isinstance(flag, bool), f"{name} must be a compile-time bool")
    if dim is not None:
        return _unique_consecutive_slices(ctx, x, ctx.static_int(dim, "dim"), return_inverse, return_counts)
    flat, work, n = _flat_operand(ctx, x)
    if n == 0:
        return _empty_unique(ctx, x, return_inverse)
    firsts, groups, counts, count = _runs(flat, work, n)
    return _unique_results(ctx, x, firsts, groups, counts, count, work, return_inverse, return_counts)


@lowers(aten._local_scalar_dense.default, dtypes=SORT_DTYPES)
def local_scalar_dense(ctx: LoweringContext, x: ir.Value):
    """`tensor.item()`: the element, as the `i64`/`f64`/`i1` scalar a SymInt/float/bool is."""
    spec = ctx.in_specs[0]
    ctx.require(spec.rank == 0 or all(s == 1 for s in spec.shape), "item() of a tensor with more than one element")
    v = tensor.ExtractOp(x, [_idx(0)] * spec.rank).result
    dtype = spec.dtype
    if dtype == torch.bool:
        return v
    if b.is_float(dtype):
        return v if dtype == torch.float64 else arith.ExtFOp(ir.F64Type.get(), v).result
    if dtype == torch.int64:
        return v
    return (arith.ExtUIOp if b.is_unsigned(dtype) else arith.ExtSIOp)(_i64(), v).result


RUNTIME_CHECKS = "runtime_checks"  # ctx.state key: the conditions of `_assert_scalar`s, in order


@lowers(aten._assert_scalar.default)
def assert_scalar(ctx: LoweringContext, condition, message=""):
    """Recorded, not dropped: the driver reports each condition and Python raises when false."""
    if isinstance(condition, ir.Value):
        flag = condition if str(condition.type) == "i1" else arith.CmpIOp(
            arith.CmpIPredicate.ne, condition, arith.ConstantOp(condition.type, 0).result).result
    else:
        flag = arith.ConstantOp(ir.IntegerType.get_signless(1), int(bool(condition))).result
    ctx.state.setdefault(RUNTIME_CHECKS, []).append(flag)
    return None  # the importer gives the op one `!torch.none` result


@lowers(aten.bincount.default, dtypes=FLOAT_DTYPES + INT_DTYPES)
def bincount(ctx: LoweringContext, x: ir.Value, weights=None, minlength=0):
    """Counts (or sums of weights) per value; the length max(x) + 1 (at least minlength) is
    computed here and, for a graph output, first read by Python from the input (`data_bounds`),
    which also rejects negative values as eager does."""
    minlength = ctx.static_int(minlength, "minlength")
    spec = ctx.in_specs[0]
    ctx.require(spec.rank == 1 and not b.is_float(spec.dtype), "bincount needs a 1-d integer tensor")
    out_dtype = ctx.out_spec.dtype
    n = b.sizes_of(x)[0]

    def largest(i, m):
        v = b.convert(tensor.ExtractOp(x, [i]).result, spec.dtype, torch.int64)
        return [arith.MaxSIOp(m, v).result]

    (top,) = _for(n, [b.constant(-1, torch.int64)], largest)
    length = arith.MaxSIOp(arith.AddIOp(top, b.constant(1, torch.int64)).result,
                           b.constant(minlength, torch.int64)).result
    length = arith.IndexCastOp(b.index_type(), length).result
    counts = b.full([length], 0, out_dtype)
    weight_dtype = ctx.in_specs[1].dtype if weights is not None else None

    def add(i, out):
        bin_ = arith.IndexCastOp(b.index_type(), b.convert(tensor.ExtractOp(x, [i]).result, spec.dtype,
                                                             torch.int64)).result
        old = tensor.ExtractOp(out, [bin_]).result
        if weights is None:
            step = b.constant(1, out_dtype)
        else:
            step = b.convert(tensor.ExtractOp(weights, [i]).result, weight_dtype, out_dtype)
        new = arith.AddFOp(old, step).result if b.is_float(out_dtype) else arith.AddIOp(old, step).result
        return [tensor.InsertOp(new, out, [bin_]).result]

    (counts,) = _for(n, [counts], add)
    return counts


def _unique_consecutive_slices(ctx: LoweringContext, x: ir.Value, dim: int, return_inverse: bool,
                               return_counts: bool):
    """unique_consecutive along `dim`: runs of equal slices (every element equal, NaN never)."""
    spec = ctx.in_specs[0]
    rank = spec.rank
    ctx.require(rank >= 1 and -rank <= dim < rank, f"dim {dim} out of range for rank {rank}")
    d = dim % rank
    ctx.require(ctx.out_specs[0].rank == rank,
                f"PyTorch's shape function gives the result rank {ctx.out_specs[0].rank} for dim={dim} of a "
                f"rank-{rank} tensor (a negative dim is not wrapped there); eager's is rank {rank}")
    dtype = spec.dtype
    src, work = _bytes(x, dtype)
    sizes = b.sizes_of(src)
    n = sizes[d]
    if n == 0 or 0 in [s for i, s in enumerate(sizes) if i != d]:
        ctx.require(n == 0, "unique_consecutive of slices with no elements is not supported")
        return (b.cast_tensor(b.empty(sizes, work), work, dtype), b.empty([0], torch.int64),
                b.empty([0], torch.int64))
    # starts[k] = 1 where slice k differs from slice k - 1 (and for k = 0)
    less = list(sizes)
    less[d] = arith.SubIOp(b.as_index(n), _idx(1)).result
    later = extract_slice(src, [1 if i == d else 0 for i in range(rank)], less, [1] * rank)
    earlier = extract_slice(src, [0] * rank, less, [1] * rank)
    identity = b.identity_map(rank)
    differs = b.generic([later, earlier], [b.empty(less, torch.int64)], [identity] * 3, ["parallel"] * rank,
                        lambda p, q, _: arith.ExtUIOp(_i64(), _differs(p, q, work)).result)
    others = [i for i in range(rank) if i != d]
    changed = b.reduce(differs, others, False, 0, torch.int64, lambda e, a: arith.MaxSIOp(e, a).result) \
        if others else differs
    starts = tensor.InsertSliceOp(changed, b.full([n], 1, torch.int64), [], [less[d]], [], [1],
                                  [ir.ShapedType.get_dynamic_size()], [1]).result

    def body(i, firsts, groups, counts, count):
        new = arith.CmpIOp(arith.CmpIPredicate.ne, tensor.ExtractOp(starts, [i]).result,
                           b.constant(0, torch.int64)).result
        count = arith.AddIOp(count, arith.IndexCastOp(b.index_type(), arith.ExtUIOp(_i64(), new).result).result).result
        group = arith.SubIOp(count, _idx(1)).result
        first = b.select(new, _as_i64(i), tensor.ExtractOp(firsts, [group]).result)
        firsts = tensor.InsertOp(first, firsts, [group]).result
        groups = tensor.InsertOp(_as_i64(group), groups, [i]).result
        old = tensor.ExtractOp(counts, [group]).result
        counts = tensor.InsertOp(arith.AddIOp(old, b.constant(1, torch.int64)).result, counts, [group]).result
        return [firsts, groups, counts, count]

    inits = [b.full([n], 0, torch.int64), b.empty([n], torch.int64), b.full([n], 0, torch.int64), _idx(0)]
    firsts, groups, counts, count = _for(n, inits, body)
    out_sizes = list(sizes)
    out_sizes[d] = count

    def gather(_out):
        from mlir.dialects import linalg

        index = [linalg.IndexOp(ir.IntegerAttr.get(_i64(), i)).result for i in range(rank)]
        index[d] = arith.IndexCastOp(b.index_type(), tensor.ExtractOp(firsts, [index[d]]).result).result
        return tensor.ExtractOp(src, index).result

    values = b.generic([], [b.empty(out_sizes, work)], [b.identity_map(rank)], ["parallel"] * rank, gather)
    values = b.cast_tensor(values, work, dtype)
    # (along a dimension eager returns the inverse and counts whether asked for or not)
    inverse = groups if return_inverse or ctx.out_specs[1].shape != (0,) else b.empty([0], torch.int64)
    counted = extract_slice(counts, [0], [count], [1]) if return_counts or ctx.out_specs[2].shape != (0,) \
        else b.empty([0], torch.int64)
    return values, inverse, counted
