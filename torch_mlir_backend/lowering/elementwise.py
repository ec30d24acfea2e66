"""Elementwise ops: arithmetic with broadcasting and PyTorch type promotion, unary math,
comparisons, `where`, casts and activations. Each becomes one `linalg.generic`.

Promotion follows `torch._prims_common.elementwise_dtypes`, so wrapped Python numbers, 0-d
tensors and half-precision upcasting behave as in eager: half/bfloat16 math is computed in f32
and rounded once, as eager's CPU kernels do.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import torch
from torch._prims_common import ELEMENTWISE_TYPE_PROMOTION_KIND as Promotion, elementwise_dtypes

from mlir import ir
from mlir.dialects import arith, math as math_d

from ..types import COMPLEX_DTYPES, FLOAT_DTYPES, INT_DTYPES, SUPPORTED_AND_COMPLEX_DTYPES, SUPPORTED_DTYPES
from . import builders as b
from .complex import COMPLEX_BODIES, cast_tensor as cast_any_tensor, complex_pointwise, complex_where, is_complex
from .registry import LoweringContext, lowers

aten = torch.ops.aten
prims = torch.ops.prims

NUMERIC = tuple(d for d in SUPPORTED_DTYPES if d != torch.bool)


def _proxy(value: Any, spec) -> Any:
    """A stand-in for one operand that `elementwise_dtypes` understands."""
    if spec is None:
        if isinstance(value, ir.Value):  # runtime scalar
            return 1.0 if str(value.type) == "f64" else (True if str(value.type) == "i1" else 1)
        return value
    if not isinstance(value, ir.Value):  # wrapped Python number
        return bool(value) if spec.dtype == torch.bool else (float(value) if spec.dtype.is_floating_point else int(value))
    return torch.empty([1] * spec.rank, dtype=spec.dtype, device="meta")


def promoted(ctx: LoweringContext, operands: Sequence[Any], kind: Promotion) -> tuple[torch.dtype, torch.dtype]:
    """(computation dtype, result dtype) of an elementwise op, as eager computes them."""
    proxies = [_proxy(v, s) for v, s in zip(operands, ctx.in_specs) if v is not None]
    return elementwise_dtypes(*proxies, type_promotion_kind=kind)


def operand_dtype(ctx: LoweringContext, i: int, value: Any, compute: torch.dtype) -> torch.dtype:
    spec = ctx.in_specs[i]
    if isinstance(value, ir.Value) and spec is not None and isinstance(value.type, ir.RankedTensorType):
        return spec.dtype
    return compute


def pointwise(ctx: LoweringContext, operands: Sequence[Any], body: Callable[..., ir.Value],
              kind: Promotion = Promotion.DEFAULT, compute: Optional[torch.dtype] = None) -> ir.Value:
    """Apply `body` (on scalars of the compute dtype) elementwise; result dtype is the op's."""
    if compute is None:
        compute, _ = promoted(ctx, operands, kind)
    if is_complex(compute):  # only ops with a complex body accept complex operands (see register_pointwise)
        return complex_pointwise(ctx, operands, compute)
    dtypes = [operand_dtype(ctx, i, v, compute) for i, v in enumerate(operands)]
    return b.elementwise(list(operands), dtypes, ctx.out_spec, lambda *xs: body(compute, *xs), compute_dtype=compute)


def register_pointwise(target, body: Callable[..., ir.Value], kind: Promotion = Promotion.DEFAULT,
                       dtypes=SUPPORTED_DTYPES):
    """One-line registration of an elementwise op: `body(compute_dtype, *scalars) -> scalar`.
    Ops with a complex body (lowering/complex.py) also accept complex dtypes."""
    if target in COMPLEX_BODIES:
        dtypes = tuple(dtypes) + COMPLEX_DTYPES

    @lowers(target, dtypes=dtypes, wrapped_scalars=True)
    def rule(ctx: LoweringContext, *operands):
        return pointwise(ctx, operands, body, kind)

    return rule


