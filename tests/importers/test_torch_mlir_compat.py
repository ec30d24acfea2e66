"""Upstream torch-mlir (PyPI `torch-mlir`, a test extra) parses and verifies the Torch dialect we
emit for every whole-model conformance case, so the dialect is torch-mlir's own, not a look-alike.

The graphs are the ones our backend imports: Dynamo, then AOTAutograd with our decomposition
table; each forward graph goes through our FX importer and the printed module is parsed in a
torch-mlir context with the Torch dialect registered (unregistered ops are not allowed there).
An ATen op torch-mlir's dialect does not define must be the generic `torch.operator` naming it,
exactly where torch-mlir's own importer uses that form (`is_registered_operation` is false)."""
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
            parsed = torch_mlir_ir.Module.parse(text)
            assert parsed.operation.verify()
            ops = []
            parsed.operation.walk(lambda op: ops.append(op) or torch_mlir_ir.WalkResult.ADVANCE)
            names = [op.name for op in ops]
            generic = {torch_mlir_ir.StringAttr(op.attributes["name"]).value
                       for op in ops if op.name == "torch.operator"}
            unknown = sorted({n for n in names if n.startswith("torch.") and not ctx.is_registered_operation(n)})
            assert not unknown, f"{case.name}: ops torch-mlir does not register: {unknown}"
            # torch.operator only where torch-mlir's importer uses it too: for unregistered ATen ops.
            needless = sorted(n for n in generic if ctx.is_registered_operation(n))
            assert not needless, f"{case.name}: torch.operator for ops torch-mlir defines: {needless}"
        # Every op we emitted survived the round trip as a torch-mlir op of the same name (or as
        # the name of a torch.operator).
        survived = {n for n in names if n.startswith("torch.") and n != "torch.operator"} | generic
        assert sorted(set(ours)) == sorted(survived), case.name


def _generator():
    """tools/gen_torch_mlir_op_names.py, the script that wrote the shipped list."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "tools" / "gen_torch_mlir_op_names.py"
    spec = importlib.util.spec_from_file_location("gen_torch_mlir_op_names", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_op_names_are_the_installed_torch_mlirs():
    """The package's list of torch-mlir's ops (it cannot ask torch-mlir, a test-only dependency)
    is what the generator makes from the installed torch-mlir: rerun the tool if this fails."""
    import importlib.metadata

    from torch_mlir_backend.importers import torch_mlir_op_names as shipped

    gen = _generator()
    fresh = gen.render(gen.registered_torch_op_names(), importlib.metadata.version("torch-mlir"))
    assert shipped.TORCH_MLIR_VERSION == importlib.metadata.version("torch-mlir")
    with open(shipped.__file__) as f:
        assert f.read() == fresh, "run tools/gen_torch_mlir_op_names.py"


def test_importer_names_an_op_exactly_when_torch_mlir_registers_it():
    """For every ATen/prims overload torch knows, the importer's choice between `torch.aten.<op>`
    and `torch.operator` is the one torch-mlir's importer makes with `is_registered_operation`."""
    from torch_mlir_backend.importers.fx_importer import schema_op_name
    from torch_mlir_backend.importers.torch_mlir_op_names import TORCH_MLIR_OP_NAMES

    ctx = torch_mlir_ir.Context()
    torch_d.register_dialect(ctx)
    names = {schema_op_name(s) for s in torch._C._jit_get_all_schemas()
             if s.name.split("::")[0] in ("aten", "prims")}
    assert len(names) > 2000
    differ = sorted(n for n in names if (n in TORCH_MLIR_OP_NAMES) != ctx.is_registered_operation(n))
    assert not differ, differ[:20]
    assert sum(n in TORCH_MLIR_OP_NAMES for n in names) > 500
