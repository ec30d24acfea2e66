"""The e2e runner's command line prints per-case status and a summary."""
import subprocess
import sys


def test_cli_runs_filtered_cases_verbose():
    proc = subprocess.run([sys.executable, "-m", "torch_mlir_backend.e2e", "--filter", "^MmModule_basic$", "--verbose"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS MmModule_basic" in proc.stdout
    assert "max_error=" in proc.stdout
    assert "Summary: 1 passed, 0 failed, 1 cases" in proc.stdout


def test_cli_no_match_is_an_error():
    proc = subprocess.run([sys.executable, "-m", "torch_mlir_backend.e2e", "--filter", "NoSuchCaseXYZ"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert "no conformance case matches" in proc.stderr
