"""Every elementwise rule against eager, on two shapes (same-shape and broadcasting, in one
compiled graph) and every dtype both the rule and eager support on CPU."""
import pytest
import torch

from helpers import check, compile_fn, make_input
from torch_mlir_backend.lowering.registry import LOWERINGS, mlir_op_name

aten = torch.ops.aten
prims = torch.ops.prims

ALL_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
              torch.int16, torch.int8, torch.uint8, torch.bool]
SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (3, 1))]  # same shape, then broadcasting both ways

POS = (0.5, 3)  # strictly positive domain (divisors, logs)
UNIT = (-0.9, 0.9)

# name -> (overload, call, arity, domain of each operand)
BINARY = {
    "add.Tensor": (aten.add.Tensor, lambda a, b: aten.add.Tensor(a, b), 2, None),
    "add.Tensor_alpha": (aten.add.Tensor, lambda a, b: aten.add.Tensor(a, b, alpha=2), 2, None),
    "add.Scalar": (aten.add.Scalar, lambda a: aten.add.Scalar(a, 2), 1, None),
    "sub.Tensor": (aten.sub.Tensor, lambda a, b: aten.sub.Tensor(a, b), 2, None),
    "sub.Scalar": (aten.sub.Scalar, lambda a: aten.sub.Scalar(a, 3), 1, None),
    "mul.Tensor": (aten.mul.Tensor, lambda a, b: aten.mul.Tensor(a, b), 2, None),
    "mul.Scalar": (aten.mul.Scalar, lambda a: aten.mul.Scalar(a, 3), 1, None),
    "mul.Tensor_floatScalar": (aten.mul.Tensor, lambda a: aten.mul.Tensor(a, 1.5), 1, None),
    "rsub.Scalar": (aten.rsub.Scalar, lambda a: aten.rsub.Scalar(a, 2), 1, None),
    "rsub.Tensor": (aten.rsub.Tensor, lambda a, b: aten.rsub.Tensor(a, b), 2, None),
    "div.Tensor": (aten.div.Tensor, lambda a, b: aten.div.Tensor(a, b), 2, (None, POS)),
    "div.Scalar": (aten.div.Scalar, lambda a: aten.div.Scalar(a, 4), 1, None),
    "div.Tensor_mode_trunc": (aten.div.Tensor_mode, lambda a, b: aten.div.Tensor_mode(a, b, rounding_mode="trunc"), 2, (None, POS)),
    "div.Tensor_mode_floor": (aten.div.Tensor_mode, lambda a, b: aten.div.Tensor_mode(a, b, rounding_mode="floor"), 2, (None, POS)),
    "div.Scalar_mode": (aten.div.Scalar_mode, lambda a: aten.div.Scalar_mode(a, 3, rounding_mode="floor"), 1, None),
    "remainder.Tensor": (aten.remainder.Tensor, lambda a, b: aten.remainder.Tensor(a, b), 2, (None, POS)),
    "remainder.Scalar": (aten.remainder.Scalar, lambda a: aten.remainder.Scalar(a, 3), 1, None),
    "fmod.Tensor": (aten.fmod.Tensor, lambda a, b: aten.fmod.Tensor(a, b), 2, (None, POS)),
    "fmod.Scalar": (aten.fmod.Scalar, lambda a: aten.fmod.Scalar(a, 2), 1, None),
    "pow.Tensor_Tensor": (aten.pow.Tensor_Tensor, lambda a, b: aten.pow.Tensor_Tensor(a, b), 2, (POS, (0, 3))),
    "pow.Tensor_Scalar": (aten.pow.Tensor_Scalar, lambda a: aten.pow.Tensor_Scalar(a, 2), 1, None),
    "pow.Scalar": (aten.pow.Scalar, lambda a: aten.pow.Scalar(2, a), 1, ((0, 3),)),
    "maximum": (aten.maximum.default, lambda a, b: aten.maximum.default(a, b), 2, None),
    "minimum": (aten.minimum.default, lambda a, b: aten.minimum.default(a, b), 2, None),
    "atan2": (aten.atan2.default, lambda a, b: aten.atan2.default(a, b), 2, None),
    "bitwise_and.Tensor": (aten.bitwise_and.Tensor, lambda a, b: aten.bitwise_and.Tensor(a, b), 2, None),
    "bitwise_and.Scalar": (aten.bitwise_and.Scalar, lambda a: aten.bitwise_and.Scalar(a, 1), 1, None),
    "bitwise_or.Tensor": (aten.bitwise_or.Tensor, lambda a, b: aten.bitwise_or.Tensor(a, b), 2, None),
    "bitwise_or.Scalar": (aten.bitwise_or.Scalar, lambda a: aten.bitwise_or.Scalar(a, 1), 1, None),
    "bitwise_xor.Tensor": (aten.bitwise_xor.Tensor, lambda a, b: aten.bitwise_xor.Tensor(a, b), 2, None),
    "bitwise_xor.Scalar": (aten.bitwise_xor.Scalar, lambda a: aten.bitwise_xor.Scalar(a, 1), 1, None),
    "bitwise_not": (aten.bitwise_not.default, lambda a: aten.bitwise_not.default(a), 1, None),
    "logical_and": (aten.logical_and.default, lambda a, b: aten.logical_and.default(a, b), 2, None),
    "logical_or": (aten.logical_or.default, lambda a, b: aten.logical_or.default(a, b), 2, None),
    "logical_xor": (aten.logical_xor.default, lambda a, b: aten.logical_xor.default(a, b), 2, None),
    "logical_not": (aten.logical_not.default, lambda a: aten.logical_not.default(a), 1, None),
    "clamp": (aten.clamp.default, lambda a: aten.clamp.default(a, -1, 2), 1, None),
    "clamp.min_only": (aten.clamp.default, lambda a: aten.clamp.default(a, 0), 1, None),
    "clamp.Tensor": (aten.clamp.Tensor, lambda a, b: aten.clamp.Tensor(a, b, None), 2, None),
    "clamp.Tensor_max_only": (aten.clamp.Tensor, lambda a, b: aten.clamp.Tensor(a, None, b), 2, None),
    "clamp_min": (aten.clamp_min.default, lambda a: aten.clamp_min.default(a, 1), 1, None),
    "clamp_max": (aten.clamp_max.default, lambda a: aten.clamp_max.default(a, 1), 1, None),
    "where.self": (aten.where.self, lambda a, b: aten.where.self(aten.gt.Scalar(a, 0), a, b), 2, None),
    "relu": (aten.relu.default, lambda a: aten.relu.default(a), 1, None),
    "neg": (aten.neg.default, lambda a: aten.neg.default(a), 1, None),
    "abs": (aten.abs.default, lambda a: aten.abs.default(a), 1, None),
    "sign": (aten.sign.default, lambda a: aten.sign.default(a), 1, None),
    "floor": (aten.floor.default, lambda a: aten.floor.default(a), 1, None),
    "ceil": (aten.ceil.default, lambda a: aten.ceil.default(a), 1, None),
    "trunc": (aten.trunc.default, lambda a: aten.trunc.default(a), 1, None),
    "round": (aten.round.default, lambda a: aten.round.default(a), 1, ((-4, 4),)),
    "round.decimals": (aten.round.decimals, lambda a: aten.round.decimals(a, decimals=1), 1, None),
    "isnan": (aten.isnan.default, lambda a: aten.isnan.default(aten.div.Tensor(a, a)), 1, None),
    "isinf": (aten.isinf.default, lambda a: aten.isinf.default(aten.div.Tensor(a, 0.0)), 1, None),
    "fill.Scalar": (aten.fill.Scalar, lambda a: aten.fill.Scalar(a, 3), 1, None),
    "clone": (aten.clone.default, lambda a: aten.clone.default(a), 1, None),
    "alias": (aten.alias.default, lambda a: aten.mul.Tensor(aten.alias.default(a), 1), 1, None),
    "lift_fresh_copy": (aten.lift_fresh_copy.default, lambda a: aten.lift_fresh_copy.default(a), 1, None),
    "hardtanh": (aten.hardtanh.default, lambda a: aten.hardtanh.default(a, -0.5, 0.5), 1, None),
    "leaky_relu": (aten.leaky_relu.default, lambda a: aten.leaky_relu.default(a, 0.1), 1, None),
    "elu": (aten.elu.default, lambda a: aten.elu.default(a, 1.2), 1, None),
    "gelu": (aten.gelu.default, lambda a: aten.gelu.default(a), 1, None),
    "gelu.tanh": (aten.gelu.default, lambda a: aten.gelu.default(a, approximate="tanh"), 1, None),
    "sigmoid": (aten.sigmoid.default, lambda a: aten.sigmoid.default(a), 1, None),
    "reciprocal": (aten.reciprocal.default, lambda a: aten.reciprocal.default(a), 1, (POS,)),
}
for _name, _domain in [("exp", None), ("exp2", None), ("expm1", None), ("log", (POS,)), ("log2", (POS,)),
                       ("log10", (POS,)), ("log1p", (POS,)), ("sqrt", (POS,)), ("rsqrt", (POS,)), ("sin", None),
                       ("cos", None), ("tan", (UNIT,)), ("asin", (UNIT,)), ("acos", (UNIT,)), ("atan", None),
                       ("sinh", None), ("cosh", None), ("tanh", None), ("asinh", None), ("acosh", ((1.1, 3),)),
                       ("atanh", (UNIT,)), ("erf", None)]:
    _op = getattr(aten, _name).default
    BINARY[_name] = (_op, lambda a, _op=_op: _op(a), 1, _domain)

