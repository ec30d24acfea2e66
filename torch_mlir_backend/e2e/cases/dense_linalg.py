"""Dense linear algebra and FFT cases: ops whose rule calls ATen's kernel from inside the compiled
graph (lowering/extern.py), each next to generated code so the boundary is crossed both ways."""
import torch

from ._util import fn_case, inputs, rand


def _spd(n, batch=(), dtype=torch.float32):
    def make():
        a = torch.rand(*batch, n, n, dtype=torch.float64) * 2 - 1
        return (a @ a.mT + n * torch.eye(n, dtype=torch.float64)).to(dtype)
    return make


_CASES = {
    "Inverse": (lambda a, b: torch.linalg.inv(a * 1.5) @ b + 1, lambda d: inputs(_spd(5, dtype=d), rand(5, 3, dtype=d))),
    "Solve": (lambda a, b: torch.linalg.solve(a, b).relu(), lambda d: inputs(_spd(4, (2,), d), rand(2, 4, 3, dtype=d))),
    "Cholesky": (lambda a: torch.linalg.cholesky(a).sum(-1), lambda d: inputs(_spd(6, dtype=d))),
    "CholeskySolve": (lambda a, b: torch.cholesky_solve(b, torch.linalg.cholesky(a)),
                      lambda d: inputs(_spd(4, dtype=d), rand(4, 2, dtype=d))),
    "Det": (lambda a: torch.linalg.det(a + 0.5), lambda d: inputs(rand(3, 4, 4, dtype=d))),
    "Slogdet": (lambda a: torch.linalg.slogdet(a)[1] * 2, lambda d: inputs(rand(4, 4, dtype=d))),
    "Qr": (lambda a: torch.linalg.qr(a)[1].abs(), lambda d: inputs(rand(6, 4, dtype=d))),
    "Svdvals": (lambda a: torch.linalg.svdvals(a) + 1, lambda d: inputs(rand(5, 3, dtype=d))),
    "Eigvalsh": (lambda a: torch.linalg.eigvalsh(a).exp(), lambda d: inputs(_spd(4, dtype=d))),
    "LuSolve": (lambda a, b: torch.linalg.lu_solve(*torch.linalg.lu_factor(a), b),
                lambda d: inputs(_spd(4, dtype=d), rand(4, 2, dtype=d))),
    "SolveTriangular": (lambda a, b: torch.linalg.solve_triangular(a.tril() + 3 * torch.eye(4, dtype=a.dtype), b, upper=False),
                        lambda d: inputs(rand(4, 4, dtype=d), rand(4, 3, dtype=d))),
    "MatrixExp": (lambda a: torch.linalg.matrix_exp(a * 0.3), lambda d: inputs(rand(2, 3, 3, dtype=d))),
    "Pinv": (lambda a: torch.linalg.pinv(a), lambda d: inputs(rand(5, 3, dtype=d))),
    "RfftAbs": (lambda a: torch.fft.rfft(a * 2).abs(), lambda d: inputs(rand(3, 16, dtype=d))),
    "IrfftRfft": (lambda a: torch.fft.irfft(torch.fft.rfft(a), n=16) - a, lambda d: inputs(rand(2, 16, dtype=d))),
    "Histogramdd": (lambda a: torch.histogramdd(a, bins=[3, 4])[0], lambda d: inputs(rand(20, 2, dtype=d))),
}
for _name, (_fn, _make) in _CASES.items():
    for _dtype, _suffix in ((torch.float32, "f32"), (torch.float64, "f64")):
        tol = 1e-4 if _dtype == torch.float32 else 1e-9
        fn_case(f"DenseLinalg{_name}Module_{_suffix}", _fn, _make(_dtype), atol=tol, rtol=tol)
