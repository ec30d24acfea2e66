"""Train a small CNN on synthetic data with our backend and with eager PyTorch, and save a PNG
of both loss curves.

    python examples/train.py --steps 300 --out train_loss.png

The data: 10 classes of 1x16x16 images, each class a fixed random template plus noise, so the
loss falls quickly and both runs can be compared step by step. Both runs start from the same
weights and see the same batches; the compiled run's forward, backward (AOTAutograd) and the
SGD-with-momentum step all run through MLIR.
"""
from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn as nn


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2))
        self.head = nn.Linear(16 * 4 * 4, classes)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def synthetic_batches(steps: int, batch: int = 32, classes: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    templates = torch.randn(classes, 1, 16, 16, generator=g)
    for _ in range(steps):
        labels = torch.randint(0, classes, (batch,), generator=g)
        images = templates[labels] + 1.5 * torch.randn(batch, 1, 16, 16, generator=g)
        yield images, labels


def train(model: nn.Module, steps: int, compile_backend: str | None, seed: int = 0) -> list[float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    forward = torch.compile(model, backend=compile_backend) if compile_backend else model
    step = torch.compile(optimizer.step, backend=compile_backend) if compile_backend else optimizer.step
    losses = []
    for images, labels in synthetic_batches(steps, seed=seed):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(forward(images), labels)
        loss.backward()
        step()
        losses.append(loss.item())
    return losses


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", default="train_loss.png", help="where to save the loss curves")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    eager_model = SmallCNN()
    compiled_model = copy.deepcopy(eager_model)
    t0 = time.perf_counter()
    eager = train(eager_model, args.steps, None)
    t1 = time.perf_counter()
    compiled = train(compiled_model, args.steps, "torch_mlir")
    t2 = time.perf_counter()
    max_diff = max(abs(a - b) for a, b in zip(eager, compiled))
    print(f"eager:      first loss {eager[0]:.4f}  last loss {eager[-1]:.4f}  ({t1 - t0:.1f} s)")
    print(f"torch_mlir: first loss {compiled[0]:.4f}  last loss {compiled[-1]:.4f}  "
          f"({t2 - t1:.1f} s including compilation)")
    print(f"largest per-step loss difference: {max_diff:.2e}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(eager, label="eager", linewidth=2)
    ax.plot(compiled, label="torch.compile(backend='torch_mlir')", linestyle="--")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss")
    ax.set_yscale("log")
    ax.set_title("SmallCNN on synthetic data (SGD, momentum 0.9)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"saved {args.out}")
    return {"eager": eager, "torch_mlir": compiled, "max_diff": max_diff}


if __name__ == "__main__":
    main()
