"""Code-generation stages of the pipeline: contractions, loops, vectorization, threads.

Owns what happens between bufferized linalg (memrefs) and the LLVM lowering:
- `contractions_to_blas`: f32 `linalg.matmul` / `linalg.batch_matmul` on contiguous buffers
  become calls to the BLAS `sgemm_` that PyTorch itself ships (MKL inside libtorch_cpu.so): one
  external symbol, resolved by the JIT from `BLAS_LIBRARY`. Everything else (and every
  contraction when the stage is left out, see `default_pipeline(blas=False)`) goes through the
  generated loops.
- `mark_noalias_arguments`: the ABI's buffers never overlap a written one (outputs are fresh
  torch allocations), which tells LLVM it may keep accumulators in registers and vectorize.
- `reassociate_reductions`: float reductions may be reordered (as eager's vectorized kernels
  do), so LLVM's loop vectorizer can vectorize them.
- `fuse_rows`: consecutive ops sharing their leading parallel dims (softmax's max, exp-and-sum
  and rescale; layer norm's statistics and normalization) run in one loop nest over those dims,
  each on the row's subviews, so a row is read from memory once and stays in L1.
- `generate_loops(threads)`: linalg -> loops; the outermost parallel loop nest of each op is
  split over torch's OpenMP team (lowering/parallel.py) when there are several threads and
  enough work, the rest sequential
  `scf.for` loops that LLVM vectorizes for the host CPU (the ExecutionEngine compiles for the
  host: AVX-512 here).
"""
from __future__ import annotations

import os
from typing import Optional

from mlir import ir, passmanager
from mlir.dialects import arith, func
from mlir.dialects import memref as memref_d

from torch_mlir_backend.errors import CompileError

# These stages are default_pipeline()'s code generation; "loops" selects plain loops instead.
ENV_CODEGEN = "TORCH_MLIR_BACKEND_CODEGEN"

# Generated loops run on torch's own OpenMP team (lowering/parallel.py) when torch uses several
# threads; `0` keeps them sequential (contractions still use torch's BLAS, which follows
# torch.set_num_threads either way).
ENV_OPENMP = "TORCH_MLIR_BACKEND_OPENMP"


def default_threads() -> int:
    """Threads generated loops are written for: torch.get_num_threads(), or 1 (sequential loops)
    when $TORCH_MLIR_BACKEND_OPENMP is 0. At run time the team is the size torch.set_num_threads
    set then."""
    if os.environ.get(ENV_OPENMP, "1").strip().lower() in ("0", "off", "false", "no"):
        return 1
    import torch

    return torch.get_num_threads()

# torch's own BLAS (MKL, statically linked into libtorch_cpu.so and exporting the Fortran
# `sgemm_`); it follows torch.set_num_threads like every torch kernel.
BLAS_SYMBOL = "sgemm_"
SGEMM_HELPER = "__tmb_sgemm_row_major"


# glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
ENV_MALLOC_TUNING = "TORCH_MLIR_BACKEND_MALLOC_TUNING"
_malloc_tuned = False


def keep_freed_memory_mapped() -> bool:
    """Make glibc's malloc keep freed memory (up to 32 MiB per block, 256 MiB in all) in the
    process instead of returning it to the kernel; True if done.

    The generated code allocates its temporaries with malloc and frees them before returning.
    glibc serves blocks above its mmap threshold with a fresh mmap and trims the heap top when
    more than its trim threshold is free, so every call page-faults (and zeroes) its temporaries
    anew: for SDPA on [8, 4, 128, 64] that was two thirds of a call (46.8 -> 14.9 ms on one
    thread). These are the settings PyTorch's CPU tuning guide gives for the same reason; they
    apply to the whole process (eager kernels gain too). Skipped when the user set glibc's own
    MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ or $TORCH_MLIR_BACKEND_MALLOC_TUNING=0, and
    off glibc."""
    global _malloc_tuned
    if _malloc_tuned:
        return True
    if os.environ.get(ENV_MALLOC_TUNING, "1") == "0" or any(
            v in os.environ for v in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _malloc_tuned = bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 256 << 20))
    return _malloc_tuned


def blas_library() -> str:
    import torch

    return os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")


def uses_blas(module: ir.Module) -> bool:
    for op in module.body.operations:
        if op.operation.name == "llvm.func" and ir.StringAttr(op.attributes["sym_name"]).value == BLAS_SYMBOL:
            return True
    return False


# Row-major C[m,n] (beta*C +) A[m,k] B[k,n] is column-major C^T = B^T A^T: sgemm with the operands
# swapped. An operand stored transposed (B given as Bt[n,k]) is the same call with 'T'.
# `batch` matrices each, strides in elements between consecutive matrices.
_SGEMM_HELPER_TEXT = f"""
llvm.func @{BLAS_SYMBOL}(!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr,
                        !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr)
func.func private @{SGEMM_HELPER}(%batch: index, %m: i32, %n: i32, %k: i32,
    %a: !llvm.ptr, %ta: i8, %lda: i32, %sa: i64,
    %b: !llvm.ptr, %tb: i8, %ldb: i32, %sb: i64,
    %c: !llvm.ptr, %sc: i64, %beta: f32) {{
  %one = llvm.mlir.constant(1 : i32) : i32
  %alpha = llvm.mlir.constant(1.0 : f32) : f32
  %p_ta = llvm.alloca %one x i8 : (i32) -> !llvm.ptr
  %p_tb = llvm.alloca %one x i8 : (i32) -> !llvm.ptr
  %p_m = llvm.alloca %one x i32 : (i32) -> !llvm.ptr
  %p_n = llvm.alloca %one x i32 : (i32) -> !llvm.ptr
  %p_k = llvm.alloca %one x i32 : (i32) -> !llvm.ptr
  %p_lda = llvm.alloca %one x i32 : (i32) -> !llvm.ptr
  %p_ldb = llvm.alloca %one x i32 : (i32) -> !llvm.ptr
  %p_ldc = llvm.alloca %one x i32 : (i32) -> !llvm.ptr
  %p_alpha = llvm.alloca %one x f32 : (i32) -> !llvm.ptr
  %p_beta = llvm.alloca %one x f32 : (i32) -> !llvm.ptr
  llvm.store %ta, %p_ta : i8, !llvm.ptr
  llvm.store %tb, %p_tb : i8, !llvm.ptr
  llvm.store %m, %p_m : i32, !llvm.ptr
  llvm.store %n, %p_n : i32, !llvm.ptr
  llvm.store %k, %p_k : i32, !llvm.ptr
  llvm.store %lda, %p_lda : i32, !llvm.ptr
  llvm.store %ldb, %p_ldb : i32, !llvm.ptr
  %ldc = arith.maxsi %n, %one : i32
  llvm.store %ldc, %p_ldc : i32, !llvm.ptr
  llvm.store %alpha, %p_alpha : f32, !llvm.ptr
  llvm.store %beta, %p_beta : f32, !llvm.ptr
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %batch step %c1 {{
    %i64 = arith.index_cast %i : index to i64
    %oa = arith.muli %i64, %sa : i64
    %ob = arith.muli %i64, %sb : i64
    %oc = arith.muli %i64, %sc : i64
    %ai = llvm.getelementptr %a[%oa] : (!llvm.ptr, i64) -> !llvm.ptr, f32
    %bi = llvm.getelementptr %b[%ob] : (!llvm.ptr, i64) -> !llvm.ptr, f32
    %ci = llvm.getelementptr %c[%oc] : (!llvm.ptr, i64) -> !llvm.ptr, f32
    llvm.call @{BLAS_SYMBOL}(%p_tb, %p_ta, %p_n, %p_m, %p_k, %p_alpha, %bi, %p_ldb, %ai, %p_lda, %p_beta, %ci, %p_ldc)
      : (!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr,
         !llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr) -> ()
  }}
  return
}}
"""

