"""The examples run: examples/resnet18.py (top-5 against eager) and the notebook
examples/resnet_inference.ipynb executed headless (small image, few runs)."""
import importlib.util
import os
import time

import pytest

from _models import REPO

EXAMPLES = os.path.join(REPO, "examples")


def _example_module():
    spec = importlib.util.spec_from_file_location("resnet18_example", os.path.join(EXAMPLES, "resnet18.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_resnet18_example_matches_eager(capsys):
    example = _example_module()
    assert example.main(["--size", "32", "--runs", "2"]) == 0  # exit status 0 = same top-5
    out = capsys.readouterr().out
    assert "(same)" in out and "median latency" in out
    assert float(out.split("max |logit difference|: ")[1].split()[0]) < 1e-4


def test_notebook_executes_headless(monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="notebook execution needs the test extra nbformat")
    nbclient = pytest.importorskip("nbclient", reason="notebook execution needs the test extra nbclient")
    monkeypatch.setenv("RESNET_EXAMPLE_SIZE", "32")
    monkeypatch.setenv("RESNET_EXAMPLE_RUNS", "3")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(os.path.join(EXAMPLES, "resnet_inference.ipynb"), as_version=4)
    start = time.perf_counter()
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": EXAMPLES}}).execute()
    seconds = time.perf_counter() - start
    print(f"notebook executed in {seconds:.1f} s")
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    assert "top-5 identical" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the latency plot was not drawn"
