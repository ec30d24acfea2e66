"""Every named conformance case (the same ones `python -m torch_mlir_backend.e2e` runs)."""
import pytest

from torch_mlir_backend.e2e import all_cases, run_case, select_cases

CASES = all_cases()


def test_there_are_cases():
    assert len(CASES) >= 400


def test_filter_selects_by_regex():
    names = [c.name for c in select_cases("^Conv2dModule_")]
    assert names and all(n.startswith("Conv2dModule_") for n in names)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case):
    result = run_case(case)
    assert result.passed, f"{case.name}: {result.message}"
