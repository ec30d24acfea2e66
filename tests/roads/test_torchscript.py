"""The TorchScript road: script/trace modules, functions and .pt files -> Torch dialect ->
our lowering and runtime, against eager; structured control flow; clear errors."""
import pytest
import torch

from torch_mlir_backend import GraphImportError
from torch_mlir_backend.importers.torchscript_importer import compile_torchscript, import_torchscript
from helpers import assert_same

from _models import MLP, resnet18, torch_mlir_verifies


def test_scripted_mlp_matches_eager():
    model, x = MLP().eval(), torch.randn(3, 8)
    compiled = compile_torchscript(torch.jit.script(model), [x])
    with torch.no_grad():
        for data in (x, torch.randn(3, 8)):
            assert_same(compiled(data), model(data), "scripted MLP", (data,), 1e-5, 1e-5)


def test_saved_pt_file_matches_eager(tmp_path):
    model, x = MLP().eval(), torch.randn(2, 8)
    path = str(tmp_path / "mlp.pt")
    torch.jit.save(torch.jit.script(model), path)
    compiled = compile_torchscript(path, [x])
    with torch.no_grad():
        assert_same(compiled(x), model(x), "mlp.pt", (x,), 1e-5, 1e-5)


def test_traced_resnet18_matches_eager():
    model, x = resnet18(num_classes=10), torch.randn(1, 3, 32, 32)
    traced = torch.jit.trace(model, x)
    compiled = compile_torchscript(traced, [x])
    with torch.no_grad():
        assert_same(compiled(x), model(x), "traced ResNet-18", (x,), 1e-4, 1e-4)


@torch.jit.script
def loop_and_branch(x: torch.Tensor, steps: int) -> torch.Tensor:
    for _ in range(steps):
        if bool(x.sum() > 0):
            x = x * 0.5 - 1.0
        else:
            x = x.abs() + 0.25
    return x


@torch.jit.script
def data_dependent_while(x: torch.Tensor) -> torch.Tensor:
    while bool(x.max() < 10.0):
        x = x * 2.0 + 0.5
    return x


def test_loop_and_branch_match_eager():
    x = torch.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
    compiled = compile_torchscript(loop_and_branch, [x, 5])
    for data in (x, -x, torch.randn(2, 3)):  # branches taken in different orders
        assert_same(compiled(data), loop_and_branch(data, 5), "loop_and_branch", (data,), 1e-6, 1e-6)


def test_data_dependent_while_matches_eager():
    x = torch.tensor([0.1, 0.2, 0.3])
    compiled = compile_torchscript(data_dependent_while, [x])
    for data in (x, torch.tensor([5.0, 1.0, 2.0]), torch.tensor([20.0, 0.0, 0.0])):  # 0 to many trips
        assert_same(compiled(data), data_dependent_while(data), "while", (data,), 1e-6, 1e-6)


def test_control_flow_is_torch_prim_regions_torch_mlir_accepts():
    text = str(import_torchscript(loop_and_branch, [torch.randn(2, 3), 4]))
    assert '"torch.prim.Loop"' in text and '"torch.prim.If"' in text
    assert '"torch.aten.Bool.Tensor"' in text
    pretty = torch_mlir_verifies(text)
    assert "torch.prim.Loop" in pretty and "torch.prim.If" in pretty


def test_conditions_known_at_import_keep_only_the_taken_branch():
    @torch.jit.script
    def by_rank(x):
        if x.dim() == 2:
            return x.t()
        return x * 2

    text = str(import_torchscript(by_rank, [torch.randn(2, 3)]))
    assert "torch.prim.If" not in text
    x = torch.randn(2, 3)
    assert_same(compile_torchscript(by_rank, [x])(x), by_rank(x), "by_rank", (x,), 0, 0)


def test_no_decompose_keeps_torchscript_ops():
    text = str(import_torchscript(torch.jit.script(MLP().eval()), [torch.randn(2, 8)], decompose=False))
    assert '"torch.aten.linear"' in text


def test_unsupported_constructs_name_the_construct_and_line():
    @torch.jit.script
    def prints(x):
        print("hello")
        return x + 1

    with pytest.raises(GraphImportError, match=r"prim::Print.*test_torchscript.py:\d+"):
        import_torchscript(prints, [torch.randn(2)])

    @torch.jit.script
    def raises_on_data(x):
        if bool(x.sum() > 0):
            raise ValueError("positive")
        return x

    with pytest.raises(GraphImportError, match="raises an exception under a condition known only at run time"):
        import_torchscript(raises_on_data, [torch.randn(2)])

    @torch.jit.script
    def shape_changing_branch(x):
        if bool(x.sum() > 0):
            y = x.sum(0)
        else:
            y = x
        return y

    with pytest.raises(GraphImportError, match=r"prim::If at .*result 0 differs between the branches"):
        import_torchscript(shape_changing_branch, [torch.randn(2, 3)])


def test_malformed_pt_files_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(GraphImportError, match="bad.pt: not a TorchScript archive"):
        import_torchscript(str(bad), [torch.randn(2)])
    with pytest.raises(GraphImportError, match="no such file"):
        import_torchscript(str(tmp_path / "missing.pt"), [torch.randn(2)])
    with pytest.raises(GraphImportError, match="script or trace it first"):
        import_torchscript(MLP(), [torch.randn(2, 8)])
