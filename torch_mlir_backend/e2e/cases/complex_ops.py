"""Complex-tensor cases (lowering/complex.py): casts between real and complex dtypes, building and
splitting complex values, conjugation and elementwise complex math, with complex inputs.

The first cases return real tensors (`view_as_real` of a complex result); the shared comparison
(e2e/compare.py) also compares complex outputs part by part, which the layout, reduction and FFT
cases at the end rely on."""
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


# ----- data movement, factories and reductions on complex tensors, FFTs around them ----------
fn_case("ComplexSliceSelectModule_c64", lambda z: (z[1:, ::2] * 2, z[2] + z.narrow(1, 1, 4).sum(1)[:1]),
        inputs(complex_rand(4, 6)), atol=1e-5, rtol=1e-5)
fn_case("ComplexViewPermuteExpandModule_c64",
        lambda z: ((z * 2).reshape(3, 8), z.t().contiguous(), z[:1].expand(3, 4, 6) * 2, z.unsqueeze(1).squeeze(1)),
        inputs(complex_rand(4, 6)), atol=1e-5, rtol=1e-5)
fn_case("ComplexCatStackModule_c64", lambda a, b, x: (torch.cat([a, b, x], 1), torch.stack([b, x])),
        inputs(complex_rand(4, 6), complex_rand(4, 3), rand(4, 3)), atol=1e-5, rtol=1e-5)
fn_case("ComplexFlipRollPadModule_c128",
        lambda z: (z.flip(0, 1), z.roll(2, 1), torch.nn.functional.pad(z, (1, 2, 0, 1)),
                   torch.constant_pad_nd(z, (2, -1), 1.5)),
        inputs(complex_rand(4, 6, dtype=torch.complex128)), atol=1e-12, rtol=1e-12)
fn_case("ComplexIndexSelectGatherModule_c64",
        lambda z, i: (z.index_select(1, i), z[i], z.gather(0, i[None].expand(2, 4))),
        inputs(complex_rand(5, 6), lambda: torch.tensor([4, 0, 2, 2])), atol=1e-5, rtol=1e-5)
fn_case("ComplexSumMeanProdModule_c64", lambda z: (z.sum(1), z.sum(), z.mean(0, keepdim=True), z.prod(1)),
        inputs(complex_rand(4, 6, low=-1.0, high=1.0)), atol=1e-5, rtol=1e-5)
fn_case("ComplexFullLikeModule_c64",
        lambda z: (torch.zeros_like(z) + z, torch.full_like(z, 2.5) * z,
                   z * torch.scalar_tensor(3.0, dtype=torch.complex64)),
        inputs(complex_rand(3, 4)), atol=1e-5, rtol=1e-5)
fn_case("ComplexFft2SlicedPaddedModule_f32",
        lambda x: (torch.fft.fft2(x, s=(3, 10)), torch.fft.ifftn(x.cfloat(), s=(4, 8), norm="ortho"),
                   torch.fft.irfft2(torch.fft.rfft2(x), s=(6, 7))),
        inputs(rand(5, 6, 7)), atol=1e-4, rtol=1e-4)
fn_case("ComplexStftModule_f32",
        lambda x: torch.stft(x, 8, hop_length=2, window=torch.hann_window(8), return_complex=True),
        inputs(rand(2, 40)), atol=1e-4, rtol=1e-4)
