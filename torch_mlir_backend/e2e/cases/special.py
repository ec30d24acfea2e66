"""Special-math cases (lowering/special.py): error and gamma functions, Bessel functions,
orthogonal polynomials, bit-level float ops and integer shifts, in float32 and float64."""
import torch

from ._util import fn_case, inputs, rand, randint

_UNARY = {
    "Erfinv": (torch.erfinv, -0.99, 0.99),
    "Erfc": (torch.erfc, -4.0, 4.0),
    "Erfcx": (torch.special.erfcx, -5.0, 30.0),
    "LogNdtr": (torch.special.log_ndtr, -10.0, 5.0),
    "Lgamma": (torch.lgamma, -6.0, 20.0),
    "Digamma": (torch.digamma, -6.0, 20.0),
    "I0": (torch.i0, -10.0, 10.0),
    "I0e": (torch.special.i0e, -10.0, 10.0),
    "I1": (torch.special.i1, -10.0, 10.0),
    "I1e": (torch.special.i1e, -10.0, 10.0),
    "Ndtri": (torch.special.ndtri, 0.0, 1.0),
    "BesselJ0": (torch.special.bessel_j0, -20.0, 20.0),
    "BesselJ1": (torch.special.bessel_j1, -20.0, 20.0),
    "BesselY0": (torch.special.bessel_y0, 0.1, 20.0),
    "BesselY1": (torch.special.bessel_y1, 0.1, 20.0),
    "ModifiedBesselI0": (torch.special.modified_bessel_i0, -10.0, 10.0),
    "ModifiedBesselI1": (torch.special.modified_bessel_i1, -10.0, 10.0),
    "ModifiedBesselK0": (torch.special.modified_bessel_k0, 0.1, 10.0),
    "ModifiedBesselK1": (torch.special.modified_bessel_k1, 0.1, 10.0),
    "ScaledModifiedBesselK0": (torch.special.scaled_modified_bessel_k0, 0.1, 10.0),
    "ScaledModifiedBesselK1": (torch.special.scaled_modified_bessel_k1, 0.1, 10.0),
    "SphericalBesselJ0": (torch.special.spherical_bessel_j0, -10.0, 10.0),
    "AiryAi": (torch.special.airy_ai, -10.0, 10.0),
    "Signbit": (torch.signbit, -1.0, 1.0),
    "Polygamma0": (lambda x: torch.polygamma(0, x), 0.1, 10.0),
    "Polygamma1": (lambda x: torch.polygamma(1, x), 0.1, 10.0),
    "Polygamma3": (lambda x: torch.polygamma(3, x), 0.1, 10.0),
    "Mvlgamma3": (lambda x: torch.mvlgamma(x, 3), 1.5, 10.0),
}
for _name, (_fn, _low, _high) in _UNARY.items():
    for _dtype, _suffix in ((torch.float32, "f32"), (torch.float64, "f64")):
        fn_case(f"Special{_name}Module_{_suffix}", _fn, inputs(rand(4, 5, dtype=_dtype, low=_low, high=_high)),
                atol=1e-5, rtol=1e-5)

_POLYNOMIALS = {
    "ChebyshevT": torch.special.chebyshev_polynomial_t, "ChebyshevU": torch.special.chebyshev_polynomial_u,
    "ChebyshevV": torch.special.chebyshev_polynomial_v, "ChebyshevW": torch.special.chebyshev_polynomial_w,
    "ShiftedChebyshevT": torch.special.shifted_chebyshev_polynomial_t,
    "ShiftedChebyshevU": torch.special.shifted_chebyshev_polynomial_u,
    "ShiftedChebyshevV": torch.special.shifted_chebyshev_polynomial_v,
    "ShiftedChebyshevW": torch.special.shifted_chebyshev_polynomial_w,
    "HermiteH": torch.special.hermite_polynomial_h, "HermiteHe": torch.special.hermite_polynomial_he,
    "LaguerreL": torch.special.laguerre_polynomial_l, "LegendreP": torch.special.legendre_polynomial_p,
}
for _name, _fn in _POLYNOMIALS.items():
    # degrees 0..11 along the last axis: the recurrences and the closed forms (n > 6 or 8)
    fn_case(f"Special{_name}Module_f32", lambda x, n, _f=_fn: _f(x, n.to(x.dtype)),
            inputs(rand(3, 1, low=-1.0, high=1.0), randint(1, 12, high=12)), atol=1e-4, rtol=1e-4)
    fn_case(f"Special{_name}Module_f64", lambda x, n, _f=_fn: _f(x, n.to(x.dtype)),
            inputs(rand(3, 1, dtype=torch.float64, low=-1.5, high=1.5), randint(1, 12, high=12)),
            atol=1e-7, rtol=1e-7)

