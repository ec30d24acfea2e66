"""Math functions reach the JIT (LLVM intrinsics or libm calls) for f32/f64, and f16/bf16
through f32: compared with eager torch."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest
import torch

from torch_mlir_backend.runtime import compile_linalg
from torch_mlir_backend.types import TensorSpec

ELEM = {torch.float32: "f32", torch.float64: "f64", torch.float16: "f16", torch.bfloat16: "bf16"}
TOL = {torch.float32: 2e-6, torch.float64: 1e-12, torch.float16: 1e-3, torch.bfloat16: 1e-2}

# name -> (MLIR op, arity, eager reference, input domain (low, high))
FUNCTIONS = {
    "exp": ("math.exp", 1, torch.exp, (-3, 3)),
    "log": ("math.log", 1, torch.log, (0.1, 5)),
    "log1p": ("math.log1p", 1, torch.log1p, (-0.5, 5)),
    "tanh": ("math.tanh", 1, torch.tanh, (-4, 4)),
    "erf": ("math.erf", 1, torch.erf, (-3, 3)),
    "sqrt": ("math.sqrt", 1, torch.sqrt, (0.1, 9)),
    "rsqrt": ("math.rsqrt", 1, torch.rsqrt, (0.1, 9)),
    "sin": ("math.sin", 1, torch.sin, (-6, 6)),
    "cos": ("math.cos", 1, torch.cos, (-6, 6)),
    "pow": ("math.powf", 2, torch.pow, (0.1, 3)),
    "atan2": ("math.atan2", 2, torch.atan2, (-3, 3)),
}


def elementwise(op, arity, elem, n):
    t = f"tensor<{n}x{elem}>"
    m = "affine_map<(d0) -> (d0)>"
    args = ", ".join(f"%a{i}: {t}" for i in range(arity))
    ins = ", ".join(f"%a{i}" for i in range(arity))
    bb = ", ".join(f"%x{i}: {elem}" for i in range(arity))
    operands = ", ".join(f"%x{i}" for i in range(arity))
    return f"""
func.func @main({args}) -> {t} {{
  %e = tensor.empty() : {t}
  %r = linalg.generic {{indexing_maps = [{", ".join([m] * (arity + 1))}], iterator_types = ["parallel"]}}
      ins({ins} : {", ".join([t] * arity)}) outs(%e : {t}) {{
  ^bb0({bb}, %o: {elem}):
    %s = {op} {operands} : {elem}
    linalg.yield %s : {elem}
  }} -> {t}
  return %r : {t}
}}
"""


@pytest.mark.parametrize("dtype", list(ELEM), ids=lambda d: ELEM[d])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_math_function(name, dtype):
    op, arity, ref, (lo, hi) = FUNCTIONS[name]
    n = 37
    g = compile_linalg(elementwise(op, arity, ELEM[dtype], n), [TensorSpec((n,), dtype)] * arity,
                       [TensorSpec((n,), dtype)])
    gen = torch.Generator().manual_seed(hash(name) % 1000)
    inputs = [(torch.rand(n, generator=gen, dtype=torch.float64) * (hi - lo) + lo).to(dtype) for _ in range(arity)]
    (r,) = g(*inputs)
    if dtype in (torch.float16, torch.bfloat16):
        expected = ref(*[x.float() for x in inputs]).to(dtype)  # computed in f32, rounded once
    else:
        expected = ref(*inputs)
    torch.testing.assert_close(r, expected, rtol=TOL[dtype], atol=TOL[dtype])
