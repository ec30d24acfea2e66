"""CompiledGraph end to end: linalg-on-tensors text -> JIT -> calls on torch tensors vs eager."""
import gc
import sys
import threading
import weakref
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest
import torch
from mlir import ir

from torch_mlir_backend.errors import CompileError
from torch_mlir_backend.options import CompileOptions
from torch_mlir_backend.runtime import ArgLayout, CompileCache, build_compiled_graph, compile_linalg
from torch_mlir_backend.types import TensorSpec

F32 = torch.float32

MATMUL = """
func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x2xf32>) -> tensor<4x2xf32> {
  %c0 = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x2xf32>
  %f = linalg.fill ins(%c0 : f32) outs(%e : tensor<4x2xf32>) -> tensor<4x2xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x2xf32>) outs(%f : tensor<4x2xf32>) -> tensor<4x2xf32>
  return %m : tensor<4x2xf32>
}
"""
MATMUL_SPECS = ([TensorSpec((4, 8), F32), TensorSpec((8, 2), F32)], [TensorSpec((4, 2), F32)])

# tanh(a + b) with b broadcast along rows: two generics that elementwise fusion merges.
BROADCAST_ADD_TANH = """
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
func.func @main(%a: tensor<4x8xf32>, %b: tensor<8xf32>) -> tensor<4x8xf32> {
  %e = tensor.empty() : tensor<4x8xf32>
  %s = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a, %b : tensor<4x8xf32>, tensor<8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %r = arith.addf %x, %y : f32
    linalg.yield %r : f32
  } -> tensor<4x8xf32>
  %t = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%s : tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    %r = math.tanh %x : f32
    linalg.yield %r : f32
  } -> tensor<4x8xf32>
  return %t : tensor<4x8xf32>
}
"""

# (row sums, a * 2, a itself, row sums again): reduction, several results, a returned
# argument, the same value returned twice.
MULTI_RESULT = """
#id = affine_map<(d0, d1) -> (d0, d1)>
#red = affine_map<(d0, d1) -> (d0)>
func.func @main(%a: tensor<3x5xf32>) -> (tensor<3xf32>, tensor<3x5xf32>, tensor<3x5xf32>, tensor<3xf32>) {
  %c0 = arith.constant 0.0 : f32
  %c2 = arith.constant 2.0 : f32
  %e1 = tensor.empty() : tensor<3xf32>
  %z = linalg.fill ins(%c0 : f32) outs(%e1 : tensor<3xf32>) -> tensor<3xf32>
  %sum = linalg.generic {indexing_maps = [#id, #red], iterator_types = ["parallel", "reduction"]}
      ins(%a : tensor<3x5xf32>) outs(%z : tensor<3xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %r = arith.addf %x, %acc : f32
    linalg.yield %r : f32
  } -> tensor<3xf32>
  %e2 = tensor.empty() : tensor<3x5xf32>
  %d = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : tensor<3x5xf32>) outs(%e2 : tensor<3x5xf32>) {
  ^bb0(%x: f32, %o: f32):
    %r = arith.mulf %x, %c2 : f32
    linalg.yield %r : f32
  } -> tensor<3x5xf32>
  return %sum, %d, %a, %sum : tensor<3xf32>, tensor<3x5xf32>, tensor<3x5xf32>, tensor<3xf32>
}
"""

ZERO_D = """
func.func @main(%a: tensor<f32>, %b: tensor<f32>) -> tensor<f32> {
  %e = tensor.empty() : tensor<f32>
  %r = linalg.generic {indexing_maps = [affine_map<() -> ()>, affine_map<() -> ()>, affine_map<() -> ()>],
                       iterator_types = []}
      ins(%a, %b : tensor<f32>, tensor<f32>) outs(%e : tensor<f32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.mulf %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<f32>
  return %r : tensor<f32>
}
"""

ADD_ONE_16 = """
func.func @main(%a: tensor<16xf32>) -> tensor<16xf32> {
  %c1 = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<16xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                       iterator_types = ["parallel"]}
      ins(%a : tensor<16xf32>) outs(%e : tensor<16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %s = arith.addf %x, %c1 : f32
    linalg.yield %s : f32
  } -> tensor<16xf32>
  return %r : tensor<16xf32>
}
"""


