"""Complex tensors (lowering/complex.py and the complex bodies of the elementwise rules) against
eager PyTorch: casts between real and complex dtypes, building and splitting complex values,
conjugation, elementwise math with eager's type promotion, complex graph inputs and outputs
(also lazy conj/neg views as inputs), complex32, and the Torch dialect torch-mlir must parse.

Complex results are compared with `torch.testing.assert_close`, which compares real and imaginary
parts (tests/helpers' `check` compares floats)."""
import warnings

import pytest
import torch

from helpers import compile_fn

from torch_mlir_backend.errors import UnsupportedOpError

C64_TOL = dict(atol=1e-5, rtol=1e-5)
C128_TOL = dict(atol=1e-12, rtol=1e-12)


def _complex(shape, dtype=torch.complex64, seed=0, low=-2.0, high=2.0):
    g = torch.Generator().manual_seed(seed)
    parts = torch.rand(*shape, 2, generator=g, dtype=torch.float64) * (high - low) + low
    return torch.view_as_complex(parts).to(dtype)


def _real(shape, dtype=torch.float32, seed=1, low=-2.0, high=2.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=torch.float64) * (high - low) + low).to(dtype)


def check_close(fn, *inputs, atol, rtol):
    """Compile `fn` (strict: no eager fallback) and compare every output with eager's, dtype included."""
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # complex -> real casts warn in both
        want = fn(*[x.clone() if isinstance(x, torch.Tensor) else x for x in inputs])
        got = compile_fn(fn)(*inputs)
    torch.testing.assert_close(got, want, atol=atol, rtol=rtol)
    return got


# ----- casts (aten._to_copy, prims.convert_element_type) -------------------------------------
@pytest.mark.parametrize("src", [torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool],
                         ids=lambda d: str(d).replace("torch.", ""))
@pytest.mark.parametrize("dst", [torch.complex64, torch.complex128], ids=lambda d: str(d).replace("torch.", ""))
def test_real_to_complex_sets_imaginary_zero(src, dst):
    x = _real((3, 4), low=-5, high=5).to(src) if src != torch.bool else _real((3, 4)) > 0
    check_close(lambda t: t.to(dst), x, atol=0, rtol=0)


@pytest.mark.parametrize("src,dst", [(torch.complex64, torch.complex128), (torch.complex128, torch.complex64)],
                         ids=["c64-c128", "c128-c64"])
def test_between_complex_dtypes(src, dst):
    check_close(lambda z: z.to(dst), _complex((5,), src), atol=0, rtol=0)


@pytest.mark.parametrize("dst", [torch.float32, torch.float64, torch.int64, torch.int8],
                         ids=lambda d: str(d).replace("torch.", ""))
def test_complex_to_real_keeps_real_part_and_warns(dst):
    z = _complex((3, 4), low=-50, high=50)
    torch._dynamo.reset()
    with pytest.warns(UserWarning, match="discards the imaginary part"):
        compiled = compile_fn(lambda t: t.to(dst))
        got = compiled(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        want = z.to(dst)
    torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_complex_to_bool_is_nonzero():
    # Both parts count: 1j is True (eager), a real-part cast would say False.
    z = torch.tensor([0j, 1j, 1 + 0j, -2 - 3j, 0j], dtype=torch.complex64)
    got = check_close(lambda t: t.bool(), z, atol=0, rtol=0)
    assert got.tolist() == [False, True, True, True, False]


def test_real_complex_real_round_trip():
    x = _real((4, 6))
    check_close(lambda t: (t.to(torch.complex64) * (1 + 0j) + t.cfloat()).real * 0.5, x, **C64_TOL)


def test_convert_element_type_of_complex():
    check_close(lambda z: torch.ops.prims.convert_element_type(z, torch.complex128), _complex((3,)),
                atol=0, rtol=0)


# ----- building and splitting complex values ---------------------------------------------------
@pytest.mark.parametrize("dtype,tol", [(torch.float32, C64_TOL), (torch.float64, C128_TOL)], ids=["f32", "f64"])
def test_complex_from_parts_broadcasts(dtype, tol):
    check_close(torch.complex, _real((3, 4), dtype), _real((4,), dtype, seed=2), **tol)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, C64_TOL), (torch.float64, C128_TOL)], ids=["f32", "f64"])
