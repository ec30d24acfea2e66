"""The `torch-mlir-backend` command line: --help of each subcommand, import / opt / run /
explain on small models (run's statistics against eager), and clear errors for bad input."""
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from torch_mlir_backend.cli import main, parse_shape

from _models import MLP, torch_mlir_verifies


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder holding `tiny_models.py` (importable as module:function) and `mlp.pt`."""
    (tmp_path / "tiny_models.py").write_text(textwrap.dedent("""
        import torch

        def add_mul(x, y):
            return x * y + x

        def make_mlp():
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    torch.jit.save(torch.jit.script(MLP().eval()), str(tmp_path / "mlp.pt"))
    return tmp_path


@pytest.mark.parametrize("command", [[], ["import"], ["opt"], ["run"], ["explain"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(command + ["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: torch-mlir-backend")
    for word in {(): ["import", "opt", "run", "explain"], ("import",): ["--shape", "target"],
                 ("opt",): ["--stages", "--to"], ("run",): ["--shape", "--entry"],
                 ("explain",): ["--shape"]}[tuple(command)]:
        assert word in out


def test_installed_script_runs():
    script = os.path.join(os.path.dirname(sys.executable), "torch-mlir-backend")
    if not os.path.exists(script):
        pytest.skip("the package is not installed with its [project.scripts] entry (pip install -e .)")
    out = subprocess.run([script, "run", "--help"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.startswith("usage: torch-mlir-backend run")


def test_list_stages(capsys):
    assert main(["opt", "--list-stages"]) == 0
    stages = capsys.readouterr().out.split()
    assert stages[0] == "torch-to-linalg" and "bufferize" in stages and "to-llvm" in stages


def test_import_pt_and_function(workdir, capsys):
    assert main(["import", "mlp.pt", "--shape", "2x8:f32", "-o", "mlp.mlir"]) == 0
    text = (workdir / "mlp.mlir").read_text()
    assert "func.func @main(%arg0: !torch.vtensor<[2,8],f32>) -> !torch.vtensor<[2,4],f32>" in text
    torch_mlir_verifies(text)
    assert main(["import", "tiny_models:add_mul", "--shape", "2x3:f32", "--shape", "2x3:f32"]) == 0
    out = capsys.readouterr().out
    assert '"torch.aten.mul.Tensor"' in out and '"torch.aten.add.Tensor"' in out
    assert main(["import", "tiny_models:make_mlp", "--shape", "2x8:f32", "--elide", "4"]) == 0
    assert "dense_resource<__elided__>" in capsys.readouterr().out


def test_opt_to_levels_and_named_stages(workdir, capsys):
    main(["import", "mlp.pt", "--shape", "2x8:f32", "-o", "mlp.mlir"])
    capsys.readouterr()
    assert main(["opt", "mlp.mlir", "--to", "linalg-on-tensors"]) == 0
    out = capsys.readouterr().out
    assert "linalg." in out and "torch." not in out
    assert main(["opt", "mlp.mlir", "--stages", "torch-to-linalg,destination-passing-abi", "-o", "abi.mlir"]) == 0
    assert "llvm.emit_c_interface" in (workdir / "abi.mlir").read_text()
    assert main(["opt", "mlp.mlir", "--to", "llvm"]) == 0
    assert "llvm.func @main" in capsys.readouterr().out


def _stats(line: str) -> list[float]:
    return [float(v) for v in re.findall(r"(?:min|max|mean)=(\S+)", line)]


def test_run_prints_eager_statistics(workdir, capsys):
    main(["import", "mlp.pt", "--shape", "2x8:f32", "-o", "mlp.mlir"])
    capsys.readouterr()
    assert main(["run", "mlp.mlir", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("input 0: shape=[2, 8] dtype=float32")
    assert lines[1].startswith("output 0: shape=[2, 4] dtype=float32")
    x = torch.randn((2, 8), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = MLP().eval()(x).double()
    got = _stats(lines[1])
    assert got == pytest.approx([want.min().item(), want.max().item(), want.mean().item()], rel=1e-4, abs=1e-5)
    # a linalg-on-tensors file runs too
    main(["opt", "mlp.mlir", "--to", "linalg-on-tensors", "-o", "linalg.mlir"])
    capsys.readouterr()
    assert main(["run", "linalg.mlir", "--shape", "2x8:f32", "--seed", "3"]) == 0
    assert _stats(capsys.readouterr().out.splitlines()[1]) == pytest.approx(got, rel=1e-6)


def test_explain(workdir, capsys):
    code = main(["explain", "tiny_models:make_mlp", "--shape", "2x8:f32"])
    out, err = capsys.readouterr()
    try:
        import torch_mlir_backend.explain  # noqa: F401
    except ImportError:
        assert code == 1 and "explain is not available" in err
        return
    assert code == 0 and "compiled" in out and "aten.addmm" in out


def test_bad_input_is_one_clear_error(workdir, capsys):
    (workdir / "bad.pt").write_bytes(b"garbage")
    (workdir / "bad.mlir").write_text("func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n"
                                      "  return %b : tensor<2xf32>\n}\n")
    main(["import", "mlp.pt", "--shape", "2x8:f32", "-o", "mlp.mlir"])
    cases = [
        (["import", "bad.pt", "--shape", "2:f32"], "bad.pt: not a TorchScript archive"),
        (["run", "bad.mlir"], r"bad.mlir:2:\d+: use of undeclared SSA value"),
        (["opt", "bad.mlir", "--to", "llvm"], r"bad.mlir:2:\d+"),
        (["opt", "mlp.mlir", "--stages", "no-such-stage"], "unknown stage"),
        (["import", "tiny_models:missing", "--shape", "2:f32"], "has no attribute 'missing'"),
        (["import", "no_such_module:f", "--shape", "2:f32"], "cannot import module 'no_such_module'"),
        (["import", "mlp.pt", "--shape", "2x8:f99"], "unknown dtype 'f99'"),
        (["run", "missing.mlir"], "missing.mlir: no such file"),
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert re.search(message, err), (argv, err)
        assert "Traceback" not in err
    main(["import", "mlp.pt", "--shape", "2x8:f32", "--elide", "4", "-o", "elided.mlir"])
    assert main(["run", "elided.mlir"]) == 1
    assert "elided constants" in capsys.readouterr().err
    assert main(["run", "mlp.mlir", "--shape", "3x8:f32"]) == 1
    assert "does not match argument 0" in capsys.readouterr().err


def test_parse_shape():
    assert parse_shape("2x3:f32") == ((2, 3), torch.float32)
    assert parse_shape(":i64") == ((), torch.int64)
    assert parse_shape("4") == ((4,), torch.float32)
