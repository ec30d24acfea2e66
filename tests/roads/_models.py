"""Models shared by the road tests (kept tiny: every test compiles)."""
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
    """ResNet-18 (torchvision layout, from the e2e vision cases), random weights and non-trivial
    batch-norm statistics, eval mode."""
    from torch_mlir_backend.e2e.cases.models_vision import ResNet18

    torch.manual_seed(0)
    model = ResNet18(num_classes)
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) * 0.5 + 0.75)
    return model.eval()


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
