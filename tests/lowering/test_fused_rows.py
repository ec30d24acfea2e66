"""Row-wise fused softmax / log_softmax / layer_norm / attention (issue #6) against eager.

softmax writes its exps once into the result and rescales them in place; attention
(`_scaled_dot_product_flash_attention_for_cpu`, kept whole by decompositions.py) is two sgemm
calls around that softmax with the scale and masks folded in; the codegen stage `fuse-rows`
runs the ops of one row together. Inputs include -inf masks, fully masked rows, NaN and large
magnitudes (the max subtraction must keep exp finite).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import check, compile_fn, make_input
from torch_mlir_backend.runtime.compiled_graph import CHECK_WRITES_ENV

F32 = torch.float32
aten = torch.ops.aten


def _rows_with_specials(shape, seed=0):
    x = make_input(shape, F32, -5, 5, seed=seed)
    flat = x.view(-1, shape[-1])
    flat[0, 1::2] = -math.inf  # partly masked row
    flat[1] = -math.inf  # fully masked row: NaN in eager
    flat[2, 3] = math.nan
    flat[3] *= 1e4  # large magnitudes: exp(x - max) must not overflow
    flat[4, 0] = 3e38
    return x


@pytest.mark.parametrize("shape", [(6, 37), (2, 5, 130)])
def test_softmax_and_log_softmax_last_dim_with_special_rows(shape):
    x = _rows_with_specials(shape)
    check(lambda t: (torch.softmax(t, -1), torch.log_softmax(t, -1)), x, atol=1e-6, rtol=1e-5)


def test_softmax_over_a_middle_dim_and_f64():
    x = make_input((3, 40, 7), F32, -30, 30, seed=1)
    check(lambda t: (torch.softmax(t, 1), torch.log_softmax(t, 1)), x, atol=1e-6, rtol=1e-5)
    check(lambda t: (torch.softmax(t, -1), torch.log_softmax(t, 0)), x.double(), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_softmax_half_types_and_float_results(dtype):
    x = make_input((4, 50), dtype, -8, 8, seed=2)
    tol = dict(atol=2e-3, rtol=1e-2) if dtype == torch.float16 else dict(atol=1e-2, rtol=2e-2)
    check(lambda t: (torch.softmax(t, -1), torch.log_softmax(t, -1), torch.softmax(t, 0, dtype=F32)), x, **tol)


def test_layer_norm_rows_with_a_large_mean():
    # two-pass statistics in each fused row: a mean of 1e3 does not cancel the variance away
    # (f32 holds 1e3 + x to 6e-5; times rstd ~1.7 and |w| <= 3: a few 1e-4 between two
    # correct algorithms, eager's Welford and our two passes)
    x = make_input((8, 3, 96), F32, -1, 1, seed=3) + 1e3
    w, b = make_input((3, 96), F32, seed=4), make_input((3, 96), F32, seed=5)
    check(lambda t, w, b: F.layer_norm(t, (3, 96), w, b), x, w, b, atol=2e-3, rtol=1e-4)
    check(lambda t: aten.native_layer_norm.default(t, [96], None, None, 1e-5), x, atol=1e-3, rtol=1e-4)


def _qkv(b, h, lq, lk, e, ev=None, seed=0):
    return (make_input((b, h, lq, e), F32, -2, 2, seed=seed), make_input((b, h, lk, e), F32, -2, 2, seed=seed + 1),
            make_input((b, h, lk, ev or e), F32, -2, 2, seed=seed + 2))


def test_attention_causal_and_scaled():
    q, k, v = _qkv(2, 3, 17, 17, 16)
    check(lambda q, k, v: (F.scaled_dot_product_attention(q, k, v, is_causal=True),
                           F.scaled_dot_product_attention(q, k, v, scale=0.7)), q, k, v, atol=1e-5, rtol=1e-5)
    q, k, v = _qkv(1, 2, 5, 9, 8, ev=12, seed=3)  # more keys than queries, wider values
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mask_shape", [(11, 13), (2, 1, 11, 13), (2, 3, 11, 13), (1, 13)])
def test_attention_float_masks_broadcast(mask_shape):
    q, k, v = _qkv(2, 3, 11, 13, 8, seed=6)
    mask = make_input(mask_shape, F32, -3, 3, seed=9)
    mask[..., 0, 1::3] = -math.inf
    check(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m), q, k, v, mask,
          atol=1e-5, rtol=1e-5)


def test_attention_fully_masked_rows_give_zeros_and_large_scores():
    q, k, v = _qkv(1, 2, 6, 6, 4, seed=12)
    allowed = torch.ones(6, 6, dtype=torch.bool).tril()
    allowed[2] = False  # a query that sees no key: eager's flash kernel returns zeros
    check(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m), q, k, v, allowed,
          atol=1e-5, rtol=1e-5)
    big = q * 300  # scores ~1e4: the row max keeps exp finite
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), big, k, v, atol=1e-5, rtol=1e-5)


def test_flash_attention_op_output_and_logsumexp():
    q, k, v = _qkv(2, 2, 7, 7, 8, seed=15)
    mask = make_input((7, 7), F32, -1, 1, seed=18)
    mask[4] = -math.inf  # a fully masked row: output 0, logsumexp 0 in eager

    def both(q, k, v, m):
        causal = aten._scaled_dot_product_flash_attention_for_cpu.default(q, k, v, 0.0, True)
        masked = aten._scaled_dot_product_flash_attention_for_cpu.default(q, k, v, 0.0, False, attn_mask=m, scale=0.4)
        return causal + masked

    check(both, q, k, v, mask, atol=1e-5, rtol=1e-5)


def test_attention_gradients_through_the_fused_forward():
    q, k, v = (t.requires_grad_() for t in _qkv(2, 2, 9, 9, 8, seed=21))
    compiled = compile_fn(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    got = torch.autograd.grad(compiled(q, k, v).square().sum(), (q, k, v))
    want = torch.autograd.grad(F.scaled_dot_product_attention(q, k, v, is_causal=True).square().sum(), (q, k, v))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)


def test_fused_rows_write_only_their_outputs(monkeypatch):
    monkeypatch.setenv(CHECK_WRITES_ENV, "1")
    q, k, v = _qkv(2, 2, 12, 12, 8, seed=24)
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v, atol=1e-5, rtol=1e-5)
    x = make_input((5, 33), F32, seed=25)
    check(lambda t: (torch.softmax(t, -1), F.layer_norm(t, (33,))), x, atol=1e-5, rtol=1e-5)


def test_fuse_rows_stage_puts_softmax_ops_in_one_row_loop(tmp_path):
    x = make_input((4, 64), F32, seed=26)
    check(lambda t: torch.softmax(t, -1), x, atol=1e-6, rtol=1e-5, options={"dump_dir": str(tmp_path)})
    (fused,) = tmp_path.glob("*-fuse-rows.mlir")
    text = fused.read_text()
    # the row loop is an scf.parallel when torch runs several threads (spread over them later)
    keyword = "scf.parallel" if torch.get_num_threads() > 1 else "scf.for"
    loop = text[text.index(keyword):]
    # max, exp-and-sum and rescale all inside the row loop (no linalg op left before it)
    assert text[:text.index(keyword)].count("linalg.generic") == 0
    assert loop.count("linalg.generic") == 3


_TRANSPOSED_READ = """
#id = affine_map<(d0, d1) -> (d0, d1)>
#tr = affine_map<(d0, d1) -> (d1, d0)>
func.func @main(%x: memref<8x8xf32>, %y: memref<8x8xf32>) {
  %a = memref.alloc() : memref<8x8xf32>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<8x8xf32>) outs(%a : memref<8x8xf32>) {
  ^bb0(%i: f32, %o: f32):
    %e = arith.addf %i, %i : f32
    linalg.yield %e : f32
  }
  linalg.generic {indexing_maps = [#tr, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : memref<8x8xf32>) outs(%y : memref<8x8xf32>) {
  ^bb0(%i: f32, %o: f32):
    linalg.yield %i : f32
  }
  memref.dealloc %a : memref<8x8xf32>
  return
}
"""


def test_fuse_rows_leaves_ops_reading_another_row_apart():
    from mlir import ir

    from torch_mlir_backend.lowering.codegen import fuse_rows

    with ir.Context():
        module = ir.Module.parse(_TRANSPOSED_READ)
        fuse_rows(module)  # row i of the second op reads column i of the first: not fusable
        assert "scf.for" not in str(module)
        module = ir.Module.parse(_TRANSPOSED_READ.replace("[#tr, #id]", "[#id, #id]"))
        fuse_rows(module)
        assert str(module).count("scf.for") == 1
        module.operation.verify()


_ROW_SUM_THEN_SCALE = """
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#none = affine_map<(d0, d1) -> ()>
func.func @main(%x: memref<4x8xf32>, %y: memref<4x8xf32>, %c: f32) {
  %zero = arith.constant 0.0 : f32
  %s = memref.alloc() : memref<4xf32>
  linalg.fill ins(%zero : f32) outs(%s : memref<4xf32>)
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<4x8xf32>) outs(%s : memref<4xf32>) {
  ^bb0(%i: f32, %a: f32):
    %e = arith.addf %i, %a : f32
    linalg.yield %e : f32
  }
  linalg.generic {indexing_maps = [#id, #row, #none, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x, %s, %c : memref<4x8xf32>, memref<4xf32>, f32) outs(%y : memref<4x8xf32>) {
  ^bb0(%i: f32, %t: f32, %k: f32, %o: f32):
    %d = arith.divf %i, %t : f32
    %e = arith.mulf %d, %k : f32
    linalg.yield %e : f32
  }
  memref.dealloc %s : memref<4xf32>
  return
}
"""


def test_fuse_rows_keeps_the_map_of_a_scalar_operand():
    # fill, row sum and the scaled division share the row loop; the scalar operand keeps a map
    from mlir import ir

    from torch_mlir_backend.lowering.codegen import fuse_rows

    with ir.Context():
        module = ir.Module.parse(_ROW_SUM_THEN_SCALE)
        fuse_rows(module)
        module.operation.verify()
        text = str(module)
        assert text.count("scf.for") == 1 and text.index("scf.for") < text.index("linalg.fill")


def test_fuse_rows_leaves_gathers_apart():
    # the second op loads from the first op's buffer at a computed row (torch.roll's gather)
    from mlir import ir

    from torch_mlir_backend.lowering.codegen import fuse_rows

    gather = _TRANSPOSED_READ.replace("[#tr, #id]", "[#id, #id]").replace(
        "    linalg.yield %i : f32\n  }\n  memref.dealloc",
        "    %r = linalg.index 0 : index\n    %c0 = arith.constant 0 : index\n"
        "    %v = memref.load %a[%c0, %r] : memref<8x8xf32>\n    linalg.yield %v : f32\n  }\n  memref.dealloc")
    with ir.Context():
        module = ir.Module.parse(gather)
        fuse_rows(module)
        assert "scf.for" not in str(module)


def test_sgemm_writes_a_zero_filled_result_without_the_fill(tmp_path):
    # attention's two contractions (and every mm) get beta = 0 instead of a memset of their result
    q, k, v = _qkv(2, 2, 16, 16, 8, seed=30)
    check(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v,
          atol=1e-5, rtol=1e-5, options={"dump_dir": str(tmp_path)})
    (blas,) = tmp_path.glob("*-contractions-to-blas.mlir")
    text = blas.read_text()
    assert text.count("call @__tmb_sgemm_row_major") == 2
    fills = [line for line in text.splitlines() if "linalg.fill" in line]
    # only the row statistics (max, sum: [B, H, L]) are filled, not the scores or the output
    assert len(fills) == 2 and all("memref<2x2x16xf32>" in line for line in fills)