_INT32_MAX = 2**31 - 1


def _is_identity(t: ir.MemRefType) -> bool:
    layout = t.layout
    if not isinstance(layout, ir.AffineMapAttr):
        return False
    amap = layout.value
    return amap == ir.AffineMap.get_identity(amap.n_dims)


def _uses(value: ir.Value) -> list:
    return [getattr(u.owner, "operation", u.owner) for u in value.uses]


def _same(a, b) -> bool:
    return getattr(a, "operation", a) == getattr(b, "operation", b)


def _transposed_source(value: ir.Value, consumer) -> Optional[tuple]:
    """If `value` is an alloc only written by a 2-D `linalg.transpose` of a contiguous buffer
    (and read by `consumer`, freed by a dealloc), that transpose and its source: the
    contraction can read the source with BLAS's 'T' flag and the copy is not needed."""
    owner = value.owner
    if not isinstance(owner, ir.Operation) and hasattr(owner, "operation"):
        owner = owner.operation
    if getattr(owner, "name", None) != "memref.alloc":
        return None
    transpose = None
    for user in _uses(value):
        if _same(user, consumer) or user.name in ("memref.dealloc", "memref.dim"):
            continue
        if user.name == "linalg.transpose" and transpose is None and _same(user.operands[1], value):
            transpose = user
            continue
        return None
    if transpose is None:
        return None
    perm = [int(x) for x in ir.DenseI64ArrayAttr(transpose.attributes["permutation"])]
    src = transpose.operands[0]
    if perm != [1, 0] or not _is_identity(src.type):
        return None
    # the transpose must come before the consumer in the same block, with nothing writing src between
    if transpose.parent != consumer.parent:
        return None
    return transpose, src


def _default_maps(op) -> bool:
    """Named contractions with the default (non-transposed, non-broadcast) indexing maps."""
    if "indexing_maps" not in op.attributes:
        return True
    maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    text = [str(m) for m in maps]
    if op.name == "linalg.matmul":
        return text == ["(d0, d1, d2) -> (d0, d2)", "(d0, d1, d2) -> (d2, d1)", "(d0, d1, d2) -> (d0, d1)"]
    return text == ["(d0, d1, d2, d3) -> (d0, d1, d3)", "(d0, d1, d2, d3) -> (d0, d3, d2)",
                    "(d0, d1, d2, d3) -> (d0, d1, d2)"]