# ----- scalar bodies ---------------------------------------------------------------------------
def _f(op_f, op_i=None, op_u=None):
    """A binary body choosing the arith op by the compute dtype's kind."""

    def body(dt, x, y):
        if b.is_float(dt):
            return op_f(x, y).result
        if b.is_unsigned(dt) and op_u is not None:
            return op_u(x, y).result
        return op_i(x, y).result

    return body


_add = _f(arith.AddFOp, arith.AddIOp)
_sub = _f(arith.SubFOp, arith.SubIOp)
_mul = _f(arith.MulFOp, arith.MulIOp)


def _with_alpha(op):
    def body(dt, x, y, alpha=1):
        # alpha arrives as a scalar of the compute dtype (or the default 1)
        if not (isinstance(alpha, (int, float)) and alpha == 1):
            y = _mul(dt, y, alpha if isinstance(alpha, ir.Value) else b.constant(alpha, dt))
        return op(dt, x, y)

    return body


register_pointwise(aten.add.Tensor, _with_alpha(_add))
register_pointwise(aten.add.Scalar, _with_alpha(_add))
register_pointwise(aten.sub.Tensor, _with_alpha(_sub), dtypes=NUMERIC)
register_pointwise(aten.sub.Scalar, _with_alpha(_sub), dtypes=NUMERIC)
register_pointwise(aten.mul.Tensor, _mul)
register_pointwise(aten.mul.Scalar, _mul)
register_pointwise(aten.rsub.Scalar, lambda dt, x, y, alpha=1: _with_alpha(_sub)(dt, y, x, alpha), dtypes=NUMERIC)
register_pointwise(aten.rsub.Tensor, lambda dt, x, y, alpha=1: _with_alpha(_sub)(dt, y, x, alpha), dtypes=NUMERIC)


def _true_div(dt, x, y):
    return arith.DivFOp(x, y).result


register_pointwise(aten.div.Tensor, _true_div, Promotion.INT_TO_FLOAT)
register_pointwise(aten.div.Scalar, _true_div, Promotion.INT_TO_FLOAT)


def _floor_div_int(dt, x, y):
    if b.is_unsigned(dt):
        return arith.DivUIOp(x, y).result
    return arith.FloorDivSIOp(x, y).result


def _div_mode(dt, x, y, mode):
    if mode is None:
        return _true_div(dt, x, y)
    if b.is_float(dt):
        q = arith.DivFOp(x, y).result
        return math_d.TruncOp(q).result if mode == "trunc" else _float_floor_divide(dt, x, y)
    if mode == "trunc":
        return (arith.DivUIOp if b.is_unsigned(dt) else arith.DivSIOp)(x, y).result
    return _floor_div_int(dt, x, y)


def _float_floor_divide(dt, x, y):
    # PyTorch's floor division: (x - fmod(x, y)) / y, floored, with the sign fix-up of fmod.
    mod = arith.RemFOp(x, y).result
    div = arith.DivFOp(arith.SubFOp(x, mod).result, y).result
    zero = b.constant(0, dt)
    needs_fix = arith.AndIOp(
        arith.CmpFOp(arith.CmpFPredicate.ONE, mod, zero).result,
        arith.XOrIOp(arith.CmpFOp(arith.CmpFPredicate.OLT, y, zero).result,
                     arith.CmpFOp(arith.CmpFPredicate.OLT, mod, zero).result).result).result
    div = b.select(needs_fix, arith.SubFOp(div, b.constant(1, dt)).result, div)
    floored = math_d.FloorOp(div).result
    # Snap to the nearest integer as eager does when the division is (almost) exact.
    half = b.constant(0.5, dt)
    floored = b.select(arith.CmpFOp(arith.CmpFPredicate.OGT, arith.SubFOp(div, floored).result, half).result,
                       arith.AddFOp(floored, b.constant(1, dt)).result, floored)
    zero_div = arith.CmpFOp(arith.CmpFPredicate.OEQ, div, zero).result
    signed_zero = math_d.CopySignOp(zero, arith.DivFOp(x, y).result).result
    result = b.select(zero_div, signed_zero, floored)
    return b.select(arith.CmpFOp(arith.CmpFPredicate.OEQ, y, zero).result, arith.DivFOp(x, y).result, result)


