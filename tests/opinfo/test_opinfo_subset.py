"""A fixed subset of the OpInfo sweep (tools/opinfo_sweep.py) in CI: the first CPU sample input of
about a hundred OpInfos across the op families, compiled with our backend in strict mode (no eager
fallback) and compared with eager with OpInfo's tolerances. Run with `-n auto`.

Left out because Dynamo itself refuses them with fullgraph=True (Inductor fails them the same way):
the OpInfo of scaled_dot_product_attention calls it through a wrapper Dynamo skips, and the first
one_hot sample has num_classes=-1, a data-dependent size. Conformance cases cover both ops."""
import importlib.util
import pathlib
import sys

import pytest
import torch

_TOOL = pathlib.Path(__file__).resolve().parents[2] / "tools" / "opinfo_sweep.py"
_spec = importlib.util.spec_from_file_location("opinfo_sweep", _TOOL)
opinfo_sweep = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = opinfo_sweep  # dataclasses look their module up there
_spec.loader.exec_module(opinfo_sweep)

F32 = [
    # elementwise
    "add", "sub", "mul", "div.no_rounding_mode", "abs", "exp", "log", "sqrt", "sin", "tanh", "sigmoid",
    "nn.functional.relu", "nn.functional.gelu", "nn.functional.silu", "nn.functional.hardswish",
    "clamp", "where", "eq", "lt", "maximum", "pow", "atan2", "remainder", "floor", "erf", "lerp",
    "addcmul", "nn.functional.leaky_relu", "nn.functional.elu", "neg", "reciprocal", "rsqrt",
    # reductions
    "sum", "mean", "amax", "amin", "argmax", "var", "std", "softmax", "log_softmax", "logsumexp", "prod",
    # normalization
    "nn.functional.layer_norm", "nn.functional.batch_norm", "nn.functional.group_norm",
    "nn.functional.instance_norm",
    # convolution / pooling
    "nn.functional.conv1d", "nn.functional.conv2d", "nn.functional.conv_transpose2d",
    "nn.functional.max_pool2d", "nn.functional.avg_pool2d", "nn.functional.adaptive_avg_pool2d",
    # linear algebra
    "mm", "bmm", "matmul", "addmm", "baddbmm", "einsum", "linalg.vector_norm", "nn.functional.linear", "mv",
    # shape
    "cat", "stack", "split", "chunk", "unbind", "flip", "roll", "tril", "triu", "permute", "transpose",
    "reshape", "view", "expand", "squeeze", "unsqueeze", "narrow", "movedim",
    # indexing
    "index_select", "gather", "scatter_add", "masked_fill", "nn.functional.embedding", "index_put",
    "scatter",
    # sort / scans / upsample / pad / attention / creation
    "sort", "topk", "argsort", "cumsum", "cumprod", "nn.functional.pad.constant",
    "nn.functional.pad.reflect", "nn.functional.interpolate.nearest",
    "nn.functional.interpolate.bilinear", "zeros_like", "ones_like", "full_like",
]
I64 = ["add", "mul", "sum", "cumsum", "eq", "bitwise_and", "clamp", "where", "remainder"]
BOOL = ["logical_and", "any", "all", "eq", "logical_not"]
CASES = [(op, "float32") for op in F32] + [(op, "int64") for op in I64] + [(op, "bool") for op in BOOL]


@pytest.fixture(scope="module")
def ops():
    import torch_mlir_backend  # noqa: F401  (registers the backend)

    return opinfo_sweep.load_op_db()


@pytest.mark.parametrize("key,dtype_name", CASES, ids=[f"{k}-{d}" for k, d in CASES])
def test_first_opinfo_sample(ops, key, dtype_name):
    op = ops[key]
    dtype = getattr(torch, dtype_name)
    assert dtype in op.supported_dtypes("cpu"), f"{key} does not support {dtype_name} in eager"
    sample = next(iter(op.sample_inputs("cpu", dtype, requires_grad=False)))
    result = opinfo_sweep.run_sample(op, sample, dtype, ["torch_mlir"])
    assert result["eager"] == "pass", f"eager fails on {result['sample']}: {result.get('eager_message')}"
    ours = result["torch_mlir"]
    assert ours["status"] == "pass", f"{key} {dtype_name} {result['sample']}: {ours['status']}: {ours.get('message')}"
