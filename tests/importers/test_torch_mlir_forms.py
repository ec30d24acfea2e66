"""The two forms torch-mlir's importer uses that a plain `torch.aten.<op>` does not cover, emitted by
our importer and lowered by our driver: `torch.operator "<op>"` for an ATen op torch-mlir's dialect
does not define, and one `!torch.list<vtensor>` result split by `torch.prim.ListUnpack` for an op
returning `Tensor[]`; plus the `torch.aten.Int.bool` / `Float.bool` a bool Scalar goes through."""
import re

import torch
import torch.nn.functional as F
from torch.fx.experimental.proxy_tensor import make_fx

from helpers import assert_same, check
from mlir import ir
from torch_mlir_backend.importers.fx_importer import import_fx_graph, new_context
from torch_mlir_backend.importers.torch_mlir_op_names import TORCH_MLIR_OP_NAMES
from torch_mlir_backend.lowering import lower_to_linalg
from torch_mlir_backend.runtime import compile_linalg
from torch_mlir_backend.types import TensorSpec

aten = torch.ops.aten


def _asm(fn, *args):
    return import_fx_graph(make_fx(fn, tracing_mode="fake")(*args)).operation.get_asm(enable_debug_info=False)


# ----- importer ------------------------------------------------------------------------------------
def test_op_torch_mlir_does_not_define_is_a_generic_torch_operator():
    assert "torch.aten.squeeze.dims" not in TORCH_MLIR_OP_NAMES and "torch.aten.mm" in TORCH_MLIR_OP_NAMES
    asm = _asm(lambda a: aten.mm.default(aten.squeeze.dims(a, [0, 2]), a[0, :, 0, :].t()), torch.zeros(1, 3, 1, 3))
    assert re.search(r'"torch.operator"\(%\w+, %\w+\) \{name = "torch.aten.squeeze.dims"\} : '
                     r'\(!torch.vtensor<\[1,3,1,3\],f32>, !torch.list<int>\) -> !torch.vtensor<\[3,3\],f32>', asm), asm
    assert '"torch.aten.mm"(' in asm


def test_tensor_list_result_is_one_list_split_by_list_unpack():
    asm = _asm(lambda a: [t * 2 for t in aten.split_with_sizes.default(a, [1, 3], 1)], torch.zeros(2, 4))
    assert re.search(r'%(\w+) = "torch.aten.split_with_sizes"\(.*\) : \(.*\) -> !torch.list<vtensor>\n'
                     r'\s*%\w+:2 = "torch.prim.ListUnpack"\(%\1\) : \(!torch.list<vtensor>\) -> '
                     r'\(!torch.vtensor<\[2,1\],f32>, !torch.vtensor<\[2,3\],f32>\)', asm), asm


def test_bool_scalar_goes_through_int_bool():
    asm = _asm(lambda a: a + aten.full.default([2], True, dtype=torch.bool), torch.zeros(2, dtype=torch.bool))
    assert re.search(r'"torch.aten.Int.bool"\(%\w+\) : \(!torch.bool\) -> !torch.int', asm), asm


# ----- through the backend, against eager --------------------------------------------------------
def test_split_ops_against_eager():
    x = torch.randn(4, 6)
    check(lambda a: [t.exp() for t in torch.split(a, [1, 2, 3], dim=1)], x, atol=1e-6, rtol=1e-6)
    check(lambda a: [t + 1 for t in torch.split(a, 4, dim=1)], x, atol=0, rtol=0)       # split.Tensor
    check(lambda a: [t * 2 for t in torch.unbind(a, 0)], x, atol=0, rtol=0)
    check(lambda a: [t - 1 for t in torch.chunk(a, 3, dim=0)], x, atol=0, rtol=0)
    check(lambda a: torch.split(a, [5, 1])[1].sum(0), x.t(), atol=1e-6, rtol=1e-6)       # one piece unused


def test_split_of_bool_tensors_against_eager():
    # Bool data movement runs on bytes, which needs the pieces' types (the ListUnpack's).
    m = torch.rand(3, 5) > 0.5
    check(lambda a: [t.logical_not() for t in torch.split(a, [2, 3], dim=1)], m, atol=0, rtol=0)


def test_ops_torch_mlir_does_not_define_against_eager():
    x = torch.randn(1, 3, 1, 4)
    check(lambda a: a.squeeze((0, 2)) * 2, x, atol=0, rtol=0)  # aten.squeeze.dims
    w, b, mean, var = torch.rand(3) + 0.5, torch.randn(3), torch.randn(3), torch.rand(3) + 0.5
    # eval-mode batch norm: aten._native_batch_norm_legit_no_training
    check(lambda a: F.batch_norm(a, mean, var, w, b, training=False), torch.randn(2, 3, 4, 4), atol=1e-5, rtol=1e-5)


def test_bool_fill_against_eager():
    check(lambda a: torch.where(torch.full((3, 3), True).tril(), a, 0.0), torch.randn(3, 3), atol=0, rtol=0)


def test_driver_lowers_the_torchscript_spelling_and_float_bool():
    # torch-mlir's TorchScript importer names a torch.operator without the `torch.` prefix.
    text = '''
    func.func @main(%x: !torch.vtensor<[1,3,1,2],f32>) -> !torch.vtensor<[3,2],f32> {
      %0 = "torch.constant.int"() {value = 0 : i64} : () -> !torch.int
      %2 = "torch.constant.int"() {value = 2 : i64} : () -> !torch.int
      %dims = "torch.prim.ListConstruct"(%0, %2) : (!torch.int, !torch.int) -> !torch.list<int>
      %sq = "torch.operator"(%x, %dims) <{name = "aten.squeeze.dims"}> : (!torch.vtensor<[1,3,1,2],f32>, !torch.list<int>) -> !torch.vtensor<[3,2],f32>
      %true = "torch.constant.bool"() {value = true} : () -> !torch.bool
      %one = "torch.aten.Float.bool"(%true) : (!torch.bool) -> !torch.float
      %r = "torch.aten.mul.Scalar"(%sq, %one) : (!torch.vtensor<[3,2],f32>, !torch.float) -> !torch.vtensor<[3,2],f32>
      %three = "torch.constant.float"() {value = 3.0 : f64} : () -> !torch.float
      %y = "torch.aten.add.Scalar"(%r, %three, %one) : (!torch.vtensor<[3,2],f32>, !torch.float, !torch.float) -> !torch.vtensor<[3,2],f32>
      "func.return"(%y) : (!torch.vtensor<[3,2],f32>) -> ()
    }'''
    with new_context() as ctx:
        module = ir.Module.parse(text, ctx)
        linalg = lower_to_linalg(module)
    x = torch.randn(1, 3, 1, 2)
    run = compile_linalg(linalg, [TensorSpec.from_tensor(x)], [TensorSpec((3, 2), torch.float32)])
    assert_same(run(x), x.squeeze((0, 2)) * 1.0 + 3.0, "squeeze.dims via torch.operator", [x], 0, 0)
