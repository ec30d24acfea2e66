"""The pass pipeline from linalg-on-tensors to the LLVM dialect, written as data.

A `Pipeline` is an ordered list of named `Stage`s. A stage is either a textual pass pipeline
(`"canonicalize,cse"`, anchored on `builtin.module`) or a Python function that rewrites the module
in place. Running a pipeline records each stage's compile time and, given a dump folder, writes
the IR after every stage as `NN-<stage>.mlir` (with locations). Any verifier or pass failure
becomes an `errors.CompileError` naming the stage and carrying MLIR's diagnostics; nothing is
printed to stderr.

The input contract: one `func.func @main` on builtin tensors (linalg, tensor, arith, math, scf,
bufferization ops). The first stage (`destination-passing-abi`) turns it into
`@main(inputs as memrefs..., one output memref per result) -> ()` with `llvm.emit_c_interface`,
so torch allocates the outputs and the generated code writes straight into them.

Stages are kept separate and named after what they do, so that one (typically
`generate-loops`) can be replaced without touching the others: see `default_pipeline()` and
`Pipeline.replace()`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Optional, Sequence, Union

from mlir import ir, passmanager
from mlir.dialects import arith, bufferization, func
from mlir.dialects import memref as memref_d

from torch_mlir_backend.errors import CompileError
from torch_mlir_backend.lowering import codegen, parallel
from torch_mlir_backend.lowering.builders import ops_named
from torch_mlir_backend.lowering.extern import extern_results_into_outputs, install_extern_kernel_table
from torch_mlir_backend.options import ENV_DUMP_DIR

ENTRY_FUNCTION = "main"


class ArgLayout(Enum):
    """How an input tensor is laid out in memory, i.e. the memref layout of its ABI argument.

    CONTIGUOUS inputs get the identity layout (the fastest code: strides are compile-time
    constants); the runtime makes a non-contiguous tensor contiguous before such a call.
    STRIDED inputs get `strided<[?, ...], offset: ?>`: the generated code reads the strides from
    the descriptor, so any torch view can be passed without a copy.
    """

    CONTIGUOUS = "contiguous"
    STRIDED = "strided"


@dataclass(frozen=True)
class Stage:
    """One named step. `run` is a textual pass pipeline on `builtin.module` or a function
    `run(module) -> None` that rewrites the module in place (it may raise CompileError)."""

    name: str
    run: Union[str, Callable[[ir.Module], None]]
    description: str = ""

    @property
    def is_textual(self) -> bool:
        return isinstance(self.run, str)

    def __str__(self) -> str:
        what = self.run if self.is_textual else f"<python {getattr(self.run, '__name__', self.run)}>"
        return f"{self.name}: {what}"


@dataclass
class PipelineResult:
    """What one `Pipeline.run` did: seconds per stage (in order) and the files it dumped."""

    stage_seconds: dict[str, float] = field(default_factory=dict)
    dumped_files: list[str] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        return sum(self.stage_seconds.values())

    def report(self) -> str:
        width = max((len(n) for n in self.stage_seconds), default=5)
        lines = [f"  {n:<{width}}  {s * 1e3:8.2f} ms" for n, s in self.stage_seconds.items()]
        lines.append(f"  {'total':<{width}}  {self.total_seconds * 1e3:8.2f} ms")
        return "\n".join(lines)


class _Diagnostics:
    """Collects a context's diagnostics while attached (instead of printing them to stderr)."""

    def __init__(self, context: ir.Context):
        self.context = context
        self.messages: list[str] = []
        self._handle = None

    def _handler(self, diag) -> bool:
        self.messages.append(_format_diagnostic(diag))
        return True  # handled: do not print

    def __enter__(self) -> "_Diagnostics":
        self._handle = self.context.attach_diagnostic_handler(self._handler)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.detach()
        # Break the context -> handler -> self -> context cycle (gc cannot see the C++ side).
        self._handle = None
        self.context = None

    def take(self) -> str:
        text = "\n".join(self.messages)
        self.messages.clear()
        return text


def _format_diagnostic(diag, indent: str = "") -> str:
    severity = str(diag.severity).rsplit(".", 1)[-1].lower()
    text = f"{indent}{diag.location}: {severity}: {diag.message}"
    for note in diag.notes:
        text += "\n" + _format_diagnostic(note, indent + "  ")
    return text


def mlir_error_text(error: ir.MLIRError) -> str:
    """The diagnostics an `MLIRError` carries, one a line (falls back to its message)."""
    diags = getattr(error, "error_diagnostics", None) or []
    if not diags:
        return str(error)
    return "\n".join(_format_diagnostic(d) for d in diags)