@lowers(aten.div.Tensor_mode, aten.div.Scalar_mode, wrapped_scalars=True)
def _div_tensor_mode(ctx, x, y, rounding_mode=None):
    kind = Promotion.INT_TO_FLOAT if rounding_mode is None else Promotion.DEFAULT
    return pointwise(ctx, [x, y], lambda dt, a, c: _div_mode(dt, a, c, rounding_mode), kind)


def _remainder(dt, x, y):
    if b.is_float(dt):
        mod = arith.RemFOp(x, y).result
        zero = b.constant(0, dt)
        fix = arith.AndIOp(arith.CmpFOp(arith.CmpFPredicate.ONE, mod, zero).result,
                           arith.XOrIOp(arith.CmpFOp(arith.CmpFPredicate.OLT, y, zero).result,
                                        arith.CmpFOp(arith.CmpFPredicate.OLT, mod, zero).result).result).result
        return b.select(fix, arith.AddFOp(mod, y).result, mod)
    if b.is_unsigned(dt):
        return arith.RemUIOp(x, y).result
    mod = arith.RemSIOp(x, y).result
    zero = b.constant(0, dt)
    fix = arith.AndIOp(arith.CmpIOp(arith.CmpIPredicate.ne, mod, zero).result,
                       arith.XOrIOp(arith.CmpIOp(arith.CmpIPredicate.slt, y, zero).result,
                                    arith.CmpIOp(arith.CmpIPredicate.slt, mod, zero).result).result).result
    return b.select(fix, arith.AddIOp(mod, y).result, mod)


register_pointwise(aten.remainder.Tensor, _remainder, dtypes=NUMERIC)
register_pointwise(aten.remainder.Scalar, _remainder, dtypes=NUMERIC)
register_pointwise(aten.fmod.Tensor, _f(arith.RemFOp, arith.RemSIOp, arith.RemUIOp), dtypes=NUMERIC)
register_pointwise(aten.fmod.Scalar, _f(arith.RemFOp, arith.RemSIOp, arith.RemUIOp), dtypes=NUMERIC)


def _pow(dt, x, y):
    if b.is_float(dt):
        return math_d.PowFOp(x, y).result
    # Eager's powi (ATen/native/Pow.h). math.ipowi reads the exponent as signed and computes
    # 0 ** negative as 1 (a division inside): uint8 exponents >= 128 and negative ones need care.
    if b.is_unsigned(dt):
        # Binary powering with the unsigned exponent: in i64 (zero-extended), then wrapped back.
        wide = [b.convert(v, dt, torch.int64) for v in (x, y)]
        return b.convert(math_d.IPowIOp(*wide).result, torch.int64, dt)
    zero, one = b.constant(0, dt), b.constant(1, dt)
    negative = arith.CmpIOp(arith.CmpIPredicate.slt, y, zero).result
    power = math_d.IPowIOp(x, b.select(negative, zero, y)).result
    # b < 0: 1 ** b = 1, (-1) ** b = -1 for odd b and 1 for even b, anything else 0.
    odd = arith.CmpIOp(arith.CmpIPredicate.ne, arith.AndIOp(y, one).result, zero).result
    minus_one = b.constant(-1, dt)
    at_negative = b.select(arith.CmpIOp(arith.CmpIPredicate.eq, x, one).result, one,
                           b.select(arith.CmpIOp(arith.CmpIPredicate.eq, x, minus_one).result,
                                    b.select(odd, minus_one, one), zero))
    return b.select(negative, at_negative, power)