def test_polar(dtype, tol):
    check_close(torch.polar, _real((3, 4), dtype, low=0, high=3), _real((3, 4), dtype, seed=2, low=-4, high=4), **tol)


def test_view_as_complex_and_view_as_real():
    x = _real((3, 4, 2))
    check_close(lambda t: torch.view_as_complex(t) * 2, x, **C64_TOL)
    check_close(lambda z: torch.view_as_real(z) + 1, _complex((3, 4)), **C64_TOL)


def test_real_imag_angle():
    z = _complex((3, 5), torch.complex128)
    check_close(lambda t: (t.real * 2, t.imag - 1, torch.angle(t)), z, **C128_TOL)


def test_conjugation():
    # torch.conj_physical reaches the backend as aten._conj_physical.default; torch.conj as the
    # lazy view aten._conj.default, materialized by a clone.
    z = _complex((2, 3))
    check_close(torch.conj_physical, z, atol=0, rtol=0)
    check_close(lambda t: torch.conj(t) * 2, z, **C64_TOL)
    check_close(lambda t: torch.conj_physical(t), _real((4,)), atol=0, rtol=0)  # the identity on reals


@pytest.mark.parametrize("dtype,tol", [(torch.complex64, C64_TOL), (torch.complex128, C128_TOL)],
                         ids=["c64", "c128"])
def test_abs_is_real(dtype, tol):
    got = check_close(torch.abs, _complex((4, 5), dtype), **tol)
    assert not got.is_complex()


# ----- elementwise math ------------------------------------------------------------------------
_BINARY = {
    "add": lambda a, c: a + c,
    "add_alpha": lambda a, c: torch.add(a, c, alpha=3),
    "sub": lambda a, c: a - c,
    "rsub": lambda a, c: torch.rsub(a, c, alpha=2),
    "mul": lambda a, c: a * c,
    "div": lambda a, c: a / c,
}


@pytest.mark.parametrize("op", list(_BINARY))
@pytest.mark.parametrize("dtype,tol", [(torch.complex64, C64_TOL), (torch.complex128, C128_TOL)],
                         ids=["c64", "c128"])
def test_binary_complex_with_broadcasting(op, dtype, tol):
    check_close(_BINARY[op], _complex((3, 4), dtype), _complex((4,), dtype, seed=3), **tol)


@pytest.mark.parametrize("other", ["f32", "f64", "i64", "scalar", "int_scalar"])
def test_promotion_complex_with_real(other):
    # complex64 * float64 tensor -> complex128, as eager promotes; Python numbers keep complex64.
    z = _complex((3, 4))
    if other in ("scalar", "int_scalar"):
        value = 2.5 if other == "scalar" else 3
        check_close(lambda t: (t * value, t / value, t - value), z, **C64_TOL)
        return
    dtype = {"f32": torch.float32, "f64": torch.float64, "i64": torch.int64}[other]
    x = _real((3, 4), low=1, high=5).to(dtype)
    got = check_close(lambda t, u: (t * u, u / t, u - t), z, x, **C64_TOL)
    assert got[0].dtype == (torch.complex128 if dtype == torch.float64 else torch.complex64)


_UNARY = {
    "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt,
    "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh, "reciprocal": torch.reciprocal,
    "sigmoid": torch.sigmoid,
}


@pytest.mark.parametrize("op", list(_UNARY))
@pytest.mark.parametrize("dtype,tol", [(torch.complex64, dict(atol=1e-5, rtol=1e-5)),
                                       (torch.complex128, dict(atol=1e-12, rtol=1e-12))], ids=["c64", "c128"])
def test_unary_complex(op, dtype, tol):
    # tanh: both of its branches (|Re z| > 20 is computed as glibc's ctanh does).
    if op == "tanh":
        z = torch.cat([_complex((4, 5), dtype, low=0.1, high=2), _complex((4, 5), dtype, low=20.5, high=30)])
        check_close(torch.tanh, z, **tol)
        return
    # Inputs off the branch cut of log/sqrt (the negative real axis) where a last-bit difference
    # of the imaginary part would flip the result's sign.
    z = _complex((4, 5), dtype, low=0.1, high=2)
    check_close(_UNARY[op], z, **tol)


