"""Timing helpers: medians over repeated runs after warm-up (the machine is shared and noisy)."""
from __future__ import annotations

import statistics
import time
from typing import Callable


def median_seconds(fn: Callable[[], object], warmup: int = 3, repeats: int = 20, inner: int = 1) -> float:
    """Median wall time of one `fn()` call: `inner` calls per sample, `repeats` samples."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


# ------------------------------------------------------------------------------------------------
# options={"profile": True}: where the time goes, per compiled graph
# ------------------------------------------------------------------------------------------------

import atexit  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

_PROFILED: list["ProfiledGraph"] = []
_LOCK = threading.Lock()


class ProfiledGraph:
    """Wraps a CompiledGraph: counts calls and their wall time; keeps the graph's compile
    times (front end, each pipeline stage, JIT). `report()` prints all of them."""

    def __init__(self, compiled, name: str, front_end_seconds: float = 0.0):
        self.compiled = compiled
        self.name = name
        self.front_end_seconds = front_end_seconds
        self.calls = 0
        self.run_seconds = 0.0

    def __call__(self, *inputs):
        t0 = time.perf_counter()
        out = self.compiled(*inputs)
        self.run_seconds += time.perf_counter() - t0
        self.calls += 1
        return out

    def __getattr__(self, name):  # everything else is the CompiledGraph's
        return getattr(self.compiled, name)

    def report(self) -> str:
        mean = self.run_seconds / self.calls * 1e3 if self.calls else 0.0
        lines = [f"{self.name}: {self.calls} calls, {self.run_seconds * 1e3:.2f} ms total, {mean:.3f} ms/call",
                 f"  compile: front end (import + lowering) {self.front_end_seconds * 1e3:.2f} ms"]
        result = getattr(self.compiled, "pipeline_result", None)
        if result is not None:
            lines.append(result.report())
        lines.append(f"  jit {getattr(self.compiled, 'jit_seconds', 0.0) * 1e3:.2f} ms")
        return "\n".join(lines)


def profile_graph(compiled, name: str, front_end_seconds: float = 0.0) -> ProfiledGraph:
    with _LOCK:
        profiled = ProfiledGraph(compiled, f"graph #{len(_PROFILED) + 1} ({name})", front_end_seconds)
        if not _PROFILED:
            atexit.register(_print_at_exit)
        _PROFILED.append(profiled)
    return profiled


def profiled_graphs() -> list[ProfiledGraph]:
    return list(_PROFILED)


def report() -> str:
    """Every profiled graph, the most expensive (total run time) first."""
    graphs = sorted(_PROFILED, key=lambda g: -g.run_seconds)
    if not graphs:
        return "torch_mlir profile: no graph compiled with options={'profile': True}"
    total = sum(g.run_seconds for g in graphs)
    head = f"torch_mlir profile: {len(graphs)} graphs, {total * 1e3:.2f} ms in compiled code"
    return "\n".join([head] + [g.report() for g in graphs])


def reset() -> None:
    with _LOCK:
        _PROFILED.clear()


def _print_at_exit() -> None:
    if _PROFILED:
        print(report(), file=sys.stderr)
