"""Test helpers: compile with our backend and compare with eager PyTorch (explicit tolerances)."""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from torch_mlir_backend.e2e.compare import TOLERANCES, assert_same, describe, max_error  # noqa: F401

def compile_fn(fn: Callable, options: Optional[dict] = None, dynamic: bool = False) -> Callable:
    # Strict unless a test says otherwise: an op falling back to eager would make a comparison
    # with eager pass without testing our code.
    options = {"strict": True, **(options or {})}
    return torch.compile(fn, backend="torch_mlir", fullgraph=True, dynamic=dynamic, options=options)


def check(fn: Callable, *inputs: Any, name: Optional[str] = None, atol: Optional[float] = None,
          rtol: Optional[float] = None, options: Optional[dict] = None) -> float:
    """Compile `fn` with our backend, run it on `inputs` and compare with eager."""
    name = name or getattr(fn, "__name__", "fn")
    want = fn(*[x.clone() if isinstance(x, torch.Tensor) else x for x in inputs])
    got = compile_fn(fn, options)(*inputs)
    return assert_same(got, want, name, inputs, atol, rtol)


def make_input(shape, dtype: torch.dtype, low: float = -3, high: float = 3, seed: int = 0) -> torch.Tensor:
    """Deterministic test data of any dtype (bool: random bits; unsigned: non-negative)."""
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    if dtype.is_floating_point:
        return (torch.rand(shape, generator=g, dtype=torch.float64) * (high - low) + low).to(dtype)
    lo = max(0, int(low)) if dtype == torch.uint8 else int(low)
    return torch.randint(lo, int(high) + 1, shape, generator=g, dtype=dtype)


# An op no lowering rule can ever know: a user's custom op (torch.library), the typical reason a
# real model has an unsupported op. Tests of eager fallback, strict errors and explain() use it.
@torch.library.custom_op("mlir_test::opaque_cos", mutates_args=())
def opaque_cos(x: torch.Tensor) -> torch.Tensor:
    return torch.cos(x)


@opaque_cos.register_fake
def _opaque_cos_fake(x):
    return torch.empty_like(x)


opaque_cos.register_autograd(lambda ctx, grad: -grad * torch.sin(ctx.saved_tensors[0]),
                             setup_context=lambda ctx, inputs, output: ctx.save_for_backward(inputs[0]))

OPAQUE_OP = "mlir_test.opaque_cos.default"


def extern_kernels_called(fn: Callable, *inputs: Any) -> list:
    """The ATen overloads `fn`'s lowered module calls as extern kernels (lowering/extern.py),
    traced as the backend traces: Core ATen with our decompositions."""
    import json

    from mlir import ir

    from torch_mlir_backend.decompositions import decomposition_table
    from torch_mlir_backend.importers.fx_importer import FxImporter
    from torch_mlir_backend.lowering import lower_to_linalg
    from torch_mlir_backend.lowering.extern import MODULE_ATTRIBUTE

    gm = torch.fx.experimental.proxy_tensor.make_fx(fn, decomposition_table=decomposition_table(),
                                                    tracing_mode="fake")(*inputs)
    importer = FxImporter()
    importer.import_graph_module(gm, "main")
    linalg = lower_to_linalg(importer.module)
    if MODULE_ATTRIBUTE not in linalg.operation.attributes:
        return []
    with linalg.context:
        return [json.loads(ir.StringAttr(a).value)["op"]
                for a in ir.ArrayAttr(linalg.operation.attributes[MODULE_ATTRIBUTE])]
