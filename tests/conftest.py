"""Shared fixtures: every test starts with a fresh Dynamo cache so compiled code never leaks
between tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _reset_dynamo():
    torch._dynamo.reset()
    yield
