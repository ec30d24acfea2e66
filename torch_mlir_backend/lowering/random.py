"""Random-number ops: rand, randn, randint, normal, uniform, exponential, randperm and their
`_like` forms (dropout and bernoulli reach `rand` through PyTorch's decompositions of
`native_dropout` / `bernoulli`).

Generation is counter-based, so it is one parallel `linalg.generic`: element `i` of a call is
`splitmix64(key + i * golden)`, whose top bits become a uniform float in [0, 1). The key changes
on every call: a module-level `memref.global` counts the calls of each compiled graph (the
compiled code's own state, loaded and bumped at the start of the op), and is mixed with a base
seed drawn from torch's default generator when the graph is compiled (so `torch.manual_seed`
before compiling makes a run reproducible) and a per-op stream number (two rand ops of one graph
differ). splitmix64 is the finalizer of Java's SplittableRandom and the seeding generator of
xoshiro; its outputs over consecutive counters pass BigCrush.

Element i of a normal draw uses counters 2i and 2i+1 (Box-Muller on two uniforms); randint
reduces 64 random bits modulo the range (bias below range / 2**64); randperm sorts random 64-bit
keys and returns the sorting permutation. Bits cannot match eager's generator: tests check
shape, range and statistics.
"""
from __future__ import annotations

import torch
from torch._subclasses.fake_tensor import unset_fake_temporarily

from mlir import ir
from mlir.dialects import arith, linalg, math as math_d, memref

from . import builders as b
from .registry import LoweringContext, lowers
from ..types import INT_DTYPES

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

def _stream_key(ctx: LoweringContext) -> ir.Value:
    """The per-call key of this op: the graph's call counter mixed with a base seed and the op's
    stream number."""
    stream = ctx.state.setdefault("rand_streams", 0)
    ctx.state["rand_streams"] = stream + 1
    # Drawn from torch's generator at compile time: reproducible under torch.manual_seed.
    # Lowering runs under AOTAutograd's FakeTensorMode; draw a real number.
    with unset_fake_temporarily():
        base_seed = int(torch.randint(0, 2 ** 62, (), dtype=torch.int64))
    calls = _call_counter()
    key = arith.AddIOp(arith.MulIOp(calls, _i64(_GOLDEN)).result,
                       _i64(base_seed + stream * _MIX1)).result
    return _splitmix64(key)


def _random_generic(ctx: LoweringContext, sizes, inputs, draws_per_element: int, element) -> ir.Value:
    """One parallel generic over `sizes` producing the result dtype; `element(draw, *input_elems)`
    builds an element, where `draw(j)` gives the j-th (< draws_per_element) 64 random bits of it.
    `inputs` are tensors broadcast to `sizes` (the result's shape)."""
    spec = ctx.out_spec
    key = _stream_key(ctx)
    rank = len(sizes)
    i64 = ir.IntegerType.get_signless(64)
    out_shape = [s if isinstance(s, int) else None for s in sizes]

    def body(*args):
        linear = b.index_constant(0)
        for d in range(rank):
            iv = linalg.IndexOp(ir.IntegerAttr.get(i64, d)).result
            linear = arith.AddIOp(arith.MulIOp(linear, b.as_index(sizes[d])).result, iv).result
        counter = arith.MulIOp(arith.IndexCastOp(i64, linear).result, _i64(draws_per_element)).result

        def draw(j):
            c = arith.AddIOp(counter, _i64(j)).result
            return _splitmix64(arith.AddIOp(key, arith.MulIOp(c, _i64(_GOLDEN)).result).result)

        return element(draw, *args[:-1])

    maps = [b.broadcast_map(b.static_shape(v), out_shape) for v in inputs] + [b.identity_map(rank)]
    return b.generic(list(inputs), [b.empty(sizes, spec.dtype)], maps, ["parallel"] * rank, body)


def _unit(bits_value: ir.Value, dtype: torch.dtype) -> ir.Value:
    """A uniform [0, 1) float of `dtype` (f32 or f64) from 64 random bits: the top significand-
    width bits, scaled exactly."""
    bits = 53 if dtype == torch.float64 else 24
    top = arith.ShRUIOp(bits_value, _i64(64 - bits)).result
    value = arith.UIToFPOp(b.element_type(dtype), top).result
    return arith.MulFOp(value, b.constant(2.0 ** -bits, dtype)).result


def _uniform(ctx, sizes) -> ir.Value:
    """A tensor of `sizes` of independent uniform [0, 1) values of the result dtype."""
    spec = ctx.out_spec

    def element(draw):
        if spec.dtype in (torch.float64, torch.float32):
            return _unit(draw(0), spec.dtype)
        # Half types: their own significand width, so the value stays exact and below 1.
        bits = _BITS[spec.dtype]
        top = arith.ShRUIOp(draw(0), _i64(64 - bits)).result
        value = arith.MulFOp(arith.UIToFPOp(b.element_type(torch.float32), top).result,
                             b.constant(2.0 ** -bits, torch.float32)).result
        return b.convert(value, torch.float32, spec.dtype)

    return _random_generic(ctx, sizes, [], 1, element)