# Bool operands promote (bool ** bool is int64, as eager's BOOL_TO_LONG; ldexp(bool, bool) arrives
# as pow(2.0, bool) in float32) and are converted to the compute dtype before the body.
register_pointwise(aten.pow.Tensor_Tensor, _pow, Promotion.BOOL_TO_LONG)
register_pointwise(aten.pow.Tensor_Scalar, _pow, Promotion.BOOL_TO_LONG)
register_pointwise(aten.pow.Scalar, _pow, Promotion.BOOL_TO_LONG)
register_pointwise(aten.maximum.default, lambda dt, x, y: b.max_value(x, y, dt))
register_pointwise(aten.minimum.default, lambda dt, x, y: b.min_value(x, y, dt))
register_pointwise(aten.atan2.default, lambda dt, x, y: math_d.Atan2Op(x, y).result, Promotion.INT_TO_FLOAT)

INTEGRAL = INT_DTYPES + (torch.bool,)
register_pointwise(aten.bitwise_and.Tensor, _f(None, arith.AndIOp), dtypes=INTEGRAL)
register_pointwise(aten.bitwise_and.Scalar, _f(None, arith.AndIOp), dtypes=INTEGRAL)
register_pointwise(aten.bitwise_or.Tensor, _f(None, arith.OrIOp), dtypes=INTEGRAL)
register_pointwise(aten.bitwise_or.Scalar, _f(None, arith.OrIOp), dtypes=INTEGRAL)
register_pointwise(aten.bitwise_xor.Tensor, _f(None, arith.XOrIOp), dtypes=INTEGRAL)
register_pointwise(aten.bitwise_xor.Scalar, _f(None, arith.XOrIOp), dtypes=INTEGRAL)


def _bitwise_not(dt, x):
    return arith.XOrIOp(x, b.constant(-1 if dt != torch.bool else 1, dt)).result


register_pointwise(aten.bitwise_not.default, _bitwise_not, dtypes=INTEGRAL)


# ----- logical ops: compute on bools -----------------------------------------------------------
def _logical(op):
    @lowers(op[0], wrapped_scalars=True)
    def rule(ctx, *xs):
        return pointwise(ctx, xs, lambda dt, *ys: op[1](*ys), compute=torch.bool)

    return rule


_logical((aten.logical_and.default, lambda x, y: arith.AndIOp(x, y).result))
_logical((aten.logical_or.default, lambda x, y: arith.OrIOp(x, y).result))
_logical((aten.logical_xor.default, lambda x, y: arith.XOrIOp(x, y).result))
_logical((aten.logical_not.default, lambda x: arith.XOrIOp(x, b.constant(True, torch.bool)).result))


# ----- comparisons -----------------------------------------------------------------------------
def _compare(fpred, spred, upred):
    def body(dt, x, y):
        if b.is_float(dt):
            return arith.CmpFOp(fpred, x, y).result
        return arith.CmpIOp(upred if b.is_unsigned(dt) else spred, x, y).result

    return body


F, I = arith.CmpFPredicate, arith.CmpIPredicate
_COMPARISONS = {
    "eq": _compare(F.OEQ, I.eq, I.eq), "ne": _compare(F.UNE, I.ne, I.ne),
    "lt": _compare(F.OLT, I.slt, I.ult), "le": _compare(F.OLE, I.sle, I.ule),
    "gt": _compare(F.OGT, I.sgt, I.ugt), "ge": _compare(F.OGE, I.sge, I.uge),
}


def _register_comparison(name, body):
    overloads = (getattr(aten, name).Tensor, getattr(aten, name).Scalar)
    dtypes = SUPPORTED_AND_COMPLEX_DTYPES if all(o in COMPLEX_BODIES for o in overloads) else SUPPORTED_DTYPES

    @lowers(*overloads, dtypes=dtypes, wrapped_scalars=True)
    def rule(ctx, x, y):
        compute, _ = promoted(ctx, [x, y], Promotion.DEFAULT)
        return pointwise(ctx, [x, y], body, compute=compute)


for _name, _body in _COMPARISONS.items():
    _register_comparison(_name, _body)


