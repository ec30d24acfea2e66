"""Conformance cases and their runner (`python -m torch_mlir_backend.e2e --filter X --verbose`)."""
from .registry import CASES, ConformanceCase, all_cases, conformance_case, select_cases
from .runner import CaseResult, run_case, run_cases

__all__ = ["CASES", "ConformanceCase", "all_cases", "conformance_case", "select_cases",
           "CaseResult", "run_case", "run_cases"]
