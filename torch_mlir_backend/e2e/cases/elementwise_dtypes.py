"""Elementwise cases across dtypes: each unary math op in f32 and f64 (and f16/bf16 for a few),
binary arithmetic per dtype with Python-scalar operands (PyTorch's wrapped-number promotion),
integer and boolean bitwise/logical ops, clamp/where/comparison variants. Names say op and dtype."""
import torch
import torch.nn.functional as F

from ._util import fn_case, inputs, rand, randint

_FLOATS = {"f32": torch.float32, "f64": torch.float64}

# Unary ops on inputs in a range where each is defined (domain given by the input factory).
_UNARY = {
    "Exp": (torch.exp, -3, 3), "Exp2": (torch.exp2, -3, 3), "Log": (torch.log, 0.1, 5),
    "Log2": (torch.log2, 0.1, 5), "Log10": (torch.log10, 0.1, 5), "Log1p": (torch.log1p, -0.5, 5),
    "Sqrt": (torch.sqrt, 0, 5), "Rsqrt": (torch.rsqrt, 0.1, 5), "Sin": (torch.sin, -3, 3),
    "Cos": (torch.cos, -3, 3), "Tan": (torch.tan, -1, 1), "Asin": (torch.asin, -0.9, 0.9),
    "Acos": (torch.acos, -0.9, 0.9), "Atan": (torch.atan, -3, 3), "Sinh": (torch.sinh, -2, 2),
    "Cosh": (torch.cosh, -2, 2), "Tanh": (torch.tanh, -3, 3), "Asinh": (torch.asinh, -3, 3),
    "Acosh": (torch.acosh, 1.1, 4), "Atanh": (torch.atanh, -0.9, 0.9), "Erf": (torch.erf, -2, 2),
    "Erfinv": (torch.erfinv, -0.9, 0.9), "Sigmoid": (torch.sigmoid, -5, 5), "Trunc": (torch.trunc, -3, 3),
    "Frac": (torch.frac, -3, 3), "Square": (torch.square, -3, 3), "Softplus": (F.softplus, -3, 3),
    "Mish": (F.mish, -3, 3), "Hardswish": (F.hardswish, -4, 4), "Hardsigmoid": (F.hardsigmoid, -4, 4),
    "Selu": (F.selu, -3, 3), "Celu": (F.celu, -3, 3), "Softsign": (F.softsign, -3, 3),
    "Relu6": (F.relu6, -2, 8), "LogSigmoid": (F.logsigmoid, -4, 4), "Tanhshrink": (F.tanhshrink, -3, 3),
    "Hardshrink": (F.hardshrink, -1, 1), "Softshrink": (F.softshrink, -1, 1),
    "Sgn": (torch.sgn, -2, 2), "Signbit": (torch.signbit, -2, 2),
}
for _name, (_fn, _lo, _hi) in _UNARY.items():
    for _dt_name, _dt in _FLOATS.items():
        fn_case(f"Elementwise{_name}Module_{_dt_name}", _fn, inputs(rand(3, 5, dtype=_dt, low=_lo, high=_hi)),
                atol=1e-5, rtol=1e-4)

# Half precision: computed in f32 and rounded, as eager does on CPU.
for _name, _fn in {"Exp": torch.exp, "Tanh": torch.tanh, "Sigmoid": torch.sigmoid, "Gelu": F.gelu,
                   "Silu": F.silu}.items():
    for _dt_name, _dt in {"f16": torch.float16, "bf16": torch.bfloat16}.items():
        fn_case(f"Elementwise{_name}Module_{_dt_name}", _fn, inputs(rand(3, 5, dtype=_dt, low=-2, high=2)),
                atol=1e-2, rtol=1e-2)

_ARITH = {"Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
          "Maximum": torch.maximum, "Minimum": torch.minimum}