@lowers(aten.where.self, dtypes=SUPPORTED_AND_COMPLEX_DTYPES, wrapped_scalars=True)
def _where(ctx, cond, x, y):
    compute = ctx.out_spec.dtype
    if is_complex(compute):
        return complex_where(ctx, cond, x, y)
    dtypes = [torch.bool, operand_dtype(ctx, 1, x, compute), operand_dtype(ctx, 2, y, compute)]
    return b.elementwise([cond, x, y], dtypes, ctx.out_spec, lambda c, u, v: b.select(c, u, v),
                         compute_dtype=compute, operand_compute_dtypes=[torch.bool, None, None])


# ----- clamp -----------------------------------------------------------------------------------
def _clamp_body(dt, x, lo=None, hi=None):
    if lo is not None:
        x = b.max_value(x, lo, dt)
    if hi is not None:
        x = b.min_value(x, hi, dt)
    return x


# On bool (eager's clamp_min/clamp_max.Tensor accept it, the Scalar overloads do not) max is `or`
# and min is `and`: b.max_value/min_value's unsigned max/min of i1.
@lowers(aten.clamp.default, dtypes=NUMERIC, wrapped_scalars=True)
@lowers(aten.clamp.Tensor, wrapped_scalars=True)
def _clamp(ctx, x, lo=None, hi=None):
    # Promote over (x, lo, hi) by position: an absent bound must not shift `hi` onto `lo`'s spec
    # (clamp(int32, None, float tensor) is float32, as eager).
    compute, _ = promoted(ctx, [x, lo, hi], Promotion.DEFAULT)
    present = [(i, v) for i, v in enumerate((x, lo, hi)) if v is not None]
    has_lo, has_hi = lo is not None, hi is not None

    def body(*vals):
        it = iter(vals[1:])
        return _clamp_body(compute, vals[0], next(it) if has_lo else None, next(it) if has_hi else None)

    return b.elementwise([v for _, v in present], [operand_dtype(ctx, i, v, compute) for i, v in present],
                         ctx.out_spec, body, compute_dtype=compute)


register_pointwise(aten.clamp_min.default, lambda dt, x, lo: b.max_value(x, lo, dt), dtypes=NUMERIC)
register_pointwise(aten.clamp_max.default, lambda dt, x, hi: b.min_value(x, hi, dt), dtypes=NUMERIC)


# ----- unary math ------------------------------------------------------------------------------
def _unary_float(target, op):
    register_pointwise(target, lambda dt, x: op(x).result, Promotion.INT_TO_FLOAT)


for _target, _op in [
    (aten.exp.default, math_d.ExpOp), (aten.exp2.default, math_d.Exp2Op), (aten.expm1.default, math_d.ExpM1Op),
    (aten.log.default, math_d.LogOp), (aten.log2.default, math_d.Log2Op), (aten.log10.default, math_d.Log10Op),
    (aten.log1p.default, math_d.Log1pOp), (aten.sqrt.default, math_d.SqrtOp), (aten.rsqrt.default, math_d.RsqrtOp),
    (aten.sin.default, math_d.SinOp), (aten.cos.default, math_d.CosOp), (aten.tan.default, math_d.TanOp),
    (aten.asin.default, math_d.AsinOp), (aten.acos.default, math_d.AcosOp), (aten.atan.default, math_d.AtanOp),
    (aten.sinh.default, math_d.SinhOp), (aten.cosh.default, math_d.CoshOp), (aten.tanh.default, math_d.TanhOp),
    (aten.asinh.default, math_d.AsinhOp), (aten.acosh.default, math_d.AcoshOp), (aten.atanh.default, math_d.AtanhOp),
    (aten.erf.default, math_d.ErfOp),
]:
    _unary_float(_target, _op)


def _sigmoid(dt, x):
    one = b.constant(1, dt)
    return arith.DivFOp(one, arith.AddFOp(one, math_d.ExpOp(arith.NegFOp(x).result).result).result).result