for _cmp in ["eq", "ne", "lt", "le", "gt", "ge"]:
    _t, _s = getattr(aten, _cmp).Tensor, getattr(aten, _cmp).Scalar
    BINARY[f"{_cmp}.Tensor"] = (_t, lambda a, b, _t=_t: _t(a, b), 2, None)
    BINARY[f"{_cmp}.Scalar"] = (_s, lambda a, _s=_s: _s(a, 1), 1, None)


def _inputs(arity, dtype, domain, shapes, seed=0):
    domain = domain or (None,) * arity
    out = []
    for i in range(arity):
        low, high = (domain[i] if i < len(domain) and domain[i] else (-3, 3))
        if dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8) and low == 0.5:
            low = 1  # integer divisors stay away from zero
        out.append(make_input(shapes[i], dtype, low, high, seed=seed + i))
    return out


def _eager_supports(call, arity, dtype, domain):
    try:
        call(*_inputs(arity, dtype, domain, [(2,)] * arity))
        return True
    except Exception:
        return False


def _cases():
    for name, (overload, call, arity, domain) in BINARY.items():
        rule = LOWERINGS[mlir_op_name(overload)]
        for dtype in ALL_DTYPES:
            if dtype in rule.dtypes and _eager_supports(call, arity, dtype, domain):
                yield pytest.param(name, dtype, id=f"{name}-{str(dtype).replace('torch.', '')}")


