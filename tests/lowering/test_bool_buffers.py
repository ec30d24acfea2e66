"""Bool tensors that must be materialized (a mask with several users, a bool input cast to several
dtypes, cat/stack of masks...) are stored as i8 by the `widen-bool-tensors` stage: MLIR's
memref-to-LLVM lowering would abort the process on an i1 buffer. Graphs against eager, the stage
on hand-written linalg, and its refusals."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest
import torch
from mlir import ir

from helpers import check, make_input
from torch_mlir_backend.errors import CompileError
from torch_mlir_backend.lowering.pipeline import default_pipeline, widen_bool_tensors
from torch_mlir_backend.runtime import compile_linalg
from torch_mlir_backend.types import TensorSpec

SHAPES = [(5,), (3, 7)]
ALL_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
              torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool]


# ----- graphs through torch.compile --------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_bool_input_cast_to_two_dtypes(shape):
    check(lambda a: tuple(a.to(d) for d in [torch.float32, torch.int32]),
          make_input(shape, torch.bool), atol=0, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_bool_input_cast_to_every_dtype_at_once(shape):
    check(lambda a: tuple(a.to(d) for d in ALL_DTYPES), make_input(shape, torch.bool), atol=0, rtol=0)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_bool_input_cast_to_one_dtype_and_kept(dtype):
    # the bool input is used twice: returned as is and cast
    check(lambda a: (a.to(dtype), a, ~a), make_input((4, 6), torch.bool, seed=1), atol=0, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_mask_counted_and_tested(shape):
    check(lambda x: ((x > 0).float().sum(), (x > 0).any()), make_input(shape, torch.float32),
          atol=1e-6, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.int32])
def test_mask_reused_by_several_consumers(shape, dtype):
    def fn(x):
        m = x > 0
        return m, m.to(x.dtype) * x, ~m

    check(fn, make_input(shape, dtype), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_where_with_reused_mask(shape):
    def fn(x, y):
        m = x > y
        return torch.where(m, x, y), torch.where(m, y * 2, x), m.logical_and(y > 0), m

    check(fn, make_input(shape, torch.float32), make_input(shape, torch.float32, seed=3),
          atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_cat_and_stack_of_masks(shape):
    def fn(x):
        m = x > 0
        n = x < 1
        return torch.cat([m, n, m], dim=0), torch.stack([m, n], dim=-1), m.float() - x

    check(fn, make_input(shape, torch.float32), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_cat_of_bool_inputs_then_not(shape):
    check(lambda a, c: (~torch.cat([a, c]), torch.cat([c, a]).int()),
          make_input(shape, torch.bool), make_input(shape, torch.bool, seed=5), atol=0, rtol=0)


@pytest.mark.parametrize("shape", [(4, 6), (3, 7)])
def test_mask_reductions(shape):
    def fn(x):
        m = x > 0.5
        return m.any(dim=1), m.any(), m.all(), m.all(dim=0), m & (x < 2)

    check(fn, make_input(shape, torch.float32), atol=0, rtol=0)


@pytest.mark.parametrize("shape", [(4, 6), (3, 7)])
def test_mask_feeding_a_reduction_and_an_elementwise_op(shape):
    def fn(x):
        m = x > 0.5
        return m.sum(dim=0), m.float() + x, m.to(torch.int64).amax(dim=-1)

    check(fn, make_input(shape, torch.float32), atol=1e-6, rtol=1e-6)


def test_transposed_mask_reused():
    def fn(x):
        m = (x > 0).t()
        return m.contiguous(), m.float() * 3, m.flatten()

    check(fn, make_input((3, 5), torch.float32), atol=1e-6, rtol=0)


# ----- the stage on hand-written linalg ----------------------------------------------------------
MASK_MODULE = """
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%x: tensor<4x6xf32>) -> (tensor<4x6xf32>, tensor<4x6xi1>, tensor<4x3xi32>, tensor<4x6xi1>) {
  %zero = arith.constant 0.0 : f32
  %true = arith.constant true
  %empty_b = tensor.empty() : tensor<4x6xi1>
  %mask = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<4x6xf32>) outs(%empty_b : tensor<4x6xi1>) {
  ^bb0(%a: f32, %o: i1):
    %c = arith.cmpf ogt, %a, %zero : f32
    linalg.yield %c : i1
  } -> tensor<4x6xi1>
  %empty_f = tensor.empty() : tensor<4x6xf32>
  %masked = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%mask, %x : tensor<4x6xi1>, tensor<4x6xf32>) outs(%empty_f : tensor<4x6xf32>) {
  ^bb0(%m: i1, %a: f32, %o: f32):
    %s = arith.select %m, %a, %zero : f32
    linalg.yield %s : f32
  } -> tensor<4x6xf32>
  %half = tensor.extract_slice %mask[0, 0] [4, 3] [1, 2] : tensor<4x6xi1> to tensor<4x3xi1>
  %pattern = arith.constant dense<[[true, false, true], [false, false, true], [true, true, true], [false, false, false]]> : tensor<4x3xi1>
  %empty_i = tensor.empty() : tensor<4x3xi32>
  %count = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      ins(%half, %pattern : tensor<4x3xi1>, tensor<4x3xi1>) outs(%empty_i : tensor<4x3xi32>) {
  ^bb0(%h: i1, %p: i1, %o: i32):
    %both = arith.xori %h, %p : i1
    %i = arith.extui %both : i1 to i32
    linalg.yield %i : i32
  } -> tensor<4x3xi32>
  %ones = linalg.fill ins(%true : i1) outs(%empty_b : tensor<4x6xi1>) -> tensor<4x6xi1>
  %c1 = arith.constant 1 : index
  %first = tensor.extract %mask[%c1, %c1] : tensor<4x6xi1>
  %row = tensor.insert %first into %ones[%c1, %c1] : tensor<4x6xi1>
  %other = tensor.insert_slice %half into %row[0, 3] [4, 3] [1, 1] : tensor<4x3xi1> into tensor<4x6xi1>
  return %masked, %mask, %count, %other : tensor<4x6xf32>, tensor<4x6xi1>, tensor<4x3xi32>, tensor<4x6xi1>
}
"""
PATTERN = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]], dtype=torch.bool)


def _expected_mask_module(x):
    mask = x > 0
    half = mask[:, 0::2]
    other = torch.ones(4, 6, dtype=torch.bool)
    other[1, 1] = mask[1, 1]
    other[:, 3:] = half
    return torch.where(mask, x, 0.0), mask, (half ^ PATTERN).int(), other


def test_compile_linalg_with_bool_temporaries():
    specs_in = [TensorSpec((4, 6), torch.float32)]
    specs_out = [TensorSpec((4, 6), torch.float32), TensorSpec((4, 6), torch.bool),
                 TensorSpec((4, 3), torch.int32), TensorSpec((4, 6), torch.bool)]
    g = compile_linalg(MASK_MODULE, specs_in, specs_out)
    for seed in (0, 1):
        x = make_input((4, 6), torch.float32, seed=seed)
        got = g(x)
        want = _expected_mask_module(x)
        assert [t.dtype for t in got] == [t.dtype for t in want]
        for a, w in zip(got, want):
            torch.testing.assert_close(a, w, atol=0, rtol=0)
        # one byte per bool, 0 or 1: nothing was bit-packed or left un-normalized
        assert set(got[3].view(torch.uint8).unique().tolist()) <= {0, 1}


def _module_after_widening(text):
    module = ir.Module.parse(text, ir.Context())
    default_pipeline().run(module, stop_after="widen-bool-tensors")
    return module, module.operation.get_asm()


def test_no_bool_tensor_left_after_the_stage_and_casts_folded():
    module, asm = _module_after_widening(MASK_MODULE)
    assert "xi1>" not in asm
    assert "xi8>" in asm
    # a widened byte read and written back is not re-normalized: no extui(trunci(x)) is left
    rewidened = []

    def visit(op):
        if op.name == "arith.extui":
            source = op.operands[0].owner
            if isinstance(source, ir.OpView) or isinstance(source, ir.Operation):
                if getattr(source, "name", None) == "arith.trunci":
                    rewidened.append(str(op))
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    assert rewidened == []


def test_bool_matmul_like_named_op_is_generalized():
    # A named op computing on bool elements: its body is regenerated from operand types when
    # printed, so the stage turns it into a linalg.generic first.
    text = """