def _standard_normal(draw, compute: torch.dtype) -> ir.Value:
    """Box-Muller: sqrt(-2 log(1 - u1)) * cos(2 pi u2), in f64 or f32."""
    u1 = _unit(draw(0), compute)
    u2 = _unit(draw(1), compute)
    one = b.constant(1.0, compute)
    radius = math_d.SqrtOp(arith.MulFOp(b.constant(-2.0, compute),
                                        math_d.LogOp(arith.SubFOp(one, u1).result).result).result).result
    angle = arith.MulFOp(b.constant(6.283185307179586, compute), u2).result
    return arith.MulFOp(radius, math_d.CosOp(angle).result).result


def _compute_of(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _normal(ctx, sizes, mean, std, inputs=(), in_dtypes=()) -> ir.Value:
    """mean + std * N(0, 1); `mean`/`std` are Python numbers or, named by an int, the index of a
    tensor in `inputs` (broadcast to `sizes`)."""
    out = ctx.out_spec.dtype
    compute = _compute_of(out)

    def element(draw, *elems):
        def operand(v):
            if isinstance(v, tuple):  # ("input", i)
                return b.convert(elems[v[1]], in_dtypes[v[1]], compute)
            return b.scalar_operand(v, compute)

        z = _standard_normal(draw, compute)
        value = arith.AddFOp(operand(mean), arith.MulFOp(operand(std), z).result).result
        return b.convert(value, compute, out)

    return _random_generic(ctx, sizes, list(inputs), 2, element)


def _sizes(size) -> list:
    return [b.as_index(s) if isinstance(s, ir.Value) else s for s in size]


@lowers(aten.rand.default, dtypes=RAND_DTYPES)
def rand(ctx, size, dtype=None, layout=None, device=None, pin_memory=None):
    return _uniform(ctx, _sizes(size))


@lowers(aten.rand_like.default, dtypes=RAND_DTYPES)
def rand_like(ctx, x, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return _uniform(ctx, b.sizes_of(x))


@lowers(aten.randn.default, dtypes=RAND_DTYPES)
def randn(ctx, size, dtype=None, layout=None, device=None, pin_memory=None):
    return _normal(ctx, _sizes(size), 0.0, 1.0)


@lowers(aten.randn_like.default, dtypes=RAND_DTYPES)
def randn_like(ctx, x, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return _normal(ctx, b.sizes_of(x), 0.0, 1.0)


def _static_float(ctx, value, what) -> float:
    ctx.require(isinstance(value, (int, float)) and not isinstance(value, bool),
                f"{what} must be a compile-time number, got {value!r}")
    return float(value)


@lowers(aten.normal.float_float, dtypes=RAND_DTYPES)
def normal_float_float(ctx, mean, std, size, generator=None, dtype=None, layout=None, device=None,
                       pin_memory=None):
    ctx.require(generator is None, "an explicit generator is not supported")
    ctx.require(_static_float(ctx, std, "std") >= 0, f"normal expects std >= 0.0, got {std}")
    return _normal(ctx, _sizes(size), _static_float(ctx, mean, "mean"), float(std))


@lowers(aten.normal.Tensor_float, dtypes=RAND_DTYPES)
def normal_tensor_float(ctx, mean, std=1.0, generator=None):
    ctx.require(generator is None, "an explicit generator is not supported")
    ctx.require(_static_float(ctx, std, "std") >= 0, f"normal expects std >= 0.0, got {std}")
    return _normal(ctx, b.out_sizes(ctx.out_spec, [mean]), ("input", 0), float(std), [mean],
                   [ctx.in_specs[0].dtype])


@lowers(aten.normal.float_Tensor, dtypes=RAND_DTYPES)
def normal_float_tensor(ctx, mean, std, generator=None):
    # A negative std is not checked (eager checks it on the data): it flips the sign of the noise.
    ctx.require(generator is None, "an explicit generator is not supported")
    return _normal(ctx, b.out_sizes(ctx.out_spec, [std]), _static_float(ctx, mean, "mean"), ("input", 0),
                   [std], [ctx.in_specs[1].dtype])


@lowers(aten.normal.Tensor_Tensor, dtypes=RAND_DTYPES)
def normal_tensor_tensor(ctx, mean, std, generator=None):
    ctx.require(generator is None, "an explicit generator is not supported")
    return _normal(ctx, b.out_sizes(ctx.out_spec, [mean, std]), ("input", 0), ("input", 1), [mean, std],
                   [ctx.in_specs[0].dtype, ctx.in_specs[1].dtype])


@lowers(aten.normal_functional.default, dtypes=RAND_DTYPES)
def normal_functional(ctx, x, mean=0.0, std=1.0, generator=None):
    ctx.require(generator is None, "an explicit generator is not supported")
    ctx.require(_static_float(ctx, std, "std") >= 0, f"normal expects std >= 0.0, got {std}")
    return _normal(ctx, b.sizes_of(x), _static_float(ctx, mean, "mean"), float(std))


@lowers(aten.uniform.default, dtypes=RAND_DTYPES)
def uniform(ctx, x, low=0.0, high=1.0, generator=None):
    """low + (high - low) * U[0, 1), as eager's uniform_ (which may round up to `high`)."""
    ctx.require(generator is None, "an explicit generator is not supported")
    lo, hi = _static_float(ctx, low, "from"), _static_float(ctx, high, "to")
    ctx.require(lo <= hi, f"uniform expects from <= to, got from={lo} to={hi}")
    out = ctx.out_spec.dtype
    compute = _compute_of(out)

    def element(draw):
        u = _unit(draw(0), compute)
        value = arith.AddFOp(b.constant(lo, compute), arith.MulFOp(b.constant(hi - lo, compute), u).result).result
        return b.convert(value, compute, out)

    return _random_generic(ctx, b.sizes_of(x), [], 1, element)


@lowers(aten.exponential.default, dtypes=RAND_DTYPES)
def exponential(ctx, x, lambd=1.0, generator=None):
    """-log(1 - U[0, 1)) / lambd: exponentially distributed with rate `lambd`."""
    ctx.require(generator is None, "an explicit generator is not supported")
    rate = _static_float(ctx, lambd, "lambd")
    ctx.require(rate > 0, f"exponential_ expects lambd > 0.0, but found lambd={rate}")
    out = ctx.out_spec.dtype
    compute = _compute_of(out)

    def element(draw):
        u = _unit(draw(0), compute)
        log = math_d.Log1pOp(arith.NegFOp(u).result).result
        return b.convert(arith.DivFOp(log, b.constant(-rate, compute)).result, compute, out)

    return _random_generic(ctx, b.sizes_of(x), [], 1, element)


RANDINT_DTYPES = RAND_DTYPES + INT_DTYPES


def _randint(ctx, low, high, sizes) -> ir.Value:
    """Uniform integers in [low, high): 64 random bits modulo the range."""
    for v, what in ((low, "low"), (high, "high")):
        ctx.require(isinstance(v, int) and not isinstance(v, bool), f"{what} must be a compile-time integer")
    ctx.require(low < high, f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    out = ctx.out_spec.dtype

    def element(draw):
        offset = arith.RemUIOp(draw(0), _i64(high - low)).result
        return b.convert(arith.AddIOp(offset, _i64(low)).result, torch.int64, out)

    return _random_generic(ctx, sizes, [], 1, element)


@lowers(aten.randint.default, dtypes=RANDINT_DTYPES)
def randint(ctx, high, size, dtype=None, layout=None, device=None, pin_memory=None):
    return _randint(ctx, 0, high, _sizes(size))


@lowers(aten.randint.low, dtypes=RANDINT_DTYPES)
def randint_low(ctx, low, high, size, dtype=None, layout=None, device=None, pin_memory=None):
    return _randint(ctx, low, high, _sizes(size))


@lowers(aten.randint_like.default, dtypes=RANDINT_DTYPES)
def randint_like(ctx, x, high, dtype=None, layout=None, device=None, pin_memory=None, memory_format=None):
    return _randint(ctx, 0, high, b.sizes_of(x))


@lowers(aten.randint_like.low_dtype, dtypes=RANDINT_DTYPES)
def randint_like_low(ctx, x, low, high, dtype=None, layout=None, device=None, pin_memory=None,
                     memory_format=None):
    return _randint(ctx, low, high, b.sizes_of(x))


@lowers(aten.randperm.default, dtypes=RANDINT_DTYPES)
def randperm(ctx, n, dtype=None, layout=None, device=None, pin_memory=None):
    """The permutation that sorts n random 64-bit keys (uniform unless two keys collide, with
    probability about n**2 / 2**65)."""
    from .sorting import sort_along

    n = ctx.static_int(n, "n")
    ctx.require(n >= 0, f"n must be non-negative, got {n}")
    out = ctx.out_spec.dtype
    if out != torch.int64 and out in INT_DTYPES:
        ctx.require(n - 1 <= torch.iinfo(out).max, f"n={n} does not fit {out}")
    if n == 0:
        return b.empty([0], out)
    key_ctx = LoweringContext(ctx.op_name, ctx.target, ctx.in_specs,
                              [type(ctx.out_spec)((n,), torch.int64)], ctx.location, ctx.state)
    keys = _random_generic(key_ctx, [n], [], 1, lambda draw: draw(0))
    _, perm = sort_along(keys, 0, torch.int64, False)
    return b.cast_tensor(perm, torch.int64, out)
