"""Contraction cases: mm, bmm, addmm, matmul broadcasting, linear."""
import torch

from ..registry import conformance_case
from ._util import fn_case, inputs, rand, randint

fn_case("MmModule_basic", torch.mm, inputs(rand(4, 8), rand(8, 5)))
fn_case("MmModule_double", torch.mm, inputs(rand(4, 8, dtype=torch.float64), rand(8, 5, dtype=torch.float64)))
fn_case("MmModule_int64", torch.mm, inputs(randint(4, 8), randint(8, 5)))
fn_case("BmmModule_basic", torch.bmm, inputs(rand(3, 4, 8), rand(3, 8, 5)))
fn_case("AddmmModule_basic", torch.addmm, inputs(rand(5), rand(4, 8), rand(8, 5)))
fn_case("AddmmModule_betaAlpha", lambda b, x, y: torch.addmm(b, x, y, beta=0.5, alpha=2.0), inputs(rand(4, 5), rand(4, 8), rand(8, 5)))
fn_case("MatmulModule_3dBy2d", torch.matmul, inputs(rand(2, 4, 8), rand(8, 5)))
fn_case("MatmulModule_broadcastBatch", torch.matmul, inputs(rand(2, 1, 4, 8), rand(3, 8, 5)))
fn_case("MatmulModule_vector", torch.matmul, inputs(rand(4, 8), rand(8)))
fn_case("BaddbmmModule_basic", torch.baddbmm, inputs(rand(3, 4, 5), rand(3, 4, 8), rand(3, 8, 5)))
fn_case("MmModule_half", torch.mm, inputs(rand(4, 8, dtype=torch.float16), rand(8, 5, dtype=torch.float16)), atol=1e-2, rtol=1e-2)


@conformance_case("LinearModule_basic", inputs=inputs(rand(4, 16)))
def _linear():
    return torch.nn.Linear(16, 8)


@conformance_case("LinearModule_noBias3d", inputs=inputs(rand(2, 3, 16)))
def _linear_nobias():
    return torch.nn.Linear(16, 8, bias=False)
