"""Code-generation stages (lowering/codegen.py): the BLAS contraction path and the generated
loops it replaces give eager's answers; parallel loops (on torch's OpenMP team) appear only with several threads and enough
work; exp/erf polynomials match eager over their whole range."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import check, make_input
from torch_mlir_backend.lowering import codegen
from torch_mlir_backend.lowering.pipeline import default_pipeline
from torch_mlir_backend.runtime import build_compiled_graph
from torch_mlir_backend.types import TensorSpec

F32 = torch.float32


@pytest.fixture(autouse=True)
def fast_codegen(monkeypatch):
    """torch.compile'd tests here use the codegen stages (the default; pinned against the env)."""
    monkeypatch.setenv(codegen.ENV_CODEGEN, "fast")


def _matmul_module(m, k, n, transposed_rhs=False):
    rhs = f"tensor<{n}x{k}xf32>" if transposed_rhs else f"tensor<{k}x{n}xf32>"
    body = ""
    b = "%b"
    if transposed_rhs:
        body = (f"  %bt_init = tensor.empty() : tensor<{k}x{n}xf32>\n"
                f"  %bt = linalg.transpose ins(%b : {rhs}) outs(%bt_init : tensor<{k}x{n}xf32>) permutation = [1, 0]\n")
        b = "%bt"
    return f"""
func.func @main(%a: tensor<{m}x{k}xf32>, %b: {rhs}) -> tensor<{m}x{n}xf32> {{
{body}  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<{m}x{n}xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%init : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>
  %c = linalg.matmul ins(%a, {b} : tensor<{m}x{k}xf32>, tensor<{k}x{n}xf32>) outs(%acc : tensor<{m}x{n}xf32>) -> tensor<{m}x{n}xf32>
  return %c : tensor<{m}x{n}xf32>
}}
"""


@pytest.mark.parametrize("blas", [True, False], ids=["blas", "generated"])
@pytest.mark.parametrize("transposed_rhs", [False, True], ids=["rhs", "rhs_transposed"])
@pytest.mark.parametrize("m,k,n", [(5, 7, 3), (64, 48, 33)])
def test_matmul_blas_and_generated_paths_match_eager(blas, transposed_rhs, m, k, n):
    a = make_input((m, k), F32, seed=1)
    b = make_input((n, k) if transposed_rhs else (k, n), F32, seed=2)
    specs = [TensorSpec((m, k), F32), TensorSpec(tuple(b.shape), F32)]
    pipeline = default_pipeline(threads=1, blas=blas, fast=True)
    graph = build_compiled_graph(_matmul_module(m, k, n, transposed_rhs), specs, [TensorSpec((m, n), F32)],
                                 pipeline=pipeline)
    (got,) = graph(a, b)
    want = torch.mm(a, b.t() if transposed_rhs else b)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)
    assert (codegen.BLAS_SYMBOL in graph.llvm_dialect_asm()) == blas
    if blas and transposed_rhs:  # read in place with the 'T' flag, no transposed copy
        from mlir import ir

        with ir.Context():
            module = ir.Module.parse(_matmul_module(m, k, n, transposed_rhs))
            default_pipeline(threads=1, fast=True).run(module, stop_after="contractions-to-blas")
            assert "linalg.transpose" not in str(module)


def test_blas_path_is_used_by_default_for_f32_contractions_and_not_for_f64():
    from mlir import ir

    for dtype, expect in (("f32", True), ("f64", False)):
        text = _matmul_module(4, 4, 4).replace("f32", dtype)
        with ir.Context():
            module = ir.Module.parse(text)
            default_pipeline(threads=1, fast=True).run(module, stop_after="contractions-to-blas")
            assert codegen.uses_blas(module) == expect, dtype


@pytest.mark.parametrize("fn", [torch.bmm, lambda a, b: torch.baddbmm(b[:, :1, :], a, b)],
                         ids=["bmm", "baddbmm"])
def test_batched_contractions_through_blas(fn):
    check(fn, make_input((3, 5, 7), F32, seed=3), make_input((3, 7, 4), F32, seed=4), atol=1e-4, rtol=1e-5)


def test_linear_through_blas():
    check(F.linear, make_input((6, 10), F32, seed=5), make_input((8, 10), F32, seed=6), make_input((8,), F32),
          atol=1e-4, rtol=1e-5)


