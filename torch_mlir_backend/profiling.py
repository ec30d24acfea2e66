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
