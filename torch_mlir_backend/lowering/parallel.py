"""Multi-threaded loops on PyTorch's own thread pool (libgomp's `GOMP_parallel`).

Why not MLIR's OpenMP lowering: it calls the LLVM OpenMP runtime's `__kmpc_*` entry points, so the
process gets a second OpenMP runtime (libiomp5) next to the libgomp torch's CPU wheel runs its
kernels on. On a 2-core machine the two pools' threads fight for the cores (a compiled `x + y`
of 1M floats at 2 threads took 0.38 ms on OpenMP, 0.16 ms on one thread), and a test worker once
aborted inside it. Here the loops run on the team torch's own kernels use: its size is what
`torch.set_num_threads` set (libgomp's `nthreads-var` of the calling thread), nothing spins
beside torch's threads, and no library beyond torch's is loaded.

Two pipeline stages:

- `outline-parallel-loops` (scf level, after `serialize-small-parallel-loops`): each remaining
  `scf.parallel` moves into a function `@__tmb_parallel_body_<k>(%thread, %threads, captured...)`
  that runs the thread's share of the first dimension with several iterations (contiguous
  chunks, as OpenMP's static schedule); constants are cloned into it, every other value it
  uses from outside is an argument. In its place, `func.call @__tmb_parallel_launch_<k>(captured...)`
  of a declared function.
- `parallel-launchers` (LLVM dialect, after `to-llvm`): defines each launcher, whose arguments
  are now the scalars of the converted memref descriptors. It stores them in a stack struct and
  calls `GOMP_parallel(@__tmb_parallel_thread_<k>, &struct, 0, 0)`; every team thread
  (the caller included) runs `@__tmb_parallel_thread_<k>`, which loads them back and calls the
  body with `omp_get_thread_num()` and `omp_get_num_threads()`. GOMP_parallel returns when
  all threads are done.
"""
from __future__ import annotations

import glob
import os
from typing import Optional

from mlir import ir
from mlir.dialects import arith, func as func_d

from .codegen import _constant  # an arith.constant's integer, else None

BODY_PREFIX = "__tmb_parallel_body_"
LAUNCH_PREFIX = "__tmb_parallel_launch_"
THREAD_PREFIX = "__tmb_parallel_thread_"
RUNTIME_FUNCTIONS = ("GOMP_parallel", "omp_get_thread_num", "omp_get_num_threads")
NOALIAS_ATTRIBUTE = "tmb.noalias_params"


def torch_openmp_library() -> str:
    """The libgomp torch's CPU kernels run on (shipped in torch/lib)."""
    import torch

    lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    found = sorted(glob.glob(os.path.join(lib, "libgomp*.so*")))
    if not found:
        raise RuntimeError(f"no libgomp in {lib}: this torch build does not run on OpenMP threads")
    return found[0]


def uses_parallel_launchers(module: ir.Module) -> bool:
    for op in module.body.operations:
        if op.operation.name == "llvm.func" and ir.StringAttr(op.attributes["sym_name"]).value == "GOMP_parallel":
            return True
    return False


# ----- stage 1: outline scf.parallel ------------------------------------------------------------


def _inside(op, ancestor) -> bool:
    ancestor = getattr(ancestor, "operation", ancestor)
    op = getattr(op, "operation", op)
    while op is not None:
        if op == ancestor:
            return True
        parent = op.parent
        op = getattr(parent, "operation", parent)
    return False


def _defining_op(value: ir.Value) -> Optional[ir.Operation]:
    owner = value.owner
    return None if isinstance(owner, ir.Block) else getattr(owner, "operation", owner)


def _captured(parallel: ir.Operation) -> list:
    """Values used by `parallel` (its bounds included) that are defined outside it, in order of
    first use."""
    found: dict = {}

    def visit_operands(op):
        for value in op.operands:
            owner = value.owner
            if isinstance(owner, ir.Block):
                inside = _inside(owner.owner, parallel) if owner.owner is not None else False
            else:
                inside = _inside(getattr(owner, "operation", owner), parallel)
            if not inside:
                found.setdefault(value, None)

    def walk(op):
        visit_operands(op)
        return ir.WalkResult.ADVANCE

    parallel.walk(walk)
    return list(found)


def _is_constant(value: ir.Value) -> bool:
    op = _defining_op(value)
    return op is not None and op.name == "arith.constant"


