"""The Dynamo backend looks graphs up by their imported Torch-dialect IR, before lowering: a hit
in memory or on disk does not lower to linalg again (which is what makes a warm compile cheap:
benchmarks/compile_time.py measures it), and what the key covers tells graphs apart."""
import pytest
import torch

from torch_mlir_backend import backend
from torch_mlir_backend.runtime import clear_cache, disk_cache

from helpers import assert_same, compile_fn


def _count_lowerings(monkeypatch) -> list:
    clear_cache()  # graphs of earlier tests (pinned: no parameters) would be hits
    calls = []
    original = backend.lower_to_linalg

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(backend, "lower_to_linalg", counting)
    return calls


def _fn(x, y):
    return torch.tanh(x @ y) * 3 + 1


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_a_hit_skips_the_lowering(monkeypatch, where):
    lowerings = _count_lowerings(monkeypatch)
    x, y = torch.randn(4, 5), torch.randn(5, 3)
    assert_same(compile_fn(_fn)(x, y), _fn(x, y), "cold", [x, y], atol=1e-5, rtol=1e-5)
    assert len(lowerings) == 1
    torch._dynamo.reset()
    if where == "disk":
        clear_cache()  # the in-memory cache is empty: only the disk entry can serve
    hits = disk_cache.default_disk_cache().hits
    x2, y2 = torch.randn(4, 5), torch.randn(5, 3)
    assert_same(compile_fn(_fn)(x2, y2), _fn(x2, y2), f"warm ({where})", [x2, y2], atol=1e-5, rtol=1e-5)
    assert len(lowerings) == 1, "a cache hit lowered the graph again"
    assert disk_cache.default_disk_cache().hits - hits == (1 if where == "disk" else 0)


def test_other_shapes_dtypes_or_options_are_other_entries(monkeypatch):
    lowerings = _count_lowerings(monkeypatch)
    f = lambda x: torch.sigmoid(x) * 2  # noqa: E731
    cases = [(torch.randn(3, 4), {}), (torch.randn(3, 5), {}),
             (torch.randn(3, 4, dtype=torch.float64), {}), (torch.randn(3, 4), {"opt_level": 1})]
    for x, options in cases:
        torch._dynamo.reset()
        assert_same(compile_fn(f, options)(x), f(x), f"{list(x.shape)} {x.dtype} {options}", [x],
                    atol=1e-6, rtol=1e-6)
    assert len(lowerings) == len(cases)
