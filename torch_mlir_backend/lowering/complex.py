"""Complex tensors (complex64, complex128, complex32): casts to and from real dtypes, building
and splitting complex values (`complex`, `polar`, `view_as_complex`, `view_as_real`,
conjugation) and the complex bodies of the elementwise rules (lowering/elementwise.py dispatches
to `complex_pointwise` when an op computes in a complex dtype).

A complex tensor is a tensor of MLIR `complex<fN>` elements (real part first, as c10::complex
stores it), so it crosses the runtime boundary like any other memref. Scalar math is `complex.*`
ops, which the pipeline's `lower-complex` stage expands into arith/math on the parts.
Semantics are eager's: real -> complex sets the imaginary part to 0, complex -> bool is
`z != 0`, complex -> any other real dtype keeps the real part (eager warns; so does compiling).
complex32 (chalf) computes in complex64 and is rounded once, as half precision is.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Optional, Sequence

import torch

from mlir import ir
from mlir.dialects import arith, complex as complex_d, linalg, math as math_d

from ..types import (
    COMPLEX_DTYPES, COMPLEX_OF_PART, COMPLEX_PART_DTYPE, FLOAT_DTYPES, SUPPORTED_AND_COMPLEX_DTYPES,
    TensorSpec,
)
from . import builders as b
from .registry import LoweringContext, lowers

aten = torch.ops.aten

REAL_FLOAT_AND_COMPLEX = FLOAT_DTYPES + COMPLEX_DTYPES


def is_complex(dtype: torch.dtype) -> bool:
    return dtype in COMPLEX_DTYPES


def part_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of a complex dtype's real and imaginary parts."""
    return COMPLEX_PART_DTYPE[dtype]


# ----- scalars ---------------------------------------------------------------------------------
def make(re: ir.Value, im: ir.Value, dtype: torch.dtype) -> ir.Value:
    return complex_d.CreateOp(b.element_type(dtype), re, im).result


def real_part(z: ir.Value) -> ir.Value:
    return complex_d.ReOp(z).result


def imag_part(z: ir.Value) -> ir.Value:
    return complex_d.ImOp(z).result


def constant(value: Any, dtype: torch.dtype) -> ir.Value:
    """A scalar of any dtype from a Python number (complex numbers only for complex dtypes)."""
    if not is_complex(dtype):
        return b.constant(value, dtype)
    value = complex(value)
    part = b.element_type(part_dtype(dtype))
    return complex_d.ConstantOp(b.element_type(dtype), ir.ArrayAttr.get(
        [ir.FloatAttr.get(part, value.real), ir.FloatAttr.get(part, value.imag)])).result


def convert(value: ir.Value, src: torch.dtype, dst: torch.dtype) -> ir.Value:
    """`builders.convert` extended to complex dtypes, with eager's semantics."""
    if src == dst:
        return value
    if not is_complex(src) and not is_complex(dst):
        return b.convert(value, src, dst)
    if not is_complex(src):  # real -> complex: imaginary part 0
        part = part_dtype(dst)
        return make(b.convert(value, src, part), b.constant(0, part), dst)
    part = part_dtype(src)
    if is_complex(dst):  # between complex dtypes: each part converted
        to = part_dtype(dst)
        return make(b.convert(real_part(value), part, to), b.convert(imag_part(value), part, to), dst)
    if dst == torch.bool:  # z != 0
        return arith.OrIOp(b.convert(real_part(value), part, torch.bool),
                           b.convert(imag_part(value), part, torch.bool)).result
    return b.convert(real_part(value), part, dst)


def scalar_operand(value: Any, dtype: torch.dtype, from_dtype: Optional[torch.dtype] = None) -> ir.Value:
    """A Python number or a runtime scalar (`i64`/`f64`/`i1`) as a scalar of `dtype`."""
    if not is_complex(dtype):
        return b.scalar_operand(value, dtype, from_dtype)
    if isinstance(value, ir.Value):
        part = part_dtype(dtype)
        return make(b.scalar_operand(value, part, from_dtype), b.constant(0, part), dtype)
    return constant(value, dtype)


def dtype_of(value: ir.Value, compute: torch.dtype) -> torch.dtype:
    """The torch dtype of a body's scalar result computed in `compute`: comparisons give i1,
    `abs` of a complex value its part dtype."""
    if isinstance(value.type, ir.ComplexType):
        return _dtype_of_complex(value.type)
    if str(value.type) == "i1" and compute != torch.bool:
        return torch.bool
    if is_complex(compute):
        return part_dtype(compute)
    return compute


