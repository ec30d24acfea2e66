"""Shape and indexing cases: view, permute, transpose, expand, slice, cat, embedding."""
import torch

from ..registry import conformance_case
from ._util import fn_case, inputs, rand, randint

fn_case("ViewModule_basic", lambda x: x.view(4, 6), inputs(rand(2, 3, 4)))
fn_case("ViewModule_inferred", lambda x: x.view(-1, 4) * 2, inputs(rand(2, 3, 4)))
fn_case("ReshapeModule_basic", lambda x: x.reshape(6, 4) + 1, inputs(rand(2, 3, 4)))
fn_case("FlattenModule_basic", lambda x: torch.flatten(x, 1) + 1, inputs(rand(2, 3, 4)))
fn_case("PermuteModule_basic", lambda x: x.permute(2, 0, 1) + 1, inputs(rand(2, 3, 4)))
fn_case("TransposeModule_basic", lambda x: x.transpose(0, 1) * 2, inputs(rand(3, 4)))
fn_case("TransposeModule_3d", lambda x: x.transpose(-1, -2) * 2, inputs(rand(2, 3, 4)))
fn_case("ExpandModule_basic", lambda x: x.expand(3, 4) * 1, inputs(rand(1, 4)))
fn_case("ExpandModule_newDims", lambda x: x.expand(2, 3, 4) + 0, inputs(rand(3, 1)))
fn_case("SliceModule_basic", lambda x: x[1:3] * 1, inputs(rand(5, 4)))
fn_case("SliceModule_step", lambda x: x[:, ::2] * 1, inputs(rand(5, 6)))
fn_case("SliceModule_negative", lambda x: x[-3:-1, 1:] * 1, inputs(rand(5, 6)))
fn_case("SelectModule_basic", lambda x: x[1] * 1, inputs(rand(5, 6)))
fn_case("UnsqueezeModule_basic", lambda x: x.unsqueeze(1) * 1, inputs(rand(5, 6)))
fn_case("SqueezeModule_basic", lambda x: x.squeeze(1) * 1, inputs(rand(5, 1, 6)))
fn_case("CatModule_basic", lambda a, b: torch.cat([a, b], dim=1), inputs(rand(2, 3), rand(2, 4)))
fn_case("CatModule_dim0", lambda a, b: torch.cat([a, b, a]), inputs(rand(2, 3), rand(1, 3)))
fn_case("StackModule_basic", lambda a, b: torch.stack([a, b], dim=1), inputs(rand(2, 3), rand(2, 3)))
fn_case("SplitModule_basic", lambda x: [t * 1 for t in torch.split(x, 2, dim=1)], inputs(rand(3, 5)))
fn_case("ChunkModule_basic", lambda x: [t + 1 for t in torch.chunk(x, 3, dim=0)], inputs(rand(6, 2)))
fn_case("EmbeddingModule_functional", lambda w, i: torch.nn.functional.embedding(i, w), inputs(rand(10, 4), randint(3, 5, high=10)))
fn_case("IndexSelectModule_basic", lambda x, i: torch.index_select(x, 1, i), inputs(rand(3, 6), randint(4, high=6)))
fn_case("GatherModule_basic", lambda x, i: torch.gather(x, 1, i), inputs(rand(3, 6), randint(3, 4, high=6)))
fn_case("IndexTensorModule_basic", lambda x, i: x[i], inputs(rand(6, 3), randint(4, high=6)))
fn_case("ConstantPadModule_basic", lambda x: torch.nn.functional.pad(x, (1, 2, 0, 1), value=0.5), inputs(rand(2, 3, 4)))
fn_case("ArangeModule_basic", lambda x: x + torch.arange(4), inputs(rand(3, 4)))
fn_case("ZerosLikeModule_basic", lambda x: torch.zeros_like(x) + x, inputs(rand(3, 4)))
fn_case("FullModule_basic", lambda x: x + torch.full((3, 4), 2.5), inputs(rand(3, 4)))


@conformance_case("EmbeddingModule_basic", inputs=inputs(randint(2, 7, high=20)))
def _embedding():
    return torch.nn.Embedding(20, 8)
