"""One compiled artifact serves every batch size / sequence length: MLP, CNN (two image sizes)
and nn.TransformerEncoder under `dynamic=True`, each compared with eager for every size tried,
with compilations counted (ours: `runtime.compilation_count()`; Dynamo's: unique graphs).

Dynamo specializes sizes 0 and 1 by default (a size-1 input gets its own graph). The
single-compilation tests turn on PyTorch's `backed_size_oblivious` so that size 1 is served by
the dynamic graph too; the lowering then handles a `?` dimension that is 1 at run time
(expand reads index 0, elementwise operands share the symbol by construction). Our decomposition
of the transformer fast path avoids reshaping transposed views, which would guard `seq != 1`."""
import contextlib

import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from helpers import assert_same
from torch_mlir_backend.runtime import compilation_count

F32 = dict(atol=1e-5, rtol=1e-5)


@contextlib.contextmanager
def counting(size_oblivious: bool):
    """Fresh Dynamo state; yields a function returning the number of Dynamo graphs, after
    checking that each needed at most one compilation of ours (none on a cache hit)."""
    torch._dynamo.reset()
    counters.clear()
    start = compilation_count()

    def graphs() -> int:
        n = counters["stats"]["unique_graphs"]
        assert compilation_count() - start <= n, "more MLIR compilations than Dynamo graphs"
        return n

    with torch.fx.experimental._config.patch(backed_size_oblivious=size_oblivious):
        yield graphs
    torch._dynamo.reset()


def run_sizes(model, inputs, tol):
    compiled = torch.compile(model, backend="torch_mlir", dynamic=True)
    with torch.no_grad():
        for x in inputs:
            assert_same(compiled(x), model(x), f"{type(model).__name__}{tuple(x.shape)}", [x], **tol)


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4)).eval()


MLP_BATCHES = [5, 1, 2, 3, 8, 17, 33, 64]  # first call compiles; includes both ends of 1..64


def test_mlp_batch_1_to_64_compiles_once():
    with counting(size_oblivious=True) as count:
        run_sizes(mlp(), [torch.randn(b, 16) for b in MLP_BATCHES], F32)
        assert count() == 1


def test_mlp_default_dynamo_specializes_only_size_one():
    # Without size-oblivious reasoning Dynamo keeps one graph for batch >= 2 and one for 1.
    with counting(size_oblivious=False) as count:
        run_sizes(mlp(), [torch.randn(b, 16) for b in [5, 2, 9, 64, 1, 3]], F32)
        assert count() == 2


def test_automatic_dynamic_second_size_recompiles_once_as_dynamic():
    model = mlp()
    with counting(size_oblivious=False) as count:
        compiled = torch.compile(model, backend="torch_mlir")  # dynamic=None: automatic
        with torch.no_grad():
            for b in [4, 7, 2, 12, 64, 4]:
                x = torch.randn(b, 16)
                assert_same(compiled(x), model(x), f"mlp{b}", [x], **F32)
        # batch 4: static graph; batch 7: the dimension becomes dynamic; then no more.
        assert count() == 2


class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2)
        self.fc = torch.nn.Linear(16, 5)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        return self.fc(x.mean(dim=(2, 3)))


def test_cnn_batch_1_to_8_two_image_sizes_compiles_once():
    torch.manual_seed(0)
    model = SmallCNN().eval()
    sizes = [(2, 16), (1, 16), (5, 16), (8, 16), (1, 11), (3, 11), (8, 11)]
    with counting(size_oblivious=True) as count:
        run_sizes(model, [torch.randn(b, 3, hw, hw) for b, hw in sizes], F32)
        assert count() == 1


def encoder(d_model=16, heads=2, layers=1):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model, heads, 2 * d_model, dropout=0.0, batch_first=True)
    return torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).eval()


def test_transformer_encoder_batch_1_to_16_seq_1_to_257_compiles_once():
    sizes = [(2, 5), (1, 2), (4, 1), (1, 1), (16, 2), (3, 31), (16, 1), (1, 257), (16, 257), (7, 128)]
    with counting(size_oblivious=True) as count:
        run_sizes(encoder(), [torch.randn(b, s, 16) for b, s in sizes], dict(atol=2e-5, rtol=1e-5))
        assert count() == 1


def test_transformer_encoder_two_layers_with_key_padding_mask_compiles_once():
    model = encoder(layers=2)
    compiled = torch.compile(model, backend="torch_mlir", dynamic=True)
    with counting(size_oblivious=True) as count, torch.no_grad():
        for b, s in [(3, 6), (2, 1), (5, 17)]:
            x = torch.randn(b, s, 16)
            pad = torch.zeros(b, s, dtype=torch.bool)
            pad[0, s // 2 + 1:] = True  # the first sequence is shorter
            assert_same(compiled(x, src_key_padding_mask=pad), model(x, src_key_padding_mask=pad),
                        f"encoder{(b, s)}", [x], atol=2e-5, rtol=1e-5)
        assert count() == 1


def test_resnet18_two_batches_two_image_sizes_compiles_once():
    # Convolutions, max pooling and global average pooling over dynamic spatial dimensions,
    # strict mode: no op of the network runs in eager. Images of at least 64 pixels: at 32 or
    # less the last stage's spatial size is 1, which Dynamo specializes into a graph of its own.
    from torch_mlir_backend.e2e.cases.models_vision import ResNet18

    torch.manual_seed(0)
    model = ResNet18().eval()
    compiled = torch.compile(model, backend="torch_mlir", dynamic=True, options={"strict": True})
    with counting(size_oblivious=False) as count, torch.no_grad():
        for b, hw in [(2, 64), (3, 72), (2, 80), (3, 65)]:
            x = torch.randn(b, 3, hw, hw)
            assert_same(compiled(x), model(x), f"resnet18{(b, hw)}", [x], atol=1e-4, rtol=1e-4)
        assert count() == 1
