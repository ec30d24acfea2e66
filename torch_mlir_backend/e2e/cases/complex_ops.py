"""Complex-tensor cases (lowering/complex.py): casts between real and complex dtypes, building and
splitting complex values, conjugation and elementwise complex math, with complex inputs.

Each case returns real tensors (`view_as_real` of a complex result) so the shared comparison
checks both parts of every complex value."""
import torch

from ._util import fn_case, inputs, rand


def complex_rand(*shape, dtype=torch.complex64, low=-2.0, high=2.0):
    parts = rand(*shape, 2, dtype=torch.float64, low=low, high=high)
    return lambda: torch.view_as_complex(parts()).to(dtype)


fn_case("ComplexFromRealCastModule_f32", lambda x: torch.view_as_real(x.to(torch.complex64) * 2),
        inputs(rand(3, 4)), atol=1e-6, rtol=1e-6)
fn_case("ComplexRoundTripModule_f64", lambda x: (x.to(torch.complex128) + x.cdouble()).real,
        inputs(rand(3, 4, dtype=torch.float64)), atol=1e-12, rtol=1e-12)
fn_case("ComplexToComplexCastModule_c64", lambda z: torch.view_as_real(z.to(torch.complex128)),
        inputs(complex_rand(5)), atol=0, rtol=0)
fn_case("ComplexFromPartsModule_f32", lambda a, b: torch.view_as_real(torch.complex(a, b)),
        inputs(rand(3, 4), rand(4)), atol=0, rtol=0)
fn_case("ComplexPolarModule_f64", lambda r, t: torch.view_as_real(torch.polar(r, t)),
        inputs(rand(3, 4, dtype=torch.float64, low=0, high=3), rand(3, 4, dtype=torch.float64, low=-4, high=4)),
        atol=1e-12, rtol=1e-12)
fn_case("ComplexViewAsComplexModule_f32", lambda x: torch.view_as_real(torch.view_as_complex(x) * 3),
        inputs(rand(2, 3, 2)), atol=1e-6, rtol=1e-6)
fn_case("ComplexRealImagAngleModule_c128", lambda z: (z.real, z.imag, torch.angle(z), torch.abs(z)),
        inputs(complex_rand(3, 5, dtype=torch.complex128)), atol=1e-12, rtol=1e-12)
fn_case("ComplexConjModule_c64", lambda z: torch.view_as_real(torch.conj_physical(z) * z.conj()),
        inputs(complex_rand(4, 3)), atol=1e-5, rtol=1e-5)
fn_case("ComplexArithmeticModule_c64",
        lambda a, b, x: torch.view_as_real((a * b - a / b + x * a).exp() * 0.5 - b.sqrt() + (a * a + 1).log()),
        inputs(complex_rand(3, 4, low=0.2, high=1.0), complex_rand(4, low=0.2, high=1.0), rand(3, 4)),
        atol=1e-5, rtol=1e-5)
fn_case("ComplexScalarModule_c128", lambda z: torch.view_as_real(z * 1j + (2 - 1j)),
        inputs(complex_rand(6, dtype=torch.complex128)), atol=1e-12, rtol=1e-12)
fn_case("Complex32CastModule_f32", lambda x: torch.view_as_real(x.chalf().cfloat() * 2),
        inputs(rand(8)), atol=1e-3, rtol=1e-3)
