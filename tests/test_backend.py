"""The Dynamo backend: registration by entry point, options, errors that name the op and line,
IR dumps, the in-memory compile cache, zero-copy inputs."""
import os
import subprocess
import sys

import pytest
import torch

from helpers import OPAQUE_OP, check, compile_fn, opaque_cos
from torch_mlir_backend import UnsupportedOpError
from torch_mlir_backend.runtime import compilation_count


def test_backend_is_registered_without_importing_the_package():
    code = ("import sys, torch\n"
            "assert 'torch_mlir' in torch._dynamo.list_backends(), torch._dynamo.list_backends()\n"
            "f = torch.compile(lambda x: x * 2 + 1, backend='torch_mlir')\n"
            "x = torch.arange(6.0)\n"
            "assert torch.equal(f(x), x * 2 + 1)\n"
            "print('ok', 'torch_mlir_backend' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


def test_options_reach_the_backend(tmp_path):
    dump = tmp_path / "ir"
    # Compiled once without a dump first: a dump must still show every stage, not a cache hit.
    check(lambda x: torch.tanh(x) * 3, torch.randn(4, 4), options={"opt_level": 1})
    check(lambda x: torch.tanh(x) * 3, torch.randn(4, 4), options={"dump_dir": str(dump), "opt_level": 1})
    files = sorted(os.listdir(dump))
    assert "00-torch.mlir" in files and "00-linalg-on-tensors.mlir" in files
    assert len(files) >= 5, files  # plus one file per pipeline stage
    torch_ir = (dump / "00-torch.mlir").read_text()
    assert "torch.aten.tanh" in torch_ir and "test_backend.py" in torch_ir  # locations are kept


def test_unknown_option_is_rejected():
    with pytest.raises(Exception, match="unknown option"):
        compile_fn(lambda x: x + 1, options={"no_such_option": 1})(torch.randn(2))


def _uses_unsupported_op(x):
    return opaque_cos(x) + 1  # a custom op: no lowering rule


def test_unsupported_op_names_op_shapes_and_source_line():
    with pytest.raises(Exception) as info:
        compile_fn(_uses_unsupported_op)(torch.randn(3, 5))
    err = info.value
    while err is not None and not isinstance(err, UnsupportedOpError):
        err = err.__cause__ or err.__context__
    assert isinstance(err, UnsupportedOpError), info.value
    text = str(err)
    assert OPAQUE_OP in text
    assert "[3,5]float32" in text
    line = _uses_unsupported_op.__code__.co_firstlineno + 1
    assert f"test_backend.py:{line}" in text


def test_unsupported_dtype_is_rejected_not_computed_in_another_dtype():
    with pytest.raises(Exception, match=r"aten\.mm.*complex64|complex64.*aten\.mm|dtype"):
        compile_fn(torch.mm)(torch.randn(2, 2, dtype=torch.complex64), torch.randn(2, 2, dtype=torch.complex64))


def test_same_graph_and_specs_compile_once():
    before = compilation_count()
    f1 = compile_fn(lambda x: torch.sigmoid(x) * 7.25)
    f1(torch.randn(5, 3))
    torch._dynamo.reset()
    f2 = compile_fn(lambda x: torch.sigmoid(x) * 7.25)
    f2(torch.randn(5, 3))
    assert compilation_count() - before == 1


def test_inputs_are_read_in_place_zero_copy():
    f = compile_fn(lambda x, y: x * y)
    x = torch.randn(32)
    y = torch.randn(32)
    out1 = f(x, y)
    assert torch.equal(out1, x * y)
    x.mul_(2.0)  # mutate the caller's storage: the compiled graph must read it, not a copy
    out2 = f(x, y)
    assert torch.equal(out2, x * y)
    assert out1.data_ptr() != out2.data_ptr()  # fresh output every call


def test_graph_returning_its_input_and_a_view():
    check(lambda x: (x, x.t() * 1, x + 1), torch.randn(3, 4))


def test_two_results_with_identical_accumulators_stay_separate():
    # Regression: CSE merged the two zero-filled accumulators and in-place bufferization wrote
    # both products into one output buffer.
    a, b, c = torch.randn(4, 5), torch.randn(5, 3), torch.randn(5, 3)
    check(lambda a, b, c: (a @ b, a @ c), a, b, c)
    check(lambda x: (x.argmin(1), x.argmax(1)), torch.randn(4, 6))