@pytest.mark.parametrize("op", ["sin", "cos", "tanh", "exp", "sqrt", "reciprocal", "sigmoid"])
def test_unary_complex_keeps_small_parts_precise(op):
    # Each part to a relative 2e-5 (assert_close on complex values would accept any error in a
    # part much smaller than |z|): cos(z) = cos x cosh y - i sin x sinh y has a tiny imaginary part
    # for tiny z, which (e^y - e^-y) / 2 loses entirely in f32.
    z = _complex((6, 5), low=-1e-4, high=1e-4)
    torch._dynamo.reset()
    fn = _UNARY.get(op, torch.sigmoid)
    got = compile_fn(fn)(z)
    torch.testing.assert_close(torch.view_as_real(got), torch.view_as_real(fn(z)), atol=0, rtol=2e-5)


def test_complex_log_near_the_unit_circle():
    # Re log z = log|z| is tiny there: each part to a relative 2e-5, as eager's clogf keeps it.
    theta = _real((20,), torch.float64, low=-3, high=3)
    radius = 1 + _real((20,), torch.float64, seed=4, low=-1e-3, high=1e-3)
    z = torch.polar(radius, theta).to(torch.complex64)
    torch._dynamo.reset()
    got = compile_fn(torch.log)(z)
    torch.testing.assert_close(torch.view_as_real(got), torch.view_as_real(torch.log(z)), atol=0, rtol=2e-5)


def test_equality_and_where():
    # eq/ne compare both parts (eager defines no ordering of complex numbers); where picks whole values.
    z = _complex((3, 4))
    w = z.clone()
    w[0, 1] += 1j
    w[2, 2] = 7
    check_close(lambda t, u: (t == u, t != u, t == 2.0), z, w, atol=0, rtol=0)
    check_close(lambda t, u, x: (torch.where(t.real > 0, t, u), torch.where(t.imag > 0, x, t)), z, w,
                _real((3, 4)), atol=0, rtol=0)


def test_complex_input_and_output_through_a_chain():
    a, c = _complex((8,)), _complex((8,), seed=5)
    x = _real((8,), low=0.5, high=1.5)
    check_close(lambda u, v, w: ((u * w + v / (v + 1)) - u).exp() * v.conj(), a, c, x, atol=1e-5, rtol=1e-5)


# ----- constants: complex Python numbers and complex tensor constants ------------------------
_CONSTANT = torch.tensor([1 + 2j, 3 - 1j, -2j], dtype=torch.complex64)


def test_complex_python_numbers_promote_as_eager():
    # A wrapped complex number: complex64 with float32 tensors, complex128 with float64 ones.
    check_close(lambda t: t * 1j + (2 - 1j), _complex((3,)), **C64_TOL)
    got = check_close(lambda x: x * 1j - 1, _real((3,)), **C64_TOL)
    assert got.dtype == torch.complex64
    got = check_close(lambda x: x * 1j - 1, _real((3,), torch.float64), **C128_TOL)
    assert got.dtype == torch.complex128


def test_complex_tensor_constants():
    check_close(lambda t: t + _CONSTANT, _complex((3,)), **C64_TOL)
    check_close(lambda t: t * torch.tensor([1 + 2j, 3 - 1j, -2j]), _complex((2, 3)), **C64_TOL)


def test_dynamic_shapes():
    fn = lambda t, x: (torch.view_as_real(t * x + torch.complex(x, -x)), t.abs(), torch.view_as_complex(  # noqa: E731
        torch.view_as_real(t) * 2))
    compiled = compile_fn(fn, dynamic=True)
    for rows in (3, 5):
        z, x = _complex((rows, 4), seed=rows), _real((rows, 4), seed=rows)
        torch.testing.assert_close(compiled(z, x), fn(z, x), atol=1e-5, rtol=1e-5)


