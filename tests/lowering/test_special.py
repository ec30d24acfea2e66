"""Special-math ops (lowering/special.py) against eager on inputs covering each function's domain
edges (0, +-1, negatives, poles, large values, +-inf, NaN where eager defines the result): error
and gamma functions, Bessel functions, orthogonal polynomials, zeta/polygamma, bit-level float ops
and integer shifts. Related ops share one compiled graph per dtype (compile time), and every output
is compared separately, named by its op."""
import math

import pytest
import torch

from helpers import assert_same, compile_fn

aten = torch.ops.aten
inf, nan = math.inf, math.nan
FLOATS = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]


def tol(dtype, f32=1e-5, f64=1e-7):
    t = f32 if dtype == torch.float32 else f64
    return dict(atol=t, rtol=t)


def compare_each(fn, names, inputs, tolerances):
    """Compile `fn` (one graph returning one output per name) and compare each output with eager."""
    want = fn(*inputs)
    got = compile_fn(fn)(*inputs)
    assert len(got) == len(names)
    for name, g, w in zip(names, got, want):
        assert_same(g, w, name, inputs, **tolerances.get(name, tolerances["default"]))


def grid(values, dtype, extra=()):
    """Edge values plus a seeded spread, as one tensor."""
    g = torch.Generator().manual_seed(0)
    spread = torch.rand(24, generator=g, dtype=torch.float64)
    return torch.cat([torch.tensor(list(values) + list(extra), dtype=torch.float64), spread]).to(dtype)


EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.5, 3.7, 8.0, -8.0, 9.5, 12.9, 13.1, 30.0, -34.5, -40.3,
         1e-6, 1e3, inf, -inf, nan]

# op -> (function, how the seeded spread maps onto its domain)
UNARY = {
    "erfinv": (aten.erfinv.default, lambda u: u * 2 - 1, [0.9999, -0.7, 0.7, 0.71, 1.5]),
    "erfc": (aten.erfc.default, lambda u: u * 12 - 6, [27.0, -27.0]),
    "special_erfcx": (aten.special_erfcx.default, lambda u: u * 60 - 10, [-6.0, -6.2, -26.8, 50.5, 6e7, 1e-17]),
    "lgamma": (aten.lgamma.default, lambda u: u * 60 - 40, [-3.0, -0.25, 1e300, 2.6e305, -1e10 - 0.5]),
    "digamma": (aten.digamma.default, lambda u: u * 30 - 10, [-3.0, -2.9, 10.0, 1e17, 1.4616321]),
    "i0": (aten.i0.default, lambda u: u * 40 - 20, [80.0]),
    "special_i0e": (aten.special_i0e.default, lambda u: u * 40 - 20, [700.0]),
    "special_i1": (aten.special_i1.default, lambda u: u * 40 - 20, [80.0]),
    "special_i1e": (aten.special_i1e.default, lambda u: u * 40 - 20, [700.0]),
    "special_ndtri": (aten.special_ndtri.default, lambda u: u, [0.1, 0.9, 1e-20, 1 - 1e-7, 0.135, 0.87]),
    "special_bessel_j0": (aten.special_bessel_j0.default, lambda u: u * 60 - 30, [5.0, 5.01, 1e-6]),
    "special_bessel_j1": (aten.special_bessel_j1.default, lambda u: u * 60 - 30, [5.0, 5.01]),
    "special_bessel_y0": (aten.special_bessel_y0.default, lambda u: u * 30, [5.0, 5.01]),
    "special_bessel_y1": (aten.special_bessel_y1.default, lambda u: u * 30, [5.0, 5.01]),
    "special_modified_bessel_i0": (aten.special_modified_bessel_i0.default, lambda u: u * 40 - 20, []),
    "special_modified_bessel_i1": (aten.special_modified_bessel_i1.default, lambda u: u * 40 - 20, []),
    "special_modified_bessel_k0": (aten.special_modified_bessel_k0.default, lambda u: u * 20, [2.01]),
    "special_modified_bessel_k1": (aten.special_modified_bessel_k1.default, lambda u: u * 20, [2.01]),
    "special_scaled_modified_bessel_k0": (aten.special_scaled_modified_bessel_k0.default, lambda u: u * 20, []),
    "special_scaled_modified_bessel_k1": (aten.special_scaled_modified_bessel_k1.default, lambda u: u * 20, []),
    "special_spherical_bessel_j0": (aten.special_spherical_bessel_j0.default, lambda u: u * 40 - 20, [0.49]),
    "special_airy_ai": (aten.special_airy_ai.default, lambda u: u * 20 - 10, [-2.09, 2.09, 8.33, 104.0, 2.1]),
}
# f32 values near a zero of the function or in a steep range carry eager's own float rounding.
LOOSER_F32 = {"lgamma": dict(atol=1e-5, rtol=2e-6), "special_bessel_y0": dict(atol=2e-5, rtol=1e-5),
              "special_bessel_y1": dict(atol=2e-5, rtol=1e-5), "special_airy_ai": dict(atol=2e-5, rtol=1e-5)}


