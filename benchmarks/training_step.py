"""Training-step speed: eager vs Inductor vs our backend, for an MLP and a TransformerEncoder,
at 1 and 2 threads.

One step = zero_grad, forward, loss, backward (AOTAutograd's backward graph compiled by the
backend) and an SGD step (eager in all three, so only the model's graphs differ). Each thread
count runs in its own process (OMP_NUM_THREADS is read when the OpenMP runtimes load).

    python benchmarks/training_step.py                 # both models, 1 and 2 threads
    python benchmarks/training_step.py --threads 1 --steps 50

Prints the median step time per backend and the ratios eager/torch_mlir and
inductor/torch_mlir (above 1: we are faster). The compiled results are checked against eager
once before timing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MODELS = ("mlp", "transformer")


def _make(name: str):
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                              nn.Linear(512, 10))
        return model, torch.randn(64, 256)
    layer = nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), torch.randn(8, 32, 128)


def _measure(name: str, backend: str, steps: int) -> dict:
    import copy

    import torch

    model, x = _make(name)
    reference = copy.deepcopy(model)
    run = model if backend == "eager" else torch.compile(model, backend=backend)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = run(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss

    t0 = time.perf_counter()
    loss = step()
    compile_s = time.perf_counter() - t0
    want = reference(x).pow(2).mean()
    error = abs(loss.item() - want.item())
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return {"median_ms": 1e3 * statistics.median(times), "first_step_s": compile_s, "loss_error": error}


def _child(threads: int, steps: int, models) -> None:
    import torch

    torch.set_num_threads(threads)
    results = {}
    for name in models:
        for backend in ("eager", "inductor", "torch_mlir"):
            torch._dynamo.reset()
            results[f"{name}/{backend}"] = _measure(name, backend, steps)
    print(json.dumps(results))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.steps, args.models)
        return
    print(f"{'model':12} {'threads':>7} {'eager ms':>9} {'inductor ms':>11} {'torch_mlir ms':>13} "
          f"{'eager/ours':>10} {'inductor/ours':>13} {'our 1st step s':>14}")
    for threads in args.threads:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        out = subprocess.run([sys.executable, __file__, "--child", str(threads), "--steps", str(args.steps),
                              "--models", *args.models], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"benchmark child with {threads} thread(s) failed")
        results = json.loads(out.stdout.strip().splitlines()[-1])
        for name in args.models:
            e, i, o = (results[f"{name}/{b}"] for b in ("eager", "inductor", "torch_mlir"))
            print(f"{name:12} {threads:>7} {e['median_ms']:>9.2f} {i['median_ms']:>11.2f} "
                  f"{o['median_ms']:>13.2f} {e['median_ms'] / o['median_ms']:>10.2f} "
                  f"{i['median_ms'] / o['median_ms']:>13.2f} {o['first_step_s']:>14.1f}")
            worst = max(i["loss_error"], o["loss_error"])
            if worst > 1e-4:
                print(f"  warning: {name} loss differs from eager by {worst:.2e}", file=sys.stderr)


if __name__ == "__main__":
    main()