def outline_parallel_loops(module: ir.Module) -> None:
    parallels = []

    def collect(op):
        if op.name == "scf.parallel":
            parallels.append(op)
            return ir.WalkResult.SKIP
        return ir.WalkResult.ADVANCE

    module.operation.walk(collect)
    # a loop with reductions (results) stays sequential: its threads would have to combine them
    parallels = [p for p in parallels if not list(p.results)]
    index = ir.IndexType.get()
    for k, parallel in enumerate(parallels):
        captured = _captured(parallel)
        constants = [v for v in captured if _is_constant(v)]
        arguments = [v for v in captured if not _is_constant(v)]
        with parallel.location, ir.InsertionPoint(module.body):
            body_fn = func_d.FuncOp(f"{BODY_PREFIX}{k}", ([index, index] + [v.type for v in arguments], []),
                                    visibility="private")
            launch_fn = func_d.FuncOp(f"{LAUNCH_PREFIX}{k}", ([v.type for v in arguments], []),
                                      visibility="private")
        _mark_unaliased_buffers(body_fn, arguments, offset=2)
        block = body_fn.add_entry_block()
        with parallel.location, ir.InsertionPoint(parallel):
            func_d.CallOp([], ir.FlatSymbolRefAttr.get(launch_fn.sym_name.value), arguments)
        with parallel.location, ir.InsertionPoint(block):
            replacement = {}
            for value in constants:
                replacement[value] = _defining_op(value).clone().results[0]
            for value, arg in zip(arguments, list(block.arguments)[2:]):
                replacement[value] = arg
            ret = func_d.ReturnOp([])
        parallel.move_before(ret)
        for value, new in replacement.items():
            for use in list(value.uses):
                owner = use.owner
                owner = getattr(owner, "operation", owner)
                if _inside(owner, parallel):
                    owner.operands[use.operand_number] = new
        with parallel.location, ir.InsertionPoint(parallel):
            _take_this_threads_share(parallel, block.arguments[0], block.arguments[1])


_VIEW_OPS = ("memref.subview", "memref.cast", "memref.reinterpret_cast", "memref.collapse_shape",
             "memref.expand_shape", "memref.transpose", "memref.view")


def _root_buffer(value: ir.Value):
    """The function argument or allocation a memref value views."""
    while True:
        op = _defining_op(value)
        if op is None or op.name not in _VIEW_OPS:
            return value
        value = op.operands[0]


def _mark_unaliased_buffers(fn, arguments: list, offset: int) -> None:
    """`llvm.noalias` on the body's memref arguments that view a buffer no other argument views
    (distinct allocations, and @main's arguments, which never overlap a written one: see
    codegen.mark_noalias_arguments), so LLVM vectorizes the body as it did @main's loops."""
    roots = [_root_buffer(v) if isinstance(v.type, ir.MemRefType) else None for v in arguments]
    # convert-func-to-llvm drops argument attributes of the expanded memref arguments: record
    # the positions of their pointers among the LLVM parameters for `install_parallel_launchers`
    # (a memref of rank r expands to allocated ptr, aligned ptr, offset, r sizes, r strides).
    position, noalias = offset, []
    for value, root in zip(arguments, roots):
        if root is None:
            position += 1
            continue
        if sum(1 for r in roots if r is not None and r == root) == 1 and (
                isinstance(root.owner, ir.Block) or _defining_op(root).name in ("memref.alloc", "memref.alloca")):
            noalias += [position, position + 1]
        position += 3 + 2 * ir.MemRefType(value.type).rank
    fn.operation.attributes[NOALIAS_ATTRIBUTE] = ir.ArrayAttr.get(
        [ir.IntegerAttr.get(ir.IntegerType.get_signless(64), p) for p in noalias])


def _take_this_threads_share(parallel: ir.Operation, thread: ir.Value, threads: ir.Value) -> None:
    """Narrow the first dimension with several iterations (or the first) to thread `thread`'s
    contiguous share of `threads`: iterations [t*n/T, (t+1)*n/T)."""
    rank = len(parallel.regions[0].blocks[0].arguments)
    operands = list(parallel.operands)
    dim = 0
    for d in range(rank):
        lb, ub = _constant(operands[d]), _constant(operands[rank + d])
        if lb is None or ub is None or ub - lb > 1:
            dim = d
            break
    lb, ub, step = operands[dim], operands[rank + dim], operands[2 * rank + dim]
    one = arith.ConstantOp(ir.IndexType.get(), 1).result
    zero = arith.ConstantOp(ir.IndexType.get(), 0).result
    span = arith.MaxSIOp(arith.SubIOp(ub, lb).result, zero).result
    trips = arith.DivUIOp(arith.SubIOp(arith.AddIOp(span, step).result, one).result, step).result
    first = arith.DivUIOp(arith.MulIOp(thread, trips).result, threads).result
    last = arith.DivUIOp(arith.MulIOp(arith.AddIOp(thread, one).result, trips).result, threads).result
    new_lb = arith.AddIOp(lb, arith.MulIOp(first, step).result).result
    new_ub = arith.MinSIOp(arith.AddIOp(lb, arith.MulIOp(last, step).result).result, ub).result
    parallel.operands[dim] = new_lb
    parallel.operands[rank + dim] = new_ub


# ----- stage 2: launchers in the LLVM dialect ---------------------------------------------------