def _blas_calls_and_contractions_left(dump_dir) -> tuple:
    """(sgemm calls, f32 contractions still linalg ops) in the IR after contractions-to-blas."""
    from mlir import ir

    (path,) = dump_dir.glob("*-contractions-to-blas.mlir")
    text = path.read_text()
    left = []
    with ir.Context() as context:
        context.allow_unregistered_dialects = True
        module = ir.Module.parse(text)

        def collect(op):
            if codegen.is_f32_contraction(op):
                left.append(op.name)
            return ir.WalkResult.ADVANCE

        module.operation.walk(collect)
    return text.count(f"call @{codegen.SGEMM_HELPER}"), left


def _ffn(x, w1, b1, w2):
    return F.linear(torch.relu(F.linear(x, w1, b1)), w2)


def _attention(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) * 0.5, dim=-1) @ v


@pytest.mark.parametrize("fn,shapes,calls", [
    (F.linear, [(2, 3, 10), (8, 10), (8,)], 1),
    (_ffn, [(2, 3, 10), (12, 10), (12,), (6, 12)], 2),
    (_attention, [(2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 4)], 2),
], ids=["linear_3d", "linear_relu_linear_3d", "attention"])
def test_contractions_of_views_stay_whole_for_blas(tmp_path, fn, shapes, calls):
    """Elementwise fusion neither folds the views around a 3-D linear into its matmul nor fuses
    the bias + relu / softmax producers into the next contraction: each reaches BLAS."""
    inputs = [make_input(shape, F32, seed=20 + i) for i, shape in enumerate(shapes)]
    check(fn, *inputs, atol=1e-4, rtol=1e-5, options={"dump_dir": str(tmp_path)})
    assert _blas_calls_and_contractions_left(tmp_path) == (calls, [])


@pytest.mark.parametrize("cin,cout,kernel,stride,padding,dilation", [
    (3, 8, 3, 1, 1, 1), (4, 6, 3, 2, 1, 1), (5, 4, 1, 1, 0, 1), (4, 8, 1, 2, 0, 1), (3, 5, 3, 1, 2, 2),
])
def test_conv2d_im2col_blas_matches_eager(cin, cout, kernel, stride, padding, dilation, monkeypatch):
    from torch_mlir_backend.options import ENV_CONVOLUTION

    monkeypatch.setenv(ENV_CONVOLUTION, "generated")  # our im2col + sgemm, not ATen's kernel
    conv = torch.nn.Conv2d(cin, cout, kernel, stride, padding, dilation).eval()
    x = make_input((2, cin, 9, 11), F32, seed=7)
    with torch.no_grad():
        check(conv, x, atol=1e-4, rtol=1e-5)


def test_exp_and_erf_polynomials_over_their_range():
    special = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 88.7, 88.8, 89.0, -87.0, -100.0, -104.0, -110.0,
                            math.inf, -math.inf, math.nan, 4.0, -4.0, 5.0, 1e-8])
    x = torch.cat([torch.linspace(-110, 90, 20001), special]).to(F32)
    check(lambda t: torch.exp(t), x, atol=1e-37, rtol=3e-7)
    y = torch.cat([torch.linspace(-6, 6, 20001), special]).to(F32)
    check(lambda t: torch.erf(t), y, atol=5e-7, rtol=5e-7)
    # eager's own gelu(+inf) is NaN (its vectorized erf); compare on finite values
    # gelu = x/2 (1 + erf(x/sqrt 2)): erf's 4.2e-7 absolute error scaled by |x|/2 <= 3 on [-6, 6]
    check(lambda t: F.gelu(t), y[y.isfinite()], atol=1.5e-6, rtol=1e-6)


def test_reductions_reassociated_stay_within_f32_rounding():
    x = make_input((3, 5000), F32, seed=8)
    check(lambda t: t.sum(-1), x, atol=1e-3, rtol=1e-5)
    check(lambda t: torch.softmax(t, -1), x, atol=1e-7, rtol=1e-5)


def _module_after(text, stage, threads):
    from mlir import ir

    context = ir.Context()
    module = ir.Module.parse(text, context)
    default_pipeline(threads=threads, fast=True).run(module, stop_after=stage)
    return str(module)


