"""Whole-model cases (random weights): MLP, a small CNN, a transformer encoder layer."""
import torch
import torch.nn as nn

from ..registry import conformance_case
from ._util import inputs, rand


class MLP(nn.Module):
    def __init__(self, sizes=(784, 512, 512, 10)):
        super().__init__()
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, x):
        return self.net(x)


class SmallCNN(nn.Module):
    """conv-bn-relu-pool twice, then global average pooling and a linear classifier."""

    def __init__(self, channels=3, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def transformer_encoder_layer():
    return nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)


conformance_case("MLPModel_basic", inputs=inputs(rand(8, 64)), atol=1e-5)(lambda: MLP((64, 32, 32, 10)))
conformance_case("SmallCNNModel_basic", inputs=inputs(rand(2, 3, 16, 16)), atol=1e-4)(SmallCNN)
conformance_case("TransformerEncoderLayerModel_basic", inputs=inputs(rand(2, 6, 32)), atol=1e-4)(
    transformer_encoder_layer)
