"""Contractions: mm, bmm, addmm, baddbmm. Each is a named linalg op on a zero-filled
accumulator, so the code generator can pick the contraction schedule later. `DECOMPOSITIONS`
(end of the module) writes addbmm, _cdist_forward, _pdist_forward and _trilinear with them and
vector norms.

Integer and half-precision matmuls accumulate in the output dtype (f16/bf16 in f32 and
rounded once), matching eager's CPU kernels.
"""
from __future__ import annotations

import torch

from mlir import ir
from mlir.dialects import linalg

from ..types import FLOAT_DTYPES, INT_DTYPES
from . import builders as b
from .registry import LoweringContext, lowers

aten = torch.ops.aten

MATMUL_DTYPES = FLOAT_DTYPES + INT_DTYPES


def _accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def contract(ctx: LoweringContext, kind: str, lhs: ir.Value, rhs: ir.Value) -> ir.Value:
    """lhs @ rhs for `kind` in {'mm', 'bmm'}, returned in the op's result dtype."""
    out = ctx.out_spec
    acc = _accumulator_dtype(out.dtype)
    lhs = b.cast_tensor(lhs, ctx.in_specs[0].dtype, acc) if acc != out.dtype else lhs
    rhs = b.cast_tensor(rhs, ctx.in_specs[1].dtype, acc) if acc != out.dtype else rhs
    ls, rs = b.sizes_of(lhs), b.sizes_of(rhs)
    sizes = [ls[0], rs[1]] if kind == "mm" else [ls[0], ls[1], rs[2]]
    init = b.full(sizes, 0, acc)
    op = linalg.matmul if kind == "mm" else linalg.batch_matmul
    result = op(lhs, rhs, outs=[init])
    if acc != out.dtype:
        result = b.cast_tensor(result, acc, out.dtype)
    return result


@lowers(aten.mm.default, dtypes=MATMUL_DTYPES)
def mm(ctx, a, c):
    return contract(ctx, "mm", a, c)


@lowers(aten.bmm.default, dtypes=MATMUL_DTYPES)
def bmm(ctx, a, c):
    return contract(ctx, "bmm", a, c)


def _scaled_sum(ctx, bias, product, beta, alpha, bias_spec):
    """beta * bias + alpha * product, with bias broadcast to the product's shape."""
    out = ctx.out_spec
    dt = out.dtype
    from .elementwise import _add, _mul  # scalar bodies

    def body(x, p):
        if beta != 1:
            x = _mul(dt, x, b.constant(beta, dt)) if beta != 0 else b.constant(0, dt)
        if alpha != 1:
            p = _mul(dt, p, b.constant(alpha, dt))
        return _add(dt, x, p)

    return b.elementwise([bias, product], [bias_spec.dtype, dt], out, body,
                         sizes=b.sizes_of(product))


@lowers(aten.addmm.default, dtypes=MATMUL_DTYPES)
def addmm(ctx, bias, a, c, beta=1, alpha=1):
    inner = LoweringContext(ctx.op_name, ctx.target, ctx.in_specs[1:], ctx.out_specs, ctx.location)
    product = contract(inner, "mm", a, c)
    return _scaled_sum(ctx, bias, product, beta, alpha, ctx.in_specs[0])


@lowers(aten.baddbmm.default, dtypes=MATMUL_DTYPES)
def baddbmm(ctx, bias, a, c, beta=1, alpha=1):
    inner = LoweringContext(ctx.op_name, ctx.target, ctx.in_specs[1:], ctx.out_specs, ctx.location)
    product = contract(inner, "bmm", a, c)
    return _scaled_sum(ctx, bias, product, beta, alpha, ctx.in_specs[0])


# ----- decompositions -------------------------------------------------------------------------
# Contraction-like ops PyTorch has no decomposition for, written with torch ops that reach the
# rules above (and reductions); `decompositions.decomposition_table()` merges them in.
DECOMPOSITIONS: dict = {}


def _decomposes(op):
    def register(fn):
        DECOMPOSITIONS[op] = fn
        return fn

    return register


@_decomposes(aten.addbmm.default)
def addbmm_decomposition(bias, batch1, batch2, beta=1, alpha=1):
    """beta * bias + alpha * sum_b batch1[b] @ batch2[b]: one mm over the batch folded into the
    contraction ([n, B*k] @ [B*k, m])."""
    batches, n, k = batch1.shape
    m = batch2.shape[2]
    product = torch.mm(batch1.permute(1, 0, 2).reshape(n, batches * k), batch2.reshape(batches * k, m))
    if not product.dtype.is_floating_point:  # eager converts the scalars to the integer dtype
        alpha, beta = int(alpha), int(beta)
    if alpha != 1:
        product = product * alpha
    if beta == 0:  # eager ignores the bias then (NaN in it does not propagate)
        return product
    return (bias if beta == 1 else bias * beta) + product


@_decomposes(aten._cdist_forward.default)
def cdist_forward(x1, x2, p, compute_mode=None):
    """Pairwise p-norm distances [.., P, R] of rows of x1 [.., P, M] and x2 [.., R, M]. For p=2
    where eager takes its matmul form (compute_mode 1, or None/0 with more than 25 rows), the same
    form (PyTorch's `_euclidean_dist` decomposition: one matmul, no [P, R, M] difference);
    otherwise the vector norm of the broadcast differences, as eager's direct kernel."""
    rows = max(x1.shape[-2], x2.shape[-2])
    if p == 2.0 and (compute_mode == 1 or (compute_mode in (None, 0) and rows > 25)):
        from torch._decomp.decompositions import _euclidean_dist

        return _euclidean_dist(x1, x2)
    return torch.linalg.vector_norm(x1.unsqueeze(-2) - x2.unsqueeze(-3), ord=p, dim=-1)


@_decomposes(aten._pdist_forward.default)
def pdist_forward(x, p=2.0):
    """Distances between the rows i < j of x [N, M], in row-major order of (i, j): the upper
    triangle of the full distance matrix."""
    n = x.shape[0]
    if n < 2:  # no pairs
        return x.new_zeros((0,))
    rows, cols = torch.triu_indices(n, n, 1, device=x.device)
    return torch.linalg.vector_norm(x[rows] - x[cols], ord=p, dim=-1)


@_decomposes(aten._trilinear.default)
def trilinear(i1, i2, i3, expand1, expand2, expand3, sumdim, unroll_dim=1):
    """ATen's `_trilinear` (nn.functional.bilinear): each input lacks the dims at its `expand`
    positions; the product of the three is summed over `sumdim`. Written as an einsum, which
    contracts pairwise through bmm instead of materializing the full product."""
    total = i1.dim() + len(expand1)
    letters = [chr(ord("a") + d) for d in range(total)]

    def subscript(dims):
        return "".join(letters[d] for d in range(total) if d not in dims)

    summed = {d % total for d in sumdim}
    out = "".join(letters[d] for d in range(total) if d not in summed)
    equation = f"{subscript(set(expand1))},{subscript(set(expand2))},{subscript(set(expand3))}->{out}"
    return torch.einsum(equation, i1, i2, i3)
