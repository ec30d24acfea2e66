"""options={"profile": True}: per-graph call times and per-stage compile times are reported."""
from __future__ import annotations

import torch

from helpers import make_input
from torch_mlir_backend import profiling

F32 = torch.float32


def test_profile_option_reports_calls_and_stage_times():
    profiling.reset()
    fn = torch.compile(lambda t: torch.tanh(t) + 1, backend="torch_mlir", options={"profile": True})
    x = make_input((16,), F32)
    for _ in range(3):
        torch.testing.assert_close(fn(x), torch.tanh(x) + 1)
    graphs = profiling.profiled_graphs()
    assert len(graphs) == 1 and graphs[0].calls == 3
    text = profiling.report()
    for stage in ("bufferize", "generate-loops", "to-llvm", "jit", "3 calls"):
        assert stage in text, stage
    profiling.reset()