def unary_inputs(dtype):
    out = []
    for _, (_, spread, extra) in UNARY.items():
        x = grid(EDGES, torch.float64, extra)
        x[len(EDGES) + len(extra):] = spread(x[len(EDGES) + len(extra):])
        out.append(x.to(dtype))
    return out


@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_special_functions(dtype):
    ops = [op for op, _, _ in UNARY.values()]

    def fn(*xs):
        return tuple(op(x) for op, x in zip(ops, xs))

    tolerances = {"default": tol(dtype)}
    if dtype == torch.float32:
        tolerances.update(LOOSER_F32)
    compare_each(fn, list(UNARY), unary_inputs(dtype), tolerances)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool], ids=str)
def test_integer_inputs_promote_to_float(dtype):
    x = torch.tensor([0, 1, 2, 3, 7, 100], dtype=torch.int64).to(dtype) if dtype != torch.bool else \
        torch.tensor([True, False])
    names = ["lgamma", "digamma", "i0", "special_bessel_j0", "erfinv", "special_ndtri", "special_modified_bessel_k0"]
    compare_each(lambda t: (torch.lgamma(t), torch.digamma(t), torch.i0(t), torch.special.bessel_j0(t),
                            torch.erfinv(t), torch.special.ndtri(t), torch.special.modified_bessel_k0(t)),
                 names, [x], {"default": dict(atol=1e-5, rtol=1e-5)})


def test_half_inputs_compute_in_float():
    x = torch.tensor([0.5, 1.5, 3.0, -2.5, 7.0])
    for dtype in (torch.float16, torch.bfloat16):
        compare_each(lambda t: (torch.lgamma(t), torch.special.i1(t), torch.erfc(t)), ["lgamma", "i1", "erfc"],
                     [x.to(dtype)], {"default": dict(atol=1e-2, rtol=1e-2)})


POLYNOMIALS = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
               "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
               "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "hermite_polynomial_h",
               "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p"]


@pytest.mark.parametrize("dtype", FLOATS)
def test_orthogonal_polynomials(dtype):
    # x: +-1, 0, 1/2 (the shifted families' edges), inside and outside [-1, 1]; n: negative,
    # 0, 1, the recurrences, the closed forms (n > 4/6/8), fractional, NaN/inf (treated as < 0),
    # hermite's limit. NaN x is left out: eager reads an uninitialized value for some n. The
    # recurrences use FMA as eager's build does, so values agree to the last bits.
    x = torch.tensor([-1.0, 1.0, 0.0, 0.5, 0.3, -0.7, 0.999, 1.5, -2.0, 3.0, 0.25, 0.75], dtype=dtype)[:, None]
    n = torch.tensor([-1.0, 0.0, 1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 9.0, 10.5, 25.0, nan, inf, -inf, 129.0],
                     dtype=dtype)[None, :]
    ops = [getattr(aten, "special_" + p).default for p in POLYNOMIALS]
    compare_each(lambda a, m: tuple(op(a, m) for op in ops), POLYNOMIALS, [x, n],
                 {"default": tol(dtype, 1e-6, 1e-12)})


