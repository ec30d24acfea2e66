"""ResNet-18 on our backend: classify a synthetic image, compare top-5 and latency with eager.

    python examples/resnet18.py [--size 224] [--runs 10] [--road dynamo|export|torchscript]

Builds ResNet-18 (the torchvision layout, written in torch_mlir_backend/e2e/cases/models_vision.py
because torchvision is not installed) with random weights, or loads a torchvision-compatible state dict if one is
present (`--weights`, `$RESNET18_WEIGHTS` or `examples/resnet18.pth`). The image is a smooth
synthetic pattern normalized with ImageNet's mean and std. Compiles through one of the roads
into the Torch dialect (`torch.compile(backend="torch_mlir")` by default), then reports
the top-5 classes of eager and compiled, the largest logit difference, the compile time and
the median latency of each.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def resnet18_architecture() -> torch.nn.Module:
    """ResNet-18 as torchvision defines it (written in the e2e vision cases), random weights."""
    from torch_mlir_backend.e2e.cases.models_vision import ResNet18

    torch.manual_seed(0)
    return ResNet18()


def build_model(weights: str | None = None) -> tuple[torch.nn.Module, str]:
    """(ResNet-18 in eval mode, where its weights came from)."""
    model = resnet18_architecture()
    weights = weights or os.environ.get("RESNET18_WEIGHTS") or os.path.join(HERE, "resnet18.pth")
    if os.path.isfile(weights):
        model.load_state_dict(torch.load(weights, map_location="cpu"))
        return model.eval(), weights
    return model.eval(), "random (seed 0)"


def synthetic_image(size: int = 224) -> torch.Tensor:
    """A 1x3xHxW batch: smooth colour gradients and rings, normalized as ImageNet inputs."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    rings = torch.cos(8 * torch.sqrt(xs ** 2 + ys ** 2))
    image = torch.stack([(xs + 1) / 2, (ys + 1) / 2, (rings + 1) / 2])  # RGB in [0, 1]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return ((image - mean) / std).unsqueeze(0)


def compile_model(model: torch.nn.Module, image: torch.Tensor, road: str):
    if road == "dynamo":
        compiled = torch.compile(model, backend="torch_mlir", fullgraph=True, dynamic=False)
    elif road == "export":
        from torch_mlir_backend.export import compile_exported

        compiled = compile_exported(model, image)
    elif road == "torchscript":
        from torch_mlir_backend.importers.torchscript_importer import compile_torchscript

        compiled = compile_torchscript(torch.jit.trace(model, image), [image])
    else:
        raise ValueError(f"unknown road {road!r}")
    return compiled


def median_latency(fn, image: torch.Tensor, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(image)
        times.append(time.perf_counter() - start)
    return times


def run(size: int = 224, runs: int = 10, road: str = "dynamo", weights: str | None = None) -> dict:
    model, source = build_model(weights)
    image = synthetic_image(size)
    with torch.no_grad():
        expected = model(image)
        start = time.perf_counter()
        compiled = compile_model(model, image, road)
        got = compiled(image)  # the first call compiles (Dynamo road)
        compile_seconds = time.perf_counter() - start
        eager_times = median_latency(model, image, runs)
        compiled_times = median_latency(compiled, image, runs)
    top5_eager = expected.topk(5).indices[0].tolist()
    top5_compiled = got.topk(5).indices[0].tolist()
    return {
        "weights": source, "road": road, "size": size,
        "top5_eager": top5_eager, "top5_compiled": top5_compiled,
        "top5_match": top5_eager == top5_compiled,
        "max_abs_error": (got - expected).abs().max().item(),
        "compile_seconds": compile_seconds,
        "eager_times": eager_times, "compiled_times": compiled_times,
        "eager_median_ms": 1e3 * statistics.median(eager_times),
        "compiled_median_ms": 1e3 * statistics.median(compiled_times),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="image height and width")
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each")
    parser.add_argument("--road", choices=["dynamo", "export", "torchscript"], default="dynamo")
    parser.add_argument("--weights", help="a torchvision-compatible ResNet-18 state dict")
    args = parser.parse_args(argv)
    r = run(args.size, args.runs, args.road, args.weights)
    print(f"ResNet-18 ({r['weights']} weights), {args.size}x{args.size} synthetic image, road {r['road']}")
    print(f"top-5 eager:    {r['top5_eager']}")
    print(f"top-5 compiled: {r['top5_compiled']}  ({'same' if r['top5_match'] else 'DIFFERENT'})")
    print(f"max |logit difference|: {r['max_abs_error']:.3g}")
    print(f"compile: {r['compile_seconds']:.2f} s")
    print(f"median latency: eager {r['eager_median_ms']:.2f} ms, compiled {r['compiled_median_ms']:.2f} ms "
          f"({r['eager_median_ms'] / r['compiled_median_ms']:.2f}x eager speed)")
    return 0 if r["top5_match"] else 1


if __name__ == "__main__":
    sys.exit(main())
