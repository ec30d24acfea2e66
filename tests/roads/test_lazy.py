"""The lazy-tensor road: a computation recorded on the `lazy` device (TorchScript backend) is
imported through the TorchScript importer and run by our runtime, against eager."""
import pytest
import torch
import torch.nn.functional as F

from torch_mlir_backend import GraphImportError
from torch_mlir_backend.lazy import capture_lazy, compile_lazy, import_lazy, init_lazy_backend
from helpers import assert_same

from _models import MLP

init_lazy_backend()  # before any module moves to the `lazy` device


def _training_step(model):
    def step(x, y):
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return [loss] + [p.grad for p in model.parameters()]

    return step


def test_mlp_training_step_matches_eager():
    x, y = torch.randn(5, 8), torch.randn(5, 4)
    eager = MLP()
    want = _training_step(eager)(x, y)
    compiled = compile_lazy(_training_step(MLP().to("lazy")), x, y)
    got = compiled(x, y)
    assert len(got) == 5  # loss, then the gradients of fc1.weight, fc1.bias, fc2.weight, fc2.bias
    assert_same(got, want, "lazy MLP step", (x, y), 1e-5, 1e-5)
    x2, y2 = torch.randn(5, 8), torch.randn(5, 4)  # new data through the same compiled step
    eager.zero_grad()
    assert_same(compiled(x2, y2), _training_step(eager)(x2, y2), "lazy MLP step", (x2, y2), 1e-5, 1e-5)


def test_mlp_forward_matches_eager_and_imports_as_torch_dialect():
    model, x = MLP(), torch.randn(3, 8)
    lazy_model = MLP().to("lazy")
    with torch.no_grad():
        text = str(import_lazy(lambda t: lazy_model(t), x))
        assert "func.func @main(%arg0: !torch.vtensor<[3,8],f32>)" in text and "torch.aten.addmm" in text
        got = compile_lazy(lambda t: lazy_model(t), x)(x)
        assert_same(got[0], model(x), "lazy MLP forward", (x,), 1e-5, 1e-5)


def test_inputs_map_to_arguments_in_the_callers_order():
    a, b = torch.randn(4), torch.randn(4)
    run = compile_lazy(lambda p, q: [q * 3 - p], a, b)
    assert_same(run(a, b)[0], b * 3 - a, "q*3-p", (a, b), 1e-6, 1e-6)
    capture = capture_lazy(lambda p, q: q * 3 - p, a, b)
    assert sorted(capture.argument_of.values()) == [0, 1]


def test_eager_fallbacks_and_non_lazy_outputs_are_refused():
    model = MLP().to("lazy")
    x, y = torch.randn(5, 8), torch.randn(5, 4)

    def mse_step(x, y):  # mse_loss's backward runs eagerly on this backend (a fallback)
        loss = F.mse_loss(model(x), y)
        loss.backward()
        return [loss] + [p.grad for p in model.parameters()]

    with pytest.raises(GraphImportError, match="fell back to eager execution.*aten::"):
        capture_lazy(mse_step, x, y)
    with pytest.raises(GraphImportError, match="must return lazy tensors"):
        capture_lazy(lambda t: torch.ones(2), x)