# ----- the runtime boundary --------------------------------------------------------------------
def test_lazy_conjugate_and_negative_views_as_inputs():
    # x.conj() shares x's storage with a conjugate bit, its .imag a negative bit: the generated code
    # reads storage, so the runtime must resolve them.
    z = _complex((3, 4))
    check_close(lambda t: t * 2, z.conj(), **C64_TOL)
    check_close(lambda t: t + 1, z.conj().imag, **C64_TOL)
    check_close(lambda t: t + 1, z.t(), **C64_TOL)  # a strided complex view


def test_complex_inputs_outputs_with_write_checks(monkeypatch):
    monkeypatch.setenv("TORCH_MLIR_BACKEND_CHECK_WRITES", "1")
    z = _complex((5, 3))
    check_close(lambda t, u: (t * u, torch.view_as_real(t)), z, z.conj(), **C64_TOL)


# ----- complex32 (chalf): complex<f16> -------------------------------------------------------
def test_complex32_casts_and_arithmetic():
    x = _real((4,), torch.float32)
    check_close(lambda t: t.chalf(), x, atol=1e-3, rtol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "ComplexHalf support is experimental"
        h = _complex((4,), torch.complex32)
    check_close(lambda t: (t + t, t * t, t.cfloat()), h, atol=2e-3, rtol=2e-3)


# ----- errors ----------------------------------------------------------------------------------
def test_complex_op_without_complex_lowering_names_the_dtype():
    torch._dynamo.reset()
    with pytest.raises(Exception) as info:
        compile_fn(torch.tan)(_complex((3,)))  # no complex body (MLIR's loses small |z|)
    assert isinstance(info.value.__cause__ or info.value, UnsupportedOpError) or "UnsupportedOpError" in str(info.value)
    assert "aten.tan" in str(info.value) and "complex64" in str(info.value)


# ----- the Torch dialect we emit is torch-mlir's ------------------------------------------------
def test_torch_mlir_parses_complex_types():
    torch_mlir_ir = pytest.importorskip("torch_mlir.ir", reason="the torch-mlir oracle is the test extra `torch-mlir`")
    from torch_mlir.dialects import torch as torch_d
    from torch._dynamo.backends.common import aot_autograd

    from torch_mlir_backend.decompositions import decomposition_table
    from torch_mlir_backend.importers.fx_importer import import_fx_graph

    texts = []

    def capture(gm, example_inputs):
        texts.append(import_fx_graph(gm).operation.get_asm(enable_debug_info=False))
        return gm.forward

    torch._dynamo.reset()
    fn = lambda z, x: (torch.view_as_real(z * x.cdouble()), torch.complex(x, x), z.to(torch.complex32))  # noqa: E731
    backend = aot_autograd(fw_compiler=capture, decompositions=decomposition_table())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.compile(fn, backend=backend, fullgraph=True)(_complex((3,)), _real((3,)))
    (text,) = texts
    for spelling in ("complex<f32>", "complex<f64>", "complex<f16>"):
        assert spelling in text
    ctx = torch_mlir_ir.Context()
    torch_d.register_dialect(ctx)
    ctx.allow_unregistered_dialects = False
    with ctx:
        assert torch_mlir_ir.Module.parse(text).operation.verify()


# ----- data movement and reductions on complex tensors (shape/indexing/creation/reduction rules) --
# Each op moves complex<fN> elements (or adds them): a wrong element type, a lost imaginary part
# or a real-valued pad/fill constant shows as a mismatch of either part.
_LAYOUT = {
    "slice": lambda t: t[1:, ::2] * 2,
    "narrow": lambda t: t.narrow(1, 2, 3) * 2,
    "select": lambda t: t[2] + t[:, 1].sum(),
    "view": lambda t: (t * 2).reshape(3, 8),
    "permute": lambda t: (t * 2).permute(1, 0) * 2,
    "transpose_contiguous": lambda t: (t + 1).t().contiguous(),
    "unsqueeze_squeeze": lambda t: (t.unsqueeze(1) * 2).squeeze(1),
    "expand": lambda t: t[:1].expand(3, 4, 6) * 2,
    "flip": lambda t: t.flip(0, 1),
    "roll": lambda t: t.roll(2, 1),
    "constant_pad_nd": lambda t: torch.nn.functional.pad(t, (1, 2, 0, 1)),
    "constant_pad_nd_value": lambda t: torch.constant_pad_nd(t, (2, 1), 1.5),
    "constant_pad_nd_crop": lambda t: torch.nn.functional.pad(t, (-1, 2, 1, -2)),
    "split": lambda t: t.split([2, 4], 1),
    "sum_dim": lambda t: t.sum(1),
    "sum_all_keepdim": lambda t: (t.sum(), t.sum((0, 1), keepdim=True)),
    "mean": lambda t: (t.mean(0, keepdim=True), t.mean()),
    "prod": lambda t: (t.prod(1), t.prod()),
    "zeros_ones_full_like": lambda t: (torch.zeros_like(t) + t, torch.ones_like(t) * t, torch.full_like(t, 2.5)),
}


@pytest.mark.parametrize("op", list(_LAYOUT))
@pytest.mark.parametrize("dtype,tol", [(torch.complex64, C64_TOL), (torch.complex128, C128_TOL)],
                         ids=["c64", "c128"])
def test_layout_and_reductions_on_complex(op, dtype, tol):
    check_close(_LAYOUT[op], _complex((4, 6), dtype), **tol)


def test_cat_and_stack_of_complex_with_real_promotes():
    # cat's operands arrive as a list (no TensorSpec): their dtype comes from the element type,
    # and a real operand is promoted to complex (imaginary part 0) as eager does.
    z, w, x = _complex((4, 6)), _complex((4, 3), seed=2), _real((4, 3))
    check_close(lambda a, b, c: (torch.cat([a, b, c], 1), torch.stack([b, c])), z, w, x, **C64_TOL)
    check_close(lambda a, b: torch.cat([a, b.cdouble()]), z.cdouble(), _complex((6, 2), seed=3).t(), **C128_TOL)


def test_indexing_complex():
    z = _complex((5, 6))
    idx = torch.tensor([4, 0, 2, 2])
    check_close(lambda t, i: (t.index_select(1, i), t[i], t.gather(0, i[None].expand(2, 4)), t[i, i]),
                z, idx, **C64_TOL)


def test_complex_factories():
    z = _complex((3, 4))
    check_close(lambda t: (t * torch.scalar_tensor(3.0, dtype=torch.complex64),
                           t + torch.full((3, 4), -1.5, dtype=torch.complex64),
                           torch.empty_like(t).copy_(t.real) * t), z, **C64_TOL)


def test_fft_with_slicing_and_padding():
    # fft2/irfftn/hfftn trim or zero-pad their complex operands (slice, constant_pad_nd) around
    # ATen's FFT kernels.
    x = _real((5, 6, 7))
    check_close(lambda t: (torch.fft.fft2(t, s=(3, 10)), torch.fft.irfftn(torch.fft.rfftn(t), s=(5, 4, 7)),
                           torch.fft.hfft2(t.cfloat(), s=(4, 9))), x, atol=1e-4, rtol=1e-4)
    check_close(lambda t: torch.stft(t, 8, hop_length=2, return_complex=True, window=torch.hann_window(8)),
                _real((2, 40)), atol=1e-4, rtol=1e-4)


def test_complex32_layout():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "ComplexHalf support is experimental"
        h = _complex((4, 6), torch.complex32)
    check_close(lambda t: (t[1:].flip(0), torch.cat([t, t], 0), t.permute(1, 0) * 2), h, atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("name,fn", [
    ("diagonal", lambda x: torch.diagonal(x, 1) * 2),
    ("trace", lambda x: torch.trace(x)),
    ("unfold", lambda x: x.unfold(1, 2, 1) + 1),
    ("slice_scatter", lambda x: torch.slice_scatter(x, torch.ones(4, 2, dtype=x.dtype), 1, 1, 3)),
    ("circular_pad", lambda x: torch.nn.functional.pad(x[None], (1, 1), mode="circular")),
])
def test_diagonal_unfold_slice_scatter_of_complex(name, fn):
    g = torch.Generator().manual_seed(7)
    x = torch.complex(torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g))
    torch.testing.assert_close(compile_fn(fn)(x), fn(x), atol=1e-6, rtol=1e-6)
