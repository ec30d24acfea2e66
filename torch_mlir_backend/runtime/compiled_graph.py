"""A JIT-compiled graph callable on torch tensors, with destination-passing calls.

`build_compiled_graph(...)` parses the linalg-on-tensors module into a context of its own, runs
the lowering pipeline, verifies the result and hands it to MLIR's ExecutionEngine. A
`CompiledGraph` call allocates the outputs with `torch.empty`, points memref descriptors at the
inputs' and outputs' storage (no copies) and calls the packed `_mlir__mlir_ciface_main` wrapper.
The engine (and the MLIR context behind it) lives exactly as long as the CompiledGraph.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from typing import Callable, Optional, Sequence, Union

import torch
from mlir import ir
from mlir.execution_engine import ExecutionEngine

from torch_mlir_backend.errors import CompileError
from torch_mlir_backend.lowering.pipeline import (
    ENTRY_FUNCTION,
    ArgLayout,
    Pipeline,
    PipelineResult,
    default_pipeline,
    find_entry,
    mlir_error_text,
)
from torch_mlir_backend.lowering.codegen import blas_library, uses_blas
from torch_mlir_backend.lowering.parallel import torch_openmp_library, uses_parallel_launchers
from torch_mlir_backend.options import CompileOptions
from torch_mlir_backend.types import TensorSpec, format_specs
from torch_mlir_backend.runtime import extern_kernels
from torch_mlir_backend.runtime.memref import CallFrame, contiguous_strides, plan_slots

ResultShapesFn = Callable[[Sequence[torch.Tensor]], Sequence[Sequence[int]]]


# Debug mode: outputs get guard zones and inputs are compared before/after each call, so
# generated code that writes outside its outputs is caught at the call that did it, not as
# heap corruption much later. Slow; for tests and bug hunts.
CHECK_WRITES_ENV = "TORCH_MLIR_BACKEND_CHECK_WRITES"
_GUARD_BYTES = 4096  # keeps the outputs' 64-byte alignment
_GUARD_FILL = 0xA5

# Live CompiledGraphs, each holding one JIT engine (or loaded cached shared object): an engine is
# freed with the last CompiledGraph holding it, so this counts the engines the process still maps.
_live_graphs: "weakref.WeakSet[CompiledGraph]" = weakref.WeakSet()


def live_engine_count() -> int:
    """How many CompiledGraphs (each with its JIT engine) are alive in this process."""
    return len(_live_graphs)


class CompiledGraph:
    """`compiled(*tensors) -> list[torch.Tensor]`: one call of the JIT-compiled `@main`.

    Inputs are checked (count, dtype, rank, static sizes) against `arg_specs`; outputs are fresh
    contiguous tensors of `result_specs`' dtypes, shaped by `result_shapes(inputs)` when given
    (needed when a result has dynamic dims), else by the static shapes of `result_specs`.
    Safe to call from several threads at once (each thread has its own descriptors).
    """

    def __init__(
        self,
        engine: ExecutionEngine,
        arg_specs: Sequence[TensorSpec],
        result_specs: Sequence[TensorSpec],
        arg_layouts: Optional[Sequence[ArgLayout]] = None,
        result_shapes: Optional[ResultShapesFn] = None,
        entry: str = ENTRY_FUNCTION,
        keep_alive: tuple = (),
        llvm_module_text: Optional[Callable[[], str]] = None,
        pipeline_result: Optional[PipelineResult] = None,
        jit_seconds: float = 0.0,
    ):
        self.arg_specs = tuple(arg_specs)
        self.result_specs = tuple(result_specs)
        self.arg_layouts = tuple(ArgLayout(l) for l in (arg_layouts or [ArgLayout.CONTIGUOUS] * len(arg_specs)))
        if len(self.arg_layouts) != len(self.arg_specs):
            raise ValueError(f"{len(self.arg_layouts)} arg layouts for {len(self.arg_specs)} arguments")
        if result_shapes is None and not all(s.is_static for s in self.result_specs):
            raise ValueError(
                f"results [{format_specs(self.result_specs)}] have dynamic dims: pass result_shapes"
            )
        self.result_shapes = result_shapes
        self.pipeline_result = pipeline_result
        self.jit_seconds = jit_seconds
        self.compile_notes: tuple = ()  # warnings of the compilation, replayed on cache hits (cache.py)
        self._engine = engine
        self._keep_alive = keep_alive  # the MLIR context/module the engine was made from
        self._llvm_module_text = llvm_module_text
        self._function = engine.lookup(entry)  # packed: void(void**)
        # Callbacks of the ATen kernels the generated code calls (lowering/extern.py), or None.
        self._extern_kernels = extern_kernels.install(engine)

        strided = [l is ArgLayout.STRIDED for l in self.arg_layouts] + [False] * len(self.result_specs)
        self._slots, self._total_words = plan_slots(
            [s.shape for s in self.arg_specs] + [s.shape for s in self.result_specs], strided
        )
        n = len(self.arg_specs)
        self._n_inputs = n
        # Per input: (word offset, dtype, spec, static shape or None, must be contiguous, slot or None,
        # lazy bits: whether the tensor may be a lazy conjugate/negative view, see _LAZY_BITS)
        self._input_plan = [
            (slot.offset, spec.dtype, spec, spec.shape if spec.is_static else None,
             layout is ArgLayout.CONTIGUOUS, slot if slot.needs_shape_per_call else None,
             _LAZY_BITS.get(spec.dtype))
            for spec, layout, slot in zip(self.arg_specs, self.arg_layouts, self._slots[:n])
        ]
        self._static_outputs = [(s.shape, s.dtype) for s in self.result_specs] if result_shapes is None else None
        self._output_plan = [
            (slot.offset, spec.dtype, slot if slot.needs_shape_per_call else None)
            for spec, slot in zip(self.result_specs, self._slots[n:])
        ]
        self._local = threading.local()
        self._check_writes = os.environ.get(CHECK_WRITES_ENV, "") not in ("", "0")
        _live_graphs.add(self)

    # -- calling ---------------------------------------------------------------------------------
    def _frame(self) -> CallFrame:
        try:
            return self._local.frame
        except AttributeError:
            frame = self._local.frame = CallFrame(self._slots, self._total_words)
            return frame

    def __call__(self, *inputs: torch.Tensor) -> list[torch.Tensor]:
        if len(inputs) != self._n_inputs:
            raise TypeError(f"compiled graph takes {self._n_inputs} tensors, got {len(inputs)}")
        frame = self._frame()
        words = frame.words
        alive = None  # contiguous copies made for this call
        for t, (offset, dtype, spec, shape, contiguous, slot, lazy_bits) in zip(inputs, self._input_plan):
            if t.dtype is not dtype or (t.shape != shape if shape is not None else not _matches(t, spec)):
                self._raise_bad_input(inputs)
            if lazy_bits is not None and lazy_bits(t):
                # The storage holds the values before the lazy conj/neg: the code reads storage.
                t = t.resolve_conj().resolve_neg()
                alive = (alive or []) + [t]
            if contiguous and not t.is_contiguous():
                t = t.contiguous()
                alive = (alive or []) + [t]
            p = t.data_ptr()
            words[offset] = p
            words[offset + 1] = p
            if slot is not None:
                sizes = t.shape
                frame.write_shape(slot, sizes, contiguous_strides(sizes) if contiguous else t.stride())

        if self._static_outputs is not None:
            shapes_dtypes = self._static_outputs
        else:
            shapes_dtypes = [(tuple(shape), spec.dtype)
                             for shape, spec in zip(self.result_shapes(inputs), self.result_specs)]
        if self._check_writes:
            return self._checked_call(inputs, frame, shapes_dtypes, alive)
        outputs = [torch.empty(shape, dtype=dtype) for shape, dtype in shapes_dtypes]
        self._point_outputs(frame, outputs)
        self._function(frame.args_address)
        del alive
        if self._extern_kernels is not None:
            extern_kernels.raise_pending_error()
        return outputs

    def _point_outputs(self, frame: CallFrame, outputs: Sequence[torch.Tensor]) -> None:
        words = frame.words
        for out, (offset, dtype, slot) in zip(outputs, self._output_plan):
            p = out.data_ptr()
            words[offset] = p
            words[offset + 1] = p
            if slot is not None:
                frame.write_shape(slot, out.shape, out.stride())

    def _checked_call(self, inputs, frame: CallFrame, shapes_dtypes, alive) -> list[torch.Tensor]:
        """The call with write checks (see CHECK_WRITES_ENV): raises naming the graph and the
        output whose guard zone, or the input whose bytes, the generated code changed."""
        buffers, outputs = [], []
        for shape, dtype in shapes_dtypes:
            nbytes = torch.Size(shape).numel() * dtype.itemsize
            buffer = torch.full((nbytes + 2 * _GUARD_BYTES,), _GUARD_FILL, dtype=torch.uint8)
            buffers.append((buffer, nbytes))
            outputs.append(buffer[_GUARD_BYTES:_GUARD_BYTES + nbytes].view(dtype).view(shape))
        self._point_outputs(frame, outputs)
        before = [_bytes_of(t) for t in inputs]
        self._function(frame.args_address)
        del alive
        if self._extern_kernels is not None:
            extern_kernels.raise_pending_error()
        for i, (buffer, nbytes) in enumerate(buffers):
            for name, zone in (("before", buffer[:_GUARD_BYTES]), ("after", buffer[_GUARD_BYTES + nbytes:])):
                if not bool((zone == _GUARD_FILL).all()):
                    raise RuntimeError(f"{self!r}: the generated code wrote {name} the end of output {i} "
                                       f"({list(shapes_dtypes[i][0])} {shapes_dtypes[i][1]})")
        for i, (t, old) in enumerate(zip(inputs, before)):
            if not torch.equal(_bytes_of(t), old):
                raise RuntimeError(f"{self!r}: the generated code changed input {i} ({list(t.shape)} {t.dtype})")
        return outputs

    def _raise_bad_input(self, inputs) -> None:
        got = ", ".join(
            f"{list(t.shape)}{str(t.dtype).replace('torch.', '')}" if isinstance(t, torch.Tensor) else type(t).__name__
            for t in inputs
        )
        raise TypeError(
            f"compiled graph expects inputs [{format_specs(self.arg_specs)}], got [{got}]"
        )

    # -- introspection ---------------------------------------------------------------------------
    @property
    def engine(self) -> ExecutionEngine:
        return self._engine

    def llvm_dialect_asm(self) -> str:
        return self._llvm_module_text() if self._llvm_module_text else ""

    def profile_report(self) -> str:
        lines = ["compile time per stage:"]
        if self.pipeline_result is not None:
            lines.append(self.pipeline_result.report())
        lines.append(f"  jit: {self.jit_seconds * 1e3:.2f} ms")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"CompiledGraph([{format_specs(self.arg_specs)}] -> [{format_specs(self.result_specs)}])"


# dtype -> test of whether a tensor of it is a lazy view (`x.conj()`: conjugate bit; its `.imag`:
# negative bit) whose storage does not hold its values; other dtypes cannot be.
_is_conj_or_neg = lambda t: t.is_conj() or t.is_neg()  # noqa: E731
_LAZY_BITS = {
    torch.complex64: _is_conj_or_neg, torch.complex128: _is_conj_or_neg, torch.complex32: _is_conj_or_neg,
    torch.float32: torch.Tensor.is_neg, torch.float64: torch.Tensor.is_neg,
    torch.float16: torch.Tensor.is_neg, torch.bfloat16: torch.Tensor.is_neg,
}


def _bytes_of(t: torch.Tensor) -> torch.Tensor:
    """A copy of the bytes of a tensor's elements (a lazy conj/neg view's resolved values: they
    change exactly when its storage does)."""
    t = t.resolve_conj().resolve_neg()
    return t.detach().reshape(-1).contiguous().view(torch.uint8).clone()


def _matches(t: torch.Tensor, spec: TensorSpec) -> bool:
    return t.dim() == spec.rank and all(d is None or d == s for d, s in zip(spec.shape, t.shape))


# ------------------------------------------------------------------------------------------------


def check_contract(module: ir.Module, arg_specs, result_specs, entry: str = ENTRY_FUNCTION) -> None:
    """@main's tensor types must be the specs' builtin types."""
    fn = find_entry(module, entry)
    ftype = fn.type
    want_in = [s.builtin_type() for s in arg_specs]
    want_out = [s.builtin_type() for s in result_specs]
    got_in = [str(t) for t in ftype.inputs]
    got_out = [str(t) for t in ftype.results]
    if got_in != want_in or got_out != want_out:
        raise CompileError(
            f"@{entry} has type ({', '.join(got_in)}) -> ({', '.join(got_out)}) but the specs say "
            f"({', '.join(want_in)}) -> ({', '.join(want_out)})",
            stage="contract",
        )


def parse_module(module_or_text: Union[str, ir.Module], context: ir.Context) -> ir.Module:
    """A copy of the input in `context` (the caller's module is never modified)."""
    text = module_or_text if isinstance(module_or_text, str) else module_or_text.operation.get_asm(
        enable_debug_info=True
    )
    try:
        return ir.Module.parse(text, context)
    except ir.MLIRError as e:
        raise CompileError("cannot parse the linalg module", mlir_error_text(e), stage="parse") from None


def new_context() -> ir.Context:
    context = ir.Context()
    context.enable_multithreading(False)  # tiny modules; avoids a thread pool per context
    return context


def build_compiled_graph(
    module_or_text: Union[str, ir.Module],
    arg_specs: Sequence[TensorSpec],
    result_specs: Sequence[TensorSpec],
    options: Optional[CompileOptions] = None,
    arg_layouts: Optional[Sequence[ArgLayout]] = None,
    result_shapes: Optional[ResultShapesFn] = None,
    pipeline: Optional[Pipeline] = None,
) -> CompiledGraph:
    """Compile without the cache: parse (a copy: the caller's module is left alone), lower
    (`pipeline`, default `default_pipeline`), verify, JIT. Raises CompileError (with MLIR
    diagnostics and the failing stage)."""
    module = parse_module(module_or_text, new_context())
    return compile_owned_module(module, arg_specs, result_specs, options, arg_layouts, result_shapes, pipeline)


def compile_owned_module(
    module: ir.Module,
    arg_specs: Sequence[TensorSpec],
    result_specs: Sequence[TensorSpec],
    options: Optional[CompileOptions] = None,
    arg_layouts: Optional[Sequence[ArgLayout]] = None,
    result_shapes: Optional[ResultShapesFn] = None,
    pipeline: Optional[Pipeline] = None,
    on_engine: Optional[Callable[[ExecutionEngine, list], None]] = None,
) -> CompiledGraph:
    """Like build_compiled_graph, on a module (in a context) that the CompiledGraph may own
    and that the pipeline rewrites in place. `on_engine(engine, shared_libs)` runs before the
    engine's first lookup (the disk cache dumps its object code there: one code generation)."""
    options = options or CompileOptions()
    arg_layouts = tuple(ArgLayout(l) for l in (arg_layouts or [ArgLayout.CONTIGUOUS] * len(arg_specs)))
    pipeline = pipeline or default_pipeline(arg_layouts)
    context = module.context
    with context:
        check_contract(module, arg_specs, result_specs)
    result = pipeline.run(module, dump_dir=options.dump_dir)
    try:
        module.operation.verify()
    except ir.MLIRError as e:
        raise CompileError("the lowered module does not verify", mlir_error_text(e), stage="verify") from None

    # parallel loops run on torch's own libgomp team (lowering/parallel.py)
    shared_libs = [torch_openmp_library()] if uses_parallel_launchers(module) else []
    if uses_blas(module):  # contractions call torch's own BLAS (lowering/codegen.py)
        shared_libs.append(blas_library())
    start = time.perf_counter()
    try:
        engine = ExecutionEngine(module, opt_level=options.opt_level, shared_libs=shared_libs)
    except (RuntimeError, ir.MLIRError) as e:
        raise CompileError("the JIT rejected the module", str(e), stage="jit") from None
    if on_engine is not None:
        on_engine(engine, shared_libs)
    jit_seconds = time.perf_counter() - start
    if options.verbose:
        print(f"[torch_mlir_backend] compile times:\n{result.report()}\n  jit {jit_seconds * 1e3:.2f} ms",
              file=sys.stderr)
    return CompiledGraph(
        engine,
        arg_specs,
        result_specs,
        arg_layouts=arg_layouts,
        result_shapes=result_shapes,
        keep_alive=(context, module),
        llvm_module_text=lambda: str(module),
        pipeline_result=result,
        jit_seconds=jit_seconds,
    )
