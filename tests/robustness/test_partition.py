"""Partial graphs: unsupported ops run eagerly around compiled regions, with one warning each;
strict mode raises; explain() reports regions and fallbacks. Every result is compared with eager."""
import warnings

import pytest
import torch

import torch_mlir_backend
from torch_mlir_backend import UnsupportedOpError
from torch_mlir_backend.lowering.registry import LOWERINGS, LoweringRule
from torch_mlir_backend.partition import EagerFallbackWarning, PartitionedGraph
from torch_mlir_backend.runtime import compilation_count

from helpers import OPAQUE_OP, assert_same, opaque_cos

aten = torch.ops.aten


def _with_unsupported(x):
    y = torch.relu(x * 2)
    z = opaque_cos(y)  # a custom op: no lowering rule, eager
    return z + y, y.sum()


def _compile(fn, **options):
    return torch.compile(fn, backend="torch_mlir", options=options)


def _fallback_warnings(caught):
    return [str(w.message) for w in caught if issubclass(w.category, EagerFallbackWarning)]


def test_unsupported_op_runs_eagerly_between_compiled_regions():
    x = torch.randn(3, 5)
    before = compilation_count()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _compile(_with_unsupported)(x)
    assert_same(got, _with_unsupported(x), "partitioned", [x], atol=1e-6, rtol=1e-6)
    assert compilation_count() - before >= 2, "the supported regions before and after the custom op compile"
    messages = _fallback_warnings(caught)
    line = _with_unsupported.__code__.co_firstlineno + 2
    assert len(messages) == 1, messages
    assert OPAQUE_OP in messages[0]
    assert "[3,5]float32" in messages[0]
    assert f"test_partition.py:{line}" in messages[0]


def test_fallback_warning_is_issued_once_per_op_and_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _compile(_with_unsupported)(torch.randn(3, 5))
        torch._dynamo.reset()
        _compile(_with_unsupported)(torch.randn(4, 2))  # a second compile of the same line
    assert len(_fallback_warnings(caught)) == 1


def test_strict_raises_naming_op_inputs_and_line():
    with pytest.raises(Exception) as info:
        _compile(_with_unsupported, strict=True)(torch.randn(3, 5))
    err = info.value
    while err is not None and not isinstance(err, UnsupportedOpError):
        err = err.__cause__ or err.__context__
    assert isinstance(err, UnsupportedOpError), info.value
    assert err.op_name == OPAQUE_OP
    assert "float32" in err.input_types
    assert f"test_partition.py:{_with_unsupported.__code__.co_firstlineno + 2}" in err.location


def test_rule_rejecting_a_shape_while_lowering_falls_back_for_that_node_only(monkeypatch):
    rule = LOWERINGS["torch.aten.neg"]

    def rank3_rejecting_neg(ctx, x):
        if ctx.in_specs[0].rank == 3:
            raise ctx.reject("rank-3 neg rejected for this test")
        return rule.fn(ctx, x)

    monkeypatch.setitem(LOWERINGS, "torch.aten.neg", LoweringRule(rule.target, rank3_rejecting_neg, rule.dtypes))

    def fn(x, y):
        return -(x * 2) + 1, -y  # the rank-3 neg falls back, the rank-2 neg compiles

    x, y = torch.randn(2, 3, 4), torch.randn(3, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _compile(fn)(x, y)
    assert_same(got, fn(x, y), "reject-at-lowering", [x, y], atol=0, rtol=0)
    messages = _fallback_warnings(caught)
    assert len(messages) == 1 and "rank-3 neg rejected" in messages[0] and "[2,3,4]float32" in messages[0]


def test_multi_output_regions_and_fallback_feeding_several_regions():
    def fn(x):
        a, b = torch.chunk(x * 3, 2, dim=1)
        c = opaque_cos(a)
        return torch.cat([c + b, b], dim=0), opaque_cos(b) * a

    x = torch.randn(4, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EagerFallbackWarning)
        got = _compile(fn)(x)
    assert_same(got, fn(x), "multi-region", [x], atol=1e-6, rtol=1e-6)


def test_partitioned_graph_supports_backward():
    def fn(x):
        return (opaque_cos(torch.tanh(x)) * x).sum()

    x = torch.randn(5, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EagerFallbackWarning)
        _compile(fn)(x).backward()
    fn(x_ref).backward()
    assert_same(x.grad, x_ref.grad, "partitioned backward", [x], atol=1e-5, rtol=1e-5)


def test_explain_reports_regions_ops_and_fallback_reasons():
    x = torch.randn(3, 5)
    report = torch_mlir_backend.explain(_with_unsupported, x)
    assert_same(report.outputs, _with_unsupported(x), "explain outputs", [x], atol=1e-6, rtol=1e-6)
    assert len(report.graphs) == 1
    assert len(report.regions) == 2
    ops = [op for region in report.regions for op in region]
    assert "aten.relu.default" in ops and "aten.sum.dim_IntList" in ops
    assert OPAQUE_OP not in ops
    (fallback,) = report.fallbacks
    assert fallback.op == OPAQUE_OP
    assert fallback.reason == "no lowering rule for this op"
    assert fallback.input_types == "[3,5]float32"
    assert fallback.source_line.endswith(f"test_partition.py:{_with_unsupported.__code__.co_firstlineno + 2}")
    text = str(report)
    assert "2 compiled region(s)" in text and f"eager: {OPAQUE_OP}" in text


def test_explain_outputs_match_eager_and_dtype_fallbacks_are_explained():
    x = torch.randn(3, 3, dtype=torch.complex64)
    report = torch_mlir_backend.explain(lambda a: torch.mm(a, a) * 2, x)
    assert_same(report.outputs, torch.mm(x, x) * 2, "explain complex", [x], atol=1e-5, rtol=1e-5)
    assert not report.fully_compiled
    reasons = {f.op: f.reason for f in report.fallbacks}
    assert "complex64 is not supported" in reasons["aten.mm.default"]


def test_explain_of_a_fully_supported_model():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    x = torch.randn(2, 4)
    with torch.no_grad():
        report = torch_mlir_backend.explain(model, x)
        assert_same(report.outputs, model(x), "explain mlp", [x], atol=1e-6, rtol=1e-6)
    assert report.fully_compiled and len(report.regions) == 1
    assert "aten.addmm.default" in report.regions[0]


def test_fully_supported_graph_is_not_partitioned():
    from torch_mlir_backend import backend

    seen = []
    original = backend.compile_fx_graph

    def spy(gm, example_inputs, options=None):
        compiled = original(gm, example_inputs, options)
        seen.append(compiled)
        return compiled

    backend.compile_fx_graph = spy
    try:
        x = torch.randn(4)
        assert_same(_compile(lambda a: a * 2 + 1)(x), x * 2 + 1, "whole", [x], atol=0, rtol=0)
    finally:
        backend.compile_fx_graph = original
    assert len(seen) == 1 and not isinstance(seen[0], PartitionedGraph)