_INTS = {"i64": torch.int64, "i32": torch.int32, "i8": torch.int8, "u8": torch.uint8}
for _name, _fn in _ARITH.items():
    for _dt_name, _dt in _INTS.items():
        fn_case(f"Elementwise{_name}Module_{_dt_name}", _fn,
                inputs(randint(3, 4, high=50, dtype=_dt), randint(3, 4, high=50, dtype=_dt)))
    fn_case(f"Elementwise{_name}Module_f64", _fn, inputs(rand(3, 4, dtype=torch.float64), rand(4, dtype=torch.float64)))

# Wrapped Python scalars keep the tensor's dtype category (int tensor * 2 stays int, * 2.5 -> float).
_SCALAR = {"AddInt": lambda a: a + 3, "SubInt": lambda a: a - 2, "MulInt": lambda a: a * 3,
           "MulFloat": lambda a: a * 2.5, "DivFloat": lambda a: a / 4.0, "RsubInt": lambda a: 7 - a,
           "PowInt": lambda a: a ** 2, "FloorDivideInt": lambda a: a // 3, "RemainderInt": lambda a: a % 3}
for _name, _fn in _SCALAR.items():
    fn_case(f"ElementwiseScalar{_name}Module_i64", _fn, inputs(randint(3, 4, low=1, high=20)))
    fn_case(f"ElementwiseScalar{_name}Module_f32", _fn, inputs(rand(3, 4, low=0.5, high=5)))

fn_case("ElementwiseFloorDivideModule_i64Negative", lambda a, b: torch.div(a, b, rounding_mode="floor"),
        inputs(randint(3, 4, low=-20, high=20), randint(3, 4, low=1, high=5)))
fn_case("ElementwiseTruncDivideModule_i64", lambda a, b: torch.div(a, b, rounding_mode="trunc"),
        inputs(randint(3, 4, low=-20, high=20), randint(3, 4, low=1, high=5)))
fn_case("ElementwiseRemainderModule_i64Negative", torch.remainder,
        inputs(randint(3, 4, low=-20, high=20), randint(3, 4, low=1, high=5)))
fn_case("ElementwiseFmodModule_f32", torch.fmod, inputs(rand(3, 4, low=-5, high=5), rand(3, 4, low=0.5, high=2)))
fn_case("ElementwiseFmodModule_i64", torch.fmod, inputs(randint(3, 4, low=-20, high=20), randint(3, 4, low=1, high=5)))
fn_case("ElementwiseHypotModule_f32", torch.hypot, inputs(rand(3, 4), rand(3, 4)))
fn_case("ElementwiseCopysignModule_f32", torch.copysign, inputs(rand(3, 4), rand(3, 4)))
fn_case("ElementwiseLerpModule_f32", lambda a, b: torch.lerp(a, b, 0.3), inputs(rand(3, 4), rand(3, 4)))
fn_case("ElementwiseAddcmulModule_f32", lambda a, b, c: torch.addcmul(a, b, c, value=0.5), inputs(rand(3, 4), rand(3, 4), rand(4)))
fn_case("ElementwiseAddcdivModule_f32", lambda a, b, c: torch.addcdiv(a, b, c.abs() + 1, value=2.0), inputs(rand(3, 4), rand(3, 4), rand(4)))
fn_case("ElementwiseXlogyModule_f32", torch.xlogy, inputs(rand(3, 4, low=0, high=2), rand(3, 4, low=0.1, high=2)))
fn_case("ElementwiseLogaddexpModule_f32", torch.logaddexp, inputs(rand(3, 4, low=-5, high=5), rand(3, 4, low=-5, high=5)))

for _dt_name, _dt in {"bool": torch.bool, "i64": torch.int64, "i32": torch.int32}.items():
    _make = (lambda: (lambda: torch.rand(3, 4) > 0.5)) if _dt == torch.bool else (lambda _d=_dt: randint(3, 4, high=16, dtype=_d))
    for _name, _fn in {"BitwiseAnd": torch.bitwise_and, "BitwiseOr": torch.bitwise_or,
                       "BitwiseXor": torch.bitwise_xor, "LogicalAnd": torch.logical_and,
                       "LogicalOr": torch.logical_or, "LogicalXor": torch.logical_xor}.items():
        fn_case(f"Elementwise{_name}Module_{_dt_name}", _fn, inputs(_make(), _make()))
    fn_case(f"ElementwiseBitwiseNotModule_{_dt_name}", torch.bitwise_not, inputs(_make()))
    fn_case(f"ElementwiseLogicalNotModule_{_dt_name}", torch.logical_not, inputs(_make()))
fn_case("ElementwiseShiftLeftModule_i64", torch.bitwise_left_shift, inputs(randint(3, 4, high=100), randint(3, 4, high=5)))
fn_case("ElementwiseShiftRightModule_i64", torch.bitwise_right_shift, inputs(randint(3, 4, high=100), randint(3, 4, high=5)))

fn_case("ElementwiseClampTensorModule_f32", lambda x, lo, hi: torch.clamp(x, lo, lo + hi.abs()),
        inputs(rand(3, 4, low=-2, high=2), rand(3, 4), rand(4)))
fn_case("ElementwiseClampModule_i64", lambda x: torch.clamp(x, 2, 7), inputs(randint(3, 4, high=10)))
fn_case("ElementwiseClampMaxModule_f64", lambda x: torch.clamp(x, max=0.1), inputs(rand(3, 4, dtype=torch.float64)))
fn_case("ElementwiseWhereModule_i64", lambda c, a, b: torch.where(c > 0, a, b), inputs(rand(3, 4), randint(3, 4), randint(4)))
fn_case("ElementwiseWhereModule_promote", lambda c, a, b: torch.where(c > 0, a, b), inputs(rand(3, 4), randint(3, 4), rand(3, 4)))
fn_case("ElementwiseWhereModule_bool", lambda c, a, b: torch.where(c > 0, a > 0, b > 0), inputs(rand(3, 4), rand(3, 4), rand(3, 4)))
fn_case("ElementwiseIsInfModule_f32", lambda x: torch.isinf(1.0 / (x * 0)), inputs(rand(3, 4)))
fn_case("ElementwiseIsFiniteModule_f32", lambda x: torch.isfinite(x / (x > 0).float()), inputs(rand(3, 4)))
fn_case("ElementwiseNanToNumModule_f32", lambda x: torch.nan_to_num(torch.log(x), nan=0.0, neginf=-9.0), inputs(rand(3, 4)))
for _op in ["Eq", "Ne", "Lt", "Le", "Gt", "Ge"]:
    fn_case(f"Elementwise{_op}TensorModule_f64Broadcast", getattr(torch, _op.lower()),
            inputs(rand(2, 3, 4, dtype=torch.float64), rand(4, dtype=torch.float64)))
    fn_case(f"Elementwise{_op}ScalarModule_i64", lambda x, _o=_op.lower(): getattr(torch, _o)(x, 3), inputs(randint(3, 4, high=6)))
fn_case("ElementwiseCastModule_f32ToBool", lambda x: x.to(torch.bool), inputs(lambda: torch.randint(0, 2, (3, 4)).float()))
fn_case("ElementwiseCastModule_boolToF32", lambda x: (x > 0).float() * 2, inputs(rand(3, 4)))
fn_case("ElementwiseCastModule_f64ToI32", lambda x: x.to(torch.int32), inputs(rand(3, 4, dtype=torch.float64, low=-9, high=9)))
fn_case("ElementwiseCastModule_i64ToF16", lambda x: x.to(torch.float16), inputs(randint(3, 4, high=1000)))
fn_case("ElementwiseCastModule_f32ToU8", lambda x: x.to(torch.uint8), inputs(rand(3, 4, low=0, high=200)))