class Pipeline:
    """An ordered list of named stages; `run` applies them to a module in place."""

    def __init__(self, stages: Sequence[Stage], name: str = "pipeline"):
        names = [s.name for s in stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate stage names {duplicates}")
        self.name = name
        self.stages: list[Stage] = list(stages)

    # -- editing (returns new pipelines; a Pipeline is shared by the compile cache) -------------
    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r} in {self.stage_names()}")

    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def replace(self, name: str, new: Stage) -> "Pipeline":
        self.stage(name)
        return Pipeline([new if s.name == name else s for s in self.stages], self.name)

    def insert_after(self, name: str, new: Stage) -> "Pipeline":
        i = self.stage_names().index(name)
        return Pipeline(self.stages[: i + 1] + [new] + self.stages[i + 1 :], self.name)

    def without(self, name: str) -> "Pipeline":
        self.stage(name)
        return Pipeline([s for s in self.stages if s.name != name], self.name)

    def describe(self) -> str:
        lines = [f"{self.name}:"]
        for i, s in enumerate(self.stages, 1):
            lines.append(f"  {i:02d}-{s}")
            if s.description:
                lines.append(f"      {s.description}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()

    def fingerprint(self) -> str:
        """Identifies what the pipeline does (for compile cache keys)."""
        return ";".join(
            f"{s.name}={s.run if s.is_textual else getattr(s.run, '__qualname__', repr(s.run))}"
            for s in self.stages
        )

    # -- running ---------------------------------------------------------------------------------
    def run(
        self,
        module: ir.Module,
        dump_dir: Optional[str] = None,
        stop_after: Optional[str] = None,
    ) -> PipelineResult:
        """Apply the stages in order to `module` (in place); stop after `stop_after` if given.

        With a dump folder (or $TORCH_MLIR_BACKEND_DUMP_DIR), writes `00-input.mlir` and
        `NN-<stage>.mlir` after each stage. Raises CompileError on any failure.
        """
        if stop_after is not None:
            self.stage(stop_after)
        dump_dir = dump_dir or os.environ.get(ENV_DUMP_DIR) or None
        result = PipelineResult()
        context = module.context
        if dump_dir:
            os.makedirs(dump_dir, exist_ok=True)
            result.dumped_files.append(_dump(module, dump_dir, "00-input"))
        with context, _Diagnostics(context) as diagnostics:
            for index, stage in enumerate(self.stages, 1):
                start = time.perf_counter()
                _run_stage(stage, module, diagnostics)
                result.stage_seconds[stage.name] = time.perf_counter() - start
                if dump_dir:
                    result.dumped_files.append(_dump(module, dump_dir, f"{index:02d}-{stage.name}"))
                if stage.name == stop_after:
                    break
        return result


def _run_stage(stage: Stage, module: ir.Module, diagnostics: _Diagnostics) -> None:
    try:
        if stage.is_textual:
            pm = passmanager.PassManager.parse(f"builtin.module({stage.run})")
            pm.run(module.operation)
        else:
            with ir.Location.unknown(module.context):
                stage.run(module)
            module.operation.verify()
    except CompileError as e:
        if not e.stage:
            raise CompileError(str(e), e.diagnostics or diagnostics.take(), stage.name) from e
        raise
    except ir.MLIRError as e:
        text = mlir_error_text(e)
        collected = diagnostics.take()
        if collected and collected not in text:
            text = collected + "\n" + text
        raise CompileError(f"{_first_line(e)}", text, stage.name) from None
    except (ValueError, RuntimeError, TypeError) as e:
        raise CompileError(f"{type(e).__name__}: {_first_line(e)}", diagnostics.take(), stage.name) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _dump(module: ir.Module, dump_dir: str, stem: str) -> str:
    path = os.path.join(dump_dir, stem + ".mlir")
    with open(path, "w") as f:
        f.write(module.operation.get_asm(enable_debug_info=True))
    return path


# ------------------------------------------------------------------------------------------------
# Stage (a): destination-passing ABI
# ------------------------------------------------------------------------------------------------


def find_entry(module: ir.Module, name: str = ENTRY_FUNCTION) -> func.FuncOp:
    funcs = [op for op in module.body.operations if isinstance(op.opview, func.FuncOp)]
    for op in funcs:
        if op.opview.sym_name.value == name:
            return op.opview
    raise CompileError(
        f"the module has no func.func @{name} (functions: {[f.opview.sym_name.value for f in funcs]})"
    )


def memref_type_for(tensor_type: ir.RankedTensorType, layout: ArgLayout) -> ir.MemRefType:
    if layout is ArgLayout.STRIDED:
        dyn = ir.ShapedType.get_dynamic_stride_or_offset()
        strided = ir.StridedLayoutAttr.get(dyn, [dyn] * tensor_type.rank)
        return ir.MemRefType.get(tensor_type.shape, tensor_type.element_type, layout=strided)
    return ir.MemRefType.get(tensor_type.shape, tensor_type.element_type)


def _abi_tensor_type(tensor_type: ir.RankedTensorType) -> ir.RankedTensorType:
    """Bool tensors cross the ABI as i8 (torch stores a bool a byte; MLIR's memref-to-LLVM
    lowering refuses sub-byte element loads/stores)."""
    if tensor_type.element_type == ir.IntegerType.get_signless(1):
        return ir.RankedTensorType.get(tensor_type.shape, ir.IntegerType.get_signless(8))
    return tensor_type


def make_destination_passing_abi(
    arg_layouts: Optional[Sequence[ArgLayout]] = None, entry: str = ENTRY_FUNCTION
) -> Callable[[ir.Module], None]:
    """A stage function rewriting `@entry(tensors) -> tensors` into
    `@entry(input memrefs..., output memrefs...) -> ()`:
    inputs are read through `bufferization.to_tensor ... restrict`, each result is written with
    `bufferization.materialize_in_destination ... in restrict writable` into its output memref
    (the caller allocates outputs, so there is no ownership handshake).
    """
    layouts = None if arg_layouts is None else tuple(ArgLayout(l) for l in arg_layouts)

    def destination_passing_abi(module: ir.Module) -> None:
        fn = find_entry(module, entry)
        ftype = fn.type
        inputs, results = list(ftype.inputs), list(ftype.results)
        for kind, types in (("argument", inputs), ("result", results)):
            for i, t in enumerate(types):
                if not isinstance(t, ir.RankedTensorType):
                    raise CompileError(f"@{entry} {kind} #{i} has type {t}; expected a ranked tensor")
        arg_layout = layouts or (ArgLayout.CONTIGUOUS,) * len(inputs)
        if len(arg_layout) != len(inputs):
            raise CompileError(f"{len(arg_layout)} arg layouts given for {len(inputs)} arguments")
        if len(fn.body.blocks) != 1:
            raise CompileError(f"@{entry} must have a single block")
        block = fn.body.blocks[0]
        loc = fn.location

        in_types = [memref_type_for(_abi_tensor_type(t), l) for t, l in zip(inputs, arg_layout)]
        out_types = [memref_type_for(_abi_tensor_type(t), ArgLayout.CONTIGUOUS) for t in results]
        first_op = block.operations[0]
        for arg, mtype in zip(block.arguments, in_types):
            tensor_type = inputs[arg.arg_number]
            arg.set_type(mtype)
            with ir.InsertionPoint(first_op), arg.location:
                tensor = bufferization.to_tensor(_abi_tensor_type(tensor_type), arg, restrict=True)
                keep = [tensor.owner.operation]
                if tensor_type != tensor.type:  # bool: i8 in memory, i1 in the body
                    tensor = arith.TruncIOp(tensor_type, tensor).result
                    keep.append(tensor.owner.operation)
            arg.replace_all_uses_except(tensor, keep)
        outs = [block.add_argument(t, loc) for t in out_types]

        ret = block.operations[len(block.operations) - 1]
        if ret.name != "func.return":
            raise CompileError(f"@{entry} does not end with func.return")
        with ir.InsertionPoint(ret), ret.location:
            for value, out in zip(ret.operands, outs):
                abi_type = _abi_tensor_type(value.type)
                if abi_type != value.type:
                    value = arith.ExtUIOp(abi_type, value).result
                bufferization.materialize_in_destination(None, value, out, restrict=True, writable=True)
            func.ReturnOp([])
        ret.erase()
        fn.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(in_types + out_types, []))
        fn.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
        for name in ("arg_attrs", "res_attrs"):
            if name in fn.attributes:
                del fn.attributes[name]

    return destination_passing_abi