def _transposed_rhs_maps(op) -> bool:
    """A batch_matmul reading its right operand as [batch, n, k] (attention's q @ k^T): sgemm
    reads it with the transposed flag, no copy."""
    if op.name != "linalg.batch_matmul" or "indexing_maps" not in op.attributes:
        return False
    text = [str(ir.AffineMapAttr(m).value) for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    return text == ["(d0, d1, d2, d3) -> (d0, d1, d3)", "(d0, d1, d2, d3) -> (d0, d2, d3)",
                    "(d0, d1, d2, d3) -> (d0, d1, d2)"]


def contractions_to_blas(module: ir.Module) -> None:
    """Rewrite f32 `linalg.matmul` / `linalg.batch_matmul` on contiguous (identity-layout)
    buffers into calls of torch's BLAS `sgemm_`; a 2-D operand made by `linalg.transpose` into
    its own buffer is read in place with the transposed flag instead. Other contractions (other
    dtypes, strided views, sizes beyond int32) stay linalg ops for the generated loops."""
    f32 = ir.F32Type.get()
    found = []

    def collect(op):
        if op.name in ("linalg.matmul", "linalg.batch_matmul", "linalg.conv_2d_nchw_fchw"):
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(collect)
    sites = []
    for op in found:
        if op.name == "linalg.conv_2d_nchw_fchw":
            if _conv_fits_blas(op):
                sites.append(op)
            continue
        operands = list(op.operands)
        if len(operands) != 3 or not (_default_maps(op) or _transposed_rhs_maps(op)):
            continue
        types = [v.type for v in operands]
        if not all(isinstance(t, ir.MemRefType) and t.element_type == f32 and _is_identity(t) for t in types):
            continue
        if any(s != ir.ShapedType.get_dynamic_size() and s > _INT32_MAX for t in types for s in t.shape):
            continue
        sites.append(op)
    if not sites:
        return

    i8, i32, i64 = (ir.IntegerType.get_signless(w) for w in (8, 32, 64))
    index = ir.IndexType.get()
    ptr = ir.Type.parse("!llvm.ptr")
    if SGEMM_HELPER not in {ir.StringAttr(o.attributes["sym_name"]).value for o in module.body.operations
                            if "sym_name" in o.attributes}:
        helper = ir.Module.parse(_SGEMM_HELPER_TEXT)
        first = module.body.operations[0]
        for o in list(helper.body.operations):
            o.move_before(first)

    for op in sites:
        if op.name == "linalg.conv_2d_nchw_fchw":
            _conv_to_blas(op)
            continue
        batched = op.name == "linalg.batch_matmul"
        rhs_transposed = _transposed_rhs_maps(op)
        a, b, c = op.operands
        with ir.InsertionPoint(op), op.location:
            def dim(v, i):
                return arith.IndexCastOp(i32, memref_d.dim(v, arith.ConstantOp(index, i).result)).result

            def pointer(v):
                address = arith.IndexCastOp(i64, memref_d.extract_aligned_pointer_as_index(v)).result
                return ir.Operation.create("llvm.inttoptr", results=[ptr], operands=[address]).result

            def at_least_one(v):
                return arith.MaxSIOp(v, arith.ConstantOp(i32, 1).result).result

            r = 1 if batched else 0
            m, k, n = dim(a, r), dim(a, r + 1), dim(b, r if rhs_transposed else r + 1)

            def operand(v, cols):
                """(pointer, trans flag, leading dim) for a row-major operand with `cols` columns."""
                if not batched:
                    source = _transposed_source(v, op)
                    if source is not None:
                        transpose, src = source
                        rows_of_src = dim(src, 1)  # src = X^T: [cols, rows]
                        flag, ld = ord("T"), at_least_one(rows_of_src)
                        p = pointer(src)
                        transpose.erase()
                        return p, flag, ld
                return pointer(v), ord("N"), at_least_one(cols)

            # trans flags as seen by the column-major call: a row-major X is X^T column-major ('N')
            pa, fa, lda = operand(a, k)
            if rhs_transposed:  # B stored as Bt [n, k]
                pb, fb, ldb = pointer(b), ord("T"), at_least_one(k)
            else:
                pb, fb, ldb = operand(b, n)
            if batched:
                batch = memref_d.dim(a, arith.ConstantOp(index, 0).result)
                stride = lambda x, y: arith.MulIOp(arith.ExtSIOp(i64, x).result, arith.ExtSIOp(i64, y).result).result
                sa, sb, sc = stride(m, k), stride(k, n), stride(m, n)
            else:
                batch = arith.ConstantOp(index, 1).result
                sa = sb = sc = arith.ConstantOp(i64, 0).result
            # linalg contractions accumulate into C; into a C just zero-filled, sgemm writes
            # (beta 0) and the fill (a memset of the whole result) goes
            zero_fill = _zero_fill_of(c, op)
            beta = arith.ConstantOp(f32, 0.0 if zero_fill is not None else 1.0).result
            if zero_fill is not None:
                zero_fill.erase()
            func.CallOp([], ir.FlatSymbolRefAttr.get(SGEMM_HELPER), [
                batch, m, n, k,
                pa, arith.ConstantOp(i8, fa).result, lda, sa,
                pb, arith.ConstantOp(i8, fb).result, ldb, sb,
                pointer(c), sc, beta,
            ])
        op.erase()


# ops that may sit between a zero fill and the contraction reading it: they define values and
# touch no buffer contents
_BETWEEN_FILL_AND_CONTRACTION = frozenset({
    "arith.constant", "arith.index_cast", "arith.muli", "arith.maxsi", "arith.extsi", "memref.dim",
    "memref.alloc", "memref.expand_shape", "memref.collapse_shape", "memref.extract_aligned_pointer_as_index",
    "llvm.inttoptr"})


def _zero_fill_of(c: ir.Value, op):
    """The `linalg.fill` of 0.0 into `c` right before `op` in its block (only value-defining ops
    between), whose contents `op` then only accumulates into; else None."""
    block = op.block
    previous = None
    for candidate in block.operations:
        candidate = getattr(candidate, "operation", candidate)
        if _same(candidate, op):
            break
        if candidate.name == "linalg.fill":
            previous = candidate
        elif candidate.name not in _BETWEEN_FILL_AND_CONTRACTION:
            previous = None
    if previous is None or previous.operands[1] != c:
        return None
    value = previous.operands[0].owner
    value = getattr(value, "operation", value)
    if isinstance(value, ir.Block) or value.name != "arith.constant":
        return None
    attr = value.attributes["value"]
    return previous if isinstance(attr, ir.FloatAttr) and ir.FloatAttr(attr).value == 0.0 else None


def _conv_fits_blas(op) -> bool:
    f32 = ir.F32Type.get()
    types = [v.type for v in op.operands]
    if len(types) != 3 or not all(isinstance(t, ir.MemRefType) and t.element_type == f32 and _is_identity(t)
                                  and t.has_static_shape for t in types):
        return False
    (n, c, h, w), (f, c2, kh, kw), (n2, f2, oh, ow) = (t.shape for t in types)
    return c == c2 and n == n2 and f == f2 and c * kh * kw * oh * ow * n < _INT32_MAX


def _conv_to_blas(op) -> None:
    """conv_2d_nchw_fchw (input already padded) as im2col + one sgemm per image:
    out[n] (F x OH*OW) += W (F x C*KH*KW) . col[n] (C*KH*KW x OH*OW), where
    col[n, c, kh, kw, oh, ow] = in[n, c, oh*sh + kh*dh, ow*sw + kw*dw]."""
    from mlir.dialects import linalg

    f32 = ir.F32Type.get()
    i8, i32, i64 = (ir.IntegerType.get_signless(w) for w in (8, 32, 64))
    index = ir.IndexType.get()
    ptr = ir.Type.parse("!llvm.ptr")
    inp, filt, out = op.operands
    (n, c, _, _), (f, _, kh, kw), (_, _, oh, ow) = (v.type.shape for v in (inp, filt, out))
    sh, sw = (int(x) for x in ir.DenseIntElementsAttr(op.attributes["strides"]))
    dh, dw = (int(x) for x in ir.DenseIntElementsAttr(op.attributes["dilations"]))
    k, p = c * kh * kw, oh * ow
    with ir.InsertionPoint(op), op.location:
        def pointer(v):
            address = arith.IndexCastOp(i64, memref_d.extract_aligned_pointer_as_index(v)).result
            return ir.Operation.create("llvm.inttoptr", results=[ptr], operands=[address]).result

        const = lambda t, x: arith.ConstantOp(t, x).result
        one_by_one = kh == kw == 1 and sh == sw == 1 and inp.type.shape[2:] == [oh, ow]
        col = None
        if not one_by_one:  # a 1x1 stride-1 convolution reads its input as col directly
            col_type = ir.MemRefType.get([n, c, kh, kw, oh, ow], f32)
            col = memref_d.AllocOp(col_type, [], [], alignment=ir.IntegerAttr.get(i64, 64)).result
            d = [ir.AffineExpr.get_dim(i) for i in range(6)]
            in_map = ir.AffineMap.get(6, 0, [d[0], d[1], d[4] * sh + d[2] * dh, d[5] * sw + d[3] * dw])
            maps = ir.ArrayAttr.get([ir.AffineMapAttr.get(in_map), ir.AffineMapAttr.get(ir.AffineMap.get_identity(6))])
            parallel = ir.Attribute.parse("#linalg.iterator_type<parallel>")
            gather = linalg.GenericOp([], [inp], [col], maps, ir.ArrayAttr.get([parallel] * 6))
            block = gather.regions[0].blocks.append(f32, f32)
            with ir.InsertionPoint(block):
                linalg.YieldOp([block.arguments[0]])
        func.CallOp([], ir.FlatSymbolRefAttr.get(SGEMM_HELPER), [
            const(index, n), const(i32, f), const(i32, p), const(i32, k),
            pointer(filt), const(i8, ord("N")), const(i32, max(k, 1)), const(i64, 0),
            pointer(col if col is not None else inp), const(i8, ord("N")), const(i32, max(p, 1)), const(i64, k * p),
            pointer(out), const(i64, f * p), const(f32, 1.0),
        ])
        if col is not None:
            memref_d.DeallocOp(col)
    op.erase()


# ------------------------------------------------------------------------------------------------
# contractions kept whole through elementwise fusion
# ------------------------------------------------------------------------------------------------

# Named contractions BLAS takes (see contractions_to_blas); a linalg.generic contraction is
# recognized by its maps and body.
_NAMED_CONTRACTIONS = frozenset({"linalg.matmul", "linalg.batch_matmul"})


def _values_equal(xs, ys) -> bool:
    return len(xs) == len(ys) and all(x == y for x, y in zip(xs, ys))


def _is_mul_add_body(op) -> bool:
    """The body of `op` is `out + in0 * in1` (operands of either op in either order)."""
    block = op.regions[0].blocks[0]
    body = list(block.operations)
    if len(body) != 3 or [o.name for o in body] != ["arith.mulf", "arith.addf", "linalg.yield"]:
        return False
    mul, add, yld = body
    a, b, out = block.arguments
    product = mul.results[0]
    return ((_values_equal(list(mul.operands), [a, b]) or _values_equal(list(mul.operands), [b, a]))
            and (_values_equal(list(add.operands), [out, product]) or _values_equal(list(add.operands), [product, out]))
            and _values_equal(list(yld.operands), [add.results[0]]))


def _indexing_maps(op) -> Optional[list]:
    """The indexing maps of a matmul-like op, defaults of the named ops included."""
    if "indexing_maps" in op.attributes:
        return [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
    d = [ir.AffineExpr.get_dim(i) for i in range(4)]
    if op.name == "linalg.matmul":
        return [ir.AffineMap.get(3, 0, e) for e in ([d[0], d[2]], [d[2], d[1]], [d[0], d[1]])]
    if op.name == "linalg.batch_matmul":
        return [ir.AffineMap.get(4, 0, e) for e in ([d[0], d[1], d[3]], [d[0], d[3], d[2]], [d[0], d[1], d[2]])]
    return None


def _map_dims(amap: ir.AffineMap) -> Optional[list]:
    """The loop dim of each result of a projected-permutation map, else None."""
    dims = []
    for expr in amap.results:
        if not isinstance(expr, ir.AffineDimExpr):
            return None
        dims.append(ir.AffineDimExpr(expr).position)
    return dims if len(set(dims)) == len(dims) else None


def is_f32_contraction(op) -> bool:
    """An f32 `C += A * B` over two inputs whose maps are projected permutations: a named
    matmul/batch_matmul, or a linalg.generic with reduction loops and a multiply-add body."""
    if op.name not in _NAMED_CONTRACTIONS and op.name != "linalg.generic":
        return False
    operands = list(op.operands)
    if len(operands) != 3 or len(op.regions) != 1 or not op.regions[0].blocks:
        return False
    f32 = ir.F32Type.get()
    if not all(isinstance(v.type, ir.ShapedType) and ir.ShapedType(v.type).element_type == f32 for v in operands):
        return False
    if op.name == "linalg.generic":
        segments = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))
        iterators = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
        if segments != [2, 1] or not any("reduction" in s for s in iterators) or not _is_mul_add_body(op):
            return False
    maps = _indexing_maps(op)
    return maps is not None and all(_map_dims(m) is not None for m in maps)