func.func @main(%a: tensor<3x4xi1>, %b: tensor<4x5xi1>) -> tensor<3x5xi1> {
  %false = arith.constant false
  %e = tensor.empty() : tensor<3x5xi1>
  %z = linalg.fill ins(%false : i1) outs(%e : tensor<3x5xi1>) -> tensor<3x5xi1>
  %m = linalg.matmul ins(%a, %b : tensor<3x4xi1>, tensor<4x5xi1>) outs(%z : tensor<3x5xi1>) -> tensor<3x5xi1>
  return %m : tensor<3x5xi1>
}
"""
    _, asm = _module_after_widening(text)
    assert "linalg.matmul" not in asm and "xi1>" not in asm
    g = compile_linalg(text, [TensorSpec((3, 4), torch.bool), TensorSpec((4, 5), torch.bool)],
                       [TensorSpec((3, 5), torch.bool)])
    a, c = make_input((3, 4), torch.bool), make_input((4, 5), torch.bool, seed=2)
    (r,) = g(a, c)
    # linalg's arithmetic on i1: mul is `and`, add is `or` (so a bool matrix product)
    assert torch.equal(r, (a.int() @ c.int()) > 0)


def test_unrewritable_op_names_the_op_and_location():
    # an external function's signature is an ABI the stage cannot widen
    text = """
func.func private @consume(tensor<4xi1>) -> tensor<4xf32> loc("the_callee")
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4xi1>
  %m = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
      ins(%x : tensor<4xf32>) outs(%e : tensor<4xi1>) {
  ^bb0(%a: f32, %o: i1):
    %c = arith.cmpf ogt, %a, %zero : f32
    linalg.yield %c : i1
  } -> tensor<4xi1>
  %r = func.call @consume(%m) : (tensor<4xi1>) -> tensor<4xf32>
  return %r : tensor<4xf32>
}
"""
    module = ir.Module.parse(text, ir.Context())
    with pytest.raises(CompileError) as info:
        default_pipeline().run(module)
    assert info.value.stage == "widen-bool-tensors"
    assert "'func.func' is an external function" in str(info.value)
    assert "the_callee" in info.value.diagnostics


def test_last_resort_check_stays_after_bufferization():
    names = default_pipeline().stage_names()
    assert names.index("fuse-elementwise") < names.index("widen-bool-tensors") < names.index("bufferize")
    assert names.index("bufferize") < names.index("check-no-i1-buffers")
    assert widen_bool_tensors.__doc__
