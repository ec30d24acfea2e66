"""Cases for the op families of the op-coverage issue beyond elementwise: indexing (index_put,
scatter*, masked_fill, embedding_bag...), sort/topk/argsort, cumsum/cumprod, upsample, pad modes,
scaled_dot_product_attention, creation, shape (flip/roll/tril/triu/one_hot/unbind...), more
convolution/pooling/normalization variants, linear algebra (baddbmm, einsum, vector_norm), and
random ops compared through statistics (their bits cannot match eager's generator)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import conformance_case
from ._util import fn_case, inputs, rand, randint


def _mask(*shape, p=0.5):
    return lambda: torch.rand(*shape) < p


# --- indexing --------------------------------------------------------------------------------
fn_case("IndexPutModule_basic", lambda x, i, v: torch.index_put(x, (i,), v), inputs(rand(6, 3), randint(4, high=6), rand(4, 3)))
fn_case("IndexPutModule_accumulate", lambda x, i, v: torch.index_put(x, (i,), v, accumulate=True), inputs(rand(6, 3), randint(8, high=6), rand(8, 3)))
fn_case("IndexPutModule_2dIndices", lambda x, i, j, v: torch.index_put(x, (i, j), v), inputs(rand(5, 4), randint(3, high=5), randint(3, high=4), rand(3)))
fn_case("IndexTensorModule_2dIndices", lambda x, i, j: x[i, j], inputs(rand(5, 4), randint(2, 3, high=5), randint(2, 3, high=4)))
fn_case("IndexTensorModule_sliceThenIndex", lambda x, i: x[:, i], inputs(rand(5, 4), randint(3, high=4)))
fn_case("ScatterSrcModule_basic", lambda x, i, s: torch.scatter(x, 1, i, s), inputs(rand(3, 5), lambda: torch.argsort(torch.rand(3, 5), 1)[:, :3], rand(3, 3)))
fn_case("ScatterValueModule_basic", lambda x, i: torch.scatter(x, 0, i, 2.5), inputs(rand(4, 3), lambda: torch.argsort(torch.rand(4, 3), 0)[:2]))
fn_case("ScatterAddModule_basic", lambda x, i, s: torch.scatter_add(x, 0, i, s), inputs(rand(4, 3), randint(6, 3, high=4), rand(6, 3)))
fn_case("ScatterAddModule_i64", lambda x, i, s: torch.scatter_add(x, 1, i, s), inputs(randint(3, 4), randint(3, 6, high=4), randint(3, 6)))
for _reduce in ["sum", "prod", "amax", "amin", "mean"]:
    fn_case(f"ScatterReduceModule_{_reduce}", lambda x, i, s, _r=_reduce: torch.scatter_reduce(x, 0, i, s, _r),
            inputs(rand(4, 3), randint(6, 3, high=4), rand(6, 3)))
    fn_case(f"ScatterReduceModule_{_reduce}ExcludeSelf", lambda x, i, s, _r=_reduce: torch.scatter_reduce(x, 0, i, s, _r, include_self=False),
            inputs(rand(4, 3), randint(6, 3, high=4), rand(6, 3)))
fn_case("IndexAddModule_basic", lambda x, i, s: torch.index_add(x, 0, i, s, alpha=2.0), inputs(rand(5, 3), randint(4, high=5), rand(4, 3)))
fn_case("IndexCopyModule_basic", lambda x, i, s: torch.index_copy(x, 1, i, s), inputs(rand(3, 6), lambda: torch.randperm(6)[:2], rand(3, 2)))
fn_case("IndexSelectModule_i64", lambda x, i: torch.index_select(x, 0, i), inputs(randint(6, 3), randint(4, high=6)))
fn_case("GatherModule_dim0", lambda x, i: torch.gather(x, 0, i), inputs(rand(4, 5), randint(3, 5, high=4)))
fn_case("TakeAlongDimModule_basic", lambda x, i: torch.take_along_dim(x, i, dim=1), inputs(rand(3, 5), randint(3, 2, high=5)))
fn_case("MaskedFillModule_scalar", lambda x, m: x.masked_fill(m, -1.5), inputs(rand(3, 4), _mask(3, 4)))
fn_case("MaskedFillModule_broadcast", lambda x, m: x.masked_fill(m, float("-inf")).softmax(-1), inputs(rand(2, 3, 4), _mask(1, 4, p=0.3)))
fn_case("MaskedFillModule_i64", lambda x, m: x.masked_fill(m, 7), inputs(randint(3, 4), _mask(3, 4)))
fn_case("EmbeddingModule_paddingIdx", lambda w, i: F.embedding(i, w, padding_idx=0), inputs(rand(10, 4), randint(2, 5, high=10)))
fn_case("EmbeddingBagModule_sum", lambda w, i, o: F.embedding_bag(i, w, o, mode="sum"), inputs(rand(10, 4), randint(8, high=10), lambda: torch.tensor([0, 3, 5])))
fn_case("EmbeddingBagModule_mean", lambda w, i, o: F.embedding_bag(i, w, o, mode="mean"), inputs(rand(10, 4), randint(8, high=10), lambda: torch.tensor([0, 3, 5])))
fn_case("EmbeddingBagModule_max", lambda w, i, o: F.embedding_bag(i, w, o, mode="max"), inputs(rand(10, 4), randint(8, high=10), lambda: torch.tensor([0, 3, 5])))
fn_case("SelectScatterModule_basic", lambda x, s: torch.select_scatter(x, s, 0, 1), inputs(rand(3, 4), rand(4)))
fn_case("SliceScatterModule_basic", lambda x, s: torch.slice_scatter(x, s, 1, 0, 4, 2), inputs(rand(3, 5), rand(3, 2)))
fn_case("DiagonalModule_basic", lambda x: torch.diagonal(x, offset=1) * 2, inputs(rand(4, 5)))

# --- sort / topk / scans ---------------------------------------------------------------------
fn_case("SortModule_basic", lambda x: torch.sort(x, dim=-1), inputs(rand(3, 7)))
fn_case("SortModule_descendingDim0", lambda x: torch.sort(x, dim=0, descending=True), inputs(rand(5, 3)))
fn_case("SortModule_i64Values", lambda x: torch.sort(x, stable=True)[0], inputs(randint(3, 9, high=4)))
fn_case("ArgsortModule_basic", lambda x: torch.argsort(x, dim=1), inputs(rand(3, 7)))
fn_case("ArgsortModule_stableTies", lambda x: torch.argsort(x, dim=-1, stable=True), inputs(randint(2, 9, high=3)))
fn_case("TopkModule_basic", lambda x: torch.topk(x, 3), inputs(rand(4, 8)))
fn_case("TopkModule_smallestDim0", lambda x: torch.topk(x, 2, dim=0, largest=False), inputs(rand(5, 4)))
fn_case("KthvalueModule_values", lambda x: torch.kthvalue(x, 2, dim=1)[0], inputs(rand(3, 6)))
fn_case("CumsumModule_basic", lambda x: torch.cumsum(x, dim=1), inputs(rand(3, 7)))
fn_case("CumsumModule_i64", lambda x: torch.cumsum(x, dim=0), inputs(randint(5, 3)))
fn_case("CumsumModule_dtypeF64", lambda x: torch.cumsum(x, dim=-1, dtype=torch.float64), inputs(rand(2, 3, 6)))
fn_case("CumprodModule_basic", lambda x: torch.cumprod(x, dim=1), inputs(rand(3, 6, low=0.5, high=1.5)))
fn_case("CumprodModule_i64", lambda x: torch.cumprod(x, dim=0), inputs(randint(4, 3, low=1, high=4)))
fn_case("CummaxModule_basic", lambda x: torch.cummax(x, dim=1), inputs(rand(3, 6)))
fn_case("LogcumsumexpModule_basic", lambda x: torch.logcumsumexp(x, dim=1), inputs(rand(3, 6)))

# --- upsample / pad --------------------------------------------------------------------------
fn_case("UpsampleNearest2dModule_scale2", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), inputs(rand(1, 2, 3, 4)))
fn_case("UpsampleNearest2dModule_size", lambda x: F.interpolate(x, size=(5, 7), mode="nearest"), inputs(rand(1, 2, 3, 4)))
fn_case("UpsampleNearest1dModule_basic", lambda x: F.interpolate(x, scale_factor=3, mode="nearest"), inputs(rand(1, 2, 4)))
fn_case("UpsampleBilinear2dModule_basic", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), inputs(rand(1, 2, 3, 4)), atol=1e-5)
fn_case("UpsampleBilinear2dModule_alignCorners", lambda x: F.interpolate(x, size=(6, 5), mode="bilinear", align_corners=True), inputs(rand(2, 1, 3, 4)), atol=1e-5)
fn_case("UpsampleNearest3dModule_basic", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), inputs(rand(1, 1, 2, 3, 2)))
for _mode in ["reflect", "replicate", "circular"]:
    fn_case(f"Pad1dModule_{_mode}", lambda x, _m=_mode: F.pad(x, (2, 1), mode=_m), inputs(rand(2, 3, 5)))
    fn_case(f"Pad2dModule_{_mode}", lambda x, _m=_mode: F.pad(x, (1, 2, 2, 1), mode=_m), inputs(rand(1, 2, 4, 5)))
    fn_case(f"Pad3dModule_{_mode}", lambda x, _m=_mode: F.pad(x, (1, 1, 1, 0, 0, 1), mode=_m), inputs(rand(1, 1, 3, 3, 3)))
fn_case("ConstantPadModule_negative", lambda x: F.pad(x, (-1, 2, 1, -1)), inputs(rand(2, 4, 5)))

# --- attention -------------------------------------------------------------------------------
_q = rand(2, 3, 5, 8)
fn_case("ScaledDotProductAttentionModule_basic", F.scaled_dot_product_attention, inputs(_q, _q, _q), atol=1e-5)
fn_case("ScaledDotProductAttentionModule_causal", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), inputs(_q, _q, _q), atol=1e-5)
fn_case("ScaledDotProductAttentionModule_boolMask", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
        inputs(_q, rand(2, 3, 6, 8), rand(2, 3, 6, 8), lambda: torch.rand(5, 6) > 0.2), atol=1e-5)
fn_case("ScaledDotProductAttentionModule_floatMaskScale", lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=0.3),
        inputs(_q, _q, _q, rand(1, 1, 5, 5)), atol=1e-5)

# --- creation --------------------------------------------------------------------------------
fn_case("ArangeModule_startStepF32", lambda x: x + torch.arange(0.5, 2.5, 0.5), inputs(rand(3, 4)))
fn_case("ArangeModule_i64Negative", lambda x: x * torch.arange(10, -2, -3), inputs(randint(2, 4)))
fn_case("OnesModule_f64", lambda x: x + torch.ones(3, 4, dtype=torch.float64), inputs(rand(3, 4)))
fn_case("ZerosModule_i32", lambda x: x + torch.zeros(4, dtype=torch.int32), inputs(randint(3, 4, dtype=torch.int32)))
fn_case("FullLikeModule_basic", lambda x: torch.full_like(x, 3.5) * x, inputs(rand(3, 4)))
fn_case("OnesLikeModule_bool", lambda x: torch.ones_like(x, dtype=torch.bool) & (x > 0), inputs(rand(3, 4)))
fn_case("EmptyModule_filled", lambda x: torch.empty(3, 4).fill_(2.0) + x, inputs(rand(3, 4)))
fn_case("EmptyLikeModule_shapeOnly", lambda x: torch.empty_like(x).zero_() + x, inputs(rand(3, 4)))
fn_case("NewZerosModule_basic", lambda x: x.new_zeros(2, 3) + 1, inputs(rand(3, 4)))
fn_case("NewOnesModule_basic", lambda x: x.new_ones(4) * x, inputs(rand(3, 4)))
fn_case("LinspaceModule_basic", lambda x: x + torch.linspace(-1, 1, 4), inputs(rand(3, 4)))
fn_case("EyeModule_basic", lambda x: x @ torch.eye(4), inputs(rand(3, 4)))
fn_case("ScalarTensorModule_basic", lambda x: x * torch.tensor(3.0), inputs(rand(3, 4)))

# --- shape -----------------------------------------------------------------------------------
fn_case("FlipModule_basic", lambda x: torch.flip(x, [0, 2]), inputs(rand(2, 3, 4)))
fn_case("FlipModule_i64", lambda x: torch.flip(x, [-1]), inputs(randint(3, 5)))
fn_case("RollModule_basic", lambda x: torch.roll(x, 2, 1), inputs(rand(3, 5)))
fn_case("RollModule_multiDim", lambda x: torch.roll(x, (1, -2), (0, 1)), inputs(rand(3, 5)))
fn_case("RollModule_flat", lambda x: torch.roll(x, 4), inputs(rand(3, 5)))
fn_case("TrilModule_basic", lambda x: torch.tril(x), inputs(rand(4, 5)))
fn_case("TrilModule_negativeDiag", lambda x: torch.tril(x, -1), inputs(rand(2, 4, 4)))
fn_case("TriuModule_basic", lambda x: torch.triu(x, 1), inputs(rand(4, 5)))
fn_case("TriuModule_bool", lambda x: torch.triu(x > 0), inputs(rand(4, 4)))
fn_case("OneHotModule_basic", lambda i: F.one_hot(i, 6), inputs(randint(4, high=6)))
fn_case("OneHotModule_2d", lambda i: F.one_hot(i, 5).float() * 2, inputs(randint(2, 3, high=5)))
fn_case("UnbindModule_basic", lambda x: [t * 1 for t in torch.unbind(x, 1)], inputs(rand(2, 3, 4)))
fn_case("SplitWithSizesModule_basic", lambda x: [t + 1 for t in torch.split(x, [1, 3, 2], dim=1)], inputs(rand(3, 6)))
fn_case("ChunkModule_uneven", lambda x: [t * 2 for t in torch.chunk(x, 3, dim=1)], inputs(rand(2, 7)))
fn_case("StackModule_i64Dim2", lambda a, b: torch.stack([a, b], dim=2), inputs(randint(2, 3), randint(2, 3)))
fn_case("CatModule_bool", lambda a, b: torch.cat([a > 0, b > 0], 0), inputs(rand(2, 3), rand(3, 3)))
fn_case("CatModule_promote", lambda a, b: torch.cat([a, b], 1), inputs(randint(2, 3), rand(2, 2)))
fn_case("NarrowModule_basic", lambda x: torch.narrow(x, 1, 1, 3) * 1, inputs(rand(3, 6)))
fn_case("RepeatModule_basic", lambda x: x.repeat(2, 3), inputs(rand(2, 3)))
fn_case("RepeatModule_newDims", lambda x: x.repeat(2, 1, 2), inputs(rand(2, 3)))
fn_case("TileModule_basic", lambda x: torch.tile(x, (3,)), inputs(rand(2, 3)))
fn_case("MovedimModule_basic", lambda x: torch.movedim(x, 0, -1) + 0, inputs(rand(2, 3, 4)))
fn_case("UnflattenModule_basic", lambda x: x.unflatten(1, (2, 3)) * 1, inputs(rand(4, 6)))
fn_case("ExpandAsModule_basic", lambda x, y: x.expand_as(y) + y, inputs(rand(1, 4), rand(3, 4)))
fn_case("ContiguousTransposeModule_basic", lambda x: x.t().contiguous().view(-1), inputs(rand(3, 4)))
fn_case("RepeatInterleaveModule_basic", lambda x: torch.repeat_interleave(x, 2, dim=0), inputs(rand(3, 2)))

# --- convolution / pooling / normalization variants ------------------------------------------
fn_case("Conv1dModule_dilationGroups", lambda x, w: F.conv1d(x, w, padding=2, dilation=2, groups=2), inputs(rand(2, 4, 9), rand(6, 2, 3)), atol=1e-5)
fn_case("Conv2dModule_asymmetricPaddingDilation", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=(1, 2), dilation=(2, 1)), inputs(rand(1, 3, 9, 9), rand(4, 3, 3, 3), rand(4)), atol=1e-5)
fn_case("Conv2dModule_depthwiseNoBias", lambda x, w: F.conv2d(x, w, padding=1, groups=4), inputs(rand(1, 4, 6, 6), rand(4, 1, 3, 3)), atol=1e-5)
fn_case("Conv2dModule_f64", lambda x, w: F.conv2d(x, w), inputs(rand(1, 2, 5, 5, dtype=torch.float64), rand(3, 2, 3, 3, dtype=torch.float64)), atol=1e-10)
fn_case("Conv3dModule_strided", lambda x, w: F.conv3d(x, w, stride=(1, 2, 2), padding=1), inputs(rand(1, 2, 4, 5, 5), rand(3, 2, 3, 3, 3)), atol=1e-5)
fn_case("ConvTranspose1dModule_basic", lambda x, w: F.conv_transpose1d(x, w, stride=2, padding=1), inputs(rand(1, 3, 6), rand(3, 2, 4)), atol=1e-5)
fn_case("ConvTranspose2dModule_groupsOutputPadding", lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=1, groups=2), inputs(rand(1, 4, 4, 4), rand(4, 3, 3, 3)), atol=1e-5)
fn_case("ConvTranspose3dModule_basic", lambda x, w: F.conv_transpose3d(x, w, stride=2), inputs(rand(1, 2, 2, 3, 3), rand(2, 2, 2, 2, 2)), atol=1e-5)
fn_case("MaxPool1dModule_basic", lambda x: F.max_pool1d(x, 3, 2, padding=1), inputs(rand(2, 3, 9)))
fn_case("MaxPool2dModule_withIndicesFunctional", lambda x: F.max_pool2d(x, 2, return_indices=True), inputs(rand(1, 2, 6, 6)))
fn_case("MaxPool2dModule_ceilDilation", lambda x: F.max_pool2d(x, 3, 2, dilation=2, ceil_mode=True), inputs(rand(1, 2, 9, 9)))
fn_case("MaxPool3dModule_withIndices", lambda x: F.max_pool3d(x, 2, return_indices=True), inputs(rand(1, 1, 4, 4, 4)))
fn_case("AvgPool1dModule_basic", lambda x: F.avg_pool1d(x, 3, 2, padding=1), inputs(rand(2, 3, 9)))
fn_case("AvgPool2dModule_noPadCount", lambda x: F.avg_pool2d(x, 3, 2, padding=1, count_include_pad=False), inputs(rand(1, 2, 7, 7)))
fn_case("AvgPool2dModule_divisorCeil", lambda x: F.avg_pool2d(x, 2, ceil_mode=True, divisor_override=3), inputs(rand(1, 2, 5, 5)))
fn_case("AvgPool3dModule_basic", lambda x: F.avg_pool3d(x, 2), inputs(rand(1, 2, 4, 4, 4)))
fn_case("AdaptiveAvgPool1dModule_basic", lambda x: F.adaptive_avg_pool1d(x, 3), inputs(rand(2, 3, 7)))
fn_case("AdaptiveAvgPool2dModule_uneven", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), inputs(rand(1, 2, 7, 5)))
fn_case("AdaptiveAvgPool3dModule_basic", lambda x: F.adaptive_avg_pool3d(x, 2), inputs(rand(1, 2, 4, 5, 4)))
fn_case("AdaptiveMaxPool2dModule_basic", lambda x: F.adaptive_max_pool2d(x, (2, 3)), inputs(rand(1, 2, 6, 7)))
fn_case("AdaptiveMaxPool1dModule_basic", lambda x: F.adaptive_max_pool1d(x, 4), inputs(rand(2, 3, 8)))
fn_case("LayerNormModule_noAffine2d", lambda x: F.layer_norm(x, (4, 5)), inputs(rand(2, 4, 5)), atol=1e-5)
fn_case("LayerNormModule_f64", lambda x, w, b: F.layer_norm(x, (5,), w, b), inputs(rand(3, 5, dtype=torch.float64), rand(5, dtype=torch.float64), rand(5, dtype=torch.float64)), atol=1e-10)
fn_case("GroupNormModule_functional", lambda x, w, b: F.group_norm(x, 2, w, b), inputs(rand(2, 4, 3, 3), rand(4), rand(4)), atol=1e-5)
fn_case("InstanceNormModule_basic", lambda x: F.instance_norm(x), inputs(rand(2, 3, 4, 4)), atol=1e-5)
fn_case("BatchNormModule_trainingFunctional", lambda x, w, b: F.batch_norm(x, torch.zeros(3), torch.ones(3), w, b, training=True), inputs(rand(4, 3, 2, 2), rand(3), rand(3)), atol=1e-5)
fn_case("BatchNorm1dModule_eval", lambda x, m, v: F.batch_norm(x, m, v.abs() + 0.5, training=False), inputs(rand(4, 3), rand(3), rand(3)), atol=1e-5)
fn_case("RMSNormModule_basic", lambda x, w: F.rms_norm(x, (6,), w), inputs(rand(3, 6), rand(6)), atol=1e-5)
fn_case("NormalizeModule_basic", lambda x: F.normalize(x, dim=1), inputs(rand(3, 6)), atol=1e-6)


@conformance_case("BatchNorm2dModule_trainMode", inputs=inputs(rand(4, 3, 5, 5)), atol=1e-5, training=True)
def _batch_norm_train():
    return nn.BatchNorm2d(3)


# --- linear algebra --------------------------------------------------------------------------
fn_case("BaddbmmModule_alphaBeta", lambda c, a, b: torch.baddbmm(c, a, b, beta=0.5, alpha=2.0), inputs(rand(2, 3, 5), rand(2, 3, 4), rand(2, 4, 5)), atol=1e-5)
fn_case("AddmmModule_beta", lambda c, a, b: torch.addmm(c, a, b, beta=2.0, alpha=0.5), inputs(rand(5), rand(3, 4), rand(4, 5)), atol=1e-5)
fn_case("MatmulModule_broadcastBatch4d", torch.matmul, inputs(rand(2, 1, 3, 4), rand(5, 4, 2)), atol=1e-5)
fn_case("MatmulModule_vectorMatrix", torch.matmul, inputs(rand(4), rand(2, 4, 3)), atol=1e-5)
fn_case("MatmulModule_i64", torch.matmul, inputs(randint(3, 4), randint(4, 2)))
fn_case("MvModule_basic", torch.mv, inputs(rand(3, 4), rand(4)), atol=1e-5)
fn_case("DotModule_basic", torch.dot, inputs(rand(6), rand(6)), atol=1e-5)
fn_case("OuterModule_basic", torch.outer, inputs(rand(3), rand(4)))
fn_case("EinsumModule_matmul", lambda a, b: torch.einsum("ij,jk->ik", a, b), inputs(rand(3, 4), rand(4, 5)), atol=1e-5)
fn_case("EinsumModule_batchTranspose", lambda a, b: torch.einsum("bij,bkj->bik", a, b), inputs(rand(2, 3, 4), rand(2, 5, 4)), atol=1e-5)
fn_case("EinsumModule_trace", lambda a: torch.einsum("ii->", a), inputs(rand(4, 4)), atol=1e-5)
fn_case("EinsumModule_outerSum", lambda a, b: torch.einsum("i,j->j", a, b), inputs(rand(3), rand(4)), atol=1e-5)
fn_case("EinsumModule_attention", lambda q, k: torch.einsum("bhqd,bhkd->bhqk", q, k), inputs(rand(2, 2, 3, 4), rand(2, 2, 5, 4)), atol=1e-5)
fn_case("VectorNormModule_l2", lambda x: torch.linalg.vector_norm(x, dim=1), inputs(rand(3, 5)), atol=1e-6)
fn_case("VectorNormModule_l1Keepdim", lambda x: torch.linalg.vector_norm(x, 1, dim=(0, 1), keepdim=True), inputs(rand(3, 5, 2)), atol=1e-5)
fn_case("VectorNormModule_inf", lambda x: torch.linalg.vector_norm(x, float("inf")), inputs(rand(3, 5)))
fn_case("VectorNormModule_p3", lambda x: torch.linalg.vector_norm(x, 3, dim=-1), inputs(rand(3, 5)), atol=1e-5)
fn_case("NormModule_fro", lambda x: torch.norm(x), inputs(rand(3, 5)), atol=1e-5)
fn_case("LinearModule_noBias", lambda x, w: F.linear(x, w), inputs(rand(2, 3, 4), rand(5, 4)), atol=1e-5)
fn_case("BilinearModule_basic", lambda a, b, w: F.bilinear(a, b, w), inputs(rand(3, 4), rand(3, 5), rand(2, 4, 5)), atol=1e-5)

# --- reductions ------------------------------------------------------------------------------
fn_case("ReduceStdModule_basic", lambda x: torch.std(x, dim=1), inputs(rand(3, 7)), atol=1e-6)
fn_case("ReduceVarMeanModule_correction0", lambda x: torch.var_mean(x, dim=0, correction=0), inputs(rand(4, 5)), atol=1e-6)
fn_case("ReduceLogsumexpModule_basic", lambda x: torch.logsumexp(x, dim=1), inputs(rand(3, 7, low=-5, high=5)), atol=1e-6)
fn_case("ReduceArgminModule_keepdim", lambda x: torch.argmin(x, dim=0, keepdim=True), inputs(rand(4, 5)))
fn_case("ReduceMinDimModule_basic", lambda x: torch.min(x, dim=0), inputs(rand(4, 5)))
fn_case("ReduceSumModule_boolToI64", lambda x: (x > 0).sum(dim=1), inputs(rand(3, 7)))
fn_case("ReduceSumModule_dtypeF64", lambda x: x.sum(dim=0, dtype=torch.float64), inputs(rand(4, 5)))
fn_case("ReduceMeanModule_f64", lambda x: x.mean(dim=(0, 2)), inputs(rand(3, 4, 5, dtype=torch.float64)))
fn_case("ReduceAllModule_basic", lambda x: (x > -0.9).all(), inputs(rand(3, 7)))
fn_case("ReduceProdModule_i64", lambda x: x.prod(), inputs(randint(2, 3, low=1, high=4)))
fn_case("ReduceAmaxModule_i64", lambda x: torch.amax(x, dim=-1), inputs(randint(3, 7, low=-50, high=50)))
fn_case("ReduceCountNonzeroModule_basic", lambda x: torch.count_nonzero(x, dim=1), inputs(randint(3, 7, high=3)))
fn_case("SoftminModule_basic", lambda x: F.softmin(x, dim=1), inputs(rand(3, 7)), atol=1e-6)
fn_case("CrossEntropyModule_basic", lambda x, t: F.cross_entropy(x, t), inputs(rand(4, 5), randint(4, high=5)), atol=1e-6)
fn_case("NllLossModule_basic", lambda x, t: F.nll_loss(F.log_softmax(x, 1), t), inputs(rand(4, 5), randint(4, high=5)), atol=1e-6)
fn_case("MseLossModule_basic", F.mse_loss, inputs(rand(4, 5), rand(4, 5)), atol=1e-6)


# --- random ops: statistics, not bits --------------------------------------------------------
# 100k draws: the sample mean of U(0,1) has standard deviation 0.29/316 < 0.001, so 0.01 is
# more than 10 standard deviations; the range checks are exact.
def _uniform_stats(r):
    return torch.stack([r.mean(), (r >= 0).all().float(), (r < 1).all().float()])


def _normal_stats(r):
    return torch.stack([r.mean(), r.std()])


fn_case("RandModule_statistics", lambda x: _uniform_stats(torch.rand(1000, 100) + x * 0), inputs(rand(1)), atol=0.01, rtol=0)
fn_case("RandLikeModule_statistics", lambda x: _uniform_stats(torch.rand_like(x)), inputs(rand(1000, 100)), atol=0.01, rtol=0)
fn_case("RandnModule_statistics", lambda x: _normal_stats(torch.randn(1000, 100) + x * 0), inputs(rand(1)), atol=0.02, rtol=0)
fn_case("RandnLikeModule_statistics", lambda x: _normal_stats(torch.randn_like(x)), inputs(rand(1000, 100)), atol=0.02, rtol=0)
fn_case("BernoulliModule_statistics", lambda p: torch.bernoulli(p).mean(), inputs(lambda: torch.full((1000, 100), 0.3)), atol=0.01, rtol=0)
fn_case("BernoulliModule_valuesAreZeroOrOne", lambda p: ((torch.bernoulli(p) == 0) | (torch.bernoulli(p) == 1)).all(), inputs(rand(100, 10, low=0, high=1)))
# Dropout in training mode: kept values are x / (1 - p), the kept fraction is 1 - p.
fn_case("DropoutModule_keptFraction", lambda x: (F.dropout(x, 0.25, training=True) != 0).float().mean(), inputs(lambda: torch.ones(1000, 100)), atol=0.01, rtol=0)
fn_case("DropoutModule_keptScaled", lambda x: F.dropout(x, 0.5, training=True).amax(), inputs(lambda: torch.ones(100, 100)))
fn_case("DropoutModule_evalIdentity", lambda x: F.dropout(x, 0.5, training=False) * 1, inputs(rand(3, 4)))
fn_case("RandintModule_range", lambda x: torch.stack([(torch.randint(3, 9, (1000,)) + x).min(), (torch.randint(3, 9, (1000,)) + x).max()]), inputs(lambda: torch.zeros(1, dtype=torch.int64)))
fn_case("NormalModule_statistics", lambda x: _normal_stats((torch.normal(2.0, 3.0, (1000, 100)) - 2.0) / 3.0 + x * 0), inputs(rand(1)), atol=0.02, rtol=0)


# --- bool clamp bounds: max is `or`, min is `and` ------------------------------------------------
fn_case("ClampMinTensorModule_bool", torch.clamp_min, inputs(_mask(3, 4), _mask(4)))
fn_case("ClampMaxTensorModule_bool", torch.clamp_max, inputs(_mask(3, 4), _mask(3, 1)))
fn_case("ClampTensorMaxOnlyModule_i32f32", lambda x, hi: torch.clamp(x, None, hi),
        inputs(randint(3, 4, low=-5, high=5, dtype=torch.int32), rand(4, low=-3.0, high=3.0)))
fn_case("DiagonalScatterModule_offset", lambda x, s: torch.diagonal_scatter(x, s, 1), inputs(rand(4, 5), rand(4)))
fn_case("DiagonalScatterModule_negDims", lambda x, s: torch.diagonal_scatter(x, s, -1, -1, 0),
        inputs(rand(3, 2, 4), rand(2, 3)))
fn_case("DiagonalScatterModule_bool", lambda x, s: torch.diagonal_scatter(x, s), inputs(_mask(3, 3), _mask(3)))


# --- F.linear_cross_entropy with chunking options (custom ops, decomposed in decompositions.py) --
try:
    from torch.nn.modules.linear_cross_entropy_options import LinearCrossEntropyOptions as _LceOptions
except ImportError:  # PyTorch without the chunked path
    _LceOptions = None
if _LceOptions is not None:
    for _reduction in ("mean", "sum", "none"):
        fn_case(f"LinearCrossEntropyChunkedModule_{_reduction}",
                lambda x, w, b, t, _r=_reduction: F.linear_cross_entropy(
                    x, w, t, linear_bias=b, reduction=_r, options=_LceOptions(allow_retain_graph=True)),
                inputs(rand(6, 5), rand(7, 5), rand(7), randint(6, high=7)), atol=1e-5, rtol=1e-5)


# --- hash_tensor: xor of the 64-bit patterns (uint64 result) ---------------------------------------
fn_case("HashTensorModule_f32", torch.hash_tensor, inputs(rand(3, 4)))
fn_case("HashTensorModule_dimKeepdim_i64", lambda x: torch.hash_tensor(x, 1, keepdim=True),
        inputs(randint(3, 4, low=-1000, high=1000)))
fn_case("HashTensorModule_bool", lambda x: torch.hash_tensor(x, 0), inputs(_mask(5, 3)))