_FUSION_FENCE = "tmb.fusion_fence"


def fuse_elementwise_keeping_contractions(fusion_pipeline: str):
    """The stage `fusion_pipeline` (upstream `linalg-fuse-elementwise-ops`) with every f32
    contraction kept whole for `contractions_to_blas`.

    The upstream pass fuses a producer into its consumer, and folds a reshape into a linalg op
    by expanding the op, only when the producer has a single use (its default control function;
    the pass takes no other). Folding a view's collapse/expand_shape into a matmul makes a
    higher-rank linalg.generic, and fusing an elementwise producer (bias + relu, softmax's exp)
    into it recomputes that producer in the innermost loop of the contraction; either way BLAS
    can no longer take it. So while the pass runs, an opaque `tmb.fusion_fence` op also uses
    each contraction's inputs and results: they have a second use, nothing is fused across the
    contraction's boundary, and everything else fuses as before. The fences are erased after."""

    def fuse_elementwise(module: ir.Module) -> None:
        contractions = []

        def collect(op):
            if is_f32_contraction(op):
                contractions.append(op)
            return ir.WalkResult.ADVANCE

        module.operation.walk(collect)
        context = module.context
        allowed = context.allow_unregistered_dialects
        context.allow_unregistered_dialects = True
        try:
            for op in contractions:
                values = list(op.operands)[:2] + list(op.results)
                with op.location:
                    ir.Operation.create(_FUSION_FENCE, operands=values, ip=ir.InsertionPoint.after(op))
            passmanager.PassManager.parse(f"builtin.module({fusion_pipeline})").run(module.operation)
        finally:
            fences = []

            def collect_fences(op):
                if op.name == _FUSION_FENCE:
                    fences.append(op)
                return ir.WalkResult.ADVANCE

            module.operation.walk(collect_fences)
            for fence in fences:
                fence.erase()
            context.allow_unregistered_dialects = allowed

    return fuse_elementwise


# ------------------------------------------------------------------------------------------------
# f32 exp / erf as polynomials (vectorizable; libm calls are not)
# ------------------------------------------------------------------------------------------------

