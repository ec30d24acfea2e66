"""Models shared by the road tests (kept tiny: every test compiles)."""
import importlib.util
import os

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class MLP(torch.nn.Module):
    def __init__(self, sizes=(8, 16, 4)):
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = torch.nn.Linear(sizes[0], sizes[1])
        self.fc2 = torch.nn.Linear(sizes[1], sizes[2])

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def resnet18(num_classes: int = 10) -> torch.nn.Module:
    """ResNet-18 (torchvision layout) from benchmarks/resnet18.py, random weights, eval mode."""
    spec = importlib.util.spec_from_file_location("resnet18_arch", os.path.join(REPO, "benchmarks", "resnet18.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.resnet18(num_classes)


def torch_mlir_verifies(text: str) -> str:
    """Upstream torch-mlir (test-only oracle) parses and verifies our Torch dialect text; returns
    its own printing."""
    import pytest

    torch_mlir_ir = pytest.importorskip("torch_mlir.ir", reason="torch-mlir oracle is a test extra")
    from torch_mlir.dialects import torch as torch_d

    ctx = torch_mlir_ir.Context()
    torch_d.register_dialect(ctx)
    with ctx:
        parsed = torch_mlir_ir.Module.parse(text)
        assert parsed.operation.verify()
        return str(parsed)