# ------------------------------------------------------------------------------------------------
# Stages (b)-(e)
# ------------------------------------------------------------------------------------------------

# `convert-elementwise-to-linalg` turns arith ops on whole tensors (the ABI's bool casts) into
# linalg.generic so they fuse with their neighbours.
FUSE_ELEMENTWISE = (
    "func.func(convert-elementwise-to-linalg,linalg-fuse-elementwise-ops),canonicalize,cse"
)

# Outputs are function arguments already (memrefs), so the function boundary needs no type
# conversion. `write_results_in_place` makes the op producing a result write straight into the
# output memref.
def unshare_destinations(module: ir.Module) -> None:
    """Give every user of a `tensor.empty` / `linalg.fill` destination its own copy.

    CSE merges identical accumulators (two matmuls of the same shape share one zero fill); then
    `eliminate-empty-tensors` roots that shared fill in one output buffer and one-shot
    bufferization lets both ops write there: a wrong answer. One destination per use keeps each
    result's buffer its own (and costs nothing: each fill was needed anyway)."""

    def split(op_name: str) -> None:
        shared = []

        def collect(op):
            if op.name == op_name and len(op.results) == 1 and len(list(op.results[0].uses)) > 1:
                shared.append(op)
            return ir.WalkResult.ADVANCE

        module.operation.walk(collect)
        for op in shared:
            uses = [(u.owner, u.operand_number) for u in op.results[0].uses]
            for owner, index in uses[1:]:
                clone = op.clone(ip=ir.InsertionPoint(op))
                owner.operands[index] = clone.results[0]

    split("linalg.fill")
    split("tensor.empty")


