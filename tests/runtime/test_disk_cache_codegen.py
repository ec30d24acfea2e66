"""Graphs of the default (fast) code generation stored in the on-disk cache and loaded by a fresh
process: contractions that call torch's BLAS (`sgemm_`, resolved from libtorch_cpu when the
cached shared object is loaded) and loops that run on torch's OpenMP threads (libgomp). Each run is a
child process, so the warm run really loads machine code written by another process."""
import glob
import json
import os
import subprocess
import sys
import textwrap

from torch_mlir_backend.runtime import disk_cache

# At 2 threads: an MLP whose linear layers call BLAS, and an elementwise graph of 64 x 1024
# elements (above codegen.MIN_PARALLEL_WORK), whose loop nest is split over torch's OpenMP team.
CHILD = """
import json, torch
from torch_mlir_backend.runtime import disk_cache
torch.set_num_threads(2)
torch.manual_seed(0)
mlp = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.ReLU(), torch.nn.Linear(48, 16)).eval()
x = torch.randn(32, 64)
with torch.no_grad():
    mlp_error = (torch.compile(mlp, backend="torch_mlir")(x).double() - mlp.double()(x.double())).abs().max()
def user_fn(a, b):
    return torch.tanh(a.exp() * 0.5) + b
a = torch.linspace(-3, 3, 64 * 1024).reshape(64, 1024)
b = torch.linspace(0, 1, 1024)
openmp_error = (torch.compile(user_fn, backend="torch_mlir")(a, b).double() - user_fn(a.double(), b.double())).abs().max()
cache = disk_cache.default_disk_cache()
print(json.dumps({"mlp_error": mlp_error.item(), "openmp_error": openmp_error.item(), "hits": cache.hits,
                  "stores": cache.stores, "rejected": cache.rejected, "threads": torch.get_num_threads(),
                  "fingerprint": disk_cache.environment_fingerprint()}))
"""


def _run(code: str, folder) -> dict:
    env = dict(os.environ, **{disk_cache.ENV_CACHE_DIR: str(folder)})
    env.pop(disk_cache.ENV_DISABLE, None)
    env.pop("TORCH_MLIR_BACKEND_CODEGEN", None)  # the default: fast code generation
    env.pop("TORCH_MLIR_BACKEND_OPENMP", None)  # the default: parallel loops at 2 threads
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, f"child exited {proc.returncode}\n{proc.stderr[-3000:]}"
    return json.loads([l for l in proc.stdout.splitlines() if l.startswith("{")][-1])


def _payloads(folder) -> list:
    found = []
    for path in sorted(glob.glob(os.path.join(str(folder), "*" + disk_cache.ENTRY_SUFFIX))):
        with open(path, "rb") as f:
            found.append(f.read())
    return found


def test_blas_and_openmp_graphs_reload_in_a_fresh_process_at_two_threads(tmp_path):
    # The key covers a digest of the package's sources: should they be edited between the two
    # runs (a shared checkout), the warm run rightly misses; the pair is run again then.
    for attempt in range(3):
        folder = tmp_path / f"cache-{attempt}"
        cold = _run(CHILD, folder)
        warm = _run(CHILD, folder)
        if warm["fingerprint"] == cold["fingerprint"]:
            break
    assert (cold["hits"], cold["stores"], cold["rejected"], cold["threads"]) == (0, 2, 0, 2), cold
    payloads = _payloads(folder)
    # Both kinds of code are really in the cache (otherwise this would test nothing).
    assert any(b"sgemm_" in p for p in payloads), "the cached MLP does not call BLAS"
    assert any(b"libgomp" in p and b"GOMP_parallel" in p for p in payloads), \
        "no cached graph runs OpenMP loops"
    assert (warm["hits"], warm["stores"], warm["rejected"]) == (2, 0, 0), warm
    for run in (cold, warm):
        assert run["mlp_error"] <= 1e-4 and run["openmp_error"] <= 1e-5, run
