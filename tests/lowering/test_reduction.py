"""Reduction rules against eager: every overload on two shapes and each supported dtype, plus
the edge cases eager defines (empty dim list, size-0 dims, NaN, ties, 0-d tensors)."""
import pytest
import torch

from helpers import check, compile_fn, make_input
from torch_mlir_backend.errors import UnsupportedOpError
from torch_mlir_backend.types import FLOAT_DTYPES, SUPPORTED_DTYPES

NUMERIC = [d for d in SUPPORTED_DTYPES if d != torch.bool]

# (atol, rtol): sums of a few dozen elements; half types are rounded once from float32.
TOL = {torch.float32: (1e-5, 1e-5), torch.float64: (1e-12, 1e-12),
       torch.float16: (2e-3, 2e-3), torch.bfloat16: (1.6e-2, 1.6e-2)}


def tol(dtype):
    a, r = TOL.get(dtype, (0, 0))
    return dict(atol=a, rtol=r)


def ids(dtypes):
    return [str(d).replace("torch.", "") for d in dtypes]


def sparse_input(shape, dtype, seed=0):
    """Data with many zeros, and whole zero rows, so any() sees both outcomes."""
    x = make_input(shape, torch.float64, seed=seed)
    x = torch.where(x > 1.5, x, torch.zeros_like(x))
    x[0] = 0
    return x.to(dtype) if dtype != torch.bool else x != 0


# ----- sum / prod / mean ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=ids(SUPPORTED_DTYPES))
def test_sum(dtype):
    # sum.dim_IntList: explicit dims with keepdim and negative dims, and x.sum() (dim=[] = all)
    check(lambda x: x.sum((0, -1), keepdim=True), make_input((3, 4, 5), dtype), name="sum_dims", **tol(dtype))
    check(lambda x: x.sum(), make_input((7, 2), dtype, seed=1), name="sum_all", **tol(dtype))


@pytest.mark.parametrize("dtype", [torch.int32, torch.float32, torch.float16], ids=ids([torch.int32, torch.float32, torch.float16]))
def test_sum_dtype_argument(dtype):
    # dtype= casts the input first; float64 accumulates in float64
    check(lambda x: x.sum(1, dtype=torch.float64), make_input((3, 6), dtype), **tol(torch.float64))
    check(lambda x: x.sum(0, dtype=torch.int64), make_input((4, 2), dtype), **tol(torch.int64))


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=ids(SUPPORTED_DTYPES))
def test_prod(dtype):
    # prod.default and prod.dim_int; small values so that float products stay exact-ish
    check(lambda x: x.prod(), make_input((2, 3), dtype, -2, 2), name="prod_all", **tol(dtype))
    check(lambda x: x.prod(1, keepdim=True), make_input((3, 4, 2), dtype, -2, 2, seed=1), name="prod_dim", **tol(dtype))
    check(lambda x: x.prod(-1), make_input((5, 3), dtype, -2, 2, seed=2), name="prod_neg_dim", **tol(dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=ids(FLOAT_DTYPES))
def test_mean(dtype):
    # mean.default and mean.dim
    check(lambda x: x.mean(), make_input((3, 4, 5), dtype), name="mean_all", **tol(dtype))
    check(lambda x: x.mean((1, 2), keepdim=True), make_input((2, 3, 4), dtype, seed=1), name="mean_dims", **tol(dtype))
    check(lambda x: x.mean(-1), make_input((6, 9), dtype, seed=2), name="mean_neg", **tol(dtype))


def test_mean_of_integers_with_dtype():
    check(lambda x: x.mean(1, dtype=torch.float32), make_input((3, 5), torch.int32), **tol(torch.float32))
    check(lambda x: x.mean(dtype=torch.float64), make_input((2, 2, 3), torch.uint8), **tol(torch.float64))


# ----- any (all decomposes to not-any-not) --------------------------------------------------------
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=ids(SUPPORTED_DTYPES))
def test_any_all(dtype):
    x, y = sparse_input((3, 4, 5), dtype), sparse_input((4, 3), dtype, seed=1)
    check(lambda x: x.any(), x, name="any_default")
    check(lambda x: x.any(1, keepdim=True), x, name="any_dim")
    check(lambda x: x.any((0, 2)), x, name="any_dims")
    check(lambda x: x.all(-1), y, name="all_dim")
    check(lambda x: x.all(), y, name="all")


