"""Shape ops over dynamic dimensions and run-time (SymInt) bounds: slicing, select, split/chunk,
flip, pad, squeeze, arange of a run-time length, and pooling over dynamic spatial dimensions. Each compiles once under `dynamic=True` in strict
mode (no eager fallback) and matches eager for every size tried. (Sizes avoid 0 and 1, which
Dynamo specializes into graphs of their own; tests/dynamic/test_dynamic_models.py covers those.)"""
import pytest
import torch
import torch._dynamo
import torch.nn.functional as F

from helpers import assert_same
from torch_mlir_backend.runtime import compilation_count

F32 = dict(atol=1e-6, rtol=1e-6)


def _sizes(*shapes_per_call):
    return list(shapes_per_call)


CASES = {
    "slice_from_1": (lambda x: x[:, 1:] * 2, _sizes([(3, 5)], [(4, 7)], [(2, 9)])),
    "slice_negative_bounds": (lambda x: x[:, -3:-1] + 1, _sizes([(3, 5)], [(4, 7)], [(2, 9)])),
    "slice_step_2": (lambda x: x[1:, ::2] + 1, _sizes([(3, 5)], [(4, 7)], [(5, 9)])),
    "slice_beyond_end": (lambda x: x[:, 2:100] + 1, _sizes([(3, 5)], [(4, 7)], [(2, 9)])),
    "slice_symint_end": (lambda x, y: x[:, : y.shape[1]] + y, _sizes([(3, 8), (3, 5)], [(4, 9), (4, 7)],
                                                                   [(2, 12), (2, 3)])),
    "select_last": (lambda x: x[:, -1] * 2, _sizes([(3, 5)], [(4, 7)], [(2, 9)])),
    "select_index_2": (lambda x: x[:, 2] * 2, _sizes([(3, 5)], [(4, 7)], [(2, 9)])),
    "chunk": (lambda x: torch.chunk(x, 2, dim=1)[1] * 2, _sizes([(3, 6)], [(4, 8)], [(2, 10)])),
    "split_symint_sizes": (lambda x: torch.split(x, [2, x.shape[1] - 2], dim=1)[1] * 2,
                           _sizes([(3, 6)], [(4, 8)], [(2, 10)])),
    "flip_two_dims": (lambda x: torch.flip(x, [0, 1]) + 1, _sizes([(3, 6)], [(4, 8)], [(2, 10)])),
    "pad_last_dim": (lambda x: torch.nn.functional.pad(x, (1, 2), value=0.5) + 1,
                     _sizes([(3, 6)], [(4, 8)], [(2, 10)])),
    "arange_of_dim": (lambda x: x + torch.arange(x.shape[1]), _sizes([(3, 6)], [(4, 8)], [(2, 10)])),
    "arange_step_2": (lambda x: x + torch.arange(1, x.shape[1] * 2 + 1, 2), _sizes([(3, 6)], [(4, 8)], [(2, 10)])),
    "squeeze_static_one": (lambda x: x.squeeze(1) + 1, _sizes([(3, 1, 4)], [(4, 1, 5)], [(2, 1, 9)])),
    "causal_mask_slice": (lambda x: x.masked_fill(torch.ones(64, 64, dtype=torch.bool).triu(1)[: x.shape[-2], : x.shape[-1]],
                                                  float("-inf")).softmax(-1),
                          _sizes([(2, 5, 5)], [(3, 9, 9)], [(4, 17, 17)])),
}

_IMAGES = _sizes([(2, 3, 9, 11)], [(3, 3, 16, 13)], [(2, 3, 7, 20)])
CASES.update({
    "max_pool2d_pad": (lambda x: F.max_pool2d(x, 3, 2, 1), _IMAGES),
    "max_pool2d_ceil_mode": (lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), _IMAGES),
    "max_pool2d_indices": (lambda x: F.max_pool2d(x, 2, return_indices=True), _IMAGES),
    "avg_pool2d_pad": (lambda x: F.avg_pool2d(x, 3, 2, 1), _IMAGES),
    "avg_pool2d_ceil_exclude_pad": (lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                                    _IMAGES),
    "adaptive_avg_pool2d_global": (lambda x: F.adaptive_avg_pool2d(x, 1), _IMAGES),
    "adaptive_max_pool2d_global": (lambda x: F.adaptive_max_pool2d(x, 1), _IMAGES),
})


@pytest.mark.parametrize("name", sorted(CASES))
def test_dynamic_shape_op_compiles_once_and_matches_eager(name):
    fn, calls = CASES[name]
    torch._dynamo.reset()
    start = compilation_count()
    compiled = torch.compile(fn, backend="torch_mlir", dynamic=True, options={"strict": True})
    torch.manual_seed(0)
    for shapes in calls:
        xs = [torch.randn(*s) for s in shapes]
        assert_same(compiled(*xs), fn(*xs), f"{name}{shapes}", xs, **F32)
    assert compilation_count() - start == 1, "expected one compilation for every size"
    torch._dynamo.reset()