def install_parallel_launchers(module: ir.Module) -> None:
    launchers = []
    defined = set()
    for op in module.body.operations:
        if op.operation.name != "llvm.func":
            continue
        name = ir.StringAttr(op.attributes["sym_name"]).value
        defined.add(name)
        if name.startswith(LAUNCH_PREFIX) and not op.regions[0].blocks:
            launchers.append(op)
    if not launchers:
        return
    for op in module.body.operations:
        if op.operation.name == "llvm.func" and NOALIAS_ATTRIBUTE in op.attributes:
            marked = {ir.IntegerAttr(a).value for a in ir.ArrayAttr(op.attributes[NOALIAS_ATTRIBUTE])}
            count = len(op.regions[0].blocks[0].arguments)
            op.attributes["arg_attrs"] = ir.ArrayAttr.get(
                [ir.DictAttr.get({"llvm.noalias": ir.UnitAttr.get()} if i in marked else {}) for i in range(count)])
            del op.attributes[NOALIAS_ATTRIBUTE]
    pieces = []
    for name in RUNTIME_FUNCTIONS:
        if name not in defined:
            pieces.append({"GOMP_parallel": "llvm.func @GOMP_parallel(!llvm.ptr, !llvm.ptr, i32, i32)",
                           "omp_get_thread_num": "llvm.func @omp_get_thread_num() -> i32",
                           "omp_get_num_threads": "llvm.func @omp_get_num_threads() -> i32"}[name])
    for op in launchers:
        name = ir.StringAttr(op.attributes["sym_name"]).value
        k = name[len(LAUNCH_PREFIX):]
        fn_type = ir.TypeAttr(op.attributes["function_type"]).value
        types = [str(t) for t in _llvm_function_params(fn_type)]
        pieces.append(_launcher_text(k, types))
        op.operation.erase()
    snippet = "\n".join(pieces)
    # The snippet refers to the bodies, which live in `module`: parse it with declarations of
    # them, then move only the new definitions over.
    declarations = []
    for op in module.body.operations:
        if op.operation.name == "llvm.func":
            name = ir.StringAttr(op.attributes["sym_name"]).value
            if name.startswith(BODY_PREFIX):
                fn_type = ir.TypeAttr(op.attributes["function_type"]).value
                params = ", ".join(str(t) for t in _llvm_function_params(fn_type))
                declarations.append(f"llvm.func @{name}({params})")
    parsed = ir.Module.parse("\n".join(declarations) + "\n" + snippet, module.context)
    for op in list(parsed.body.operations):
        name = ir.StringAttr(op.attributes["sym_name"]).value
        if name.startswith(BODY_PREFIX):
            continue
        op.operation.move_after(list(module.body.operations)[-1])


def _llvm_function_params(fn_type: ir.Type) -> list:
    text = str(fn_type)  # !llvm.func<void (ptr, ptr, i64, ...)>
    inner = text[text.index("(") + 1: text.rindex(")")]
    params, depth, current = [], 0, ""
    for ch in inner:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == "," and depth == 0:
            params.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        params.append(current.strip())
    builtin = ("i", "f", "bf", "vector", "!")  # printed as they parse; LLVM types lose their `!llvm.`
    return [ir.Type.parse(p if p.startswith(builtin) else "!llvm." + p) for p in params]


def _launcher_text(k: str, types: list) -> str:
    struct = f"!llvm.struct<({', '.join(types)})>" if types else "!llvm.struct<()>"
    args = ", ".join(f"%a{i}: {t}" for i, t in enumerate(types))
    lines = [f"llvm.func @{LAUNCH_PREFIX}{k}({args}) {{",
             "  %one = llvm.mlir.constant(1 : i32) : i32",
             "  %zero = llvm.mlir.constant(0 : i32) : i32",
             f"  %frame = llvm.alloca %one x {struct} : (i32) -> !llvm.ptr",
             f"  %s0 = llvm.mlir.undef : {struct}"]
    for i, t in enumerate(types):
        lines.append(f"  %s{i + 1} = llvm.insertvalue %a{i}, %s{i}[{i}] : {struct}")
    lines += [f"  llvm.store %s{len(types)}, %frame : {struct}, !llvm.ptr",
              f"  %fn = llvm.mlir.addressof @{THREAD_PREFIX}{k} : !llvm.ptr",
              # 0 threads: libgomp's default, the team size torch.set_num_threads set
              "  llvm.call @GOMP_parallel(%fn, %frame, %zero, %zero) : (!llvm.ptr, !llvm.ptr, i32, i32) -> ()",
              "  llvm.return",
              "}",
              f"llvm.func @{THREAD_PREFIX}{k}(%frame: !llvm.ptr) {{",
              f"  %s = llvm.load %frame : !llvm.ptr -> {struct}"]
    for i, t in enumerate(types):
        lines.append(f"  %a{i} = llvm.extractvalue %s[{i}] : {struct}")
    arg_list = ", ".join(["%t", "%n"] + [f"%a{i}" for i in range(len(types))])
    arg_types = ", ".join(["i64", "i64"] + types)
    lines += ["  %t32 = llvm.call @omp_get_thread_num() : () -> i32",
              "  %n32 = llvm.call @omp_get_num_threads() : () -> i32",
              "  %t = llvm.sext %t32 : i32 to i64",
              "  %n = llvm.sext %n32 : i32 to i64",
              f"  llvm.call @{BODY_PREFIX}{k}({arg_list}) : ({arg_types}) -> ()",
              "  llvm.return",
              "}"]
    return "\n".join(lines)