@pytest.mark.parametrize("name,dtype", list(_cases()))
def test_elementwise_rule(name, dtype):
    overload, call, arity, domain = BINARY[name]
    first = _inputs(arity, dtype, domain, [s for s in SHAPES[0]][:arity] if arity == 2 else [SHAPES[0][0]])
    second = _inputs(arity, dtype, domain, list(SHAPES[1])[:arity] if arity == 2 else [SHAPES[1][0]], seed=7)

    def both_shapes(*xs):
        return call(*xs[:arity]), call(*xs[arity:])

    # Half precision: eager rounds after each op in float32; we may differ by one ulp of the result.
    atol = {torch.float16: 4e-3, torch.bfloat16: 3e-2}.get(dtype)
    check(both_shapes, *first, *second, name=str(overload), atol=atol, rtol=atol)


@pytest.mark.parametrize("src", ALL_DTYPES, ids=lambda d: str(d).replace("torch.", ""))
def test_casts_from_every_dtype_to_every_dtype(src):
    x = make_input((3, 5), src, -100, 100)
    targets = [d for d in ALL_DTYPES if d != src]
    # PyTorch's float -> unsigned/narrow int casts of out-of-range values are undefined: stay in range.
    check(lambda a: tuple(aten._to_copy.default(a, dtype=d) for d in targets), x, name="aten._to_copy")
    check(lambda a: tuple(prims.convert_element_type.default(a, d) for d in targets), x,
          name="prims.convert_element_type")


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32], ids=["f32", "i32"])
def test_num_to_tensor_wrapped_numbers_promote_like_python_scalars(dtype):
    x = make_input((2, 3), dtype)
    check(lambda a: (a + 2, a * 2.5, a / 2, a > 1.5, a - 1, a & True if not a.is_floating_point() else a * True), x, name="prim.NumToTensor.Scalar")


def test_bitwise_ops_reject_floats():
    with pytest.raises(Exception, match=r"aten\.bitwise_and\.Tensor(.|\n)*float32"):
        compile_fn(lambda a, b: aten.bitwise_and.Tensor(a, b))(torch.randn(3), torch.randn(3))


def test_clamp_bounds_promote_by_position_and_bool_ldexp():
    # clamp(int32, None, float tensor) is float32 (the absent min must not shift max's dtype);
    # bool clamp_min/clamp_max.Tensor are or/and; ldexp(bool, bool) is float32 through
    # pow(2.0, bool) (its decomposition).
    i = torch.tensor([1, -5, 7, 3], dtype=torch.int32)
    f = torch.tensor([0.5, 2.5, -1.5, 9.0])
    a = torch.tensor([True, False, True, False])
    m = torch.tensor([True, True, False, False])
    check(lambda x, y, p, q: (torch.clamp(x, None, y), torch.clamp(x, y, None), torch.clamp(x, y - 3, y),
                              torch.clamp_min(p, q), torch.clamp_max(p, q), torch.ldexp(p, q),
                              torch.ldexp(p, q.long()), torch.pow(p, 2.5)),
          i, f, a, m, name="aten.clamp.Tensor / ldexp", atol=0, rtol=0)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int8, torch.uint8, torch.bool], ids=lambda d: str(d).replace("torch.", ""))
def test_integer_pow_follows_eagers_powi(dtype):
    # Eager's powi: 0 ** negative is 0, 1 ** negative 1, (-1) ** negative +-1 by parity, others
    # 0; uint8 exponents >= 128 are large, not negative; bool bases promote to int64.
    base = torch.tensor([0, 2, -1, 1, -1, 3, -1, 0, 5, -7, 3, 2]).to(dtype)
    exponent = torch.tensor([-1, -1, -3, -5, -2, 2, 4, 0, 0, 3, 129, 200])
    exponent = exponent.to(dtype) if dtype != torch.bool else exponent
    check(lambda x, e: (torch.pow(x, e), torch.pow(x, 3), torch.pow(-1, e) if dtype != torch.uint8 else torch.pow(2, e)),
          base, exponent, name="aten.pow.Tensor_Tensor", atol=0, rtol=0)


def test_sign_and_sgn_of_bool_are_the_identity():
    x = torch.tensor([True, False, True, False])
    check(lambda x: torch.sign(x), x)
    check(lambda x: torch.sgn(x), x)
