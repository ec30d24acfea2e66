"""In-memory compile cache: the same module + specs + options give the same CompiledGraph.

The key is a SHA-256 over the module text (without locations, so the same graph traced from
another source line still hits), the arg/result specs, the arg layouts, `options.cache_key()`
and the pipeline's fingerprint. Thread-safe: when several threads ask for one key at once, one
compiles and the others wait for its result. A failed compile is not cached.

Lifetimes. An entry requested with an `owner` (a `GraphOwner`: the parameters of the model the
graph was compiled for) is held weakly by the cache and strongly by the owner, so deleting the
model frees the JIT engine (`live_engine_count()` goes back down) even though Dynamo's code cache
keeps the compiled frame, which serves any later model of the same structure. Requests without
an owner (plain functions, other roads into the backend) pin their entry, as long as it is among
the `max_entries` most recently used or until `clear_cache()`.

Two kinds of keys: `compile_linalg` keys on the linalg-on-tensors text; the Dynamo backend keys
on the imported Torch-dialect text (`compile_torch_graph`), so a hit, in memory or on disk, skips
the lowering to linalg as well as the pipeline and the JIT.
"""
from __future__ import annotations

import hashlib
import threading
import warnings
import weakref
from collections import OrderedDict
from concurrent.futures import Future
from typing import Callable, Iterable, Optional, Sequence, Union

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


class GraphOwner:
    """Holds compiled graphs as long as any of `objects` (a model's parameters) is alive.

    Nothing holds the owner but the finalizers of its objects: once the last one is collected,
    the owner drops its graphs (and with them their JIT engines, unless someone else holds them).
    """

    def __init__(self, objects: Iterable):
        self._graphs: list = []
        self._remaining = 0
        for obj in objects:
            try:
                weakref.finalize(obj, self._one_collected)
            except TypeError:  # not weak-referenceable: cannot tell its end
                continue
            self._remaining += 1

    @classmethod
    def of(cls, objects: Iterable) -> Optional["GraphOwner"]:
        """The owner of these objects, or None when none can be watched (then pin instead)."""
        owner = cls(objects)
        return owner if owner._remaining else None

    def hold(self, graph) -> None:
        if self._remaining:
            self._graphs.append(graph)

    @property
    def alive(self) -> bool:
        return self._remaining > 0

    def _one_collected(self) -> None:
        self._remaining -= 1
        if self._remaining <= 0:
            self._graphs = []


class _Done:
    """A finished entry: the graph, strongly while pinned, else only weakly."""

    __slots__ = ("pinned", "ref")

    def __init__(self, graph, pinned: bool):
        self.pinned = graph if pinned else None
        self.ref = weakref.ref(graph)

    def get(self):
        return self.pinned if self.pinned is not None else self.ref()


class CompileCache:
    """Maps a compile key to a CompiledGraph (least recently used entries dropped past
    `max_entries`, which frees their JIT engines once no caller holds them). Entries requested
    with an owner only live as long as someone holds the graph (see the module docstring)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: "OrderedDict[str, Union[Future, _Done]]" = OrderedDict()
        self.compilations = 0  # real compilations started (hits do not count)
        self.hits = 0

    def get_or_compile(self, key: str, compile_fn, owner: Optional[GraphOwner] = None) -> CompiledGraph:
        """The graph of `key`, compiled by `compile_fn()` on a miss. With an `owner`, the owner
        holds it (and the cache only weakly); without, the entry is pinned."""
        with self._lock:
            entry = self._entries.get(key)
            graph = entry.get() if isinstance(entry, _Done) else None
            if graph is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                if owner is None:
                    entry.pinned = graph
                future, compile_here = None, False
            elif isinstance(entry, Future):
                self._entries.move_to_end(key)
                self.hits += 1
                future, compile_here = entry, False
            else:
                future = self._entries[key] = Future()
                self.compilations += 1
                compile_here = True
                self._drop_dead_and_old()
        if graph is None and not compile_here:
            graph = future.result()
            if owner is None:
                self._pin(key, graph)
        elif compile_here:
            try:
                graph = compile_fn()
            except BaseException as e:
                with self._lock:
                    if self._entries.get(key) is future:
                        del self._entries[key]
                future.set_exception(e)
                raise
            with self._lock:
                if self._entries.get(key) is future:
                    self._entries[key] = _Done(graph, pinned=owner is None)
            future.set_result(graph)
        if owner is not None:
            owner.hold(graph)
        return graph

    def _pin(self, key: str, graph) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if isinstance(entry, _Done) and entry.ref() is graph:
                entry.pinned = graph

    def _drop_dead_and_old(self) -> None:
        for key in [k for k, e in self._entries.items() if isinstance(e, _Done) and e.get() is None]:
            del self._entries[key]
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        """Entries whose graph is alive or being compiled."""
        with self._lock:
            return sum(1 for e in self._entries.values() if not isinstance(e, _Done) or e.get() is not None)


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
    owner: Optional[GraphOwner] = None,
) -> CompiledGraph:
    """The entry point: linalg-on-tensors `@main` -> a callable CompiledGraph, through the cache.

    `arg_layouts[i]` is ArgLayout.STRIDED for inputs that may be non-contiguous views (default
    CONTIGUOUS for all). `result_shapes(inputs) -> shapes` is needed when results have dynamic
    dims; it is not part of the cache key, so pass the same function for the same graph.
    `owner`: see the module docstring (None pins the entry).
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

    if options.dump_dir or options.profile:
        # A dump asks for every stage's IR, a profile for every stage's compile time, which a
        # cache hit would skip: compile afresh.
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
        owner,
    )


