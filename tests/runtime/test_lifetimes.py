"""How long compiled graphs (and their JIT engines) live.

A model's parameters own the graphs compiled for it: deleting the model (the `torch.compile`d
wrapper and the module) frees their engines, although Dynamo's code cache keeps the compiled
frame (for nn.Modules one frame serves every model of the same structure). A later model of that
structure gets the graphs back (in-memory cache, disk cache, or compiled again from the kept
Torch-dialect text) and owns them in turn. Graphs compiled without parameters (plain functions,
`compile_linalg`) stay in the in-memory cache as before. Counts come from `live_engine_count()`."""
import gc
import os

import pytest
import torch

from torch_mlir_backend.runtime import (
    CompileCache,
    GraphOwner,
    compilation_count,
    clear_cache,
    compile_linalg,
    disk_cache,
    live_engine_count,
)
from torch_mlir_backend.types import TensorSpec

from helpers import assert_same

ADD_ONE = """
func.func @main(%x: tensor<8xf32>) -> tensor<8xf32> {
  %c1 = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<8xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>],
                       iterator_types = ["parallel"]} ins(%x : tensor<8xf32>) outs(%e : tensor<8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %c1 : f32
    linalg.yield %s : f32
  } -> tensor<8xf32>
  return %r : tensor<8xf32>
}
"""
SPEC = [TensorSpec((8,), torch.float32)]
TOL = dict(atol=1e-5, rtol=1e-5)


def _mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.GELU(), torch.nn.Linear(5, 2))


def _train_and_infer(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """Compile, run inference and one forward+backward; check both against eager."""
    compiled = torch.compile(model, backend="torch_mlir")
    with torch.no_grad():
        assert_same(compiled(x), model(x), "mlp inference", [x], **TOL)
    out = compiled(x)
    out.sum().backward()
    got_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x).sum().backward()
    for got, want in zip(got_grads, [p.grad for p in model.parameters()]):
        assert_same(got, want, "mlp weight gradient", [x], **TOL)
    model.zero_grad()
    return compiled


@pytest.fixture(autouse=True)
def _empty_in_memory_cache():
    # Earlier tests in this worker may have filled the in-memory cache to its cap (512 pinned
    # entries), so a new compile would evict (free) one and the engine counts below would not move.
    clear_cache()
    gc.collect()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_deleting_a_compiled_model_frees_its_engines():
    baseline = live_engine_count()
    model, x = _mlp(0), torch.randn(3, 6)
    compiled = _train_and_infer(model, x)
    # inference graph, training forward and backward graphs
    assert live_engine_count() - baseline == 3
    del compiled, model
    gc.collect()
    assert live_engine_count() == baseline, "a JIT engine outlived its model"


def test_a_later_model_of_the_same_structure_gets_its_graphs_back_and_owns_them():
    # Dynamo reuses its compiled frame for the second model (same structure, other weights): our
    # graphs come back from the disk cache and are freed with the second model in turn.
    baseline = live_engine_count()
    x = torch.randn(3, 6)
    first = _train_and_infer(_mlp(0), x)
    del first
    gc.collect()
    assert live_engine_count() == baseline
    hits = disk_cache.default_disk_cache().hits
    second_model = _mlp(1)
    second = _train_and_infer(second_model, x)  # other weights: wrong code would not match eager
    assert live_engine_count() - baseline == 3
    assert disk_cache.default_disk_cache().hits - hits == 3
    del second, second_model
    gc.collect()
    assert live_engine_count() == baseline


def test_without_the_disk_cache_a_freed_graph_is_lowered_and_compiled_again(monkeypatch):
    monkeypatch.setenv(disk_cache.ENV_DISABLE, "1")
    baseline, x = live_engine_count(), torch.randn(3, 6)
    first_model = _mlp(0)
    compiled = torch.compile(first_model, backend="torch_mlir")
    with torch.no_grad():
        compiled(x)
    del compiled, first_model
    gc.collect()
    assert live_engine_count() == baseline
    before = compilation_count()
    model = _mlp(2)
    compiled = torch.compile(model, backend="torch_mlir")
    with torch.no_grad():
        assert_same(compiled(x), model(x), "mlp compiled again", [x], **TOL)
    assert compilation_count() - before == 1 and live_engine_count() - baseline == 1
    del compiled, model
    gc.collect()
    assert live_engine_count() == baseline


