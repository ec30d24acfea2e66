"""The write-check debug mode (TORCH_MLIR_BACKEND_CHECK_WRITES): a call whose code writes past an
output's end or into an input raises naming the graph and the tensor; a correct graph's results
are unchanged (compared with eager)."""
import ctypes

import pytest
import torch

from torch_mlir_backend.runtime import build_compiled_graph
from torch_mlir_backend.runtime.compiled_graph import CHECK_WRITES_ENV
from torch_mlir_backend.types import TensorSpec

F32 = torch.float32
ADD = """
func.func @main(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %e = tensor.empty() : tensor<4x8xf32>
  %s = linalg.add ins(%a, %b : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %s : tensor<4x8xf32>
}
"""


@pytest.fixture
def checked_add(monkeypatch):
    monkeypatch.setenv(CHECK_WRITES_ENV, "1")
    spec = TensorSpec((4, 8), F32)
    return build_compiled_graph(ADD, [spec, spec], [spec])


def _misbehave(graph, write):
    """Wrap the graph's JIT function: call it, then `write(pointers)` with the descriptors'
    data pointers (inputs, then outputs), as buggy generated code would."""
    inner = graph._function
    offsets = [plan[0] for plan in graph._input_plan] + [plan[0] for plan in graph._output_plan]

    def call(args_address):
        inner(args_address)
        words = graph._frame().words
        write([words[o + 1] for o in offsets])

    graph._function = call


def test_correct_graph_gives_eager_results(checked_add):
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    (out,) = checked_add(a, b)
    torch.testing.assert_close(out, a + b, atol=0, rtol=0)


def test_write_past_the_end_of_an_output_is_caught(checked_add):
    _misbehave(checked_add, lambda ptrs: ctypes.memset(ptrs[2] + 4 * 32, 0, 4))
    with pytest.raises(RuntimeError, match=r"wrote after the end of output 0 \(\[4, 8\]"):
        checked_add(torch.randn(4, 8), torch.randn(4, 8))


def test_write_before_an_output_is_caught(checked_add):
    _misbehave(checked_add, lambda ptrs: ctypes.memset(ptrs[2] - 8, 0, 4))
    with pytest.raises(RuntimeError, match="wrote before the end of output 0"):
        checked_add(torch.randn(4, 8), torch.randn(4, 8))


def test_write_into_an_input_is_caught(checked_add):
    _misbehave(checked_add, lambda ptrs: ctypes.memset(ptrs[1], 0, 4))
    a, b = torch.randn(4, 8), torch.randn(4, 8) + 10  # b's first element is never 0
    with pytest.raises(RuntimeError, match=r"changed input 1 \(\[4, 8\]"):
        checked_add(a, b)