def test_orthogonal_polynomials_scalar_operands():
    x = torch.tensor([0.3, -0.6, 1.2, 2.0])
    n = torch.tensor([0.0, 2.0, 5.0, 9.0])
    ops = [aten.special_chebyshev_polynomial_t.x_scalar, aten.special_chebyshev_polynomial_u.x_scalar,
           aten.special_chebyshev_polynomial_v.x_scalar, aten.special_chebyshev_polynomial_w.x_scalar,
           aten.special_shifted_chebyshev_polynomial_t.x_scalar, aten.special_shifted_chebyshev_polynomial_u.x_scalar,
           aten.special_shifted_chebyshev_polynomial_v.x_scalar, aten.special_shifted_chebyshev_polynomial_w.x_scalar,
           aten.special_hermite_polynomial_h.x_scalar, aten.special_hermite_polynomial_he.x_scalar,
           aten.special_laguerre_polynomial_l.x_scalar, aten.special_legendre_polynomial_p.x_scalar]
    n_ops = [aten.special_chebyshev_polynomial_t.n_scalar, aten.special_chebyshev_polynomial_u.n_scalar,
             aten.special_chebyshev_polynomial_v.n_scalar, aten.special_chebyshev_polynomial_w.n_scalar,
             aten.special_shifted_chebyshev_polynomial_t.n_scalar, aten.special_shifted_chebyshev_polynomial_u.n_scalar,
             aten.special_shifted_chebyshev_polynomial_v.n_scalar, aten.special_shifted_chebyshev_polynomial_w.n_scalar,
             aten.special_hermite_polynomial_h.n_scalar, aten.special_hermite_polynomial_he.n_scalar,
             aten.special_laguerre_polynomial_l.n_scalar, aten.special_legendre_polynomial_p.n_scalar]
    names = [f"{p}.x_scalar" for p in POLYNOMIALS] + [f"{p}.n_scalar" for p in POLYNOMIALS]
    compare_each(lambda a, m: tuple(op(0.4, m) for op in ops) + tuple(op(a, 7) for op in n_ops), names, [x, n],
                 {"default": dict(atol=1e-4, rtol=1e-4)})


@pytest.mark.parametrize("dtype", FLOATS)
def test_polygamma_and_zeta(dtype):
    x = grid([0.0, -0.0, 1.0, 2.0, 0.5, -0.5, -1.0, -2.5, 10.0, 20.0, 1e-3, 1e3, inf, -inf, nan], torch.float64)
    x[15:] = x[15:] * 20 - 5
    x = x.to(dtype)
    s = torch.tensor([1.0, 1.5, 2.0, 3.0, 0.5, 4.0, 12.0], dtype=dtype)[:, None]
    q = torch.tensor([1.0, 0.5, 2.0, 10.0, -1.0, -1.5, 0.0, 50.0, 1e-3], dtype=dtype)[None, :]
    names = [f"polygamma({k})" for k in range(5)] + ["special_zeta", "special_zeta.self_scalar",
                                                     "special_zeta.other_scalar"]
    tolerances = {"default": tol(dtype, 1e-5, 1e-7)}
    if dtype == torch.float32:  # OpInfo's own tolerance for polygamma n >= 1 in float32
        tolerances.update({f"polygamma({k})": dict(atol=1e-4, rtol=1e-4) for k in range(1, 5)})
    compare_each(lambda a, b, c: tuple(aten.polygamma.default(k, a) for k in range(5)) + (
        aten.special_zeta.default(b, c), aten.special_zeta.self_scalar(2.5, c), aten.special_zeta.other_scalar(b, 3.0)),
        names, [x, s, q], tolerances)


def test_mvlgamma_through_lgamma():
    x = torch.tensor([1.5, 2.0, 3.7, 10.0], dtype=torch.float64)
    compare_each(lambda t: (torch.mvlgamma(t, 1), torch.mvlgamma(t, 3), torch.special.multigammaln(t.float(), 2)),
                 ["mvlgamma_1", "mvlgamma_3", "multigammaln_2"], [x], {"default": dict(atol=1e-5, rtol=1e-6)})


