"""Compile failures are Python exceptions naming the op, its input types and the user's source
line, with MLIR's diagnostics attached (not printed to stderr); nothing reaches an LLVM abort.
Scenarios where a missed check could crash the process run in a child process (`faults.py`)."""
import pytest
import torch

from torch_mlir_backend import CompileError, TorchMlirBackendError
from torch_mlir_backend.lowering.pipeline import default_pipeline
from torch_mlir_backend.lowering.registry import LOWERINGS, LoweringRule
from torch_mlir_backend.runtime import compile_linalg
from torch_mlir_backend.types import TensorSpec

from faults import line_in_child, run_in_child

F32_3x4 = TensorSpec((3, 4), torch.float32)

ADD_ONE = """
func.func @main(%x: tensor<3x4xf32>) -> tensor<3x4xf32> {
  %one = arith.constant dense<1.0> : tensor<3x4xf32>
  %e = tensor.empty() : tensor<3x4xf32>
  %r = linalg.add ins(%x, %one : tensor<3x4xf32>, tensor<3x4xf32>) outs(%e : tensor<3x4xf32>) -> tensor<3x4xf32>
  return %r : tensor<3x4xf32>
}
"""


def _root(exc: BaseException) -> BaseException:
    """Our exception inside Dynamo's BackendCompilerFailed (`inner_exception`) or a chain."""
    while exc is not None and not isinstance(exc, TorchMlirBackendError):
        exc = getattr(exc, "inner_exception", None) or exc.__cause__
    return exc


def _neg_then_add(x):
    return -x + 1


def test_rule_that_throws_names_op_inputs_and_line(monkeypatch):
    rule = LOWERINGS["torch.aten.neg"]

    def broken(ctx, x):
        raise ValueError("bug in the rule")

    monkeypatch.setitem(LOWERINGS, "torch.aten.neg", LoweringRule(rule.target, broken, rule.dtypes))
    with pytest.raises(Exception) as info:
        torch.compile(_neg_then_add, backend="torch_mlir")(torch.randn(3, 4))
    err = _root(info.value)
    assert isinstance(err, CompileError), repr(err)
    text = str(err)
    assert "aten.neg.default" in text and "[3,4]float32" in text and "bug in the rule" in text
    assert f"test_errors.py:{_neg_then_add.__code__.co_firstlineno + 1}" in text


def test_rule_emitting_ir_that_does_not_verify_is_caught_before_jit():
    body = """
        import torch
        from mlir import ir
        from torch_mlir_backend.lowering.registry import LOWERINGS, LoweringRule
        rule = LOWERINGS["torch.aten.neg"]
        def invalid(ctx, x):  # arith.addi on float tensors: the verifier rejects it
            return ir.Operation.create("arith.addi", results=[x.type], operands=[x, x]).result
        LOWERINGS["torch.aten.neg"] = LoweringRule(rule.target, invalid, rule.dtypes)
        def user_fn(x):
            return -x + 1  # the user's line
        try:
            torch.compile(user_fn, backend="torch_mlir")(torch.randn(3, 4))
        except Exception as e:
            report(e)
    """
    result, stderr = run_in_child(body)
    assert result["type"] == "CompileError"
    assert result["stage"] == "torch-to-linalg"
    assert "aten.neg.default ([3,4]float32)" in result["message"]
    assert f"child_script.py:{line_in_child(body, 'the user' + chr(39) + 's line')}" in result["message"]
    assert "must be signless-integer-like" in result["diagnostics"]
    assert "signless-integer-like" not in stderr, "diagnostics must not be printed raw"


def test_malformed_ir_raises_parse_error_with_diagnostics(capfd):
    with pytest.raises(CompileError) as info:
        compile_linalg("func.func @main(%x: tensor<3x4xf32>) -> tensor<3x4xf32> { return %y }",
                       [F32_3x4], [F32_3x4])
    assert info.value.stage == "parse"
    assert "error: expected" in info.value.diagnostics and 'loc("-":1:' in info.value.diagnostics
    assert capfd.readouterr().err == ""


def test_specs_not_matching_the_module_are_rejected_before_lowering():
    with pytest.raises(CompileError) as info:
        compile_linalg(ADD_ONE, [TensorSpec((3, 5), torch.float32)], [F32_3x4])
    assert info.value.stage == "contract"
    assert "tensor<3x5xf32>" in str(info.value)


def test_module_not_lowered_to_llvm_is_caught_before_jit():
    result, stderr = run_in_child(f"""
        import torch
        from torch_mlir_backend.lowering.pipeline import default_pipeline
        from torch_mlir_backend.runtime import compile_linalg
        from torch_mlir_backend.types import TensorSpec
        spec = TensorSpec((3, 4), torch.float32)
        try:
            compile_linalg({ADD_ONE!r}, [spec], [spec], pipeline=default_pipeline().without("to-llvm"))
        except Exception as e:
            report(e)
    """, env={"TORCH_MLIR_BACKEND_DISABLE_DISK_CACHE": "1"})
    assert result["type"] == "CompileError", result
    assert "not lowered to the LLVM dialect" in result["message"]
    assert "scf.for" in result["diagnostics"]


def test_failing_pass_names_stage_and_keeps_stderr_clean(capfd):
    pipeline = default_pipeline().without("bufferize")  # tensors reach the LLVM conversion
    with pytest.raises(CompileError) as info:
        compile_linalg(ADD_ONE, [F32_3x4], [F32_3x4], pipeline=pipeline)
    assert info.value.stage and info.value.stage != "parse"
    assert capfd.readouterr().err == ""


def test_valid_module_still_compiles_and_runs():
    x = torch.randn(3, 4)
    (got,) = compile_linalg(ADD_ONE, [F32_3x4], [F32_3x4])(x)
    torch.testing.assert_close(got, x + 1, atol=0, rtol=0)
