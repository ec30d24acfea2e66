"""Contraction rules (mm, bmm, addmm, baddbmm) against eager on two shapes and every dtype
they support; half precision accumulates in f32 as eager does."""
import pytest
import torch

from helpers import check, compile_fn, make_input

aten = torch.ops.aten

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
          torch.int16, torch.int8, torch.uint8]
TOL = {torch.float16: 1e-2, torch.bfloat16: 5e-2}


def _eager_supports(fn, *shapes, dtype):
    try:
        fn(*[make_input(s, dtype) for s in shapes])
        return True
    except Exception:
        return False


CASES = {
    "aten.mm.default": (lambda a, b: aten.mm.default(a, b), [[(4, 8), (8, 5)], [(1, 3), (3, 7)]]),
    "aten.bmm.default": (lambda a, b: aten.bmm.default(a, b), [[(2, 4, 8), (2, 8, 5)], [(3, 1, 2), (3, 2, 6)]]),
    "aten.addmm.default": (lambda c, a, b: aten.addmm.default(c, a, b), [[(5,), (4, 8), (8, 5)], [(3, 6), (3, 2), (2, 6)]]),
    "aten.addmm.default-beta-alpha": (lambda c, a, b: aten.addmm.default(c, a, b, beta=2, alpha=3),
                                      [[(1, 5), (4, 8), (8, 5)], [(3, 1), (3, 2), (2, 6)]]),
    "aten.baddbmm.default": (lambda c, a, b: aten.baddbmm.default(c, a, b),
                             [[(2, 4, 5), (2, 4, 8), (2, 8, 5)], [(5,), (3, 2, 3), (3, 3, 5)]]),
}


def _params():
    for name, (fn, shapes) in CASES.items():
        for dtype in DTYPES:
            if _eager_supports(fn, *shapes[0], dtype=dtype):
                yield pytest.param(name, dtype, id=f"{name}-{str(dtype).replace('torch.', '')}")


@pytest.mark.parametrize("name,dtype", list(_params()))
def test_contraction(name, dtype):
    fn, shapes = CASES[name]
    n = len(shapes[0])
    inputs = [make_input(s, dtype, -2, 2, seed=i) for i, s in enumerate(shapes[0] + shapes[1])]
    tol = TOL.get(dtype)
    check(lambda *xs: (fn(*xs[:n]), fn(*xs[n:])), *inputs, name=name, atol=tol, rtol=tol)


def test_matmul_broadcasting_through_decomposition():
    check(torch.matmul, make_input((2, 1, 4, 8), torch.float32), make_input((3, 8, 5), torch.float32, seed=1))
    check(torch.matmul, make_input((4, 8), torch.float32), make_input((8,), torch.float32, seed=1))


def test_bool_matmul_is_rejected_like_eager():
    with pytest.raises(Exception, match="mm"):
        compile_fn(lambda a, b: aten.mm.default(a, b))(torch.ones(2, 2, dtype=torch.bool), torch.ones(2, 2, dtype=torch.bool))