def write_results_in_place(module: ir.Module) -> None:
    """Root a result's destination chain in its output memref, where that is provably safe.

    Upstream `eliminate-empty-tensors` also roots a `tensor.empty` whose value reaches several
    outputs, or is updated in place by loops that also feed other results; with the
    `restrict` output buffers one-shot bufferization then lets one result overwrite another (a
    wrong answer). Here a `materialize_in_destination %v in %out` gets `%out` as the storage of
    the `tensor.empty` at the root of `%v`'s chain of linalg destinations only when every value
    on that chain has a single use, or only further uses as a linalg op's input (a read: softmax
    sums its exps before rescaling them in place); anything else keeps a copy into the output."""
    for mat in ops_named(module, "bufferization.materialize_in_destination"):
        value, dest = mat.operands[0], mat.operands[1]
        if not isinstance(dest.type, ir.MemRefType):
            continue
        user = mat
        collapses = []  # reassociations of the expand_shapes passed, outermost first
        while True:
            if not isinstance(value, ir.OpResult) or not _used_once_or_read(value, user):
                break
            producer = value.owner.operation
            if producer.name == "tensor.expand_shape" and _is_identity_layout(dest.type):
                # a result made as a reshape (attention's [B*H, L, E] -> [B, H, L, E]): its
                # source is computed in the collapsed view of the output
                collapses.append((producer.attributes["reassociation"], producer.operands[0].type))
                value, user = producer.operands[0], producer
                continue
            if producer.name == "tensor.empty":
                if value.type != ir.RankedTensorType.get(
                        ir.RankedTensorType(collapses[-1][1]).shape if collapses else dest.type.shape,
                        dest.type.element_type):
                    break
                with producer.location, ir.InsertionPoint(producer):
                    view = dest
                    for reassociation, source_type in collapses:
                        source_type = ir.RankedTensorType(source_type)
                        view = memref_d.CollapseShapeOp(ir.MemRefType.get(source_type.shape, source_type.element_type),
                                                        view, reassociation).result
                    storage = bufferization.ToTensorOp(value.type, view, restrict=True, writable=True)
                value.replace_all_uses_with(storage.result)
                producer.erase()
                break
            if not producer.name.startswith("linalg.") or not producer.regions:
                break
            results = list(producer.results)
            index = next(i for i, r in enumerate(results) if r == value)
            operands = list(producer.operands)
            value = operands[len(operands) - len(results) + index]  # the tied destination
            user = producer


def _used_once_or_read(value: ir.Value, user) -> bool:
    """`value`'s uses are `user` (once) and otherwise only inputs (not destinations) of linalg ops."""
    chain_uses = 0
    for use in value.uses:
        owner = getattr(use.owner, "operation", use.owner)
        if owner == getattr(user, "operation", user):
            chain_uses += 1
            continue
        if not owner.name.startswith("linalg.") or not owner.regions:
            return False
        if use.operand_number >= len(owner.operands) - len(owner.results):
            return False
    return chain_uses == 1


BUFFERIZE = (
    # allow-return-allocs-from-loops: scf.while / scf.for from TorchScript loops (control_flow.py)
    # carry tensors whose new value is a fresh buffer each iteration.
    "one-shot-bufferize{bufferize-function-boundaries=true allow-return-allocs-from-loops=true "
    "function-boundary-type-conversion=identity-layout-map},"
    "canonicalize,cse"
)


def check_no_i1_buffers(module: ir.Module) -> None:
    """MLIR's memref-to-LLVM lowering asserts (aborting the process) on loads/stores of i1
    memrefs. Bool inputs/outputs are i8 at the ABI; a bool temporary buffer that fusion could not
    remove is reported as a CompileError instead of crashing."""
    i1 = ir.IntegerType.get_signless(1)
    found: dict[str, str] = {}

    def visit(op):
        for value in list(op.results):
            t = value.type
            if isinstance(t, (ir.MemRefType, ir.UnrankedMemRefType)) and t.element_type == i1:
                found.setdefault(op.name, str(op.location))
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    if found:
        raise CompileError(
            "bool (i1) temporary buffers are not supported yet",
            "\n".join(f"{loc}: error: '{name}' produces an i1 memref" for name, loc in sorted(found.items())),
        )


# ------------------------------------------------------------------------------------------------
# Stage: widen-bool-tensors (bool temporaries live in i8 buffers)
# ------------------------------------------------------------------------------------------------

# Ops whose only tie to a bool tensor is its type: retyping their tensor values to i8 keeps them
# valid and means the same (a byte per bool, like torch stores them).
_BOOL_RETYPE_ONLY = frozenset({
    "tensor.empty", "tensor.extract_slice", "tensor.insert_slice", "tensor.parallel_insert_slice",
    "tensor.expand_shape", "tensor.collapse_shape", "tensor.cast", "tensor.concat",
    "tensor.reshape", "tensor.dim", "tensor.rank",
    "bufferization.to_tensor", "bufferization.materialize_in_destination",
    "bufferization.alloc_tensor",
    "scf.for", "scf.forall", "scf.if", "scf.while", "scf.yield", "scf.condition",
    "scf.in_parallel", "func.return", "func.call",
})
# Linalg ops whose region is printed (so editing it is what a reader of the IR sees).
_LINALG_EXPLICIT_REGION = frozenset({"linalg.generic", "linalg.map", "linalg.reduce"})