_ADD = """
func.func @main(%a: tensor<{n}x{m}xf32>, %b: tensor<{n}x{m}xf32>) -> tensor<{n}x{m}xf32> {{
  %init = tensor.empty() : tensor<{n}x{m}xf32>
  %c = linalg.add ins(%a, %b : tensor<{n}x{m}xf32>, tensor<{n}x{m}xf32>) outs(%init : tensor<{n}x{m}xf32>) -> tensor<{n}x{m}xf32>
  return %c : tensor<{n}x{m}xf32>
}}
"""


def test_parallel_loops_only_for_several_threads_and_enough_work():
    big, small = _ADD.format(n=256, m=512), _ADD.format(n=4, m=8)
    after = _module_after(big, "outline-parallel-loops", threads=2)
    assert "call @__tmb_parallel_launch_0" in after and "func.func private @__tmb_parallel_body_0" in after
    after = _module_after(small, "outline-parallel-loops", threads=2)
    assert "__tmb_parallel" not in after and "scf.parallel" not in after
    assert "outline-parallel-loops" not in default_pipeline(threads=1, fast=True).stage_names()
    assert "contractions-to-blas" not in default_pipeline(fast=False).stage_names()
    # one parallel dim per op: the inner dimension is a sequential (vectorizable) loop
    after = _module_after(big, "serialize-small-parallel-loops", threads=2)
    assert after.count("scf.parallel (%arg3) =") == 1 and "scf.for" in after
    # the launcher calls torch's libgomp; the body's buffers keep their noalias
    after = _module_after(big, "parallel-launchers", threads=2)
    assert "llvm.call @GOMP_parallel" in after and "omp." not in after
    body = next(line for line in after.splitlines() if "llvm.func @__tmb_parallel_body_0" in line)
    assert body.count("llvm.noalias") == 6  # allocated and aligned pointers of a, b and the result


OPENMP_CHILD = """
import sys, torch
sys.path.insert(0, {tests!r})
from helpers import make_input
from torch_mlir_backend.lowering.pipeline import default_pipeline
from torch_mlir_backend.runtime import build_compiled_graph
from torch_mlir_backend.types import TensorSpec
n, m, F32 = 256, 512, torch.float32
specs = [TensorSpec((n, m), F32)] * 2
graph = build_compiled_graph({text!r}, specs, [TensorSpec((n, m), F32)],
                             pipeline=default_pipeline(threads={threads}, fast=True))
for seed in range(20):
    a, b = make_input((n, m), F32, seed=seed), make_input((n, m), F32, seed=seed + 100)
    (got,) = graph(a, b)
    torch.testing.assert_close(got, a + b, atol=0, rtol=0)
print("ok")
"""


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_parallel_loops_compute_eager_results(threads):
    # In a child process, so that a crash shows its stderr here instead of taking the worker
    # down; 3 threads: shares of unequal size (256 rows).
    import os
    import subprocess
    import sys

    code = OPENMP_CHILD.format(tests=os.path.dirname(__file__) + "/..", text=_ADD.format(n=256, m=512),
                               threads=threads)
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", f"import torch; torch.set_num_threads({threads})\n" + code],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), \
        f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"


