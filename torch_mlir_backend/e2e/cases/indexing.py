"""Indexing, scatter and miscellaneous-op cases reached through decompositions: index_put forms
(non-leading index tensors, broadcasting index shapes, bool masks, bool tensors), put,
index_reduce, as_strided_scatter/copy, segment_reduce, addbmm, dist/cdist/pdist, bilinear,
grid_sample (2-D and 3-D), anti-aliased bilinear resize, pooling an empty batch."""
import torch
import torch.nn.functional as F

from ._util import fn_case, inputs, rand, randint

aten = torch.ops.aten


def _const(value):
    return lambda: value.clone()


def _assign_columns(x, i, v):
    y = x.clone()
    y[:, i] = v
    return y


def _add_at_broadcast(x, rows, cols, v):
    y = x.clone()
    y[rows, cols] += v
    return y


def _mask_rows(x, mask, v):
    y = x.clone()
    y[mask] = v
    return y


fn_case("IndexPutModule_nonLeadingIndex", _assign_columns,
        inputs(rand(3, 5, 4), _const(torch.tensor([4, 0, 2])), rand(3, 3, 4)))
fn_case("IndexPutModule_broadcastIndexShapes", _add_at_broadcast,
        inputs(rand(4, 6), _const(torch.tensor([[0], [3]])), _const(torch.tensor([1, 5, 2])), rand(2, 3)))
fn_case("IndexPutModule_boolMaskRows", _mask_rows,
        inputs(rand(5, 3), _const(torch.tensor([True, False, False, True, True])), rand(3)))
fn_case("IndexPutModule_boolTensor", lambda x, i, v: aten.index_put.default(x, [None, i], v),
        inputs(lambda: torch.rand(3, 4) > 0.5, _const(torch.tensor([1, 3])), lambda: torch.rand(3, 2) > 0.5))
fn_case("PutModule_accumulate", lambda x, i, s: x.put(i, s, accumulate=True),
        inputs(rand(3, 4), _const(torch.tensor([0, 5, 5, -1])), rand(4)))
fn_case("IndexReduceModule_prod", lambda x, i, s: x.index_reduce(0, i, s, "prod"),
        inputs(rand(4, 3), _const(torch.tensor([0, 2, 0, 3, 0])), rand(5, 3)))
fn_case("IndexReduceModule_meanExcludeSelf", lambda x, i, s: x.index_reduce(1, i, s, "mean", include_self=False),
        inputs(rand(3, 4), _const(torch.tensor([1, 1, 3])), rand(3, 3)))
fn_case("IndexReduceModule_amaxI64", lambda x, i, s: x.index_reduce(0, i, s, "amax"),
        inputs(randint(4, 2, low=-5, high=5), _const(torch.tensor([3, 0, 3])), randint(3, 2, low=-5, high=5)))
fn_case("IndexReduceModule_aminExcludeSelf", lambda x, i, s: x.index_reduce(0, i, s, "amin", include_self=False),
        inputs(rand(4, 2), _const(torch.tensor([2, 2, 1])), rand(3, 2)))
fn_case("AsStridedScatterModule_basic", lambda x, s: torch.as_strided_scatter(x, s, (2, 2), (1, 3), 1),
        inputs(rand(3, 3), rand(2, 2)))
fn_case("AsStridedCopyModule_basic", lambda x: aten.as_strided_copy.default(x, (2, 3), (1, 2), 1), inputs(rand(4, 4)))
fn_case("SegmentReduceModule_meanLengths", lambda d, n: torch.segment_reduce(d, "mean", lengths=n),
        inputs(rand(6, 2), _const(torch.tensor([1, 0, 3, 2]))))
fn_case("SegmentReduceModule_maxOffsetsInitial", lambda d, o: torch.segment_reduce(d, "max", offsets=o, initial=0.25),
        inputs(rand(5), _const(torch.tensor([0, 2, 2, 5]))))
fn_case("AddbmmModule_basic", lambda b, x, y: torch.addbmm(b, x, y, beta=0.5, alpha=2.0),
        inputs(rand(3, 5), rand(4, 3, 6), rand(4, 6, 5)), atol=1e-5, rtol=1e-5)
fn_case("DistModule_p3", lambda x, y: torch.dist(x, y, 3), inputs(rand(4, 5), rand(5)), atol=1e-5, rtol=1e-5)
fn_case("CdistModule_batched", lambda x, y: torch.cdist(x, y), inputs(rand(2, 5, 3), rand(2, 4, 3)),
        atol=1e-5, rtol=1e-5)
fn_case("PdistModule_p1", lambda x: F.pdist(x, p=1), inputs(rand(6, 4)), atol=1e-5, rtol=1e-5)
fn_case("BilinearModule_withBias", lambda a, c, w, bias: F.bilinear(a, c, w, bias),
        inputs(rand(4, 3), rand(4, 5), rand(2, 3, 5), rand(2)), atol=1e-5, rtol=1e-5)
fn_case("GridSampleModule_bilinearZeros", lambda x, g: F.grid_sample(x, g, align_corners=False),
        inputs(rand(2, 3, 6, 5), rand(2, 4, 4, 2, low=-1.1, high=1.1)), atol=1e-5, rtol=1e-5)
fn_case("GridSampleModule_nearestReflection",
        lambda x, g: F.grid_sample(x, g, mode="nearest", padding_mode="reflection", align_corners=True),
        inputs(rand(1, 2, 5, 5), rand(1, 3, 6, 2, low=-1.3, high=1.3)), atol=1e-5, rtol=1e-5)
fn_case("UpsampleBilinearAntialiasModule_down", lambda x: F.interpolate(x, size=(3, 5), mode="bilinear", antialias=True),
        inputs(rand(1, 2, 9, 12)), atol=1e-5, rtol=1e-5)
fn_case("AdaptiveAvgPool1dModule_emptyBatch", lambda x: F.adaptive_avg_pool1d(x, 4), inputs(rand(0, 3, 8)))
fn_case("GridSample3dModule_trilinearBorder",
        lambda x, g: F.grid_sample(x, g, padding_mode="border", align_corners=False),
        inputs(rand(1, 2, 3, 4, 5), rand(1, 2, 3, 2, 3, low=-1.2, high=1.2)), atol=1e-5, rtol=1e-5)
