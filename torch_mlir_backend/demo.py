"""The main job: compile an MLP and a small CNN with `backend="torch_mlir"`, check them against
eager and print the maximum error and the speed ratio (median after warm-up, one thread).

    python -m torch_mlir_backend.demo
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from .e2e.cases.models import MLP, SmallCNN
from .e2e.compare import max_error
from .profiling import median_seconds


def run_model(name: str, model: torch.nn.Module, x: torch.Tensor, repeats: int) -> bool:
    model.eval()
    t0 = time.perf_counter()
    compiled = torch.compile(model, backend="torch_mlir", fullgraph=True, dynamic=False)
    with torch.no_grad():
        got = compiled(x)
        compile_s = time.perf_counter() - t0
        want = model(x)
        err = max_error(got, want)
        ok = torch.allclose(got, want, atol=1e-4, rtol=1e-4)
        eager_s = median_seconds(lambda: model(x), repeats=repeats)
        ours_s = median_seconds(lambda: compiled(x), repeats=repeats)
    print(f"{name:<10} input {list(x.shape)}  max error {err:.2e}  {'OK' if ok else 'MISMATCH'}  "
          f"eager {eager_s * 1e3:8.3f} ms  torch_mlir {ours_s * 1e3:8.3f} ms  "
          f"speed ratio (eager/torch_mlir) {eager_s / ours_s:5.2f}x  first call {compile_s:.2f} s")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, backend 'torch_mlir', {torch.get_num_threads()} thread(s)")
    ok = run_model("MLP", MLP(), torch.randn(64, 784), args.repeats)
    ok &= run_model("SmallCNN", SmallCNN(), torch.randn(8, 3, 32, 32), args.repeats)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
