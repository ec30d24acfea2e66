"""examples/train.py runs with few steps: the compiled run's losses follow eager's and the PNG
of the loss curves is written."""
from __future__ import annotations

import importlib.util
import os

import pytest

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "train.py")


def test_train_example_matches_eager_and_saves_png(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="the example's plot needs matplotlib (extra 'examples')")
    # LLVM -O0: compile time dominates a 12-step run; the numerics are the same at any level.
    monkeypatch.setenv("TORCH_MLIR_BACKEND_OPT_LEVEL", "0")
    spec = importlib.util.spec_from_file_location("train_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "loss.png"
    result = example.main(["--steps", "12", "--out", str(out)])
    # Same weights and batches: after 12 SGD steps the losses still agree closely.
    assert result["max_diff"] < 1e-4, result
    assert max(result["eager"][-3:]) < result["eager"][0], "the example does not train"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
