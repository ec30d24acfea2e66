"""The linalg-to-LLVM pipeline as data: stages, dumps, stop_after, errors with stage names."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest
from mlir import ir

from torch_mlir_backend.errors import CompileError
from torch_mlir_backend.lowering.pipeline import ArgLayout, Pipeline, Stage, default_pipeline
from torch_mlir_backend.options import ENV_DUMP_DIR

MATMUL = """
func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x2xf32>) -> tensor<4x2xf32> {
  %c0 = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x2xf32>
  %f = linalg.fill ins(%c0 : f32) outs(%e : tensor<4x2xf32>) -> tensor<4x2xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x2xf32>) outs(%f : tensor<4x2xf32>) -> tensor<4x2xf32>
  return %m : tensor<4x2xf32>
}
"""


def parse(text=MATMUL):
    return ir.Module.parse(text, ir.Context())


def test_describe_lists_every_stage_in_order():
    p = default_pipeline()
    text = str(p)
    positions = [text.index(f"{i:02d}-{name}") for i, name in enumerate(p.stage_names(), 1)]
    assert positions == sorted(positions)
    assert "one-shot-bufferize" in text and "<python destination_passing_abi>" in text


def test_full_pipeline_reaches_llvm_dialect_with_destination_passing_main():
    module = parse()
    result = default_pipeline().run(module)
    assert list(result.stage_seconds) == default_pipeline().stage_names()
    assert all(s >= 0 for s in result.stage_seconds.values())
    fn = [op for op in module.body.operations if op.name == "llvm.func" and op.opview.sym_name.value == "main"][0]
    assert "llvm.emit_c_interface" in fn.attributes
    # Both inputs + one output memref, each expanded to 7 descriptor fields (rank 2); no results.
    assert str(fn.attributes["function_type"]) == "!llvm.func<void (" + ", ".join(["ptr, ptr, i64, i64, i64, i64, i64"] * 3) + ")>"
    assert "total" in result.report()


def test_destination_passing_abi_writes_results_in_place():
    module = parse()
    default_pipeline([ArgLayout.STRIDED, ArgLayout.CONTIGUOUS]).run(module, stop_after="bufferize")
    text = str(module)
    assert "memref<4x8xf32, strided<[?, ?], offset: ?>>" in text
    assert "%arg2: memref<4x2xf32>" in text
    # eliminate-empty-tensors + one-shot-bufferize: matmul writes straight into the output arg.
    assert "outs(%arg2 : memref<4x2xf32>)" in text
    assert "memref.alloc" not in text and "memref.copy" not in text


def test_dump_writes_one_file_per_stage(tmp_path):
    p = default_pipeline()
    result = p.run(parse(), dump_dir=str(tmp_path))
    names = sorted(os.listdir(tmp_path))
    assert names == ["00-input.mlir"] + [f"{i:02d}-{n}.mlir" for i, n in enumerate(p.stage_names(), 1)]
    assert len(result.dumped_files) == len(p.stages) + 1
    # With locations: the input's line numbers survive into the dumps.
    fuse = names[1 + p.stage_names().index("fuse-elementwise")]
    assert 'loc("-":5:' in (tmp_path / fuse).read_text()


def test_dump_dir_from_environment_and_stop_after(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_DUMP_DIR, str(tmp_path))
    module = parse()
    pipeline = default_pipeline()
    result = pipeline.run(module, stop_after="bufferize")
    names = pipeline.stage_names()
    expected = names[: names.index("bufferize") + 1]
    assert expected[0] == "destination-passing-abi" and "fuse-elementwise" in expected
    assert list(result.stage_seconds) == expected
    assert sorted(os.listdir(tmp_path)) == ["00-input.mlir"] + [
        f"{i:02d}-{n}.mlir" for i, n in enumerate(expected, 1)]
    assert "linalg.matmul" in str(module) and "llvm.func" not in str(module)


def test_replace_stage_and_reject_duplicates():
    p = default_pipeline()
    q = p.replace("generate-loops", Stage("generate-loops", "func.func(convert-linalg-to-affine-loops),lower-affine"))
    assert q.stage("generate-loops").run.startswith("func.func(convert-linalg-to-affine")
    assert p.stage("generate-loops").run != q.stage("generate-loops").run  # p unchanged
    assert p.fingerprint() != q.fingerprint()
    q.run(parse())  # still lowers
    with pytest.raises(ValueError, match="duplicate"):
        Pipeline([Stage("a", "cse"), Stage("a", "canonicalize")])
    with pytest.raises(KeyError):
        p.stage("nope")


def test_pass_failure_is_compile_error_with_stage_and_diagnostics():
    # An op one-shot-bufferize does not know (as a leftover Torch op would be) makes it fail.
    ctx = ir.Context()
    ctx.allow_unregistered_dialects = True
    module = ir.Module.parse("""
