"""The benchmark workloads of issue 6: micro kernels, models (random weights), training steps.

A `Workload` builds, on demand, a callable and its inputs (f32, fixed seed). Inference workloads
run under `torch.no_grad()`; training workloads run one forward + backward + SGD step and their
"output" is the updated parameters, so that every backend's step can be checked against eager.
ResNet-18 and the GPT-style decoder are written here (torchvision cannot be imported on this
machine); their structure follows the reference architectures, their weights are random.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn as nn

from torch_mlir_backend.e2e.cases.models import MLP  # the demo's and the conformance cases' MLP
import torch.nn.functional as F


@dataclass
class Workload:
    name: str
    suite: str  # "micro", "model", "train" or "overhead"
    # () -> (callable, inputs). The callable is compiled per backend with torch.compile.
    build: Callable[[], tuple]
    atol: float = 1e-4
    rtol: float = 1e-4
    # floating point operations of one call (for GFLOP/s), when meaningful
    flops: Optional[float] = None
    note: str = ""
    # training step: the callable mutates its module; outputs are compared on parameters
    training: bool = False
    tags: tuple = field(default_factory=tuple)


def _seeded(fn):
    def build():
        torch.manual_seed(0)
        return fn()

    return build


# ------------------------------------------------------------------------------------------------
# models written here
# ------------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet v1.5 basic block: two 3x3 conv-bn, identity or 1x1 conv-bn shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet18(nn.Module):
    """torchvision's resnet18 layout: 7x7/2 stem, max pool, 4 stages of 2 basic blocks, fc."""

    def __init__(self, classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layers(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class DecoderBlock(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        shape = (b, t, self.heads, d // self.heads)
        q, k, v = (y.view(shape).transpose(1, 2) for y in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class GPTDecoder(nn.Module):
    """GPT-2 style pre-norm decoder stack with causal scaled-dot-product attention."""

    def __init__(self, layers=4, d=256, heads=4, vocab=1024, seq=128):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(seq, d)
        self.blocks = nn.Sequential(*[DecoderBlock(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        return self.head(self.ln(self.blocks(x)))


class LSTMModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(128, 256, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


def _transformer_encoder():
    layer = nn.TransformerEncoderLayer(256, 4, dim_feedforward=1024, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)


# ------------------------------------------------------------------------------------------------
# training steps
# ------------------------------------------------------------------------------------------------


class TrainStep:
    """One SGD step: forward, mean-squared loss, backward, update. Called as step(x, target);
    returns the parameters after the step. Each backend gets its own deep copy of the module."""

    def __init__(self, module: nn.Module):
        self.module = module.train()
        self.opt = torch.optim.SGD(self.module.parameters(), lr=1e-3)

    def forward_backward(self, x, target):
        loss = F.mse_loss(self.module(x), target)
        loss.backward()
        return loss

    def clone(self) -> "TrainStep":
        return TrainStep(copy.deepcopy(self.module))


# ------------------------------------------------------------------------------------------------
# the list
# ------------------------------------------------------------------------------------------------


def _mm(n):
    return lambda: (torch.mm, (torch.randn(n, n), torch.randn(n, n)))


def _gelu_chain():
    return (lambda x, w, b: F.gelu(x * w + b)), (torch.randn(4096, 1024), torch.randn(1024), torch.randn(1024))


def _conv():
    conv = nn.Conv2d(64, 64, 3, padding=1, bias=False).eval()
    return conv, (torch.randn(1, 64, 56, 56),)


def _model(factory, *inputs_factory):
    def build():
        model = factory().eval()
        return model, tuple(f() for f in inputs_factory)

    return build


def _train(factory, x_shape, y_shape):
    def build():
        step = TrainStep(factory())
        return step, (torch.randn(*x_shape), torch.randn(*y_shape))

    return build


def all_workloads() -> list[Workload]:
    conv_flops = 2 * 64 * 64 * 9 * 56 * 56
    return [
        Workload("matmul_512", "micro", _seeded(_mm(512)), 1e-3, 1e-3, flops=2 * 512**3),
        Workload("matmul_1024", "micro", _seeded(_mm(1024)), 2e-3, 1e-3, flops=2 * 1024**3),
        Workload("add_1M", "micro", _seeded(lambda: (torch.add, (torch.randn(1 << 20), torch.randn(1 << 20))))),
        Workload("gelu_x_w_b", "micro", _seeded(_gelu_chain), 1e-4, 1e-4),
        Workload("softmax_256x1024", "micro",
                 _seeded(lambda: ((lambda x: torch.softmax(x, -1)), (torch.randn(256, 1024),)))),
        Workload("layer_norm_256x1024", "micro",
                 _seeded(lambda: ((lambda x, w, b: F.layer_norm(x, (1024,), w, b)),
                                  (torch.randn(256, 1024), torch.randn(1024), torch.randn(1024))))),
        Workload("conv3x3_64_56", "micro", _seeded(_conv), 1e-3, 1e-3, flops=conv_flops),
        # a linear on a 3-D input (views around its matmul) and attention: the building blocks of
        # the transformer workloads, timed on their own
        Workload("linear_8x32x128", "micro",
                 _seeded(lambda: (F.linear, (torch.randn(8, 32, 128), torch.randn(512, 128), torch.randn(512)))),
                 1e-4, 1e-4, flops=2 * 8 * 32 * 128 * 512),
        Workload("sdpa_causal_8x4x128x64", "micro",
                 _seeded(lambda: ((lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
                                  tuple(torch.randn(8, 4, 128, 64) for _ in range(3)))), 1e-4, 1e-4),
        Workload("sum_lastdim_4096", "micro",
                 _seeded(lambda: ((lambda x: x.sum(-1)), (torch.randn(4096, 4096),))), 1e-3, 1e-4),
        Workload("max_lastdim_4096", "micro",
                 _seeded(lambda: ((lambda x: x.amax(-1)), (torch.randn(4096, 4096),)))),
        Workload("mlp_b64", "model", _seeded(_model(MLP, lambda: torch.randn(64, 784))), 1e-4, 1e-4),
        Workload("resnet18_b1", "model", _seeded(_model(ResNet18, lambda: torch.randn(1, 3, 224, 224))), 1e-3, 1e-3),
        Workload("resnet18_b8", "model", _seeded(_model(ResNet18, lambda: torch.randn(8, 3, 224, 224))), 1e-3, 1e-3),
        Workload("transformer_enc", "model",
                 _seeded(_model(_transformer_encoder, lambda: torch.randn(8, 128, 256))), 1e-3, 1e-3),
        Workload("gpt_decoder", "model",
                 _seeded(_model(GPTDecoder, lambda: torch.randint(0, 1024, (8, 128)))), 1e-3, 1e-3),
        Workload("lstm", "model", _seeded(_model(LSTMModel, lambda: torch.randn(8, 64, 128))), 1e-4, 1e-4),
        Workload("train_mlp", "train", _seeded(_train(MLP, (64, 784), (64, 10))), 1e-4, 1e-4, training=True),
        Workload("train_transformer", "train",
                 _seeded(_train(_transformer_encoder, (8, 128, 256), (8, 128, 256))), 1e-3, 1e-3, training=True),
        Workload("overhead_add_16", "overhead",
                 _seeded(lambda: ((lambda x: x + 1), (torch.randn(16),))), note="per-call cost of x + 1"),
    ]
