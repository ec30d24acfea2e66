"""Contractions: mm, bmm, addmm, baddbmm. Each is a named linalg op on a zero-filled
accumulator, so the code generator can pick the contraction schedule later.

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
