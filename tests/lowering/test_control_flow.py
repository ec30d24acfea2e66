"""Structured control flow rules (lowering/control_flow.py): `torch.prim.If` -> scf.if,
`torch.prim.Loop` -> scf.while, and the tensor -> scalar conversions conditions and trip counts
need (aten.Bool.Tensor, aten.Int.Tensor, aten.Float.Tensor), against eager TorchScript."""
import pytest
import torch

from torch_mlir_backend import UnsupportedOpError
from torch_mlir_backend.importers.fx_importer import new_context
from torch_mlir_backend.importers.torchscript_importer import compile_torchscript
from torch_mlir_backend.lowering import lower_to_linalg
from torch_mlir_backend.runtime import compile_linalg
from torch_mlir_backend.types import TensorSpec
from helpers import assert_same
from mlir import ir


@torch.jit.script
def branch_on(x: torch.Tensor, flag: torch.Tensor) -> torch.Tensor:
    if bool(flag.sum()):  # aten.Bool.Tensor on the flag's dtype
        return x * 2.0
    return x - 1.0


@pytest.mark.parametrize("flag_true, flag_false", [
    (torch.tensor([0.0, 0.5]), torch.tensor([0.0, 0.0])),        # float
    (torch.tensor([0, 3]), torch.tensor([2, -2])),                # int64 (sum 0 is false)
    (torch.tensor([True, False]), torch.tensor([False, False])),  # bool: sum is int64
])
def test_bool_tensor_condition(flag_true, flag_false):
    x = torch.randn(4)
    compiled = compile_torchscript(branch_on, [x, flag_true])
    for flag in (flag_true, flag_false):
        assert_same(compiled(x, flag), branch_on(x, flag), "branch_on", (x, flag), 0, 0)


@torch.jit.script
def repeat(x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    for _ in range(int(n)):  # aten.Int.Tensor: a trip count known only at run time
        x = x * 1.5 + 1.0
    return x


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.float32])
def test_int_tensor_trip_count(dtype):
    x = torch.randn(2, 3)
    compiled = compile_torchscript(repeat, [x, torch.tensor(2, dtype=dtype)])
    for n in (0, 1, 4):
        count = torch.tensor(n + 0.7 if dtype.is_floating_point else n, dtype=dtype)  # int() truncates
        assert_same(compiled(x, count), repeat(x, count), "repeat", (x, count), 1e-6, 1e-6)


def _run_torch_dialect(text: str, inputs):
    ctx = new_context()
    with ctx:
        module = ir.Module.parse(text)
    linalg = lower_to_linalg(module)
    main = next(op for op in module.body.operations if op.operation.name == "func.func")
    with ctx:
        ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
        results = [TensorSpec.from_torch_type(str(t)) for t in ftype.results]
    return compile_linalg(linalg, [TensorSpec.from_tensor(x) for x in inputs], results)(*inputs)


FLOAT_TENSOR = """
func.func @main(%x: !torch.vtensor<[],f32>) -> !torch.vtensor<[],f64> {
  %f = "torch.aten.Float.Tensor"(%x) : (!torch.vtensor<[],f32>) -> !torch.float
  %t = "torch.prim.NumToTensor.Scalar"(%f) : (!torch.float) -> !torch.vtensor<[],f64>
  return %t : !torch.vtensor<[],f64>
}
"""

INT_TENSOR = """
func.func @main(%x: !torch.vtensor<[1],f64>) -> !torch.vtensor<[],si64> {
  %i = "torch.aten.Int.Tensor"(%x) : (!torch.vtensor<[1],f64>) -> !torch.int
  %t = "torch.prim.NumToTensor.Scalar"(%i) : (!torch.int) -> !torch.vtensor<[],si64>
  return %t : !torch.vtensor<[],si64>
}
"""


def test_float_and_int_tensor_as_scalars():
    for value in (2.75, -3.5):
        x = torch.tensor(value, dtype=torch.float32)
        (got,) = _run_torch_dialect(FLOAT_TENSOR, [x])
        assert_same(got, torch.tensor(float(x), dtype=torch.float64), "Float.Tensor", (x,), 0, 0)
        y = torch.tensor([value], dtype=torch.float64)
        (got,) = _run_torch_dialect(INT_TENSOR, [y])
        assert_same(got, torch.tensor(int(y), dtype=torch.int64), "Int.Tensor", (y,), 0, 0)


CONSTANT_CONDITION = """
func.func @main(%x: !torch.vtensor<[3],f32>) -> !torch.vtensor<[3],f32> {
  %false = "torch.constant.bool"() {value = false} : () -> !torch.bool
  %r = "torch.prim.If"(%false) ({
    %a = "torch.aten.neg"(%x) : (!torch.vtensor<[3],f32>) -> !torch.vtensor<[3],f32>
    "torch.prim.If.yield"(%a) : (!torch.vtensor<[3],f32>) -> ()
  }, {
    %b = "torch.aten.exp"(%x) : (!torch.vtensor<[3],f32>) -> !torch.vtensor<[3],f32>
    "torch.prim.If.yield"(%b) : (!torch.vtensor<[3],f32>) -> ()
  }) : (!torch.bool) -> !torch.vtensor<[3],f32>
  return %r : !torch.vtensor<[3],f32>
}
"""


def test_constant_condition_lowers_only_the_taken_region():
    x = torch.randn(3)
    (got,) = _run_torch_dialect(CONSTANT_CONDITION, [x])
    assert_same(got, x.exp(), "If(false)", (x,), 1e-6, 1e-6)


@torch.jit.script
def bool_of_many(x: torch.Tensor) -> torch.Tensor:
    if bool(x > 0):
        return x
    return -x


def test_bool_of_a_many_element_tensor_is_rejected():
    with pytest.raises(UnsupportedOpError, match=r"aten.Bool.Tensor: only a one-element tensor"):
        compile_torchscript(bool_of_many, [torch.randn(3)])