# ----- amax / amin / max / min ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=ids(SUPPORTED_DTYPES))
def test_amax_amin(dtype):
    check(lambda x: x.amax(1), make_input((3, 4, 5), dtype), name="amax")
    check(lambda x: x.amin((0, -1), keepdim=True), make_input((3, 4, 5), dtype, seed=1), name="amin")
    check(lambda x: x.amax(), make_input((6, 2), dtype, seed=2), name="amax_all")


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=ids(SUPPORTED_DTYPES))
def test_max_min_all(dtype):
    # max.default / min.default
    for i, shape in enumerate([(3, 4, 5), (7,)]):
        check(lambda x: x.max(), make_input(shape, dtype, seed=i), name="max")
        check(lambda x: x.min(), make_input(shape, dtype, seed=i + 2), name="min")


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=ids(SUPPORTED_DTYPES))
def test_max_min_dim(dtype):
    # max.dim / min.dim: values and int64 indices; integer data has many ties (first index wins)
    check(lambda x: x.max(1), make_input((3, 6, 2), dtype), name="max_dim")
    check(lambda x: x.min(-1, keepdim=True), make_input((4, 9), dtype, seed=1), name="min_dim")


@pytest.mark.parametrize("dtype", NUMERIC, ids=ids(NUMERIC))
def test_argmax_argmin(dtype):
    check(lambda x: (x.argmax(), x.argmin(1)), make_input((3, 8), dtype), name="arg")
    check(lambda x: (x.argmax(0, keepdim=True), x.argmin(keepdim=True)), make_input((5, 2, 3), dtype, seed=1),
          name="arg_keepdim")
    # pure ties: the first index wins
    check(lambda x: (x.argmax(1), x.argmin()), torch.ones(3, 4, dtype=dtype), name="arg_ties")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["float32", "float16"])
def test_nan_propagates_and_wins(dtype):
    x = make_input((4, 6), dtype)
    x[1, 2] = x[1, 4] = x[3, 0] = float("nan")
    check(lambda x: (x.amax(1), x.amin(0), x.max(), x.min()), x, name="nan_values")
    # One index reduction per graph: two same-shaped index results in one graph currently hit a
    # bufferization bug of the pipeline (eliminate-empty-tensors on a CSE-shared zero fill).
    for fn in (lambda x: x.max(1), lambda x: x.min(0), lambda x: x.argmax(1), lambda x: x.argmin(1),
               lambda x: x.argmin()):
        check(fn, x, name="nan_indices")


def test_ties_pick_first_index():
    x = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, -5.0, 4.0, -5.0]])
    for fn in (lambda x: (x.argmax(1), x.min(0)), lambda x: (x.argmin(1), x.argmax()),
               lambda x: (x.max(1), x.argmin())):
        check(fn, x, name="ties")
    inf = torch.full((2, 3), float("-inf"))
    check(lambda x: (x.argmax(1), x.max(0)), inf, name="all_minus_inf")


