"""Speed of one dynamic-shape compilation against a static one: nn.TransformerEncoder (d_model
256, 4 heads, 4 layers, batch_first, eval, no_grad) at batch 8, sequence 128, one thread.

Both compiled artifacts live in the same process; calls are interleaved (static, dynamic, eager)
after warm-up and the median of each is reported, with the ratio static_time / dynamic_time
(the issue's target: dynamic at least 0.9x the static speed). Both results are checked against
eager first.

    /work/venv/bin/python benchmarks/dynamic_vs_static.py [--repeats 30] [--layers 4]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch._dynamo


def build(d_model: int, heads: int, layers: int) -> torch.nn.Module:
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model, heads, dropout=0.0, batch_first=True)
    return torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    model = build(args.d_model, args.heads, args.layers)
    x = torch.randn(args.batch, args.seq, args.d_model)
    # Two functions, so two code objects and two Dynamo caches: one static, one dynamic graph.
    def run_static(t):
        return model(t)

    def run_dynamic(t):
        return model(t)

    static = torch.compile(run_static, backend="torch_mlir", dynamic=False)
    dynamic = torch.compile(run_dynamic, backend="torch_mlir", dynamic=True)

    with torch.no_grad():
        want = model(x)
        t0 = time.perf_counter()
        got_static = static(x)
        t_static_compile = time.perf_counter() - t0
        t0 = time.perf_counter()
        got_dynamic = dynamic(x)
        t_dynamic_compile = time.perf_counter() - t0
        for name, got in (("static", got_static), ("dynamic", got_dynamic)):
            err = (got - want).abs().max().item()
            if not torch.allclose(got, want, atol=1e-4, rtol=1e-4):
                raise SystemExit(f"{name} result differs from eager: max error {err}")
            print(f"{name}: max error vs eager {err:.2e}")
        # The dynamic artifact also serves another size without recompiling.
        other = torch.randn(3, 77, args.d_model)
        torch.testing.assert_close(dynamic(other), model(other), atol=1e-4, rtol=1e-4)

        runs = {"static": static, "dynamic": dynamic, "eager": model}
        times = {k: [] for k in runs}
        for _ in range(args.warmup):
            for fn in runs.values():
                fn(x)
        for _ in range(args.repeats):
            for name, fn in runs.items():
                t0 = time.perf_counter()
                fn(x)
                times[name].append(time.perf_counter() - t0)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"TransformerEncoder d_model={args.d_model} heads={args.heads} layers={args.layers} "
          f"batch={args.batch} seq={args.seq} threads={torch.get_num_threads()} repeats={args.repeats}")
    print(f"first call (compile): static {t_static_compile:.1f}s, dynamic {t_dynamic_compile:.1f}s")
    for k in runs:
        print(f"  {k:8s} median {med[k] * 1e3:9.2f} ms  (min {min(times[k]) * 1e3:.2f} ms)")
    print(f"dynamic speed / static speed = {med['static'] / med['dynamic']:.3f}")


if __name__ == "__main__":
    main()