# ----- linalg.generic --------------------------------------------------------------------------
def elementwise(operands: Sequence[Any], dtypes: Sequence[torch.dtype], out_spec: TensorSpec,
                body: Callable[..., ir.Value], compute: Sequence[torch.dtype]) -> ir.Value:
    """`builders.elementwise` for bodies on complex scalars: one `linalg.generic` with PyTorch
    broadcasting; tensor operand i (of dtype `dtypes[i]`) and Python-number operands reach
    `body` converted to `compute[i]`, and the body's value is converted to the result dtype."""
    tensors = [(i, v) for i, v in enumerate(operands)
               if isinstance(v, ir.Value) and isinstance(v.type, ir.RankedTensorType)]
    tensor_index = dict(tensors)
    sizes = b.out_sizes(out_spec, [v for _, v in tensors])
    init = b.empty(sizes, out_spec.dtype)
    out_shape = list(out_spec.shape)
    maps = [b.broadcast_map(b.static_shape(v), out_shape) for _, v in tensors] + [b.identity_map(len(out_shape))]
    scalars = {i: scalar_operand(v, compute[i], dtypes[i] if isinstance(v, ir.Value) else None)
               for i, v in enumerate(operands) if i not in tensor_index}

    def _body(*elems):
        it = iter(elems[: len(tensors)])
        args = [convert(next(it), dtypes[i], compute[i]) if i in tensor_index else scalars[i]
                for i in range(len(operands))]
        result = body(*args)
        return convert(result, dtype_of(result, compute[0] if compute else out_spec.dtype), out_spec.dtype)

    return b.generic([v for _, v in tensors], [init], maps, ["parallel"] * len(out_shape), _body)


def cast_tensor(value: ir.Value, src: torch.dtype, dst: torch.dtype, ctx: Optional[LoweringContext] = None) -> ir.Value:
    """A tensor converted elementwise between any two dtypes (complex -> real keeps the real part,
    with eager's warning)."""
    if not is_complex(src) and not is_complex(dst):
        return b.cast_tensor(value, src, dst)
    if src == dst:
        return value
    if is_complex(src) and not is_complex(dst) and dst != torch.bool:
        where = f" at {ctx.source_line}" if ctx is not None and ctx.source_line else ""
        warnings.warn(f"Casting complex values to real discards the imaginary part ({src} -> {dst}{where})",
                      UserWarning, stacklevel=2)
    spec = TensorSpec(tuple(b.static_shape(value)), dst)
    return elementwise([value], [src], spec, lambda x: x, [src])


# ----- elementwise bodies on complex scalars (dispatched to by lowering/elementwise.py) ---------
def _with_alpha(op):
    def body(x, y, alpha=None):
        if alpha is not None:
            y = complex_d.MulOp(y, alpha).result
        return op(x, y).result

    return body


def _unary(op):
    return lambda x: op(x).result


def _reciprocal(x):
    return complex_d.DivOp(constant(1, _dtype_of_complex(x.type)), x).result


def _sigmoid(x):
    one = constant(1, _dtype_of_complex(x.type))
    return complex_d.DivOp(one, complex_d.AddOp(one, complex_d.ExpOp(complex_d.NegOp(x).result).result).result).result


# sin, cos and tanh from the parts' real functions (libm sinh/cosh): MLIR's complex-to-standard
# forms sinh(y) as (e^y - e^-y) / 2, which loses every digit of a small imaginary part in f32.
def _sin(z):
    x, y = real_part(z), imag_part(z)
    return complex_d.CreateOp(z.type, arith.MulFOp(math_d.SinOp(x).result, math_d.CoshOp(y).result).result,
                              arith.MulFOp(math_d.CosOp(x).result, math_d.SinhOp(y).result).result).result


def _cos(z):
    x, y = real_part(z), imag_part(z)
    return complex_d.CreateOp(z.type, arith.MulFOp(math_d.CosOp(x).result, math_d.CoshOp(y).result).result,
                              arith.NegFOp(arith.MulFOp(math_d.SinOp(x).result, math_d.SinhOp(y).result).result).result).result