def compile_torch_graph(
    torch_text: str,
    lowering_inputs: str,
    lower: Callable[[], ir.Module],
    arg_specs: Sequence[TensorSpec],
    result_specs: Sequence[TensorSpec],
    options: Optional[CompileOptions] = None,
    *,
    arg_layouts: Optional[Sequence[ArgLayout]] = None,
    result_shapes: Optional[ResultShapesFn] = None,
    cache: Optional[CompileCache] = None,
    owner: Optional[GraphOwner] = None,
) -> CompiledGraph:
    """A Torch-dialect graph -> CompiledGraph, looked up before lowering: the key is the Torch
    text without locations (`torch_text`), whatever else the lowering reads (`lowering_inputs`,
    for instance the symbolic shapes of a dynamic graph), the specs, layouts, options and the
    pipeline's fingerprint (the disk cache adds the versions and the CPU). `lower()` -> the
    linalg-on-tensors module, called only when neither cache has the graph. No dumps here: a
    `dump_dir` request goes through `compile_linalg`, which compiles afresh."""
    options = options or CompileOptions()
    layouts = tuple(ArgLayout(l) for l in (arg_layouts or [ArgLayout.CONTIGUOUS] * len(arg_specs)))
    pipeline = default_pipeline(layouts)
    key = compile_key("torch-dialect\n" + torch_text + "\nlowering inputs: " + lowering_inputs,
                      arg_specs, result_specs, options, layouts, pipeline)

    def compile_fresh(on_engine=None) -> CompiledGraph:
        # The lowering's warnings are kept with the graph (and its disk entry) and replayed on
        # every request below, so a cache hit warns as a fresh compile does.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = parse_module(lower(), new_context())
        notes = tuple(dict.fromkeys(disk_cache.CompileNote.of(w) for w in caught))
        graph = compile_owned_module(
            module, arg_specs, result_specs, options, arg_layouts=layouts, result_shapes=result_shapes,
            pipeline=pipeline,
            on_engine=None if on_engine is None else lambda engine, libs: on_engine(engine, libs, notes))
        graph.compile_notes = notes
        return graph

    graph = (cache if cache is not None else _CACHE).get_or_compile(
        key,
        lambda: disk_cache.load_or_compile(
            key,
            lambda engine: CompiledGraph(engine, arg_specs, result_specs, arg_layouts=layouts,
                                         result_shapes=result_shapes, keep_alive=(engine,)),
            compile_fresh,
        ),
        owner,
    )
    for note in graph.compile_notes:
        note.replay(stacklevel=2)
    return graph


def default_cache() -> CompileCache:
    return _CACHE


def compilation_count() -> int:
    """Real compilations done through the default cache since the process started."""
    return _CACHE.compilations


def clear_cache() -> None:
    _CACHE.clear()
