"""Upstream torch-mlir (PyPI `torch-mlir`, a test extra) parses and verifies the Torch dialect we
emit for every whole-model conformance case, so the dialect is torch-mlir's own, not a look-alike.

The graphs are the ones our backend imports: Dynamo, then AOTAutograd with our decomposition
table; each forward graph goes through our FX importer and the printed module is parsed in a
torch-mlir context with the Torch dialect registered (unregistered ops are not allowed there)."""
import re

import pytest
import torch
from torch._dynamo.backends.common import aot_autograd

from torch_mlir_backend.decompositions import decomposition_table
from torch_mlir_backend.e2e import select_cases
from torch_mlir_backend.importers.fx_importer import import_fx_graph

torch_mlir_ir = pytest.importorskip("torch_mlir.ir", reason="the torch-mlir oracle is the test extra `torch-mlir`")
from torch_mlir.dialects import torch as torch_d  # noqa: E402

MODEL_CASES = select_cases(r"Model_")

# Known gaps of our importer against torch-mlir's dialect (fx_importer.py), matched on
# torch-mlir's parse error so only these excuse a failure; each names the missing capability.
KNOWN_IMPORTER_GAPS = {
    r"unregistered operation '(torch\.aten\.[\w.]+)'":
        "the importer emits torch.aten.<op> for an ATen op torch-mlir's dialect does not define "
        "(torch-mlir's own importer emits those as the generic torch.operator \"aten.<op>\")",
    r"'torch\.aten\.split_with_sizes' op requires one result":
        "the importer gives aten.split_with_sizes one result per piece; torch-mlir's op returns one "
        "!torch.list<vtensor> that torch.prim.ListUnpack splits",
}


def _emitted_torch_dialect(case) -> list[str]:
    """Our Torch dialect text for every graph the backend would import for `case`."""
    texts = []

    def capture(gm, example_inputs):
        texts.append(import_fx_graph(gm).operation.get_asm(enable_debug_info=False))
        return gm.forward  # run eagerly: only the import is under test

    torch._dynamo.reset()
    torch.manual_seed(0)
    module = case.make_module()
    module.train(case.training)
    inputs = list(case.make_inputs())
    backend = aot_autograd(fw_compiler=capture, decompositions=decomposition_table())
    with torch._dynamo.config.patch(**dict(case.dynamo_config)), torch.no_grad():
        torch.compile(module, backend=backend, fullgraph=True, dynamic=False)(*inputs)
    return texts


def test_there_are_model_cases():
    names = {c.name for c in MODEL_CASES}
    for model in ("ResNet18Model_basic", "MobileNetV3SmallModel_basic", "GPT2Model_twoBlocks", "LSTMModel_oneLayer"):
        assert model in names


@pytest.mark.parametrize("case", MODEL_CASES, ids=[c.name for c in MODEL_CASES])
def test_torch_mlir_parses_and_verifies_model(case):
    texts = _emitted_torch_dialect(case)
    assert texts, f"{case.name}: Dynamo produced no graph"
    for text in texts:
        ours = re.findall(r'"(torch\.[a-z_]+\.[A-Za-z0-9_.]+)"', text)
        ctx = torch_mlir_ir.Context()
        torch_d.register_dialect(ctx)
        ctx.allow_unregistered_dialects = False
        with ctx:
            try:
                parsed = torch_mlir_ir.Module.parse(text)
            except torch_mlir_ir.MLIRError as e:
                for pattern, gap in KNOWN_IMPORTER_GAPS.items():
                    m = re.search(pattern, str(e))
                    if m:
                        pytest.xfail(f"{case.name}: {m.group(0)}: {gap}")
                raise
            assert parsed.operation.verify()
            names = []
            parsed.operation.walk(lambda op: names.append(op.name) or torch_mlir_ir.WalkResult.ADVANCE)
            unknown = sorted({n for n in names if n.startswith("torch.") and not ctx.is_registered_operation(n)})
            assert not unknown, f"{case.name}: ops torch-mlir does not register: {unknown}"
        # Every op we emitted survived the round trip as a torch-mlir op of the same name.
        assert sorted(set(ours)) == sorted({n for n in names if n.startswith("torch.")}), case.name