def _is_bool_tensor(t: ir.Type) -> bool:
    return isinstance(t, ir.RankedTensorType) and t.element_type == ir.IntegerType.get_signless(1)


def _is_bool_memref(t: ir.Type) -> bool:
    return (isinstance(t, (ir.MemRefType, ir.UnrankedMemRefType))
            and t.element_type == ir.IntegerType.get_signless(1))


def _region_args(op) -> list:
    return [a for region in op.regions for block in region.blocks for a in block.arguments]


def _touches_bool_tensor(op) -> bool:
    types = [v.type for v in list(op.operands) + list(op.results) + _region_args(op)]
    if op.name == "func.func":  # a declaration has no block arguments
        ftype = ir.TypeAttr(op.attributes["function_type"]).value
        types += list(ftype.inputs) + list(ftype.results)
    return any(_is_bool_tensor(t) for t in types)


def _linalg_body_forwards_only(op) -> bool:
    """True if the op's body is just `linalg.yield` of block arguments (copy, transpose,
    broadcast, fill): such a body needs no scalar computation on i1."""
    if len(op.regions) != 1 or len(op.regions[0].blocks) != 1:
        return False
    block = op.regions[0].blocks[0]
    ops = list(block.operations)
    return (len(ops) == 1 and ops[0].name == "linalg.yield"
            and all(isinstance(v, ir.BlockArgument) and v.owner == block for v in ops[0].operands))


def _bool_touching_ops(module: ir.Module) -> list:
    found = []

    def visit(op):
        if _touches_bool_tensor(op):
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit, ir.WalkOrder.PRE_ORDER)
    return found


def _cannot_widen(op, why: str) -> CompileError:
    return CompileError(
        f"cannot keep bool tensors out of i1 buffers: '{op.name}' {why}",
        f"{op.location}: error: '{op.name}' {why}",
    )


def _widen_bool_type(t: ir.Type) -> ir.Type:
    if _is_bool_tensor(t):
        return ir.RankedTensorType.get(t.shape, ir.IntegerType.get_signless(8), t.encoding)
    return t


