"""Threads and memory: one compiled function called from 8 threads at once, two threads
compiling at once, resident memory over 100,000 calls (in a child process, from
/proc/self/statm), and compiled graphs (with their JIT engines) freed once nothing holds them."""
import gc
import threading
import weakref

import torch

from torch_mlir_backend import backend

from faults import run_in_child
from helpers import assert_same

RSS_CALLS = 100_000
RSS_LIMIT_BYTES = 10 * 1024 * 1024


def _fn(x, y):
    return torch.tanh(x @ y) + x.sum(dim=1, keepdim=True)


def test_eight_threads_calling_one_compiled_function():
    compiled = torch.compile(_fn, backend="torch_mlir")
    compiled(torch.randn(4, 6), torch.randn(6, 6))  # compile once, before the threads start
    barrier, errors = threading.Barrier(8), []

    def work(seed):
        g = torch.Generator().manual_seed(seed)
        barrier.wait()
        for _ in range(200):
            x, y = torch.randn(4, 6, generator=g), torch.randn(6, 6, generator=g)
            try:
                assert_same(compiled(x, y), _fn(x, y), f"thread {seed}", [x, y], atol=1e-5, rtol=1e-5)
            except AssertionError as e:
                errors.append(e)
                return

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def _first(x):
    return torch.sigmoid(x) * 3 - x


def _second(x):
    return torch.relu(x) / 2 + x.mean()


def test_two_threads_compiling_at_once():
    fns = [_first, _second]
    inputs = [torch.randn(5, 7), torch.randn(3, 9)]
    barrier, results, errors = threading.Barrier(2), [None, None], []

    def work(i):
        barrier.wait()
        try:
            results[i] = torch.compile(fns[i], backend="torch_mlir", dynamic=False)(inputs[i])
        except Exception as e:  # reported below, not swallowed
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    for i in range(2):
        assert_same(results[i], fns[i](inputs[i]), f"compiled in thread {i}", [inputs[i]], atol=1e-6, rtol=1e-6)


def test_rss_growth_over_100000_calls_is_below_10_mb():
    result, _ = run_in_child(f"""
        import os, torch
        page = os.sysconf("SC_PAGE_SIZE")
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page
        fn = torch.compile(lambda x, y: x * y + 1, backend="torch_mlir")
        x, y = torch.randn(8, 8), torch.randn(8, 8)
        for _ in range(2000):  # warm up: allocator pools, Dynamo caches, thread-local frames
            out = fn(x, y)
        before = rss()
        for _ in range({RSS_CALLS}):
            out = fn(x, y)
        after = rss()
        print(json.dumps({{"before": before, "after": after, "error": (out - (x * y + 1)).abs().max().item()}}))
    """)
    growth = result["after"] - result["before"]
    print(f"RSS before {result['before'] / 2**20:.1f} MiB, after {RSS_CALLS} calls "
          f"{result['after'] / 2**20:.1f} MiB, growth {growth / 2**20:.3f} MiB")
    assert result["error"] <= 1e-6
    assert growth < RSS_LIMIT_BYTES, f"RSS grew by {growth / 2**20:.1f} MiB over {RSS_CALLS} calls"


def test_deleting_a_compiled_model_frees_its_jit_engines(monkeypatch):
    # The model's parameters own its compiled graphs: deleting the model frees them, with no
    # dynamo reset or cache clear (Dynamo's shared frame and our cache hold them weakly).
    compiled_graphs = []
    original = backend.compile_fx_graph

    def spy(gm, example_inputs, options=None):
        compiled = original(gm, example_inputs, options)
        compiled_graphs.append(weakref.ref(compiled.compiled))
        return compiled

    monkeypatch.setattr(backend, "compile_fx_graph", spy)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.GELU(), torch.nn.Linear(5, 2))
    compiled_model = torch.compile(model, backend="torch_mlir")
    x = torch.randn(3, 6)
    with torch.no_grad():
        assert_same(compiled_model(x), model(x), "model", [x], atol=1e-5, rtol=1e-5)
    assert compiled_graphs and all(r() is not None for r in compiled_graphs)
    del compiled_model, model
    gc.collect()
    assert all(r() is None for r in compiled_graphs), "a compiled graph (and its JIT engine) outlived its model"
