"""Channels-last regions (torch_mlir_backend/layout.py): the graph rewrite (what joins a region, where permutes go back to NCHW) and whole networks against eager,
in inference; training and the off switch keep NCHW. The tmb:: ops' lowerings are tested in
tests/lowering (test_convolution.py, test_pooling.py)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import check, compile_fn, make_input
from torch_mlir_backend import layout

F32 = torch.float32
tmb = torch.ops.tmb


@pytest.fixture(autouse=True)
def _channels_last_on(monkeypatch):
    monkeypatch.setenv(layout.ENV_CHANNELS_LAST, "1")  # opt-in (see layout.py)


# ----- the rewrite ----------------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride), nn.BatchNorm2d(cout)) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 5, 2, 2), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2, 1, ceil_mode=True))
        self.blocks = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        features = self.blocks(self.stem(x))
        # a region value used outside the region twice: by the head and as a graph output
        return self.head(features.mean((2, 3))), torch.sigmoid(features) * 2


def _randomize_batch_norms(model):
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def _graph_of(model, x):
    """The inference FX graph our backend compiles, after the channels-last rewrite."""
    import torch_mlir_backend.backend as backend

    graphs = []
    original = backend.compile_fx_graph

    def spy(gm, example_inputs, options=None):
        graphs.append(gm)
        return original(gm, example_inputs, options)

    backend.compile_fx_graph = spy
    try:
        with torch.no_grad():
            got = torch.compile(model, backend="torch_mlir", options={"strict": True})(x)
    finally:
        backend.compile_fx_graph = original
    return graphs, got


def test_small_resnet_runs_channels_last_and_matches_eager():
    torch.manual_seed(0)
    model = _randomize_batch_norms(SmallResNet()).eval()
    x = make_input((2, 3, 33, 31), F32, seed=5)
    (gm,), got = _graph_of(model, x)
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert targets.count(tmb.convolution_channels_last.default) == 6
    assert torch.ops.aten.convolution.default not in targets
    assert targets.count(tmb.max_pool2d_channels_last.default) == 1
    (mean,) = [n for n in gm.graph.nodes if n.target == torch.ops.aten.mean.dim]
    assert mean.args[1] == [1, 2]
    # one permute into NHWC (the input) and one back (the graph output); the mean over H and W
    # reads the NHWC features directly
    layout_permutes = [n for n in gm.graph.nodes if n.target == torch.ops.aten.permute.default and len(n.args[1]) == 4]
    assert len(layout_permutes) == 2, layout_permutes
    with torch.no_grad():
        want = model(x)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_training_and_the_off_switch_keep_channels_first(monkeypatch):
    torch.manual_seed(0)
    model = _randomize_batch_norms(SmallResNet()).eval()
    x = make_input((2, 3, 17, 17), F32, seed=6)
    monkeypatch.delenv(layout.ENV_CHANNELS_LAST)
    assert not layout.enabled()  # opt-in
    monkeypatch.setenv(layout.ENV_CHANNELS_LAST, "0")
    (gm,), got = _graph_of(model, x)
    assert not any(str(n.target).startswith("tmb.") for n in gm.graph.nodes)
    monkeypatch.setenv(layout.ENV_CHANNELS_LAST, "1")
    torch._dynamo.reset()
    # training: forward and backward graphs stay NCHW, gradients match eager
    x.requires_grad_(True)
    compiled = compile_fn(model)
    out, side = compiled(x)
    (out.sum() + side.sum()).backward()
    grad = x.grad.clone()
    x.grad = None
    out, side = model(x)
    (out.sum() + side.sum()).backward()
    torch.testing.assert_close(grad, x.grad, atol=1e-5, rtol=1e-5)


def test_ops_that_cannot_follow_stay_channels_first():
    # A conv whose output feeds a reduction over channels and a view: the conv still runs NHWC,
    # its consumers get it back in NCHW.
    w = make_input((6, 4, 3, 3), F32, seed=8)

    def fn(x):
        y = F.conv2d(x, w, padding=1)
        return y.softmax(1), y.flatten(1)

    check(fn, make_input((2, 4, 7, 7), F32, seed=9), atol=1e-5, rtol=1e-5)