register_pointwise(aten.sigmoid.default, _sigmoid, Promotion.INT_TO_FLOAT)
register_pointwise(aten.reciprocal.default, lambda dt, x: arith.DivFOp(b.constant(1, dt), x).result,
                   Promotion.INT_TO_FLOAT)


def _neg(dt, x):
    if b.is_float(dt):
        return arith.NegFOp(x).result
    return arith.SubIOp(b.constant(0, dt), x).result


register_pointwise(aten.neg.default, _neg, dtypes=NUMERIC)


def _abs(dt, x):
    if b.is_float(dt):
        return math_d.AbsFOp(x).result
    if b.is_unsigned(dt):
        return x
    return math_d.AbsIOp(x).result


register_pointwise(aten.abs.default, _abs, dtypes=NUMERIC)


def _sign(dt, x):
    if dt == torch.bool:
        return x  # eager: sign(True) is True, sign(False) is False
    zero = b.constant(0, dt)
    if b.is_float(dt):
        pos = b.convert(arith.CmpFOp(F.OGT, x, zero).result, torch.bool, dt)
        neg = b.convert(arith.CmpFOp(F.OLT, x, zero).result, torch.bool, dt)
        s = arith.SubFOp(pos, neg).result
        # NaN stays NaN
        return b.select(arith.CmpFOp(F.UNO, x, x).result, x, s)
    pos = b.convert(arith.CmpIOp(I.ugt if b.is_unsigned(dt) else I.sgt, x, zero).result, torch.bool, dt)
    neg = b.convert(arith.CmpIOp(I.ult if b.is_unsigned(dt) else I.slt, x, zero).result, torch.bool, dt)
    return arith.SubIOp(pos, neg).result


register_pointwise(aten.sign.default, _sign, dtypes=SUPPORTED_DTYPES)


def _integer_identity(op):
    # floor/ceil/round/trunc are the identity on integers, as in eager.
    return lambda dt, x: op(x).result if b.is_float(dt) else x


register_pointwise(aten.floor.default, _integer_identity(math_d.FloorOp), dtypes=NUMERIC)
register_pointwise(aten.ceil.default, _integer_identity(math_d.CeilOp), dtypes=NUMERIC)
register_pointwise(aten.trunc.default, _integer_identity(math_d.TruncOp), dtypes=NUMERIC)
register_pointwise(aten.round.default, _integer_identity(math_d.RoundEvenOp), dtypes=NUMERIC)


@lowers(aten.round.decimals, dtypes=FLOAT_DTYPES)
def _round_decimals(ctx, x, decimals=0):
    scale = 10.0 ** decimals

    def body(dt, v):
        s = b.constant(scale, dt)
        return arith.DivFOp(math_d.RoundEvenOp(arith.MulFOp(v, s).result).result, s).result

    return pointwise(ctx, [x], body)


def _isnan(dt, x):
    if b.is_float(dt):
        return arith.CmpFOp(F.UNO, x, x).result
    return b.constant(False, torch.bool)


def _isinf(dt, x):
    if b.is_float(dt):
        return arith.CmpFOp(F.OEQ, math_d.AbsFOp(x).result, b.constant(math.inf, dt)).result
    return b.constant(False, torch.bool)


@lowers(aten.isnan.default)
def _isnan_rule(ctx, x):
    return pointwise(ctx, [x], _isnan, compute=ctx.in_specs[0].dtype)


@lowers(aten.isinf.default)
def _isinf_rule(ctx, x):
    return pointwise(ctx, [x], _isinf, compute=ctx.in_specs[0].dtype)


# ----- activations -----------------------------------------------------------------------------
def _relu(dt, x):
    return b.max_value(x, b.constant(0, dt), dt) if b.is_float(dt) else \
        (arith.MaxSIOp(x, b.constant(0, dt)).result if not b.is_unsigned(dt) else x)


register_pointwise(aten.relu.default, _relu, dtypes=NUMERIC)


