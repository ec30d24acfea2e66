"""Cold vs warm (on-disk cache) compile time of ResNet-18, each in a fresh process.

    python benchmarks/compile_time.py [--repeats 1]

Cold: an empty cache folder (a fresh temporary `TORCH_MLIR_BACKEND_CACHE_DIR`); warm: a new
process on the folder the cold run filled. Each child process compiles `ResNet18` (eval, no_grad,
input 1x3x224x224; the architecture of the conformance case in `e2e/cases/models_vision.py`) with `torch.compile(backend="torch_mlir")` and reports two times:
`backend` is the time spent in our compiler (`backend.compile_fx_graph`: import to the Torch
dialect, then either lowering, the pass pipeline and the JIT, or, warm, the disk-cache load: the
disk key is taken on the Torch-dialect IR, so a hit skips the lowering too), `first call` is the
whole first call of the fresh `torch.compile`d model: it adds Dynamo's tracing, AOTAutograd
(with the decomposition table) and the first run, which no cache of ours skips (`outside` =
first call - backend). The child also checks the result against eager.

The disk key covers a digest of this package's sources: when someone edits them between the cold
and the warm run (a shared checkout), the pair is run again."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, os, sys, time
import torch
from torch_mlir_backend.e2e.cases.models_vision import ResNet18
from torch_mlir_backend import backend
spent = [0.0]
original = backend.compile_fx_graph
def timed(gm, example_inputs, options=None):
    t = time.perf_counter()
    try:
        return original(gm, example_inputs, options)
    finally:
        spent[0] += time.perf_counter() - t
backend.compile_fx_graph = timed
from torch_mlir_backend.runtime import disk_cache
torch.manual_seed(0)
model, x = ResNet18().eval(), torch.randn(1, 3, 224, 224)
with torch.no_grad():
    t = time.perf_counter()
    got = torch.compile(model, backend="torch_mlir")(x)
    first_call = time.perf_counter() - t
    err = (got - model(x)).abs().max().item()
cache = disk_cache.default_disk_cache()
print(json.dumps({"backend": spent[0], "first_call": first_call, "max_error": err,
                  "fingerprint": disk_cache.environment_fingerprint(),
                  "disk_hits": cache.hits, "disk_stores": cache.stores}))
"""


def run_child(cache_dir: str) -> dict:
    env = dict(os.environ, TORCH_MLIR_BACKEND_CACHE_DIR=cache_dir)
    env.pop("TORCH_MLIR_BACKEND_DISABLE_DISK_CACHE", None)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"child process failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="cold/warm pairs to run")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; times in seconds, one fresh process each")
    for _ in range(args.repeats):
        for attempt in range(6):
            with tempfile.TemporaryDirectory(prefix="tmb-cache-") as folder:
                cold = run_child(folder)
                warm = run_child(folder)
            if cold["fingerprint"] == warm["fingerprint"] and warm["disk_hits"]:
                break
            # The package's sources changed between the two runs (the key covers them): again.
            print("package sources changed between cold and warm run; repeating", flush=True)
        for name, r in (("cold", cold), ("warm", warm)):
            print(f"{name}: backend {r['backend']:7.3f}  first call {r['first_call']:7.3f}  "
                  f"outside {r['first_call'] - r['backend']:7.3f}  "
                  f"disk hits {r['disk_hits']} stores {r['disk_stores']}  max error {r['max_error']:.2e}")
        print(f"backend speed-up warm vs cold: {cold['backend'] / warm['backend']:.1f}x; "
              f"first call: {cold['first_call'] / warm['first_call']:.1f}x", flush=True)


if __name__ == "__main__":
    main()