def _tanh(z):
    """(sinh 2x + i sin 2y) / (cosh 2x + cos 2y); for |x| > 20, where cosh overflows first and
    tanh(x) is 1 to the last bit of f64: (sign x, 4 sin y cos y e^(-2|x|)), as glibc's ctanh."""
    x, y = real_part(z), imag_part(z)
    part = ir.ComplexType(z.type).element_type
    two = arith.ConstantOp(part, ir.FloatAttr.get(part, 2.0)).result
    x2, y2 = arith.MulFOp(two, x).result, arith.MulFOp(two, y).result
    den = arith.AddFOp(math_d.CoshOp(x2).result, math_d.CosOp(y2).result).result
    re = arith.DivFOp(math_d.SinhOp(x2).result, den).result
    im = arith.DivFOp(math_d.SinOp(y2).result, den).result
    ax = math_d.AbsFOp(x).result
    one = arith.ConstantOp(part, ir.FloatAttr.get(part, 1.0)).result
    four = arith.ConstantOp(part, ir.FloatAttr.get(part, 4.0)).result
    far_re = math_d.CopySignOp(one, x).result
    far_im = arith.MulFOp(arith.MulFOp(four, arith.MulFOp(math_d.SinOp(y).result, math_d.CosOp(y).result).result).result,
                          math_d.ExpOp(arith.NegFOp(arith.MulFOp(two, ax).result).result).result).result
    far = arith.CmpFOp(arith.CmpFPredicate.OGT, ax, arith.ConstantOp(part, ir.FloatAttr.get(part, 20.0)).result).result
    return complex_d.CreateOp(z.type, b.select(far, far_re, re), b.select(far, far_im, im)).result


def _in_double(fn):
    """`fn` on complex<f32> values computed in complex<f64> and rounded once: MLIR's complex log,
    sqrt and rsqrt (and our tanh) lose a few bits that glibc's clogf/csqrtf (eager) keep, e.g. the
    real part of log z for |z| near 1 (relative error 3e-5 in f32)."""

    def body(z):
        dtype = _dtype_of_complex(z.type)
        if dtype != torch.complex64:
            return fn(z)
        return convert(fn(convert(z, dtype, torch.complex128)), torch.complex128, dtype)

    return body


def _dtype_of_complex(t: ir.Type) -> torch.dtype:
    part = str(ir.ComplexType(t).element_type)
    return COMPLEX_OF_PART[{"f32": torch.float32, "f64": torch.float64, "f16": torch.float16}[part]]


# overload -> body(*complex scalars) -> scalar; the rules stay those of lowering/elementwise.py
COMPLEX_BODIES: dict = {
    aten.add.Tensor: _with_alpha(complex_d.AddOp),
    aten.add.Scalar: _with_alpha(complex_d.AddOp),
    aten.sub.Tensor: _with_alpha(complex_d.SubOp),
    aten.sub.Scalar: _with_alpha(complex_d.SubOp),
    aten.rsub.Tensor: lambda x, y, alpha=None: _with_alpha(complex_d.SubOp)(y, x, alpha),
    aten.rsub.Scalar: lambda x, y, alpha=None: _with_alpha(complex_d.SubOp)(y, x, alpha),
    aten.mul.Tensor: lambda x, y: complex_d.MulOp(x, y).result,
    aten.mul.Scalar: lambda x, y: complex_d.MulOp(x, y).result,
    aten.div.Tensor: lambda x, y: complex_d.DivOp(x, y).result,
    aten.div.Scalar: lambda x, y: complex_d.DivOp(x, y).result,
    aten.neg.default: _unary(complex_d.NegOp),
    aten.exp.default: _unary(complex_d.ExpOp),
    aten.log.default: _in_double(_unary(complex_d.LogOp)),
    aten.sqrt.default: _in_double(_unary(complex_d.SqrtOp)),
    aten.rsqrt.default: _in_double(_unary(complex_d.RsqrtOp)),
    aten.sin.default: _sin,
    aten.cos.default: _cos,
    aten.tanh.default: _in_double(_tanh),
    # Not tan/expm1/log1p: MLIR's complex-to-standard loses all precision for small |z| in f32.
    aten.sigmoid.default: _sigmoid,
    aten.reciprocal.default: _reciprocal,
    aten.abs.default: _unary(complex_d.AbsOp),
    # eager defines only (in)equality on complex numbers: both parts compared
    aten.eq.Tensor: lambda x, y: complex_d.EqualOp(x, y).result,
    aten.eq.Scalar: lambda x, y: complex_d.EqualOp(x, y).result,
    aten.ne.Tensor: lambda x, y: complex_d.NotEqualOp(x, y).result,
    aten.ne.Scalar: lambda x, y: complex_d.NotEqualOp(x, y).result,
}