def widen_bool_tensors(module: ir.Module) -> None:
    """Store every bool tensor as i8 (one byte a bool, as torch does), computing on i1 scalars.

    MLIR's memref-to-LLVM lowering asserts (aborting the process) on i1 memref loads/stores,
    and any bool tensor that bufferization materializes (a mask with several users, a cast of a
    bool input to several dtypes, ...) would become an i1 buffer. So on linalg-on-tensors every
    `tensor<...xi1>` value (op results and block arguments) is retyped to `tensor<...xi8>`, and
    the ops that convert between a tensor's elements and scalars get explicit casts: a linalg
    body reads a widened element through `arith.trunci` to i1 and writes an i1 through
    `arith.extui` (a body that only forwards elements stays i8); scalars put into a tensor
    (fill, from_elements, insert, splat, pad/generate yields) are `extui`-ed; `tensor.extract`
    reads an i8 and `trunci`-s it; i1 dense constants become i8 ones. Named linalg ops that
    compute on bool elements are generalized first so their bodies can be edited. Anything else
    touching a bool tensor is a CompileError naming it (nothing is half-rewritten silently).
    A canonicalize/cse run at the end folds `trunci(extui(x))` pairs.
    """
    from mlir.dialects import tensor

    i1, i8 = ir.IntegerType.get_signless(1), ir.IntegerType.get_signless(8)
    ops = _bool_touching_ops(module)
    if not ops:
        return

    def is_named_linalg(op) -> bool:
        return (op.name.startswith("linalg.") and len(op.regions) == 1
                and op.name not in _LINALG_EXPLICIT_REGION)

    if any(is_named_linalg(op) and not _linalg_body_forwards_only(op) for op in ops):
        # Only these have bodies computing on i1 that are not printed; as linalg.generic the
        # body is explicit and edited like any other (loops come out the same).
        passmanager.PassManager.parse(
            "builtin.module(func.func(linalg-generalize-named-ops))").run(module.operation)
        ops = _bool_touching_ops(module)

    # 1. Check everything before changing anything.
    kinds = []
    for op in ops:
        name = op.name
        if any(_is_bool_memref(v.type) for v in list(op.operands) + list(op.results)):
            raise _cannot_widen(op, "mixes an i1 memref with bool tensors")
        if name in _BOOL_RETYPE_ONLY:
            kind = "retype"
        elif name in _LINALG_EXPLICIT_REGION:
            kind = "linalg-body"
        elif is_named_linalg(op) and _linalg_body_forwards_only(op):
            kind = "linalg-forward"
        elif name == "arith.constant":
            kind = "constant"
            value = op.attributes["value"]
            if not isinstance(value, ir.DenseIntElementsAttr):
                raise _cannot_widen(op, f"holds a bool tensor constant that is not dense ({value.type})")
        elif name == "tensor.extract":
            kind = "extract"
        elif name in ("tensor.insert", "tensor.from_elements", "tensor.splat"):
            kind = "scalars-in"
        elif name in ("tensor.pad", "tensor.generate"):
            kind = "yield-scalar"
        elif name == "func.func":
            if not op.regions[0].blocks:
                raise _cannot_widen(op, "is an external function with bool tensors in its signature")
            kind = "function"
        else:
            raise _cannot_widen(op, "has bool tensor operands or results and no i8 rewrite")
        kinds.append((kind, op))

    # 2. Retype every bool tensor value (scalars are untouched: they stay i1).
    for _, op in kinds:
        for v in list(op.results) + _region_args(op):
            if _is_bool_tensor(v.type):
                v.set_type(_widen_bool_type(v.type))

    # trunci results this stage created for reads of widened bytes -> the byte read
    narrowed: dict = {}

    def extui(value: ir.Value) -> ir.Value:
        if value in narrowed:  # see _forward_rewidened_bytes
            return narrowed[value]
        return arith.ExtUIOp(i8, value).result

    def widen_scalar_operands(op, start: int = 0, stop: Optional[int] = None) -> None:
        operands = op.operands
        for i in range(start, len(operands) if stop is None else stop):
            if operands[i].type == i1:
                with ir.InsertionPoint(op), op.location:
                    operands[i] = extui(operands[i])

    def widen_yield(op, terminator_name: str, result_types: list) -> None:
        for block in op.regions[0].blocks:
            term = block.operations[len(block.operations) - 1]
            if term.name != terminator_name:
                raise _cannot_widen(op, f"has a block ending in '{term.name}'")
            for i, v in enumerate(list(term.operands)):
                if v.type == i1 and result_types[i] == i8:
                    with ir.InsertionPoint(term), term.location:
                        term.operands[i] = extui(v)

    # 3. Restore each op's scalar/element type agreements.
    for kind, op in kinds:
        if kind == "function":
            ftype = op.opview.type
            op.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(
                [_widen_bool_type(t) for t in ftype.inputs], [_widen_bool_type(t) for t in ftype.results]))
        elif kind == "constant":
            value = ir.DenseIntElementsAttr(op.attributes["value"])
            new_type = op.results[0].type
            if value.is_splat:
                attr = ir.DenseElementsAttr.get_splat(
                    new_type, ir.IntegerAttr.get(i8, int(bool(ir.IntegerAttr(value.get_splat_value()).value))))
            else:
                import numpy as np

                bits = np.array([bool(value[i]) for i in range(len(value))], dtype=np.int8)
                attr = ir.DenseElementsAttr.get(bits.reshape(new_type.shape), type=i8)
            op.attributes["value"] = attr
        elif kind == "extract":
            result = op.results[0]
            result.set_type(i8)
            with ir.InsertionPoint.after(op), op.location:
                narrow = arith.TruncIOp(i1, result)
            result.replace_all_uses_except(narrow.result, narrow.operation)
            _forward_rewidened_bytes(narrow, result)
            narrowed[narrow.result] = result
        elif kind == "scalars-in":
            # insert: (scalar, dest, indices...); from_elements: (scalars...); splat: (scalar, sizes...)
            widen_scalar_operands(op, 0, None if op.name == "tensor.from_elements" else 1)
        elif kind == "yield-scalar":
            widen_yield(op, "tensor.yield", [r.type.element_type for r in op.results])
        elif kind in ("linalg-body", "linalg-forward"):
            _widen_linalg_body(op, kind == "linalg-forward", narrowed)
            result_types = [r.type.element_type for r in op.results]
            widen_yield(op, "linalg.yield", result_types)

    passmanager.PassManager.parse("builtin.module(canonicalize,cse)").run(module.operation)


def _same_op(a, b) -> bool:
    return getattr(a, "operation", a) == getattr(b, "operation", b)


def _is_bool_tensor_i8(t: ir.Type) -> bool:
    return isinstance(t, ir.RankedTensorType) and t.element_type == ir.IntegerType.get_signless(8)


def _widen_linalg_body(op, forward_only: bool, narrowed: dict) -> None:
    """Block arguments of a linalg op follow its operands (inputs then inits; linalg.map has
    none for its init). An i1 argument over a widened (now i8) tensor becomes i8; uses that
    compute get an `arith.trunci` at the start of the body, while the body's yield keeps the i8
    argument (forwarding a byte needs no cast)."""
    i1, i8 = ir.IntegerType.get_signless(1), ir.IntegerType.get_signless(8)
    block = op.regions[0].blocks[0]
    term = block.operations[len(block.operations) - 1]
    operands = op.operands
    for index, arg in enumerate(list(block.arguments)):
        if index >= len(operands) or arg.type != i1:
            continue
        operand_type = operands[index].type
        if _is_bool_tensor_i8(operand_type):
            arg.set_type(i8)
        elif operand_type == i1 and forward_only:
            # linalg.fill of an i1 scalar: fill with its byte instead (a named op's body is
            # regenerated from the operand types when printed and parsed again).
            with ir.InsertionPoint(op), op.location:
                operands[index] = arith.ExtUIOp(i8, operands[index]).result
            arg.set_type(i8)
            continue
        else:
            continue
        if forward_only or all(_same_op(u.owner, term) for u in arg.uses):
            continue
        with ir.InsertionPoint.at_block_begin(block), arg.location:
            narrow = arith.TruncIOp(i1, arg)
        arg.replace_all_uses_except(narrow.result, [narrow.operation, getattr(term, "operation", term)])
        _forward_rewidened_bytes(narrow, arg)
        narrowed[narrow.result] = arg