# ----- var / var_mean ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=ids(FLOAT_DTYPES))
def test_var(dtype):
    check(lambda x: (x.var(1), x.var()), make_input((3, 5, 4), dtype), name="var", **tol(dtype))
    check(lambda x: (x.var((0, 2), correction=0, keepdim=True), x.std(-1, correction=2)),
          make_input((4, 3, 6), dtype, seed=1), name="var_correction", **tol(dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=ids(FLOAT_DTYPES))
def test_var_mean(dtype):
    check(lambda x: torch.var_mean(x, (1, 2), correction=0), make_input((2, 3, 4), dtype), **tol(dtype))
    check(lambda x: torch.var_mean(x, -1, keepdim=True), make_input((5, 7), dtype, seed=1), **tol(dtype))


def test_var_with_no_degrees_of_freedom_is_nan_or_inf():
    x = make_input((1, 3), torch.float32)
    check(lambda x: (x.var(0), x.var(0, correction=0), x.var(1, correction=5)), x)


# ----- softmax -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=ids(FLOAT_DTYPES))
def test_softmax_log_softmax(dtype):
    # _softmax.default / _log_softmax.default, large values to exercise the max subtraction
    check(lambda x: (x.softmax(-1), x.log_softmax(1)), make_input((3, 4, 5), dtype, -60, 60), **tol(dtype))
    check(lambda x: (x.softmax(0), x.log_softmax(-1)), make_input((6, 9), dtype, seed=1), **tol(dtype))


def test_softmax_extreme_values():
    x = torch.tensor([[1000.0, 0.0, -1000.0], [float("-inf"), 1.0, float("-inf")],
                      [float("-inf")] * 3, [float("nan"), 1.0, 2.0]])
    check(lambda x: (x.softmax(1), x.log_softmax(1)), x, atol=1e-6, rtol=1e-6)


# ----- dims: empty lists, size-0 dims, 0-d tensors -----------------------------------------------
def test_empty_dim_list():
    x = make_input((3, 4), torch.float32)
    # [] means every dim for sum/mean/amax/var, but no dim at all for any.dims
    check(lambda x: (x.sum(dim=[]), x.mean(dim=[]), x.amax(dim=[]), x.var(dim=[]), x.any(dim=())), x,
          atol=1e-5, rtol=1e-5)


def test_size_zero_reductions_give_identity():
    x = torch.zeros(0, 3)
    check(lambda x: (x.sum(0), x.prod(0), x.mean(0), x.any(0), x.var(0), x.sum()), x, atol=0, rtol=0)
    xi = torch.zeros(2, 0, dtype=torch.int32)
    check(lambda x: (x.sum(1), x.prod(1, keepdim=True)), xi)


def test_zero_dim_tensors():
    x = torch.tensor(2.5)
    check(lambda x: (x.sum(), x.sum(0, keepdim=True), x.mean(-1), x.amax(0), x.max(0), x.argmax(),
                     x.argmin(0, keepdim=True), x.softmax(0), x.log_softmax(-1), x.prod()), x,
          atol=1e-6, rtol=1e-6)


def test_reductions_inside_a_graph():
    # softmax attention-style: the reductions compose with elementwise ops and matmuls
    def fn(q, k):
        s = (q @ k.transpose(0, 1)).softmax(-1)
        return s.sum(0), s.argmax(1), (s - s.mean(1, keepdim=True)).amax()

    check(fn, make_input((4, 8), torch.float32), make_input((5, 8), torch.float32, seed=1), atol=1e-5, rtol=1e-5)


# ----- rejections ----------------------------------------------------------------------------------
def test_argmax_of_bool_is_rejected():
    # eager refuses bool for argmax; the rule must not invent an answer
    with pytest.raises(Exception, match="aten.argmax.default: dtype torch.bool is not supported") as info:
        compile_fn(lambda x: x.argmax())(torch.tensor([True, False]))
    assert isinstance(info.value, UnsupportedOpError) or isinstance(info.value.__cause__, UnsupportedOpError) \
        or "UnsupportedOpError" in str(info.value)


def test_complex_var_is_rejected():
    # sum/mean/prod take complex tensors (tests/lowering/test_complex.py); var does not yet.
    with pytest.raises(Exception, match="aten.var.correction: dtype torch.complex64 is not supported"):
        compile_fn(lambda x: x.var(1))(torch.ones(2, 3, dtype=torch.complex64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.int64, torch.int8,
                                   torch.uint8, torch.bool], ids=lambda d: str(d).replace("torch.", ""))
def test_hash_tensor(dtype):
    # The xor of 64-bit patterns: floats widened to float64 (NaN, -0.0 and inf included), signed
    # integers sign-extended; whole tensor, one dim, several dims with keepdim, an empty result.
    x = make_input((3, 4, 5), dtype, -100, 100)
    if dtype.is_floating_point:
        x[0, 0, :3] = torch.tensor([float("nan"), -0.0, float("inf")], dtype=dtype)
    empty = make_input((2, 0), dtype)
    check(lambda t, e: (torch.hash_tensor(t), torch.hash_tensor(t, 1), torch.hash_tensor(t, [0, 2], keepdim=True),
                        torch.hash_tensor(t, -1, keepdim=True), torch.hash_tensor(e, 0)),
          x, empty, name="aten.hash_tensor.default")

