"""Elementwise cases: arithmetic with broadcasting and promotion, unary math, comparisons."""
import torch

from ._util import fn_case, inputs, rand, randint

_BINARY = {
    "Add": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
    "Div": lambda a, b: a / b,
    "AddAlpha": lambda a, b: torch.add(a, b, alpha=2.5),
    "Maximum": torch.maximum,
    "Minimum": torch.minimum,
    "Pow": lambda a, b: torch.pow(a.abs() + 0.5, b),
    "Atan2": torch.atan2,
    "Remainder": lambda a, b: torch.remainder(a, b + 2.0),
    "FloorDivide": lambda a, b: torch.div(a, b + 2.0, rounding_mode="floor"),
}
for name, fn in _BINARY.items():
    fn_case(f"Elementwise{name}Module_basic", fn, inputs(rand(3, 4), rand(3, 4)))
    fn_case(f"Elementwise{name}Module_broadcast", fn, inputs(rand(2, 3, 4), rand(4)))

_UNARY = {
    "Exp": torch.exp, "Log": lambda x: torch.log(x.abs() + 0.1), "Sqrt": lambda x: torch.sqrt(x.abs()),
    "Rsqrt": lambda x: torch.rsqrt(x.abs() + 0.1), "Sin": torch.sin, "Cos": torch.cos, "Tanh": torch.tanh,
    "Sigmoid": torch.sigmoid, "Relu": torch.relu, "Gelu": torch.nn.functional.gelu,
    "GeluTanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"), "Erf": torch.erf,
    "Abs": torch.abs, "Neg": torch.neg, "Floor": torch.floor, "Ceil": torch.ceil,
    "Round": torch.round, "Reciprocal": lambda x: torch.reciprocal(x + 3.0), "Log1p": lambda x: torch.log1p(x.abs()),
    "Expm1": torch.expm1, "Silu": torch.nn.functional.silu, "LeakyRelu": torch.nn.functional.leaky_relu,
    "Hardtanh": torch.nn.functional.hardtanh, "Elu": torch.nn.functional.elu, "Sign": torch.sign,
}
for name, fn in _UNARY.items():
    fn_case(f"Elementwise{name}Module_basic", fn, inputs(rand(4, 5, low=-3, high=3)))

for op in ["Eq", "Ne", "Lt", "Le", "Gt", "Ge"]:
    fn_case(f"Elementwise{op}TensorModule_basic", getattr(torch, op.lower()), inputs(randint(3, 4, high=4), randint(3, 4, high=4)))
    fn_case(f"Elementwise{op}ScalarModule_float", lambda x, _o=op.lower(): getattr(torch, _o)(x, 0.25), inputs(rand(3, 4)))

fn_case("ElementwiseWhereModule_basic", lambda c, a, b: torch.where(c > 0, a, b), inputs(rand(3, 4), rand(3, 4), rand(4)))
fn_case("ElementwiseWhereScalarModule_basic", lambda a: torch.where(a > 0, a, 0.0), inputs(rand(3, 4)))
fn_case("ElementwiseClampModule_basic", lambda a: torch.clamp(a, -0.5, 0.5), inputs(rand(3, 4)))
fn_case("ElementwiseClampMinModule_basic", lambda a: torch.clamp(a, min=-0.2), inputs(rand(3, 4)))
fn_case("ElementwiseAddIntFloatPromotionModule_basic", lambda a, b: a + b, inputs(randint(3, 4), rand(3, 4)))
fn_case("ElementwiseAddScalarIntModule_basic", lambda a: a + 3, inputs(randint(3, 4, dtype=torch.int32)))
fn_case("ElementwiseMulScalarFloatOnIntModule_basic", lambda a: a * 1.5, inputs(randint(3, 4)))
fn_case("ElementwiseDivIntModule_basic", lambda a, b: a / (b + 1), inputs(randint(3, 4), randint(3, 4)))
fn_case("ElementwiseBoolAndModule_basic", lambda a, b: (a > 0) & (b > 0), inputs(rand(3, 4), rand(3, 4)))
fn_case("ElementwiseToDtypeModule_basic", lambda a: a.to(torch.int32), inputs(rand(3, 4, low=-5, high=5)))
fn_case("ElementwiseToDoubleModule_basic", lambda a: a.double() * 2, inputs(rand(3, 4)))
fn_case("ElementwiseHalfAddModule_basic", lambda a, b: a + b, inputs(rand(3, 4, dtype=torch.float16), rand(3, 4, dtype=torch.float16)))
fn_case("ElementwiseBFloat16MulModule_basic", lambda a, b: a * b, inputs(rand(3, 4, dtype=torch.bfloat16), rand(3, 4, dtype=torch.bfloat16)))
fn_case("ElementwiseUInt8AddModule_basic", lambda a, b: a + b, inputs(randint(3, 4, high=200, dtype=torch.uint8), randint(3, 4, high=200, dtype=torch.uint8)))
fn_case("ElementwiseIsNanModule_basic", lambda a: torch.isnan(a / a), inputs(rand(3, 4)))
fn_case("ElementwiseChainModule_basic", lambda x, w, b: torch.nn.functional.gelu(x * w + b), inputs(rand(8, 16), rand(16), rand(16)))