@pytest.mark.parametrize("dtype", FLOATS)
def test_float_bit_ops(dtype):
    tiny = torch.finfo(dtype).tiny
    x = torch.tensor([0.0, -0.0, 1.0, -1.0, 3.0, -0.75, tiny, tiny / 8, -tiny / 1024, 1e30, inf, -inf, nan, 5.5],
                     dtype=dtype)
    y = torch.tensor([1.0, -2.0, 1.0, 0.0, -nan, 2.0, 0.0, -1.0, 1.0, 1e30, nan, 4.0, 1.0, -0.0], dtype=dtype)
    e = torch.tensor([0, 1, -3, 10, 2, -1, 5, 0, 0, 0, 1, 1, 0, 4])
    names = ["copysign.Tensor", "copysign.Scalar", "fmax", "fmin", "signbit", "hypot", "nextafter",
             "frexp.Tensor mantissa", "frexp.Tensor exponent", "ldexp.Tensor"]

    def fn(a, b, k):
        mantissa, exponent = aten.frexp.Tensor(a)
        return (aten.copysign.Tensor(a, b), aten.copysign.Scalar(a, -2.0), aten.fmax.default(a, b),
                aten.fmin.default(a, b), aten.signbit.default(a), aten.hypot.default(a, b),
                aten.nextafter.default(a, b), mantissa, exponent, torch.ldexp(a, k))

    compare_each(fn, names, [x, y, e], {"default": dict(atol=0, rtol=0), "hypot": tol(dtype, 1e-6, 1e-15)})


def test_bit_ops_other_dtypes():
    i = torch.tensor([3, -2, 0, 7])
    j = torch.tensor([-1, 5, 0, 7])
    h = torch.tensor([0.5, -3.0, 1e-5, 65504.0], dtype=torch.float16)
    bf = torch.tensor([0.5, -3.0, 1e-30, -0.0], dtype=torch.bfloat16)
    names = ["copysign int", "fmax int", "fmin int", "signbit int", "signbit bool", "signbit uint8",
             "frexp f16 mantissa", "frexp f16 exponent", "frexp bf16 mantissa", "frexp bf16 exponent", "signbit bf16",
             "fmax bool", "fmin bool", "fmax bool/float"]

    def fn(a, b, c, d):
        hm, he = torch.frexp(c)
        bm, be = torch.frexp(d)
        return (torch.copysign(a, b), torch.fmax(a, b), torch.fmin(a, b), torch.signbit(a), torch.signbit(a > 0),
                torch.signbit(a.to(torch.uint8)), hm, he, bm, be, torch.signbit(d), torch.fmax(a > 0, b > 0),
                torch.fmin(a > 0, b > 0), torch.fmax(a > 0, c))

    compare_each(fn, names, [i, j, h, bf], {"default": dict(atol=0, rtol=0)})


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8], ids=str)
def test_shifts(dtype):
    bits = torch.iinfo(dtype).bits
    a = torch.tensor([1, -1, 5, 100, -128, 7, 0, 3, 127, -77], dtype=torch.int64).to(dtype)
    # counts: in range, the width and beyond, negative (eager gives 0, or the sign fill)
    s = torch.tensor([0, 3, bits - 1, bits, bits + 2, -1, 1, 2, 5, -bits], dtype=torch.int64).to(dtype)
    names = ["bitwise_left_shift.Tensor", "bitwise_right_shift.Tensor", "bitwise_left_shift.Tensor_Scalar",
             "bitwise_right_shift.Tensor_Scalar", "bitwise_left_shift.Scalar_Tensor",
             "bitwise_right_shift.Scalar_Tensor", "__lshift__.Tensor", "__rshift__.Tensor", "__lshift__.Scalar",
             "__rshift__.Scalar"]

    def fn(x, c):
        return (aten.bitwise_left_shift.Tensor(x, c), aten.bitwise_right_shift.Tensor(x, c),
                aten.bitwise_left_shift.Tensor_Scalar(x, 2), aten.bitwise_right_shift.Tensor_Scalar(x, 1),
                aten.bitwise_left_shift.Scalar_Tensor(3, c), aten.bitwise_right_shift.Scalar_Tensor(100, c),
                aten.__lshift__.Tensor(x, c), aten.__rshift__.Tensor(x, c), aten.__lshift__.Scalar(x, 3),
                aten.__rshift__.Scalar(x, 2))

    compare_each(fn, names, [a, s], {"default": dict(atol=0, rtol=0)})


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8], ids=str)
def test_gcd_lcm(dtype):
    # Zeros, signs, the most negative value (|INT_MIN| stays negative in eager's C abs), products
    # that wrap (8/16-bit lcm wraps after C's int promotion), and random values over the whole
    # range (long Euclid loops).
    info = torch.iinfo(dtype)
    edges_a = [0, 0, 5, -6, info.min, info.min, 100, -100, info.max, 12, -128, 7, 1, info.max]
    edges_b = [0, 3, 0, 4, 0, info.min, 3, -3, 2, -18, -1, info.min, info.max, info.max - 1]
    g = torch.Generator().manual_seed(0)
    a = torch.cat([torch.tensor(edges_a).to(dtype), torch.randint(info.min, info.max, (40,), generator=g).to(dtype)])
    b = torch.cat([torch.tensor(edges_b).to(dtype), torch.randint(info.min, info.max, (40,), generator=g).to(dtype)])
    compare_each(lambda x, y: (aten.gcd.default(x, y), aten.lcm.default(x, y)), ["gcd", "lcm"], [a, b],
                 {"default": dict(atol=0, rtol=0)})