def test_a_model_sharing_a_frame_with_a_deleted_one_keeps_working():
    # Dynamo serves the second model with the frame compiled for the first (no second backend
    # call): the first model owns the graph; once it is gone, the second one's next call gets the
    # graph back and owns it.
    baseline, x = live_engine_count(), torch.randn(3, 6)
    a, b = _mlp(0), _mlp(1)
    ca, cb = torch.compile(a, backend="torch_mlir"), torch.compile(b, backend="torch_mlir")
    with torch.no_grad():
        assert_same(ca(x), a(x), "first model", [x], **TOL)
        assert_same(cb(x), b(x), "second model", [x], **TOL)
    assert live_engine_count() - baseline == 1  # one graph, one engine
    del ca, a
    gc.collect()
    assert live_engine_count() == baseline
    with torch.no_grad():
        assert_same(cb(x), b(x), "second model after the first is gone", [x], **TOL)
    assert live_engine_count() - baseline == 1
    del cb, b
    gc.collect()
    assert live_engine_count() == baseline


RSS_CYCLES = 50
RSS_LIMIT_BYTES = 8 << 20


def test_rss_does_not_grow_over_50_compile_delete_cycles():
    x = torch.randn(3, 6)

    def cycle(seed):
        model = _mlp(seed)
        compiled = torch.compile(model, backend="torch_mlir")
        with torch.no_grad():
            out = compiled(x)
        compiled(x).sum().backward()
        return (out - model(x)).abs().max().item()

    baseline = live_engine_count()
    for seed in range(5):  # the first cycles compile; later ones load from the disk cache
        cycle(seed)
    gc.collect()
    before = _rss_bytes()
    errors = [cycle(seed) for seed in range(RSS_CYCLES)]
    gc.collect()
    growth = _rss_bytes() - before
    print(f"RSS growth over {RSS_CYCLES} compile-delete cycles: {growth / 2**20:.3f} MiB")
    assert max(errors) <= 1e-5
    assert live_engine_count() == baseline
    assert growth < RSS_LIMIT_BYTES, f"RSS grew by {growth / 2**20:.1f} MiB over {RSS_CYCLES} cycles"


def test_owned_cache_entries_are_weak_and_unowned_ones_pinned():
    cache, x = CompileCache(), torch.randn(8)
    weights = torch.nn.Parameter(torch.zeros(1))  # stands for a model's parameters
    owner = GraphOwner.of([weights])
    graph = compile_linalg(ADD_ONE, SPEC, SPEC, cache=cache, owner=owner)
    assert_same(graph(x)[0], x + 1, "add one", [x], atol=0, rtol=0)
    assert compile_linalg(ADD_ONE, SPEC, SPEC, cache=cache, owner=owner) is graph and cache.hits == 1
    baseline = live_engine_count()
    del graph
    gc.collect()
    assert live_engine_count() == baseline, "the owner must hold the graph while its objects live"
    del weights
    gc.collect()
    assert live_engine_count() == baseline - 1 and len(cache) == 0
    # Without an owner the entry is pinned: dropping the graph keeps it for the next request.
    pinned = compile_linalg(ADD_ONE, SPEC, SPEC, cache=cache)
    pinned_id = id(pinned)
    del pinned
    gc.collect()
    again = compile_linalg(ADD_ONE, SPEC, SPEC, cache=cache)
    assert id(again) == pinned_id and cache.compilations == 2
    assert_same(again(x)[0], x + 1, "add one", [x], atol=0, rtol=0)


def test_graph_owner_of_nothing_watchable_is_none():
    assert GraphOwner.of([]) is None
    assert GraphOwner.of([1, "not weak-referenceable"]) is None
