"""The torch.export road: export_and_import at each output level and compile_exported, against eager."""
import pytest
import torch

from torch_mlir_backend import GraphImportError
from torch_mlir_backend.export import compile_exported, export_and_import
from torch_mlir_backend.e2e.cases.models import SmallCNN
from helpers import assert_same

from _models import MLP, torch_mlir_verifies


def test_torch_level_is_self_contained_torch_dialect():
    model, x = MLP().eval(), torch.randn(3, 8)
    text = str(export_and_import(model, x, output_type="torch"))
    assert "func.func @main(%arg0: !torch.vtensor<[3,8],f32>) -> !torch.vtensor<[3,4],f32>" in text
    assert text.count('"torch.vtensor.literal"') == 4  # 2 weights, 2 biases: parameters as literals
    assert '"torch.aten.addmm"' in text
    pretty = torch_mlir_verifies(text)
    assert "torch.aten.addmm" in pretty


def test_linalg_and_llvm_levels():
    model, x = MLP().eval(), torch.randn(3, 8)
    linalg = str(export_and_import(model, x, output_type="linalg-on-tensors"))
    assert "linalg." in linalg and "torch." not in linalg
    llvm = export_and_import(model, x, output_type="llvm")
    names = set()
    llvm.operation.walk(lambda op: names.add(op.name) or 0)
    assert names and all(n.startswith("llvm.") or n == "builtin.module" for n in names), names


@pytest.mark.parametrize("make, shape, atol", [(MLP, (3, 8), 1e-5), (SmallCNN, (2, 3, 16, 16), 1e-4)])
def test_compile_exported_matches_eager(make, shape, atol):
    torch.manual_seed(0)
    model, x = make().eval(), torch.randn(shape)
    compiled = compile_exported(model, x)
    with torch.no_grad():
        assert_same(compiled(x), model(x), make.__name__, (x,), atol, 1e-5)
        y = torch.randn(shape)  # other data, same compiled code
        assert_same(compiled(y), model(y), make.__name__, (y,), atol, 1e-5)


def test_parameters_are_arguments_when_compiled():
    """compile_exported passes the program's own weights at each call (not copied into the IR)."""
    model, x = MLP().eval(), torch.randn(3, 8)
    compiled = compile_exported(model, x)
    assert len(compiled.constants) == 4
    assert [tuple(t.shape) for t in compiled.constants] == [(16, 8), (16,), (4, 16), (4,)]


def test_exported_program_input_and_dynamic_batch():
    model = MLP().eval()
    batch = torch.export.Dim("batch", min=2, max=64)
    program = torch.export.export(model, (torch.randn(3, 8),), dynamic_shapes=({0: batch},))
    text = str(export_and_import(program))
    assert "!torch.vtensor<[?,8],f32>" in text
    compiled = compile_exported(program)
    with torch.no_grad():
        for n in (2, 7, 33):
            x = torch.randn(n, 8)
            assert_same(compiled(x), model(x), "MLP dynamic batch", (x,), 1e-5, 1e-5)


def test_tuple_outputs_keep_their_structure():
    class Two(torch.nn.Module):
        def forward(self, x):
            return x.sin(), (x * 2, x.sum(1))

    x = torch.randn(4, 5)
    got = compile_exported(Two(), x)(x)
    want = Two()(x)
    assert isinstance(got, tuple) and isinstance(got[1], tuple)
    assert_same([got[0], *got[1]], [want[0], *want[1]], "Two", (x,), 1e-6, 1e-6)


def test_bad_requests_are_clear_errors():
    with pytest.raises(ValueError, match="output_type"):
        export_and_import(MLP(), torch.randn(2, 8), output_type="tosa")
    with pytest.raises(TypeError, match="nn.Module or an ExportedProgram"):
        export_and_import(lambda x: x, torch.randn(2))
    bn = torch.nn.BatchNorm1d(8).train()  # updates running stats: a buffer mutation
    with pytest.raises(GraphImportError, match="mutates"):
        export_and_import(bn, torch.randn(4, 8))