def _forward_rewidened_bytes(narrow, byte: ir.Value) -> None:
    """`narrow` = trunci(byte) read from a widened tensor. Such a tensor only ever holds 0 or 1
    (every write is an extui of an i1 or a copied byte of one), so re-widening `narrow` is the
    byte itself (canonicalize cannot know that extui(trunci(x)) == x here)."""
    for use in list(narrow.result.uses):
        user = getattr(use.owner, "operation", use.owner)
        if user.name == "arith.extui" and user.results[0].type == byte.type:
            user.results[0].replace_all_uses_with(byte)


def _is_identity_layout(memref_type: ir.MemRefType) -> bool:
    layout = memref_type.layout
    if not isinstance(layout, ir.AffineMapAttr):
        return False
    amap = layout.value
    return amap == ir.AffineMap.get_identity(amap.n_dims)


def strided_copies_to_linalg(module: ir.Module) -> None:
    """Rewrite each `memref.copy` touching a non-identity layout into `linalg.copy`.

    `finalize-memref-to-llvm` turns an identity-layout copy into `llvm.memcpy`, but a strided one
    into a call to `memrefCopy` from the C runner-utils library, which the JIT does not load;
    as a linalg op the copy becomes loops like everything else.
    """
    copies = []

    def collect(op):
        if op.name == "memref.copy":
            copies.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(collect)
    for op in copies:
        src, dst = op.operands
        if _is_identity_layout(src.type) and _is_identity_layout(dst.type):
            continue
        from mlir.dialects import linalg  # slow to import (~0.1 s): only when needed

        with ir.InsertionPoint(op), op.location:
            linalg.copy(src, outs=[dst])
        op.erase()

DEALLOCATE = "buffer-deallocation-pipeline,convert-bufferization-to-memref,canonicalize"

# Correctness first: every linalg op becomes scf loops of scalar code (LLVM's own vectorizer at
# opt_level >= 2 still sees these loops). Replace this stage to tile/vectorize.
GENERATE_LOOPS = "func.func(convert-linalg-to-loops),lower-affine,canonicalize,cse"

# complex.* ops (lowering/complex.py) become arith/math ops on the real and imaginary parts (before
# lower-math, which lowers the math ops they produce); complex.create/re/im and complex memref
# elements (`!llvm.struct<(f32, f32)>`) are left to convert-complex-to-llvm in TO_LLVM.
LOWER_COMPLEX = "func.func(convert-complex-to-standard),canonicalize"

# f16/bf16 math is computed in f32; functions without an LLVM intrinsic (tanh, erf, atan2, ...)
# become libm calls, which the JIT resolves from the process; the rest become LLVM intrinsics.
# bf16 <-> f32 conversions are expanded into integer code (no compiler-rt helper needed).
LOWER_MATH = (
    "func.func(math-extend-to-supported-types{target-type=f32},"
    "arith-expand{include-bf16=true include-f4e2m1=false},"
    "canonicalize),"
    # integer powers (math.ipowi) have no LLVM intrinsic: outline them as loops first
    "convert-math-to-funcs{convert-ctlz=false},"
    "convert-math-to-llvm,convert-math-to-libm,canonicalize"
)

TO_LLVM = (
    "convert-vector-to-scf,convert-scf-to-cf,"
    "expand-strided-metadata,lower-affine,"
    "convert-vector-to-llvm,"
    "finalize-memref-to-llvm,"
    "convert-complex-to-llvm,"
    "convert-math-to-llvm,"
    "convert-arith-to-llvm,"
    "convert-index-to-llvm,"
    "convert-cf-to-llvm,"
    "convert-func-to-llvm,"
    "convert-ub-to-llvm,"
    "reconcile-unrealized-casts,"
    "canonicalize,cse"
)


def check_llvm_legal(module: ir.Module) -> None:
    """Every op left must be in the LLVM dialect, else the JIT's translation fails
    later with a less helpful message: name the leftovers and where they came from."""
    leftovers: dict[str, str] = {}

    def visit(op):
        name = op.name
        if not (name.startswith("llvm.") or name == "builtin.module"):
            leftovers.setdefault(name, str(op.location))
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    if leftovers:
        raise CompileError(
            f"ops not lowered to the LLVM dialect: {', '.join(sorted(leftovers))}",
            "\n".join(f"{loc}: error: '{name}' was not lowered to LLVM" for name, loc in sorted(leftovers.items())),
        )