func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  %r = "torch.aten.relu"(%a) : (tensor<4xf32>) -> tensor<4xf32>
  return %r : tensor<4xf32>
}
""", ctx)
    with pytest.raises(CompileError) as info:
        default_pipeline().run(module)
    err = info.value
    assert err.stage == "bufferize"
    assert "torch.aten.relu" in err.diagnostics and 'loc("-":3:' in err.diagnostics


def test_bad_textual_stage_is_compile_error():
    with pytest.raises(CompileError) as info:
        Pipeline([Stage("typo", "no-such-pass")]).run(parse())
    assert info.value.stage == "typo" and "no-such-pass" in str(info.value)


def test_python_stage_error_names_stage():
    def breaks_ir(module):
        fn = module.body.operations[0]
        fn.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get([], []))

    with pytest.raises(CompileError) as info:
        Pipeline([Stage("breaker", breaks_ir)]).run(parse())
    assert info.value.stage == "breaker"
    assert "entry block" in info.value.diagnostics or "argument" in info.value.diagnostics


SHARED_INIT_TWO_LOOPS = """
#map = affine_map<(d0) -> (d0)>
func.func @main(%a: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %one = arith.constant 1.0 : f32
  %two = arith.constant 2.0 : f32
  %e = tensor.empty() : tensor<4xf32>
  %init = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel"]}
      ins(%a : tensor<4xf32>) outs(%e : tensor<4xf32>) {
    ^bb0(%x: f32, %o: f32):
      linalg.yield %x : f32
  } -> tensor<4xf32>
  %r1 = scf.for %i = %c0 to %c3 step %c1 iter_args(%t = %init) -> (tensor<4xf32>) {
    %u = linalg.generic {indexing_maps = [#map], iterator_types = ["parallel"]} outs(%t : tensor<4xf32>) {
      ^bb0(%o: f32):
        %y = arith.addf %o, %one : f32
        linalg.yield %y : f32
    } -> tensor<4xf32>
    scf.yield %u : tensor<4xf32>
  }
  %r2 = scf.for %i = %c0 to %c3 step %c1 iter_args(%t = %init) -> (tensor<4xf32>) {
    %u = linalg.generic {indexing_maps = [#map], iterator_types = ["parallel"]} outs(%t : tensor<4xf32>) {
      ^bb0(%o: f32):
        %y = arith.mulf %o, %two : f32
        linalg.yield %y : f32
    } -> tensor<4xf32>
    scf.yield %u : tensor<4xf32>
  }
  return %r1, %r2 : tensor<4xf32>, tensor<4xf32>
}
"""


def test_a_tensor_updated_in_place_by_two_loops_feeds_each_output_its_own_value():
    # Regression: upstream eliminate-empty-tensors rooted %init in the first output buffer, so the
    # second loop started from the first loop's result.
    import torch
    from torch_mlir_backend.runtime import build_compiled_graph
    from torch_mlir_backend.types import TensorSpec

    spec = TensorSpec((4,), torch.float32)
    graph = build_compiled_graph(SHARED_INIT_TWO_LOOPS, [spec], [spec, spec])
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    r1, r2 = graph(a)
    assert torch.equal(r1, a + 3)
    assert torch.equal(r2, a * 8)