def binary_elementwise(shape, elem, body_op, out_elem=None):
    """`@main(a, b) -> body_op(a, b)` elementwise on tensor<shape x elem>."""
    out_elem = out_elem or elem
    dims = "".join(f"{d}x" for d in shape)
    t, to = f"tensor<{dims}{elem}>", f"tensor<{dims}{out_elem}>"
    idx = ", ".join(f"d{i}" for i in range(len(shape)))
    m = f"affine_map<({idx}) -> ({idx})>"
    its = ", ".join(['"parallel"'] * len(shape))
    return f"""
func.func @main(%a: {t}, %b: {t}) -> {to} {{
  %e = tensor.empty() : {to}
  %r = linalg.generic {{indexing_maps = [{m}, {m}, {m}], iterator_types = [{its}]}}
      ins(%a, %b : {t}, {t}) outs(%e : {to}) {{
  ^bb0(%x: {elem}, %y: {elem}, %o: {out_elem}):
    %s = {body_op} %x, %y : {elem}
    linalg.yield %s : {out_elem}
  }} -> {to}
  return %r : {to}
}}
"""


def test_matmul_matches_torch_mm():
    g = compile_linalg(MATMUL, *MATMUL_SPECS)
    a, b = torch.randn(4, 8), torch.randn(8, 2)
    (r,) = g(a, b)
    torch.testing.assert_close(r, torch.mm(a, b), rtol=1e-5, atol=1e-5)


def test_matmul_strided_inputs_without_copy_and_with_copy():
    a = torch.randn(8, 4).t()  # non-contiguous views
    b = torch.randn(2, 16)[:, ::2].t()
    strided = compile_linalg(MATMUL, *MATMUL_SPECS, arg_layouts=[ArgLayout.STRIDED, ArgLayout.STRIDED])
    (r,) = strided(a, b)
    torch.testing.assert_close(r, a @ b, rtol=1e-5, atol=1e-5)
    # A contiguous-layout graph gets contiguous copies of non-contiguous inputs.
    contiguous = compile_linalg(MATMUL, *MATMUL_SPECS)
    (r2,) = contiguous(a, b)
    torch.testing.assert_close(r2, a @ b, rtol=1e-5, atol=1e-5)


def test_strided_input_returned_directly():
    text = """
func.func @main(%a: tensor<3x4xf32>) -> tensor<3x4xf32> {
  return %a : tensor<3x4xf32>
}
"""
    s = TensorSpec((3, 4), F32)
    g = compile_linalg(text, [s], [s], arg_layouts=[ArgLayout.STRIDED])
    a = torch.randn(4, 3).t()
    (r,) = g(a)
    assert r.is_contiguous()
    torch.testing.assert_close(r, a, rtol=0, atol=0)


def test_elementwise_broadcast_fused():
    g = compile_linalg(BROADCAST_ADD_TANH, [TensorSpec((4, 8), F32), TensorSpec((8,), F32)],
                       [TensorSpec((4, 8), F32)])
    a, b = torch.randn(4, 8), torch.randn(8)
    (r,) = g(a, b)
    torch.testing.assert_close(r, torch.tanh(a + b), rtol=1e-5, atol=1e-6)