def test_parallel_loops_follow_torch_threads(monkeypatch):
    monkeypatch.delenv(codegen.ENV_OPENMP, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert codegen.default_threads() == 2
        assert "outline-parallel-loops" in default_pipeline(fast=True).stage_names()
        monkeypatch.setenv(codegen.ENV_OPENMP, "0")
        assert codegen.default_threads() == 1
        assert "outline-parallel-loops" not in default_pipeline(fast=True).stage_names()
        torch.set_num_threads(1)
        monkeypatch.delenv(codegen.ENV_OPENMP)
        assert codegen.default_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_noalias_on_main_arguments():
    text = _module_after(_ADD.format(n=4, m=8), "noalias-arguments", threads=1)
    assert text.count("llvm.noalias") == 3


def test_plain_loops_pipeline_still_matches_eager(monkeypatch):
    """TORCH_MLIR_BACKEND_CODEGEN=loops keeps the portable plain-loops code generation."""
    from helpers import check
    from torch_mlir_backend.e2e.cases.models import MLP, SmallCNN

    monkeypatch.setenv(codegen.ENV_CODEGEN, "loops")
    assert "reassociate-reductions" not in default_pipeline().stage_names()
    torch.manual_seed(0)
    mlp, cnn = MLP((32, 16, 8)).eval(), SmallCNN().eval()
    with torch.no_grad():
        check(mlp, torch.randn(4, 32), atol=1e-5, rtol=1e-5)
        check(cnn, torch.randn(2, 3, 16, 16), atol=1e-4, rtol=1e-4)


_ROW_MAX = """
func.func @main(%a: tensor<4x64xf32>) -> tensor<4xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %init = tensor.empty() : tensor<4xf32>
  %acc = linalg.fill ins(%ninf : f32) outs(%init : tensor<4xf32>) -> tensor<4xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>],
                       iterator_types = ["parallel", "reduction"]} ins(%a : tensor<4x64xf32>) outs(%acc : tensor<4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<4xf32>
  return %r : tensor<4xf32>
}
"""


def test_float_min_max_become_llvm_intrinsics_with_eager_semantics():
    """arith-expand would turn them into compare/select chains LLVM does not vectorize as
    reductions; the intrinsics keep NaN propagation (values compared with atol=0)."""
    after = _module_after(_ROW_MAX, "min-max-intrinsics", threads=1)
    assert "llvm.intr.maximum" in after and "arith.maximumf" not in after
    x = make_input((4, 64), F32, seed=11)
    x[1, 7] = float("nan")
    x[2] = -0.0
    x[2, 5] = 0.0
    y = make_input((4, 64), F32, seed=12)
    y[0, :3] = torch.tensor([float("nan"), 0.0, -0.0])
    x[0, :3] = torch.tensor([1.0, -0.0, 0.0])
    check(lambda a, b: (a.amax(-1), a.amin(-1), torch.maximum(a, b), torch.minimum(a, b), a.clamp(-1, 1)),
          x, y, atol=0, rtol=0)


@pytest.mark.parametrize("env,expect", [({}, True), ({codegen.ENV_MALLOC_TUNING: "0"}, False),
                                        ({"MALLOC_TRIM_THRESHOLD_": "1000000"}, False)],
                         ids=["default", "disabled", "user_settings_kept"])
def test_malloc_keeps_freed_temporaries_unless_told_not_to(env, expect):
    """glibc keeps the generated code's freed temporaries mapped (no page faults per call),
    unless the user configured malloc or turned it off (a fresh process: the setting is global)."""
    import os
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt tuning is glibc-only")
    code = "from torch_mlir_backend.lowering import codegen; print(codegen.keep_freed_memory_mapped())"
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", codegen.ENV_MALLOC_TUNING)}
    out = subprocess.run([sys.executable, "-c", code], env={**environment, **env}, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[-1] == str(expect)


_SCALE_ROWS = """
func.func @main(%a: tensor<256x512xf32>, %s: tensor<f32>, %rows: tensor<256xf32>) -> tensor<256x512xf32> {
  %v = tensor.extract %s[] : tensor<f32>
  %init = tensor.empty() : tensor<256x512xf32>
  %c = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>, affine_map<(i, j) -> (i, j)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%a, %rows : tensor<256x512xf32>, tensor<256xf32>) outs(%init : tensor<256x512xf32>) {
  ^bb0(%x: f32, %r: f32, %o: f32):
    %i = linalg.index 0 : index
    %ii = arith.index_cast %i : index to i64
    %fi = arith.sitofp %ii : i64 to f32
    %m = arith.mulf %x, %v : f32
    %p = arith.addf %m, %r : f32
    %q = arith.addf %p, %fi : f32
    linalg.yield %q : f32
  } -> tensor<256x512xf32>
  return %c : tensor<256x512xf32>
}
"""


@pytest.mark.parametrize("threads", [2, 3])
def test_parallel_loop_bodies_get_scalars_broadcasts_and_row_indices(threads):
    # The outlined body receives a scalar computed outside the loop, a broadcast operand and the
    # loop index of its own share of rows; with 3 threads the shares differ in size.
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        specs = [TensorSpec((256, 512), F32), TensorSpec((), F32), TensorSpec((256,), F32)]
        graph = build_compiled_graph(_SCALE_ROWS, specs, [TensorSpec((256, 512), F32)],
                                     pipeline=default_pipeline(threads=threads, fast=True))
        a, s, rows = make_input((256, 512), F32, seed=1), torch.tensor(1.5), make_input((256,), F32, seed=2)
        (got,) = graph(a, s, rows)
        want = a * s + rows[:, None] + torch.arange(256, dtype=F32)[:, None]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-6)
    finally:
        torch.set_num_threads(before)
    text = _module_after(_SCALE_ROWS, "outline-parallel-loops", threads=threads)
    assert "call @__tmb_parallel_launch_0" in text
