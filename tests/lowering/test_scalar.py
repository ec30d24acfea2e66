"""SymInt arithmetic rules (lowering/scalar.py) against Python's own integer operators, JIT-run
on i64 arguments (negative operands included: floordiv/remainder round toward -inf), and their
compile-time folding when both operands are constants."""
import ctypes
import operator

import pytest
import torch

from mlir import ir
from mlir.dialects import func
from mlir.execution_engine import ExecutionEngine
from mlir.passmanager import PassManager

from torch_mlir_backend.lowering.registry import LOWERINGS, LoweringContext

aten = torch.ops.aten

CASES = [
    (aten.add.int, operator.add), (aten.sub.int, operator.sub), (aten.mul.int, operator.mul),
    (aten.floordiv.int, operator.floordiv), (aten.remainder.int, operator.mod),
    (aten.eq.int, operator.eq), (aten.ne.int, operator.ne), (aten.lt.int, operator.lt),
    (aten.le.int, operator.le), (aten.gt.int, operator.gt), (aten.ge.int, operator.ge),
]
PAIRS = [(7, 2), (-7, 2), (7, -2), (-7, -2), (6, 3), (0, 5), (5, 5)]


def _rule(target):
    from torch_mlir_backend.importers.fx_importer import mlir_op_name

    return LOWERINGS[mlir_op_name(target)]


def _jit_binary(target):
    """A JIT-compiled `f(a: i64, b: i64) -> i64` applying the rule (booleans widened to i64)."""
    ctx = ir.Context()
    with ctx, ir.Location.unknown():
        module = ir.Module.create()
        i64 = ir.IntegerType.get_signless(64)
        with ir.InsertionPoint(module.body):
            fn = func.FuncOp("f", ir.FunctionType.get([i64, i64], [i64]))
            fn.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
            block = fn.add_entry_block()
            with ir.InsertionPoint(block):
                lctx = LoweringContext("", target, [None, None], [None], ir.Location.unknown())
                from torch_mlir_backend.lowering.scalar import as_i64

                result = _rule(target).fn(lctx, block.arguments[0], block.arguments[1])
                func.ReturnOp([as_i64(result)])
        PassManager.parse("builtin.module(convert-arith-to-llvm,convert-func-to-llvm,"
                          "reconcile-unrealized-casts)").run(module.operation)
        engine = ExecutionEngine(module, opt_level=0)
    return ctx, engine


@pytest.mark.parametrize("target,python_op", CASES, ids=[str(t) for t, _ in CASES])
def test_runtime_int_op_matches_python(target, python_op):
    ctx, engine = _jit_binary(target)
    for a, b in PAIRS:
        out = ctypes.c_int64()
        engine.invoke("f", ctypes.pointer(ctypes.c_int64(a)), ctypes.pointer(ctypes.c_int64(b)),
                      ctypes.pointer(out))
        assert out.value == int(python_op(a, b)), (target, a, b)


@pytest.mark.parametrize("target,python_op", CASES, ids=[str(t) for t, _ in CASES])
def test_constant_int_op_folds_in_python(target, python_op):
    lctx = LoweringContext("", target, [None, None], [None], None)
    for a, b in PAIRS:
        assert _rule(target).fn(lctx, a, b) == python_op(a, b)


def test_constant_division_by_zero_is_rejected():
    from torch_mlir_backend.errors import UnsupportedOpError

    lctx = LoweringContext("", aten.floordiv.int, [None, None], [None], None)
    with pytest.raises(UnsupportedOpError, match="division by zero"):
        _rule(aten.floordiv.int).fn(lctx, 3, 0)


def test_sym_size_and_sym_numel_in_a_symbolic_graph():
    """aten.sym_size.int / aten.sym_numel reach the rules through a make_fx symbolic trace."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from torch_mlir_backend.backend import compile_fx_graph
    from torch_mlir_backend.decompositions import decomposition_table

    def fn(x):
        n = x.numel()
        return x.reshape(n // x.shape[1], x.shape[1]) * 2.0, x.new_zeros(n)

    x = torch.randn(3, 4, 5)
    gm = make_fx(fn, decomposition_table=decomposition_table(), tracing_mode="symbolic")(x)
    ops = {str(n.target) for n in gm.graph.nodes if n.op == "call_function"}
    assert "aten.sym_size.int" in ops or "aten.sym_numel.default" in ops, ops
    compiled = compile_fx_graph(gm, [x])
    for shape in [(3, 4, 5), (2, 7, 3), (5, 1, 2)]:
        x = torch.randn(shape)
        got = compiled([x])
        want = fn(x)
        torch.testing.assert_close(got[0], want[0], atol=0, rtol=0)
        torch.testing.assert_close(got[1], want[1], atol=0, rtol=0)