def complex_pointwise(ctx: LoweringContext, operands: Sequence[Any], compute: torch.dtype) -> ir.Value:
    """An elementwise rule's op computed in complex dtype `compute` (eager's promotion)."""
    body = COMPLEX_BODIES.get(ctx.target)
    if body is None:
        raise ctx.reject(f"no complex lowering of this op (computing in {compute})")
    dtypes = [ctx.in_specs[i].dtype if isinstance(v, ir.Value) and ctx.in_specs[i] is not None
              and isinstance(v.type, ir.RankedTensorType) else compute for i, v in enumerate(operands)]
    return elementwise(list(operands), dtypes, ctx.out_spec, body, [compute] * len(operands))


def complex_where(ctx: LoweringContext, cond: ir.Value, x: Any, y: Any) -> ir.Value:
    """`where` with a complex result (lowering/elementwise.py's rule dispatches here)."""
    out = ctx.out_spec.dtype
    dtypes = [torch.bool] + [ctx.in_specs[i].dtype if isinstance(v, ir.Value) and ctx.in_specs[i] is not None
                             and isinstance(v.type, ir.RankedTensorType) else out for i, v in ((1, x), (2, y))]
    return elementwise([cond, x, y], dtypes, ctx.out_spec, lambda c, u, v: b.select(c, u, v),
                       [torch.bool, out, out])


# ----- rules -----------------------------------------------------------------------------------
@lowers(aten.complex.default, dtypes=REAL_FLOAT_AND_COMPLEX)
def _complex(ctx, real, imag):
    out = ctx.out_spec.dtype
    part = part_dtype(out)
    return elementwise([real, imag], [ctx.in_specs[0].dtype, ctx.in_specs[1].dtype], ctx.out_spec,
                       lambda re, im: make(re, im, out), [part, part])


@lowers(aten.polar.default, dtypes=REAL_FLOAT_AND_COMPLEX)
def _polar(ctx, magnitude, angle):
    out = ctx.out_spec.dtype
    part = part_dtype(out)

    def body(r, theta):
        return make(arith.MulFOp(r, math_d.CosOp(theta).result).result,
                    arith.MulFOp(r, math_d.SinOp(theta).result).result, out)

    return elementwise([magnitude, angle], [ctx.in_specs[0].dtype, ctx.in_specs[1].dtype], ctx.out_spec,
                       body, [part, part])


@lowers(aten.view_as_complex.default, dtypes=REAL_FLOAT_AND_COMPLEX)
def _view_as_complex(ctx, x):
    """[..., 2] real -> [...] complex: element (re, im) pairs."""
    out = ctx.out_spec
    rank = out.rank
    dims = [ir.AffineDimExpr.get(i) for i in range(rank)]
    part_maps = [ir.AffineMap.get(rank, 0, dims + [ir.AffineConstantExpr.get(k)]) for k in (0, 1)]
    init = b.empty(b.sizes_of(x)[:-1], out.dtype)
    return b.generic([x, x], [init], part_maps + [b.identity_map(rank)], ["parallel"] * rank,
                     lambda re, im, _: make(re, im, out.dtype))


@lowers(aten.view_as_real.default, dtypes=REAL_FLOAT_AND_COMPLEX)
def _view_as_real(ctx, z):
    """[...] complex -> [..., 2] real: the last index picks the real (0) or imaginary (1) part."""
    out = ctx.out_spec
    rank = out.rank
    in_map = ir.AffineMap.get(rank, 0, [ir.AffineDimExpr.get(i) for i in range(rank - 1)])
    init = b.empty(b.sizes_of(z) + [2], out.dtype)

    def body(v, _):
        is_imag = arith.CmpIOp(arith.CmpIPredicate.eq, linalg.IndexOp(rank - 1).result, b.index_constant(1)).result
        return b.select(is_imag, imag_part(v), real_part(v))

    return b.generic([z], [init], [in_map, b.identity_map(rank)], ["parallel"] * rank, body)


@lowers(aten._conj_physical.default, aten.conj_physical.default, aten._conj.default,
        dtypes=SUPPORTED_AND_COMPLEX_DTYPES)
def _conj(ctx, x):
    """The complex conjugate (`_conj` is conj's lazy view: as a value it is the same); the
    identity on real tensors, as in eager."""
    dtype = ctx.in_specs[0].dtype
    if not is_complex(dtype):
        return x
    return elementwise([x], [dtype], ctx.out_spec, lambda v: complex_d.ConjOp(v).result, [dtype])