def test_reduction_multiple_results_returned_argument_and_duplicate():
    s, v = TensorSpec((3, 5), F32), TensorSpec((3,), F32)
    g = compile_linalg(MULTI_RESULT, [s], [v, s, s, v])
    a = torch.randn(3, 5)
    total, doubled, same, total2 = g(a)
    torch.testing.assert_close(total, a.sum(1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(doubled, a * 2, rtol=0, atol=0)
    torch.testing.assert_close(same, a, rtol=0, atol=0)
    torch.testing.assert_close(total2, a.sum(1), rtol=1e-5, atol=1e-5)
    # Each result is its own fresh tensor, none aliases the input.
    ptrs = {t.data_ptr() for t in (total, doubled, same, total2, a)}
    assert len(ptrs) == 5


def test_zero_d_tensors():
    s = TensorSpec((), F32)
    g = compile_linalg(ZERO_D, [s, s], [s])
    a, b = torch.tensor(3.5), torch.tensor(-2.0)
    (r,) = g(a, b)
    assert r.shape == ()
    torch.testing.assert_close(r, a * b, rtol=0, atol=0)


def test_zero_copy_reads_caller_storage_and_outputs_are_fresh():
    g = compile_linalg(ADD_ONE_16, [TensorSpec((16,), F32)], [TensorSpec((16,), F32)])
    x = torch.arange(16, dtype=F32)
    (r1,) = g(x)
    torch.testing.assert_close(r1, x + 1, rtol=0, atol=0)
    x.mul_(10)  # in place: same storage
    (r2,) = g(x)
    torch.testing.assert_close(r2, x + 1, rtol=0, atol=0)
    torch.testing.assert_close(r1, torch.arange(16, dtype=F32) + 1, rtol=0, atol=0)  # r1 untouched
    assert r1.data_ptr() != r2.data_ptr() and x.data_ptr() not in (r1.data_ptr(), r2.data_ptr())
    assert r2.shape == (16,) and r2.dtype == F32 and r2.is_contiguous()
    # A view with a storage offset: data_ptr already includes it.
    big = torch.arange(32, dtype=F32)
    (r3,) = g(big[16:])
    torch.testing.assert_close(r3, big[16:] + 1, rtol=0, atol=0)


def test_input_checks_are_clear():
    g = compile_linalg(MATMUL, *MATMUL_SPECS)
    with pytest.raises(TypeError, match=r"expects inputs \[\[4,8\]float32, \[8,2\]float32\]"):
        g(torch.randn(4, 8), torch.randn(8, 3))
    with pytest.raises(TypeError, match="float64"):
        g(torch.randn(4, 8, dtype=torch.float64), torch.randn(8, 2))
    with pytest.raises(TypeError, match="takes 2 tensors"):
        g(torch.randn(4, 8))


def test_result_shapes_callable_is_used():
    calls = []

    def shapes(inputs):
        calls.append(len(inputs))
        return [(4, 2)]

    g = build_compiled_graph(MATMUL, *MATMUL_SPECS, result_shapes=shapes)
    a, b = torch.randn(4, 8), torch.randn(8, 2)
    (r,) = g(a, b)
    torch.testing.assert_close(r, a @ b, rtol=1e-5, atol=1e-5)
    assert calls == [2]


_INT_OPS = {torch.int64: "i64", torch.int32: "i32", torch.int16: "i16", torch.int8: "i8", torch.uint8: "i8"}


@pytest.mark.parametrize(
    "dtype,elem,op,ref,tol",
    [
        (torch.float32, "f32", "arith.addf", torch.add, 1e-6),
        (torch.float64, "f64", "arith.mulf", torch.mul, 1e-12),
        (torch.float16, "f16", "arith.addf", torch.add, 1e-3),
        (torch.bfloat16, "bf16", "arith.mulf", torch.mul, 1e-2),
        (torch.int64, "i64", "arith.addi", torch.add, 0),
        (torch.int32, "i32", "arith.muli", torch.mul, 0),
        (torch.int16, "i16", "arith.subi", torch.sub, 0),
        (torch.int8, "i8", "arith.addi", torch.add, 0),
        (torch.uint8, "i8", "arith.maxui", torch.maximum, 0),
        (torch.bool, "i1", "arith.xori", torch.logical_xor, 0),
    ],
)
def test_dtype_round_trip(dtype, elem, op, ref, tol):
    shape = (3, 7)
    g = compile_linalg(binary_elementwise(shape, elem, op), [TensorSpec(shape, dtype)] * 2,
                       [TensorSpec(shape, dtype)])
    if dtype.is_floating_point:
        a, b = torch.randn(shape).to(dtype), torch.randn(shape).to(dtype)
    elif dtype is torch.bool:
        a, b = torch.rand(shape) > 0.5, torch.rand(shape) > 0.5
    else:
        a, b = torch.randint(0, 100, shape, dtype=dtype), torch.randint(0, 100, shape, dtype=dtype)
    (r,) = g(a, b)
    assert r.dtype == dtype and r.shape == shape
    torch.testing.assert_close(r, ref(a, b), rtol=tol, atol=tol)


def test_bool_output_and_bool_input_are_byte_per_element():
    shape = (33,)  # odd size: catches bit-packed i1 loads/stores
    cmp = compile_linalg(binary_elementwise(shape, "f32", "arith.cmpf ogt,", "i1"),
                         [TensorSpec(shape, F32)] * 2, [TensorSpec(shape, torch.bool)])
    a, b = torch.randn(shape), torch.randn(shape)
    (mask,) = cmp(a, b)
    assert mask.dtype == torch.bool
    assert torch.equal(mask, a > b)
    assert set(mask.view(torch.uint8).tolist()) <= {0, 1}
    select = """
func.func @main(%c: tensor<33xi1>, %a: tensor<33xf32>, %b: tensor<33xf32>) -> tensor<33xf32> {
  %e = tensor.empty() : tensor<33xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>,
                                        affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                       iterator_types = ["parallel"]}
      ins(%c, %a, %b : tensor<33xi1>, tensor<33xf32>, tensor<33xf32>) outs(%e : tensor<33xf32>) {
  ^bb0(%p: i1, %x: f32, %y: f32, %o: f32):
    %s = arith.select %p, %x, %y : f32
    linalg.yield %s : f32
  } -> tensor<33xf32>
  return %r : tensor<33xf32>
}
"""
    sel = compile_linalg(select, [TensorSpec(shape, torch.bool), TensorSpec(shape, F32), TensorSpec(shape, F32)],
                         [TensorSpec(shape, F32)])
    (r,) = sel(mask, a, b)
    torch.testing.assert_close(r, torch.where(mask, a, b), rtol=0, atol=0)


def test_threads_share_one_compiled_graph():
    g = compile_linalg(MATMUL, *MATMUL_SPECS)
    errors = []
    barrier = threading.Barrier(8)

    def work(seed):
        try:
            gen = torch.Generator().manual_seed(seed)
            barrier.wait()
            for _ in range(200):
                a, b = torch.randn(4, 8, generator=gen), torch.randn(8, 2, generator=gen)
                (r,) = g(a, b)
                torch.testing.assert_close(r, a @ b, rtol=1e-5, atol=1e-5)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_engine_freed_with_compiled_graph():
    gc.collect()
    contexts_before = ir.Context._get_live_count()
    g = build_compiled_graph(ADD_ONE_16, [TensorSpec((16,), F32)], [TensorSpec((16,), F32)])
    assert ir.Context._get_live_count() == contexts_before + 1
    engine_ref = weakref.ref(g)
    (r,) = g(torch.zeros(16))
    assert torch.equal(r, torch.ones(16))
    del g
    gc.collect()
    assert engine_ref() is None
    assert ir.Context._get_live_count() == contexts_before


def test_compile_error_has_diagnostics_and_stage():
    bad = MATMUL.replace("linalg.matmul", '"torch.aten.mm"(%a, %b) : (tensor<4x8xf32>, tensor<8x2xf32>) -> tensor<4x2xf32> //')
    with pytest.raises(CompileError) as info:
        build_compiled_graph(bad, *MATMUL_SPECS)
    assert info.value.stage == "parse"
    assert "unregistered dialect" in info.value.diagnostics and ":6:" in info.value.diagnostics

    with pytest.raises(CompileError) as info:
        build_compiled_graph(MATMUL, [TensorSpec((4, 8), F32), TensorSpec((8, 3), F32)], MATMUL_SPECS[1])
    assert info.value.stage == "contract" and "tensor<8x3xf32>" in str(info.value)


def test_unlowerable_op_gives_compile_error_not_crash():
    # math.fpowi has no lowering in this pipeline: it must be reported, not reach the JIT.
    text = """
func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  %c3 = arith.constant 3 : i32
  %e = tensor.empty() : tensor<4xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (d0)>],
                       iterator_types = ["parallel"]}
      ins(%a : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%x: f32, %o: f32):
    %s = math.fpowi %x, %c3 : f32, i32
    linalg.yield %s : f32
  } -> tensor<4xf32>
  return %r : tensor<4xf32>
}
"""
    s = TensorSpec((4,), F32)
    try:
        g = build_compiled_graph(text, [s], [s])
    except CompileError as e:
        assert e.stage and e.diagnostics
    else:  # if a future pipeline lowers it, it must be right
        a = torch.randn(4)
        torch.testing.assert_close(g(a)[0], a**3, rtol=1e-5, atol=1e-6)


def test_cache_hit_does_not_recompile():
    cache = CompileCache()
    g1 = compile_linalg(MATMUL, *MATMUL_SPECS, cache=cache)
    g2 = compile_linalg(MATMUL, *MATMUL_SPECS, cache=cache)
    assert g1 is g2 and cache.compilations == 1 and cache.hits == 1
    # Locations do not change the key; options and layouts do.
    with ir.Context() as ctx:
        module = ir.Module.parse(MATMUL, ctx)
        assert compile_linalg(module, *MATMUL_SPECS, cache=cache) is g1
    g3 = compile_linalg(MATMUL, *MATMUL_SPECS, CompileOptions(opt_level=0), cache=cache)
    g4 = compile_linalg(MATMUL, *MATMUL_SPECS, arg_layouts=[ArgLayout.STRIDED] * 2, cache=cache)
    assert len({id(g1), id(g3), id(g4)}) == 3 and cache.compilations == 3
    a, b = torch.randn(4, 8), torch.randn(8, 2)
    torch.testing.assert_close(g3(a, b)[0], a @ b, rtol=1e-5, atol=1e-5)


def test_cache_concurrent_requests_compile_once():
    cache = CompileCache()
    results, barrier = [], threading.Barrier(8)

    def work():
        barrier.wait()
        results.append(compile_linalg(ADD_ONE_16, [TensorSpec((16,), F32)], [TensorSpec((16,), F32)], cache=cache))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(r is results[0] for r in results)
    assert cache.compilations == 1


def test_failed_compile_is_not_cached():
    cache = CompileCache()
    bad_specs = ([TensorSpec((4, 8), F32), TensorSpec((8, 3), F32)], MATMUL_SPECS[1])
    for _ in range(2):
        with pytest.raises(CompileError):
            compile_linalg(MATMUL, *bad_specs, cache=cache)
    assert cache.compilations == 2 and len(cache) == 0