# Cephes expf: exp(x) = 2^n * exp(r), x = n ln2 + r, |r| <= ln2/2; with fused multiply-adds
# within 1 ulp of exp in the normal range (0.99 on 300k points against float64; 1.4 with
# separate multiplies and adds), eager's Sleef kernel is within 1 ulp.
_EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)
# erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (+-1 beyond), the rational approximation XLA and Eigen
# use for f32; within 4.2e-7 of erf (checked against float64).
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)


def _poly(x, coefficients):
    """Horner's scheme with fused multiply-adds (one rounding per step, one instruction on FMA
    hardware: a separate multiply and add nearly double the cost of exp)."""
    from mlir.dialects import math as math_d

    f32 = ir.F32Type.get()
    acc = arith.ConstantOp(f32, coefficients[0]).result
    for c in coefficients[1:]:
        acc = math_d.fma(acc, x, arith.ConstantOp(f32, c).result)
    return acc


def _exp_f32(x):
    from mlir.dialects import math as math_d

    f32, i32 = ir.F32Type.get(), ir.IntegerType.get_signless(32)
    c = lambda v: arith.ConstantOp(f32, v).result
    ci = lambda v: arith.ConstantOp(i32, v).result
    # below -104 the result is 0, above 88.8 it is inf; NaN is restored at the end. Inputs below
    # -104 (-inf: masked attention scores, softmax rows with a huge range) are computed from 0 and
    # replaced by 0: computed from -104 they made denormal intermediates, whose microcode assists
    # cost more than the rest of the exp (causal attention: half its scores are -inf)
    below = arith.CmpFOp(arith.CmpFPredicate.OLT, x, c(-104.0)).result
    xc = arith.SelectOp(below, c(0.0), arith.MinNumFOp(arith.MaxNumFOp(x, c(-104.0)).result, c(88.8)).result).result
    # fused multiply-adds: fewer instructions and roundings than Cephes' separate steps
    fx = math_d.floor(math_d.fma(xc, c(1.44269504088896341), c(0.5)))
    r = math_d.fma(fx, c(-0.693359375), xc)
    r = math_d.fma(fx, c(2.12194440e-4), r)
    y = _poly(r, _EXP_POLY)
    y = arith.AddFOp(math_d.fma(y, arith.MulFOp(r, r).result, r), c(1.0)).result
    # 2^n as two factors so that denormal results and n = 128 stay exact
    n = arith.FPToSIOp(i32, fx).result
    n1 = arith.ShRSIOp(n, ci(1)).result
    n2 = arith.SubIOp(n, n1).result
    scale = lambda e: arith.BitcastOp(f32, arith.ShLIOp(arith.AddIOp(e, ci(127)).result, ci(23)).result).result
    y = arith.MulFOp(arith.MulFOp(y, scale(n1)).result, scale(n2)).result
    y = arith.SelectOp(below, c(0.0), y).result
    is_nan = arith.CmpFOp(arith.CmpFPredicate.UNO, x, x).result
    return arith.SelectOp(is_nan, x, y).result


def _erf_f32(x):
    f32 = ir.F32Type.get()
    xc = arith.MinNumFOp(arith.MaxNumFOp(x, arith.ConstantOp(f32, -4.0).result).result,
                         arith.ConstantOp(f32, 4.0).result).result
    x2 = arith.MulFOp(xc, xc).result
    y = arith.DivFOp(arith.MulFOp(xc, _poly(x2, _ERF_P)).result, _poly(x2, _ERF_Q)).result
    is_nan = arith.CmpFOp(arith.CmpFPredicate.UNO, x, x).result
    return arith.SelectOp(is_nan, x, y).result


_APPROXIMATIONS = {"math.exp": _exp_f32, "math.erf": _erf_f32}


def approximate_exp_erf(module: ir.Module) -> None:
    """Replace scalar f32 `math.exp` / `math.erf` with polynomial arith code. As libm calls they
    keep every loop scalar; as arith code LLVM vectorizes them with the rest of the loop body."""
    f32 = ir.F32Type.get()
    found = []

    def collect(op):
        if op.name in _APPROXIMATIONS and op.results[0].type == f32:
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(collect)
    for op in found:
        with ir.InsertionPoint(op), op.location:
            value = _APPROXIMATIONS[op.name](op.operands[0])
        op.results[0].replace_all_uses_with(value)
        op.erase()


# ------------------------------------------------------------------------------------------------
# float min/max as LLVM intrinsics
# ------------------------------------------------------------------------------------------------

_MIN_MAX_INTRINSICS = {"arith.maximumf": "llvm.intr.maximum", "arith.minimumf": "llvm.intr.minimum",
                       "arith.maxnumf": "llvm.intr.maxnum", "arith.minnumf": "llvm.intr.minnum"}


def min_max_to_intrinsics(module: ir.Module) -> None:
    """f32/f64 `arith.maximumf` & co. -> the LLVM intrinsics `convert-arith-to-llvm` would make
    of them (same NaN propagation; the sign of a zero tie unspecified), before `lower-math` runs
    `arith-expand`, which would otherwise expand them into compare/select chains. LLVM's loop
    vectorizer turns a reduction over the intrinsic into vector code (a max over rows of
    [256, 1024]: 3.9 ms -> 0.15 ms on one thread); over the expanded chain it stays scalar."""
    floats = (ir.F32Type.get(), ir.F64Type.get())
    # which of -0 and +0 a tie returns is left open (eager returns its first operand), halving
    # the fixups per vector of a reduction over `maximum`
    nsz = ir.Attribute.parse("#llvm.fastmath<nsz>")
    found = []

    def collect(op):
        if op.name in _MIN_MAX_INTRINSICS and op.results[0].type in floats:
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(collect)
    for op in found:
        intrinsic = ir.Operation.create(_MIN_MAX_INTRINSICS[op.name], results=[op.results[0].type],
                                        operands=list(op.operands), attributes={"fastmathFlags": nsz},
                                        loc=op.location, ip=ir.InsertionPoint(op))
        op.results[0].replace_all_uses_with(intrinsic.results[0])
        op.erase()


# ------------------------------------------------------------------------------------------------