def default_pipeline(arg_layouts: Optional[Sequence[ArgLayout]] = None, threads: Optional[int] = None,
                     blas: bool = True, fast: Optional[bool] = None) -> Pipeline:
    """linalg-on-tensors `@main` -> LLVM dialect with a destination-passing `@main`.

    `fast` (default: unless $TORCH_MLIR_BACKEND_CODEGEN == "loops") selects the code generation of
    lowering/codegen.py: BLAS contractions, vectorizable reductions and exp/erf, parallel loops;
    otherwise plain loops. With it, `threads` > 1 (default `codegen.default_threads()`:
    torch.get_num_threads() unless $TORCH_MLIR_BACKEND_OPENMP=0) splits loops over torch's OpenMP
    team (lowering/parallel.py), and `blas=False` keeps every contraction on generated loops."""
    if fast is None:
        fast = os.environ.get(codegen.ENV_CODEGEN, "fast") != "loops"
    if threads is None:
        threads = codegen.default_threads()
    if not fast:
        codegen_stages = [Stage("generate-loops", GENERATE_LOOPS, "linalg -> scf loops (fast=True: lowering/codegen.py)")]
    else:
        codegen_stages = _fast_codegen_stages(threads, blas)
    return Pipeline(
        [
            Stage("destination-passing-abi", make_destination_passing_abi(arg_layouts),
                  "@main(tensors) -> tensors  =>  @main(in memrefs, out memrefs) -> ()"),
            Stage("extern-results-into-outputs", extern_results_into_outputs,
                  "ATen kernels write graph results straight into @main's output buffers"),
            Stage("fuse-elementwise",
                  codegen.fuse_elementwise_keeping_contractions(FUSE_ELEMENTWISE) if fast and blas else FUSE_ELEMENTWISE,
                  "fuse producer/consumer linalg.generic ops (fast: not into or across f32 contractions)"),
            Stage("widen-bool-tensors", widen_bool_tensors,
                  "bool tensors stored as i8 (i1 buffers would crash LLVM lowering)"),
            Stage("unshare-destinations", unshare_destinations, "one accumulator per op before in-place bufferization"),
            Stage("write-results-in-place", write_results_in_place, "results computed in their output buffers where safe"),
            Stage("bufferize", BUFFERIZE, "tensors -> memrefs; results written in place into outputs"),
            Stage("check-no-i1-buffers", check_no_i1_buffers, "bool temporaries would crash LLVM lowering"),
            Stage("deallocate", DEALLOCATE, "free temporary buffers"),
            Stage("strided-copies-to-linalg", strided_copies_to_linalg,
                  "memref.copy on strided memrefs -> linalg.copy (no runtime library call)"),
            *codegen_stages,
            Stage("lower-complex", LOWER_COMPLEX, "complex ops -> arith/math on real and imaginary parts"),
            Stage("lower-math", LOWER_MATH, "math ops -> LLVM intrinsics / libm calls"),
            Stage("to-llvm", TO_LLVM, "everything -> LLVM dialect"),
            Stage("parallel-launchers", parallel.install_parallel_launchers,
                  "each outlined parallel loop's launcher calls libgomp's GOMP_parallel"),
            Stage("extern-kernel-table", install_extern_kernel_table,
                  "calls of ATen kernels go through a function-pointer table the runtime fills (lowering/extern.py)"),
            Stage("check-llvm-legal", check_llvm_legal, "fail early if an op was not lowered"),
        ],
        name="linalg-to-llvm",
    )


def _fast_codegen_stages(threads: int, blas: bool) -> list:
    codegen.keep_freed_memory_mapped()  # before any generated code allocates its temporaries
    codegen_stages = [
        Stage("reassociate-reductions", codegen.reassociate_reductions,
              "float reductions may be reordered (vectorizable), as eager's kernels do"),
    ]
    if blas:
        codegen_stages.append(Stage("contractions-to-blas", codegen.contractions_to_blas,
                                    "f32 matmul/batch_matmul on contiguous buffers -> torch's sgemm_"))
    codegen_stages += [
        Stage("noalias-arguments", codegen.mark_noalias_arguments, "@main's buffers never overlap a written one"),
        Stage("approximate-exp-erf", codegen.approximate_exp_erf, "f32 exp/erf as vectorizable polynomials"),
        Stage("min-max-intrinsics", codegen.min_max_to_intrinsics,
              "float min/max as LLVM intrinsics (arith-expand's compare/select chains do not vectorize)"),
    ]
    codegen_stages.append(Stage("fuse-rows", codegen.fuse_rows if threads <= 1 else codegen.fuse_rows_in_parallel,
                                "consecutive ops sharing leading parallel dims run row by row (rows stay in L1)"))
    codegen_stages += [
        Stage("generate-loops", codegen.generate_loops_text(threads),
              "linalg -> scf loops (parallel dims as scf.parallel when threads > 1)"),
    ]
    if threads > 1:
        codegen_stages += [
            Stage("serialize-small-parallel-loops", codegen.serialize_small_parallel_loops,
                  "keep scf.parallel for outermost loops with enough work"),
            Stage("outline-parallel-loops", parallel.outline_parallel_loops,
                  "scf.parallel -> per-thread bodies launched on torch's OpenMP team (lowering/parallel.py)"),
        ]
    return codegen_stages
