"""The lowering table itself: every registered rule is exercised by a test in tests/lowering,
rules reject what they cannot honour, and the table is keyed by ATen overloads."""
import pathlib
import re

import torch

from torch_mlir_backend.lowering.registry import LOWERINGS, lowers

TESTS = pathlib.Path(__file__).parent


def _test_text() -> str:
    return "\n".join(p.read_text() for p in TESTS.glob("test_*.py") if p.name != "test_registry.py")


# Overloads that tests reach through the public API rather than by name: the API call to look for.
REACHED_THROUGH = {
    "aten.max_pool2d_with_indices.default": r"max_pool2d", "aten.max_pool3d_with_indices.default": r"max_pool3d",
    "aten._adaptive_avg_pool2d.default": r"adaptive_avg_pool2d", "aten._adaptive_avg_pool3d.default": r"adaptive_avg_pool3d",
    "aten.slice.Tensor": r"\[[^\]]*:", "aten.select.int": r"\bselect\b", "aten.split_with_sizes.default": r"\bsplit\b",
    "aten.squeeze.dims": r"\bsqueeze\b", "aten.constant_pad_nd.default": r"\bF\.pad\b|functional\.pad\b",
    "aten.arange.start_step": r"\barange\b", "aten.empty.memory_format": r"\bempty\b",
    "aten.empty_permuted.default": r"empty_like|empty_permuted", "aten.any.dim": r"\bany\b",
    "aten.var.correction": r"\bvar\(", "aten.var_mean.correction": r"\bvar_mean\b",
}
for _cmp in ("eq", "ne", "lt", "le", "gt", "ge"):
    for _kind in ("Tensor", "Scalar"):
        REACHED_THROUGH[f"aten.{_cmp}.{_kind}"] = rf'"{_cmp}"'  # test_elementwise builds these names


def test_every_rule_is_named_in_a_lowering_test():
    text = _test_text()
    missing = []
    for rule in LOWERINGS.values():
        target = rule.target
        packet = target._schema.name.split("::", 1)[1]
        overload = target._overloadname
        # e.g. `aten.add.Tensor`, `aten.mm.default`, `aten.mm(` or `torch.mm(` for .default overloads
        patterns = [rf"\b{re.escape(packet)}\.{re.escape(overload)}\b"]
        if overload == "default":
            patterns.append(rf"\b{re.escape(packet)}\b")
        if str(target) in REACHED_THROUGH:
            patterns.append(REACHED_THROUGH[str(target)])
        if not any(re.search(p, text) for p in patterns):
            missing.append(str(target))
    assert not missing, f"rules without a test in tests/lowering: {missing}"


def test_table_is_keyed_by_overloads():
    assert len(LOWERINGS) > 100
    for name, rule in LOWERINGS.items():
        assert isinstance(rule.target, torch._ops.OpOverload)
        assert name.startswith("torch.")


def test_registering_a_packet_is_an_error():
    try:
        lowers(torch.ops.aten.mm)(lambda ctx, a, b: a)
    except TypeError as e:
        assert "overload" in str(e)
    else:
        raise AssertionError("registering an OpOverloadPacket must fail")
