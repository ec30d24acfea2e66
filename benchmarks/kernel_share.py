"""How fast any backend could run each model workload if it called the same library kernels
(MKL/oneDNN GEMMs, convolutions, fused attention, RNN layers) as eager and everything else cost
nothing: the ceiling `eager time / library-kernel time` (Amdahl's law).

    python benchmarks/kernel_share.py --threads 1,2

For each model of `workloads.py` it times eager (median wall time over --runs after a warm-up) and
profiles it (`torch.profiler`, median over --runs), summing the self time of the library kernels
(`LIBRARY_KERNELS`). Convolutions are also
profiled on channels-last inputs and weights (the layout Inductor picks for them) and the faster
layout's kernel time is used, so the ceiling holds for a backend that changes layouts too. What
is left after the library kernels is the part a compiler can shrink: elementwise ops,
normalizations, pooling, copies and dispatch.

Writes `kernel_share.md` and `kernel_share.json` next to the harness's results (--out).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import all_workloads  # noqa: E402

# Leaf ATen kernels that run in MKL or oneDNN (or PyTorch's own fused CPU kernels for
# attention): a compiler calling the same kernel cannot make this time shorter.
LIBRARY_KERNELS = {
    "aten::mm", "aten::addmm", "aten::_addmm_activation", "aten::bmm", "aten::baddbmm", "aten::_mkl_linear", "aten::mkldnn_convolution",
    "aten::_convolution_pointwise", "aten::mkldnn_rnn_layer", "aten::mkldnn_rnn",
    "aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_flash_attention_forward",
}


def _profile(fn, inputs, runs: int) -> tuple[float, float, dict]:
    """(median total ms, median library-kernel ms, library ms per kernel of the median run)."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad():
        for _ in range(2):
            fn(*inputs)
        samples = []
        for _ in range(runs):
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                fn(*inputs)
            events = prof.key_averages()
            total = sum(e.self_cpu_time_total for e in events) / 1e3
            per_kernel = {e.key: e.self_cpu_time_total / 1e3 for e in events if e.key in LIBRARY_KERNELS}
            samples.append((total, sum(per_kernel.values()), per_kernel))
    samples.sort(key=lambda s: s[0])
    median = samples[len(samples) // 2]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples), median[2]


def _wall_ms(fn, inputs, runs: int) -> float:
    """Median wall time of eager without the profiler (the ceiling's numerator)."""
    import time

    with torch.no_grad():
        fn(*inputs)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn(*inputs)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _channels_last(model, inputs):
    model = model.to(memory_format=torch.channels_last)
    inputs = tuple(x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in inputs)
    return model, inputs


def measure(threads: int, runs: int) -> list[dict]:
    torch.set_num_threads(threads)
    rows = []
    for workload in all_workloads():
        if workload.suite != "model":
            continue
        model, inputs = workload.build()
        _, library, kernels = _profile(model, inputs, runs)
        total = _wall_ms(model, inputs, runs)
        row = {"workload": workload.name, "threads": threads, "eager_ms": total, "library_ms": library,
               "kernels": kernels, "layout": "as given"}
        if any(isinstance(m, torch.nn.Conv2d) for m in getattr(model, "modules", lambda: [])()):
            cl_model, cl_inputs = _channels_last(model, inputs)
            _, cl_library, cl_kernels = _profile(cl_model, cl_inputs, runs)
            if cl_library < library:
                row.update(library_ms=cl_library, kernels=cl_kernels, layout="channels-last",
                           eager_channels_last_ms=_wall_ms(cl_model, cl_inputs, runs))
        row["ceiling"] = total / row["library_ms"] if row["library_ms"] > 0 else float("inf")
        rows.append(row)
        print(f"{threads}T {workload.name}: eager {total:.2f} ms, library kernels {row['library_ms']:.2f} ms "
              f"({row['layout']}) -> ceiling {row['ceiling']:.3f}x", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = parser.parse_args()
    # The harness's process tunes glibc's malloc when our backend is imported (eager gains too):
    # profile under the same conditions.
    from torch_mlir_backend.lowering.codegen import keep_freed_memory_mapped

    keep_freed_memory_mapped()
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        rows += measure(threads, args.runs)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "kernel_share.json"), "w") as f:
        json.dump(rows, f, indent=1)
    lines = [f"Command: `python benchmarks/kernel_share.py --threads {args.threads} --runs {args.runs}`", "",
             "| threads | workload | eager ms | library kernels ms | layout | share | ceiling vs eager |",
             "|---:|---|---:|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['threads']} | {r['workload']} | {r['eager_ms']:.2f} | {r['library_ms']:.2f} | {r['layout']} "
                     f"| {100 * r['library_ms'] / r['eager_ms']:.0f} % | {r['ceiling']:.3f}x |")
    for threads in sorted({r["threads"] for r in rows}):
        ceilings = [r["ceiling"] for r in rows if r["threads"] == threads]
        geomean = math.exp(sum(math.log(c) for c in ceilings) / len(ceilings))
        lines.append(f"| {threads} | **geomean ceiling** | | | | | **{geomean:.3f}x** |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "kernel_share.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
