"""Per-call cost of a compiled `x + 1` on 16 floats vs eager, one process, one thread.

    python benchmarks/call_overhead.py

Prints medians (microseconds) over repeated samples after warm-up for: eager, the whole
torch.compile'd function (Dynamo guards + AOTAutograd wrapper + our call), and our compiled
graph called directly (allocating the output and calling the JIT code)."""
from __future__ import annotations

import torch

from torch_mlir_backend import backend as backend_module
from torch_mlir_backend.profiling import median_seconds


def main() -> None:
    torch.set_num_threads(1)
    captured = []
    original = backend_module.compile_fx_graph

    def capture(gm, example_inputs, options=None):
        compiled = original(gm, example_inputs, options)
        captured.append(compiled)
        return compiled

    backend_module.compile_fx_graph = capture
    try:
        fn = torch.compile(lambda x: x + 1, backend="torch_mlir", fullgraph=True)
        x = torch.randn(16)
        fn(x)
    finally:
        backend_module.compile_fx_graph = original
    graph = captured[0].compiled
    kw = dict(warmup=1000, repeats=30, inner=2000)
    eager = median_seconds(lambda: x + 1, **kw)
    whole = median_seconds(lambda: fn(x), **kw)
    direct = median_seconds(lambda: graph(x), **kw)
    print(f"threads: {torch.get_num_threads()}")
    print(f"eager x+1                     {eager * 1e6:7.2f} us")
    print(f"torch.compile(backend=torch_mlir) {whole * 1e6:7.2f} us  ({whole / eager:.2f}x eager)")
    print(f"CompiledGraph direct call     {direct * 1e6:7.2f} us  ({direct / eager:.2f}x eager)")


if __name__ == "__main__":
    main()