def mark_noalias_arguments(module: ir.Module) -> None:
    """`llvm.noalias` on @main's memref arguments. Outputs are fresh torch allocations and
    inputs are only read, so no written buffer overlaps another argument; without this LLVM must
    assume a store into the output may change an input and keeps reloading (no vectorization of
    reductions, no accumulators in registers)."""
    for op in module.body.operations:
        if op.operation.name != "func.func" or not op.regions[0].blocks:
            continue
        fn = op.opview if hasattr(op, "opview") else op
        if ir.StringAttr(op.attributes["sym_name"]).value != "main":
            continue
        ftype = ir.TypeAttr(op.attributes["function_type"]).value
        inputs = ir.FunctionType(ftype).inputs
        attrs = []
        for t in inputs:
            if isinstance(t, ir.MemRefType):
                attrs.append(ir.DictAttr.get({"llvm.noalias": ir.UnitAttr.get()}))
            else:
                attrs.append(ir.DictAttr.get({}))
        op.attributes["arg_attrs"] = ir.ArrayAttr.get(attrs)
        del fn


_REASSOCIABLE = frozenset({"arith.addf", "arith.mulf", "arith.maximumf", "arith.minimumf",
                           "arith.maxnumf", "arith.minnumf"})


def reassociate_reductions(module: ir.Module) -> None:
    """Allow reassociation of the float ops that combine into a reduction's accumulator (the
    ops of a `linalg.generic` body with a reduction iterator that yield into an output), as
    eager's vectorized kernels reorder sums too; LLVM then vectorizes the reduction loop."""
    reassoc = ir.Attribute.parse("#arith.fastmath<reassoc>")
    generics = []

    def collect(op):
        if op.name == "linalg.generic":
            its = [str(a) for a in ir.ArrayAttr(op.attributes["iterator_types"])]
            if any("reduction" in s for s in its):
                generics.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(collect)
    for op in generics:
        block = op.regions[0].blocks[0]
        term = block.operations[len(block.operations) - 1]
        for v in term.operands:
            owner = v.owner
            if isinstance(owner, ir.Block):
                continue
            owner = getattr(owner, "operation", owner)
            if owner.name in _REASSOCIABLE and "fastmath" in owner.attributes:
                owner.attributes["fastmath"] = reassoc


# ------------------------------------------------------------------------------------------------
# loops and threads
# ------------------------------------------------------------------------------------------------

# Correctness first: every linalg op becomes scf loops of scalar code that LLVM's loop
# vectorizer turns into host-width vector code (noalias arguments + reassociable reductions).
SEQUENTIAL_LOOPS = "func.func(convert-linalg-to-loops),lower-affine,canonicalize,cse"


def generate_loops_text(threads: int) -> str:
    """linalg -> loops. With several threads: parallel dims become `scf.parallel`; inner parallel
    loops go back to `scf.for`; the outermost are split over torch's OpenMP team by
    lowering/parallel.py (only those worth the fork: see `serialize_small_parallel_loops`)."""
    if threads <= 1:
        return SEQUENTIAL_LOOPS
    return (
        "func.func(convert-linalg-to-parallel-loops),lower-affine,canonicalize,cse"
    )


# Below this many iterations of an op's loop nest (its elements) a parallel region costs more
# (a fork and join, a few microseconds) than it saves.
MIN_PARALLEL_WORK = 1 << 15


def serialize_small_parallel_loops(module: ir.Module) -> None:
    """Keep `scf.parallel` only for outermost loops with enough work, and there only over the
    leading dims up to the first with several iterations (the inner dims stay sequential
    `scf.for` loops that LLVM vectorizes; OpenMP would collapse them into one linear index);
    nested and small parallel loops become sequential loops."""
    parallels = []

    def collect(op):
        if op.name == "scf.parallel":
            parallels.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(collect)
    for op in parallels:
        nested = False
        parent = op.parent
        while parent is not None and parent.name != "func.func":
            if parent.name == "scf.parallel":
                nested = True
                break
            parent = parent.parent
        work = _static_trip_product(op)
        if nested or work is None or work < MIN_PARALLEL_WORK:
            _split_parallel(op, 0)
            continue
        counts = _dim_trip_counts(op)
        keep = next((i + 1 for i, c in enumerate(counts) if c is not None and c >= 2), len(counts))
        if keep < len(counts):
            _split_parallel(op, keep)


