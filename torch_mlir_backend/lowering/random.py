"""Random-number ops (`aten.rand`; dropout and bernoulli reach it through PyTorch's
decompositions of `native_dropout` / `bernoulli`).

Generation is counter-based, so it is one parallel `linalg.generic`: element `i` of a call is
`splitmix64(key + i * golden)`, whose top bits become a uniform float in [0, 1). The key changes
on every call: a module-level `memref.global` counts the calls of each compiled graph (the
compiled code's own state, loaded and bumped at the start of the op), and is mixed with a base
seed drawn from torch's default generator when the graph is compiled (so `torch.manual_seed`
before compiling makes a run reproducible) and a per-op stream number (two rand ops of one graph
differ). splitmix64 is the finalizer of Java's SplittableRandom and the seeding generator of
xoshiro; its outputs over consecutive counters pass BigCrush.
"""
from __future__ import annotations

import torch
from torch._subclasses.fake_tensor import unset_fake_temporarily

from mlir import ir
from mlir.dialects import arith, linalg, memref

from . import builders as b
from .registry import lowers

aten = torch.ops.aten

RAND_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_COUNTER = "__torch_mlir_rand_calls"
# Random bits kept per dtype: the significand width, so the scaled value is exact and < 1.
_BITS = {torch.float64: 53, torch.float32: 24, torch.float16: 11, torch.bfloat16: 8}


def _signed64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >= 1 << 63 else value


def _i64(value: int) -> ir.Value:
    return arith.ConstantOp(ir.IntegerType.get_signless(64), _signed64(value)).result


def _call_counter() -> ir.Value:
    """Load-and-increment the module's call counter (created on first use)."""
    i64 = ir.IntegerType.get_signless(64)
    counter_type = ir.MemRefType.get([], i64)
    func_op = ir.InsertionPoint.current.block.owner.operation
    while func_op.name != "func.func":
        func_op = func_op.parent
    module_body = func_op.parent.regions[0].blocks[0]
    if not any(getattr(op, "sym_name", None) is not None and
               ir.StringAttr(op.sym_name).value == _COUNTER for op in module_body.operations):
        with ir.InsertionPoint.at_block_begin(module_body):
            memref.GlobalOp(_COUNTER, ir.TypeAttr.get(counter_type), sym_visibility="private",
                            initial_value=ir.DenseElementsAttr.get_splat(
                                ir.RankedTensorType.get([], i64), ir.IntegerAttr.get(i64, 0)))
    ref = memref.GetGlobalOp(counter_type, _COUNTER).result
    calls = memref.LoadOp(ref, []).result
    memref.StoreOp(arith.AddIOp(calls, _i64(1)).result, ref, [])
    return calls


def _splitmix64(x: ir.Value) -> ir.Value:
    def xorshift(v, shift):
        return arith.XOrIOp(v, arith.ShRUIOp(v, _i64(shift)).result).result

    x = arith.MulIOp(xorshift(x, 30), _i64(_MIX1)).result
    x = arith.MulIOp(xorshift(x, 27), _i64(_MIX2)).result
    return xorshift(x, 31)


@lowers(aten.rand.default, dtypes=RAND_DTYPES)
def rand(ctx, size, dtype=None, layout=None, device=None, pin_memory=None):
    sizes = [b.as_index(s) if isinstance(s, ir.Value) else s for s in size]
    return _uniform(ctx, sizes)


@lowers(aten.rand_like.default, dtypes=RAND_DTYPES)
def rand_like(ctx, x, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return _uniform(ctx, b.sizes_of(x))


def _uniform(ctx, sizes) -> ir.Value:
    """A tensor of `sizes` of independent uniform [0, 1) values of the result dtype."""
    spec = ctx.out_spec
    stream = ctx.state.setdefault("rand_streams", 0)
    ctx.state["rand_streams"] = stream + 1
    # Drawn from torch's generator at compile time: reproducible under torch.manual_seed.
    # Lowering runs under AOTAutograd's FakeTensorMode; draw a real number.
    with unset_fake_temporarily():
        base_seed = int(torch.randint(0, 2 ** 62, (), dtype=torch.int64))
    calls = _call_counter()
    key = arith.AddIOp(arith.MulIOp(calls, _i64(_GOLDEN)).result,
                       _i64(base_seed + stream * _MIX1)).result
    key = _splitmix64(key)
    rank = spec.rank
    bits = _BITS[spec.dtype]
    i64 = ir.IntegerType.get_signless(64)
    compute = torch.float64 if spec.dtype == torch.float64 else torch.float32

    def body(_out):
        linear = b.index_constant(0)
        for d in range(rank):
            iv = linalg.IndexOp(ir.IntegerAttr.get(i64, d)).result
            linear = arith.AddIOp(arith.MulIOp(linear, b.as_index(sizes[d])).result, iv).result
        counter = arith.IndexCastOp(i64, linear).result
        x = _splitmix64(arith.AddIOp(key, arith.MulIOp(counter, _i64(_GOLDEN)).result).result)
        top = arith.ShRUIOp(x, _i64(64 - bits)).result
        value = arith.UIToFPOp(b.element_type(compute), top).result
        value = arith.MulFOp(value, b.constant(2.0 ** -bits, compute)).result
        return b.convert(value, compute, spec.dtype)

    init = b.empty(sizes, spec.dtype)
    return b.generic([], [init], [b.identity_map(rank)], ["parallel"] * rank, body)

