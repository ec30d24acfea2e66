"""In-memory compile cache: the same module + specs + options give the same CompiledGraph.

The key is a SHA-256 over the module text (without locations, so the same graph traced from
another source line still hits), the arg/result specs, the arg layouts, `options.cache_key()`
and the pipeline's fingerprint. Thread-safe: when several threads ask for one key at once, one
compiles and the others wait for its result. A failed compile is not cached.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Optional, Sequence, Union

from mlir import ir

from torch_mlir_backend.lowering.pipeline import ArgLayout, Pipeline, default_pipeline
from torch_mlir_backend.options import CompileOptions
from torch_mlir_backend.types import TensorSpec
from torch_mlir_backend.runtime import disk_cache
from torch_mlir_backend.runtime.compiled_graph import (
    CompiledGraph,
    ResultShapesFn,
    compile_owned_module,
    new_context,
    parse_module,
)

DEFAULT_MAX_ENTRIES = 512


class CompileCache:
    """Maps a compile key to a CompiledGraph (least recently used entries dropped past
    `max_entries`, which frees their JIT engines once no caller holds them)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: "OrderedDict[str, Future]" = OrderedDict()
        self.compilations = 0  # real compilations started (hits do not count)
        self.hits = 0

    def get_or_compile(self, key: str, compile_fn) -> CompiledGraph:
        with self._lock:
            future = self._entries.get(key)
            if future is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                owner = False
            else:
                future = self._entries[key] = Future()
                self.compilations += 1
                owner = True
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        if not owner:
            return future.result()
        try:
            graph = compile_fn()
        except BaseException as e:
            with self._lock:
                if self._entries.get(key) is future:
                    del self._entries[key]
            future.set_exception(e)
            raise
        future.set_result(graph)
        return graph

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


_CACHE = CompileCache()


def compile_key(
    module_text: str,
    arg_specs: Sequence[TensorSpec],
    result_specs: Sequence[TensorSpec],
    options: CompileOptions,
    arg_layouts: Sequence[ArgLayout],
    pipeline: Pipeline,
) -> str:
    h = hashlib.sha256()
    for part in (
        module_text,
        repr([(s.shape, str(s.dtype)) for s in arg_specs]),
        repr([(s.shape, str(s.dtype)) for s in result_specs]),
        repr([l.value for l in arg_layouts]),
        repr(options.cache_key()),
        pipeline.fingerprint(),
    ):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def compile_linalg(
    module_or_text: Union[str, ir.Module],
    arg_specs: Sequence[TensorSpec],
    result_specs: Sequence[TensorSpec],
    options: Optional[CompileOptions] = None,
    *,
    arg_layouts: Optional[Sequence[ArgLayout]] = None,
    result_shapes: Optional[ResultShapesFn] = None,
    pipeline: Optional[Pipeline] = None,
    cache: Optional[CompileCache] = None,
) -> CompiledGraph:
    """The entry point: linalg-on-tensors `@main` -> a callable CompiledGraph, through the cache.

    `arg_layouts[i]` is ArgLayout.STRIDED for inputs that may be non-contiguous views (default
    CONTIGUOUS for all). `result_shapes(inputs) -> shapes` is needed when results have dynamic
    dims; it is not part of the cache key, so pass the same function for the same graph.
    """
    options = options or CompileOptions()
    layouts = tuple(ArgLayout(l) for l in (arg_layouts or [ArgLayout.CONTIGUOUS] * len(arg_specs)))
    pipeline = pipeline or default_pipeline(layouts)
    # A private copy (with locations, for dumps); the key is its text without locations, so
    # text and Module inputs, and the same graph from another source line, share an entry.
    module = parse_module(module_or_text, new_context())
    text = module.operation.get_asm(enable_debug_info=False)
    key = compile_key(text, arg_specs, result_specs, options, layouts, pipeline)
    def compile_fresh(on_engine=None) -> CompiledGraph:
        return compile_owned_module(module, arg_specs, result_specs, options, arg_layouts=layouts,
                                    result_shapes=result_shapes, pipeline=pipeline, on_engine=on_engine)

    if options.dump_dir:
        # A dump asks for every stage's IR, which a cache hit would skip: compile afresh.
        return compile_fresh()
    # Behind the in-memory cache, the on-disk one (`disk_cache.py`): a hit loads machine code.
    return (cache if cache is not None else _CACHE).get_or_compile(
        key,
        lambda: disk_cache.load_or_compile(
            key,
            lambda engine: CompiledGraph(engine, arg_specs, result_specs, arg_layouts=layouts,
                                         result_shapes=result_shapes, keep_alive=(engine,)),
            compile_fresh,
        ),
    )


def default_cache() -> CompileCache:
    return _CACHE


def compilation_count() -> int:
    """Real compilations done through the default cache since the process started."""
    return _CACHE.compilations


def clear_cache() -> None:
    _CACHE.clear()