def _dim_trip_counts(op) -> list:
    operands = list(op.operands)
    rank = len(op.regions[0].blocks[0].arguments)
    counts = []
    for i in range(rank):
        lb, ub, step = _constant(operands[i]), _constant(operands[rank + i]), _constant(operands[2 * rank + i])
        counts.append(None if None in (lb, ub, step) or step <= 0 else max(0, -(-(ub - lb) // step)))
    return counts


def _static_trip_product(op) -> Optional[int]:
    """Iterations of the parallel loop times those of the loops nested in its body (when all
    bounds are constants), i.e. roughly the elements one fork would spread."""
    total = 1
    for loop in _loops_in(op):
        count = _trip_count(loop)
        if count is None:
            return None
        total *= count
    return total


def _loops_in(op) -> list:
    loops = [op]

    def collect(inner):
        if inner.name in ("scf.for", "scf.parallel") and not _same(inner, op):
            loops.append(inner)
        return ir.WalkResult.ADVANCE

    op.walk(collect)
    return loops


def _constant(v: ir.Value) -> Optional[int]:
    owner = v.owner
    owner = getattr(owner, "operation", owner)
    if isinstance(owner, ir.Block) or owner.name != "arith.constant":
        return None
    return ir.IntegerAttr(owner.attributes["value"]).value


def _trip_count(loop) -> Optional[int]:
    operands = list(loop.operands)
    if loop.name == "scf.for":
        lb, ub, step = (_constant(v) for v in operands[:3])
        if None in (lb, ub, step) or step <= 0:
            return None
        return max(0, -(-(ub - lb) // step))
    rank = len(loop.regions[0].blocks[0].arguments)
    total = 1
    for i in range(rank):
        lb, ub, step = _constant(operands[i]), _constant(operands[rank + i]), _constant(operands[2 * rank + i])
        if None in (lb, ub, step) or step <= 0:
            return None
        total *= max(0, -(-(ub - lb) // step))
    return total


def _split_parallel(op, keep: int) -> None:
    """Rewrite an `scf.parallel` (without reductions: linalg's parallel loops have none) into an
    `scf.parallel` over its first `keep` dims (none when 0) around nested `scf.for` loops over
    the others. Upstream `scf-parallel-for-to-nested-fors` converts every `scf.parallel`; only
    these are wanted."""
    from mlir.dialects import scf

    if len(op.results):
        raise CompileError("scf.parallel with reductions cannot be made sequential here")
    body = op.regions[0].blocks[0]
    rank = len(body.arguments)
    if keep >= rank:
        return
    operands = list(op.operands)
    lbs, ubs, steps = operands[:rank], operands[rank:2 * rank], operands[2 * rank:3 * rank]
    index = ir.IndexType.get()
    ivs = []
    with op.location:
        ip = ir.InsertionPoint(op)
        if keep:
            outer = ir.Operation.create(
                "scf.parallel", results=[], operands=lbs[:keep] + ubs[:keep] + steps[:keep],
                attributes={"operandSegmentSizes": ir.DenseI32ArrayAttr.get([keep, keep, keep, 0])},
                regions=1, ip=ip)
            outer_block = outer.regions[0].blocks.append(*([index] * keep))
            ivs += list(outer_block.arguments)
            with ir.InsertionPoint(outer_block):
                ir.Operation.create("scf.reduce", operands=[])
            ip = ir.InsertionPoint.at_block_begin(outer_block)
        loops = []
        for d in range(keep, rank):
            with ip:
                loop = scf.ForOp(lbs[d], ubs[d], steps[d])
            loops.append(loop)
            ivs.append(loop.induction_variable)
            ip = ir.InsertionPoint(loop.body)
        for loop in loops[:-1]:
            with ir.InsertionPoint(loop.body):
                scf.YieldOp([])
        with ir.InsertionPoint(loops[-1].body):
            terminator = scf.YieldOp([])
    for arg, iv in zip(body.arguments, ivs):
        arg.replace_all_uses_with(iv)
    for inner in list(body.operations)[:-1]:
        inner.move_before(terminator)
    op.erase()


# ------------------------------------------------------------------------------------------------
# row fusion: consecutive linalg ops sharing their leading parallel dims run row by row
# ------------------------------------------------------------------------------------------------

# Ops that may sit between the ops of a fused group: they define values (buffers, views,
# constants) and touch no buffer contents, so moving the group's ops past them is safe.
_ROW_NEUTRAL = frozenset({"memref.alloc", "memref.alloca", "memref.expand_shape", "memref.collapse_shape",
                          "memref.subview", "memref.cast", "memref.reinterpret_cast", "memref.dim",
                          "arith.constant", "arith.index_cast"})
_VIEW_OPS = frozenset({"memref.expand_shape", "memref.collapse_shape", "memref.subview", "memref.cast",
                       "memref.reinterpret_cast"})


def _root(value: ir.Value) -> ir.Value:
    """The buffer a memref value views (through expand/collapse/subview/cast)."""
    while True:
        owner = value.owner
        owner = getattr(owner, "operation", owner)
        if isinstance(owner, ir.Block) or owner.name not in _VIEW_OPS:
            return value
        value = owner.operands[0]


class _RowOp:
    """A linalg.generic / linalg.fill on memrefs seen as a loop nest: maps, iterators, operands
    (inputs first), how many outputs, and how many leading dims could be row dims."""

    def __init__(self, op):
        self.op = op
        if op.name == "linalg.fill":
            rank = ir.MemRefType(op.operands[1].type).rank
            self.maps = [None, ir.AffineMap.get_identity(rank)]
            self.iterators = ["parallel"] * rank
            self.n_inputs = 1
        else:
            self.maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
            self.iterators = ["reduction" if "reduction" in str(a) else "parallel"
                              for a in ir.ArrayAttr(op.attributes["iterator_types"])]
            self.n_inputs = list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))[0]
        self.operands = list(op.operands)
        self.sizes = self._loop_sizes()
        self.max_rows = self._max_rows()

    def memref_operands(self):
        """(index, value, map, is_output) of each memref operand."""
        for i, (v, m) in enumerate(zip(self.operands, self.maps)):
            if m is not None and isinstance(v.type, ir.MemRefType):
                yield i, v, m, i >= self.n_inputs

    def _loop_sizes(self) -> list:
        sizes = [None] * len(self.iterators)
        for _, v, m, _ in self.memref_operands():
            shape = ir.MemRefType(v.type).shape
            for pos, expr in enumerate(m.results):
                if isinstance(expr, ir.AffineDimExpr) and shape[pos] != ir.ShapedType.get_dynamic_size():
                    sizes[ir.AffineDimExpr(expr).position] = shape[pos]
        return sizes

    def _max_rows(self) -> int:
        if self.op.name == "linalg.generic" and not _computes_only(self.op):
            return 0  # e.g. a gather (memref.load in the body) may read any row of a buffer
        for _, v, m, _ in self.memref_operands():
            if not all(isinstance(e, (ir.AffineDimExpr, ir.AffineConstantExpr)) for e in m.results):
                return 0  # e.g. a window gather: rows of it are not rows of its operands
        k = 0
        while (k < len(self.iterators) and self.iterators[k] == "parallel" and self.sizes[k] is not None
               and all(self._row_position(m, k) == k for _, _, m, out in self.memref_operands() if out)):
            k += 1
        return k

    @staticmethod
    def _row_position(m: ir.AffineMap, dim: int) -> Optional[int]:
        for pos, expr in enumerate(m.results):
            if isinstance(expr, ir.AffineDimExpr) and ir.AffineDimExpr(expr).position == dim:
                return pos
        return None


def _computes_only(op) -> bool:
    """The body of `op` only computes on its block arguments: arith/math ops, linalg.index, the
    LLVM min/max intrinsics; no load, store or call that could touch another row of a buffer."""
    allowed = True

    def visit(inner):
        nonlocal allowed
        name = inner.name
        if _same(inner, op):
            return ir.WalkResult.ADVANCE
        if not (name.startswith("arith.") or name.startswith("math.") or name in _MIN_MAX_INTRINSICS.values()
                or name in ("linalg.index", "linalg.yield")):
            allowed = False
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    op.walk(visit)
    return allowed


def _group_rows(ops: list) -> int:
    """How many leading dims `ops` (in order) can share as one row loop nest: every op has them
    parallel with the same static sizes, and every buffer an op of the group writes is accessed
    by the group only through one value whose leading positions are those dims, so row r of one
    op depends only on row r of the others. 0 if none."""
    # the innermost dim of the widest op stays a loop inside the row (the one LLVM vectorizes)
    k = min([o.max_rows for o in ops] + [max(len(o.iterators) for o in ops) - 1])
    while k and any(o.sizes[:k] != ops[0].sizes[:k] for o in ops):
        k -= 1
    if not k:
        return 0
    written = {}
    for o in ops:
        for _, v, _, out in o.memref_operands():
            if out:
                written.setdefault(_root(v), v)
    for o in ops:
        for _, v, m, _ in o.memref_operands():
            root = _root(v)
            if root not in written:
                continue
            if written[root] != v:
                return 0
            k = min(k, next((j for j in range(k) if _RowOp._row_position(m, j) != j), k))
    return k


def _sliced(value: ir.Value, m: ir.AffineMap, ivs: list, k: int):
    """`value` at the row `ivs` (the first `k` loop dims) as a rank-reduced subview, and the map
    of the remaining loop dims into it."""
    t = ir.MemRefType(value.type)
    strides, _ = t.get_strides_and_offset()
    dyn = ir.ShapedType.get_dynamic_size()
    offsets, sizes, kept_shape, kept_strides, exprs = [], [], [], [], []
    for pos, expr in enumerate(m.results):
        d = ir.AffineDimExpr(expr).position if isinstance(expr, ir.AffineDimExpr) else None
        if d is not None and d < k:
            offsets.append(ivs[d])
            sizes.append(1)
            continue
        offsets.append(0)
        size = t.shape[pos]
        sizes.append(size if size != dyn else memref_d.dim(value, arith.ConstantOp(ir.IndexType.get(), pos).result))
        kept_shape.append(size)
        kept_strides.append(strides[pos])
        exprs.append(ir.AffineDimExpr.get(d - k) if d is not None else expr)
    new_map = ir.AffineMap.get(m.n_dims - k, 0, exprs)
    if len(kept_shape) == t.rank:  # a broadcast operand: the whole of it in every row
        return value, new_map
    layout = ir.StridedLayoutAttr.get(ir.ShapedType.get_dynamic_stride_or_offset(), kept_strides)
    result_type = ir.MemRefType.get(kept_shape, t.element_type, layout, t.memory_space)
    view = memref_d.subview(value, offsets, sizes, [1] * len(offsets), result_type=result_type)
    return view, new_map


def _fuse_group(ops: list, k: int, parallel: bool = False) -> None:
    """Move `ops` into one loop nest over their first `k` dims, placed where the last op was;
    each op works on the row's subviews of its operands. `parallel`: the nest is one
    `scf.parallel` (rows are independent), which later stages spread over threads."""
    from mlir.dialects import linalg, scf

    index = ir.IndexType.get()
    last = ops[-1].op
    with last.location:
        ip = ir.InsertionPoint(last)
        ivs, loops = [], []
        if parallel:
            with ip:
                constant = lambda v: arith.ConstantOp(index, v).result
                loop = scf.ParallelOp([], [constant(0)] * k, [constant(n) for n in ops[0].sizes[:k]],
                                      [constant(1)] * k, [])
            block = loop.regions[0].blocks.append(*([index] * k))
            with ir.InsertionPoint(block):
                yield_op = scf.ReduceOp([], 0)
            ivs = list(block.arguments)
        for size in ops[0].sizes[:k] if not parallel else []:
            with ip:
                loop = scf.ForOp(arith.ConstantOp(index, 0).result, arith.ConstantOp(index, size).result,
                                 arith.ConstantOp(index, 1).result)
                yield_op = None
            with ir.InsertionPoint(loop.body):
                yield_op = scf.YieldOp([])
            loops.append(loop)
            ivs.append(loop.induction_variable)
            ip = ir.InsertionPoint(yield_op)
        for o in ops:
            op = o.op
            op.move_before(yield_op)
            with ir.InsertionPoint(op):
                new_maps = []
                for i, (v, m) in enumerate(zip(o.operands, o.maps)):
                    if m is None:  # linalg.fill's value
                        continue
                    if not isinstance(v.type, ir.MemRefType):  # a scalar operand: map () -> ()
                        new_maps.append(ir.AffineMap.get(m.n_dims - k, 0, []))
                        continue
                    view, new_map = _sliced(v, m, ivs, k)
                    op.operands[i] = view
                    new_maps.append(new_map)
                if op.name == "linalg.generic":
                    op.attributes["indexing_maps"] = ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in new_maps])
                    iterators = ir.ArrayAttr(op.attributes["iterator_types"])
                    op.attributes["iterator_types"] = ir.ArrayAttr.get([iterators[j] for j in range(k, len(iterators))])
                    _renumber_indices(op, ivs, k)


def _renumber_indices(op, ivs: list, k: int) -> None:
    """`linalg.index d` in the body of an op whose first `k` dims became the loops `ivs`."""
    from mlir.dialects import linalg

    found = []

    def collect(inner):
        if inner.name == "linalg.index":
            found.append(inner)
        return ir.WalkResult.ADVANCE

    op.walk(collect)
    for inner in found:
        d = ir.IntegerAttr(inner.attributes["dim"]).value
        if d < k:
            inner.results[0].replace_all_uses_with(ivs[d])
            inner.erase()
        else:
            inner.attributes["dim"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), d - k)


def fuse_rows_in_parallel(module: ir.Module) -> None:
    """`fuse_rows` with each row loop nest an `scf.parallel` (several threads)."""
    fuse_rows(module, parallel=True)


def fuse_rows(module: ir.Module, parallel: bool = False) -> None:
    """Run consecutive linalg ops that share their leading parallel dims (a reduction over the
    last dim, the elementwise op reading its result, the fills of its accumulators) as one loop
    nest over those dims, each op on the row's subviews: softmax, layer norm and attention's
    max/sum/normalize then read a row while it is in L1 instead of streaming the whole tensor
    through the cache once per op. Legal when row r of every op only touches row r of the
    buffers the group writes (`_group_rows`)."""
    blocks = []

    def collect(op):
        for region in op.regions:
            for block in region.blocks:
                blocks.append(block)
        return ir.WalkResult.ADVANCE

    module.operation.walk(collect)
    groups = []
    for block in blocks:
        group: list = []
        for op in list(block.operations):
            op = getattr(op, "operation", op)
            if op.name in ("linalg.generic", "linalg.fill") and all(
                    isinstance(v.type, ir.MemRefType) for v in list(op.operands)[1 if op.name == "linalg.fill" else 0:]):
                row_op = _RowOp(op)
                if group and _group_rows(group + [row_op]):
                    group.append(row_op)
                    continue
                groups.append(group)
                group = [row_op] if row_op.max_rows else []
            elif op.name not in _ROW_NEUTRAL:
                groups.append(group)
                group = []
        groups.append(group)
    for group in groups:
        if len(group) >= 2 and any(o.op.name == "linalg.generic" for o in group):
            _fuse_group(group, _group_rows(group), parallel)