_BINARY = {
    "Copysign": torch.copysign, "Fmax": torch.fmax, "Fmin": torch.fmin, "Hypot": torch.hypot,
    "Nextafter": torch.nextafter, "Zeta": lambda x, q: torch.special.zeta(x.abs() + 1.5, q),
}
for _name, _fn in _BINARY.items():
    for _dtype, _suffix in ((torch.float32, "f32"), (torch.float64, "f64")):
        fn_case(f"Special{_name}Module_{_suffix}", _fn,
                inputs(rand(3, 4, dtype=_dtype, low=-3.0, high=3.0), rand(4, dtype=_dtype, low=-3.0, high=3.0)),
                atol=1e-5, rtol=1e-5)

fn_case("SpecialCopysignScalarModule_f32", lambda x: torch.copysign(x, -1.0), inputs(rand(3, 4)))
fn_case("SpecialFrexpModule_f32", torch.frexp, inputs(rand(3, 4, low=-100.0, high=100.0)))
fn_case("SpecialFrexpModule_f64", torch.frexp, inputs(rand(3, 4, dtype=torch.float64, low=-1e10, high=1e10)))
fn_case("SpecialLdexpModule_f32", torch.ldexp, inputs(rand(3, 4), randint(3, 4, low=-10, high=10)))
fn_case("SpecialBitwiseLeftShiftModule_i64", torch.bitwise_left_shift,
        inputs(randint(3, 4, low=-100, high=100), randint(3, 4, low=-2, high=66)))
fn_case("SpecialBitwiseRightShiftModule_i32", torch.bitwise_right_shift,
        inputs(randint(3, 4, low=-100, high=100, dtype=torch.int32), randint(3, 4, low=-2, high=34, dtype=torch.int32)))
fn_case("SpecialBitwiseRightShiftScalarModule_u8", lambda x: x >> 3,
        inputs(randint(3, 4, high=255, dtype=torch.uint8)))
fn_case("SpecialGcdModule_i64", torch.gcd, inputs(randint(3, 4, low=-1000, high=1000), randint(4, low=-60, high=60)))
fn_case("SpecialLcmModule_i32", torch.lcm,
        inputs(randint(3, 4, low=-100, high=100, dtype=torch.int32), randint(3, 4, low=-30, high=30, dtype=torch.int32)))
fn_case("SpecialLcmModule_i8", torch.lcm,
        inputs(randint(3, 4, low=-128, high=127, dtype=torch.int8), randint(3, 4, low=-128, high=127, dtype=torch.int8)))
fn_case("SpecialLdexpModule_bool", torch.ldexp,
        inputs(lambda: torch.rand(3, 4) < 0.5, lambda: torch.rand(3, 4) < 0.5))
for _name, _fn in (("Igamma", torch.igamma), ("Igammac", torch.igammac)):
    for _dtype, _suffix in ((torch.float32, "f32"), (torch.float64, "f64")):
        # a and x from 0 to 60: the series, the continued fraction and the asymptotic regime
        fn_case(f"Special{_name}Module_{_suffix}", _fn,
                inputs(rand(4, 5, dtype=_dtype, low=0.0, high=60.0), rand(5, dtype=_dtype, low=0.0, high=60.0)),
                atol=1e-6, rtol=1e-5)