@lowers(aten.gelu.default, dtypes=FLOAT_DTYPES)
def _gelu(ctx, x, approximate="none"):
    def body(dt, v):
        half, one = b.constant(0.5, dt), b.constant(1.0, dt)
        if approximate == "tanh":
            k = b.constant(math.sqrt(2.0 / math.pi), dt)
            c = b.constant(0.044715, dt)
            cube = arith.MulFOp(arith.MulFOp(v, v).result, v).result
            inner = arith.MulFOp(k, arith.AddFOp(v, arith.MulFOp(c, cube).result).result).result
            return arith.MulFOp(arith.MulFOp(half, v).result,
                                arith.AddFOp(one, math_d.TanhOp(inner).result).result).result
        inv_sqrt2 = b.constant(1.0 / math.sqrt(2.0), dt)
        erf = math_d.ErfOp(arith.MulFOp(v, inv_sqrt2).result).result
        return arith.MulFOp(arith.MulFOp(half, v).result, arith.AddFOp(one, erf).result).result

    return pointwise(ctx, [x], body, Promotion.DEFAULT)


@lowers(aten.hardtanh.default, dtypes=NUMERIC)
def _hardtanh(ctx, x, lo=-1.0, hi=1.0):
    return pointwise(ctx, [x], lambda dt, v: _clamp_body(dt, v, b.scalar_operand(lo, dt), b.scalar_operand(hi, dt)))


@lowers(aten.leaky_relu.default, dtypes=FLOAT_DTYPES)
def _leaky_relu(ctx, x, slope=0.01):
    def body(dt, v):
        zero = b.constant(0, dt)
        return b.select(arith.CmpFOp(F.OGT, v, zero).result, v, arith.MulFOp(v, b.constant(slope, dt)).result)

    return pointwise(ctx, [x], body)


@lowers(aten.elu.default, dtypes=FLOAT_DTYPES)
def _elu(ctx, x, alpha=1.0, scale=1.0, input_scale=1.0):
    def body(dt, v):
        zero = b.constant(0, dt)
        neg = arith.MulFOp(b.constant(alpha, dt), math_d.ExpM1Op(arith.MulFOp(v, b.constant(input_scale, dt)).result).result).result
        return arith.MulFOp(b.constant(scale, dt), b.select(arith.CmpFOp(F.OGT, v, zero).result, v, neg)).result

    return pointwise(ctx, [x], body)


# ----- casts and copies ------------------------------------------------------------------------
@lowers(aten._to_copy.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _to_copy(ctx, x, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False,
             memory_format=None):
    ctx.require(device is None or str(device).startswith("cpu"), f"device {device} is not the CPU")
    return cast_any_tensor(x, ctx.in_specs[0].dtype, ctx.out_spec.dtype, ctx)


@lowers(prims.convert_element_type.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _convert_element_type(ctx, x, dtype):
    return cast_any_tensor(x, ctx.in_specs[0].dtype, ctx.out_spec.dtype, ctx)


@lowers(aten.clone.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _clone(ctx, x, memory_format=None):
    return x


@lowers(aten.alias.default, aten.lift_fresh_copy.default, dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _alias(ctx, x):
    return x


@lowers(torch.ops.prim.NumToTensor.Scalar, wrapped_scalars=True)
def _num_to_tensor(ctx, value):
    # Keep it a number: elementwise consumers promote it as a wrapped Python number.
    if isinstance(value, ir.Value):
        from mlir.dialects import tensor

        t = b.tensor_type(ctx.out_spec)
        return tensor.FromElementsOp(t, [b.scalar_operand(value, ctx.out_spec.dtype)]).result
    return value


@lowers(aten.fill.Scalar, wrapped_scalars=True)
def _fill_scalar(ctx, x, value):
    return b.elementwise([x, value], [ctx.in_specs[0].dtype, ctx.out_spec.dtype], ctx.out_spec,
                         lambda _, v: v, compute_dtype=ctx.out_spec.dtype)