def test_lcm_where_eager_traps_is_defined():
    # lcm(INT64_MIN, 7): gcd is -1 and C's INT64_MIN / -1 overflows (eager dies of SIGFPE); the
    # generated code gives the wrapped value |INT64_MIN * -7| = INT64_MIN instead of trapping.
    m = torch.iinfo(torch.int64).min
    x = torch.tensor([m, m, 6])
    y = torch.tensor([7, 5, 4])
    gcd, lcm = compile_fn(lambda u, v: (torch.gcd(u, v), torch.lcm(u, v)))(x, y)
    assert gcd.tolist() == [-1, -1, 2]
    assert lcm.tolist() == [m, m, 12]


@pytest.mark.parametrize("dtype", FLOATS)
def test_igamma_igammac(dtype):
    # a x x grid over Math.h's regimes: boundaries (0, inf, NaN, negatives), the power series,
    # the continued fraction (x > 1.1), the small-x upper series, Temme's asymptotic expansion
    # (20 < a < 200 near x; a > 200 near x), plus a seeded spread. One graph, both ops.
    a = torch.tensor([0.0, 1e-3, 0.5, 1.0, 2.5, 10.0, 25.0, 30.0, 150.0, 250.0, 1000.0, inf, nan, -1.0],
                     dtype=dtype)[:, None]
    x = torch.tensor([0.0, 1e-4, 0.3, 0.5, 0.7, 1.05, 1.5, 3.0, 24.0, 28.0, 160.0, 260.0, 1010.0, inf, nan, -2.0],
                     dtype=dtype)[None, :]
    g = torch.Generator().manual_seed(0)
    spread_a = (torch.rand(64, generator=g, dtype=torch.float64) * 30).to(dtype)
    spread_x = (torch.rand(64, generator=g, dtype=torch.float64) * 30).to(dtype)
    compare_each(lambda a, x, sa, sx: (aten.igamma.default(a, x), aten.igammac.default(a, x),
                                       aten.igamma.default(sa, sx), aten.igammac.default(sa, sx)),
                 ["igamma", "igammac", "igamma spread", "igammac spread"], [a, x, spread_a, spread_x],
                 {"default": tol(dtype, 1e-6, 1e-12)})


def test_igamma_promotes_integers_and_half():
    # An integer operand promotes to the other's float dtype (eager has no integer kernel:
    # int/int is an error there); float16 computes in float32 and rounds once.
    a = torch.tensor([1, 3, 7, 40])
    x = torch.tensor([0.5, 2.0, 9.0, 38.0], dtype=torch.float16)
    compare_each(lambda u, v: (torch.special.gammainc(u, v), torch.special.gammaincc(u, v.float())),
                 ["gammainc int/half", "gammaincc int/float"], [a, x], {"default": dict(atol=1e-3, rtol=1e-3)})
