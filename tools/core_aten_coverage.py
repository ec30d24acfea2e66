"""Core ATen coverage: for every overload tagged `torch.Tag.core`, is it lowered?

Each overload gets one status:

- `rule`: a lowering rule is registered for it (`lowering.registry.LOWERINGS`);
- `decomposed`: our decomposition table (`decompositions.decomposition_table()`) has an entry, and
  tracing that entry (`make_fx` with the table, as AOTAutograd does) on a real call of the op
  produces only ops with rules. The real call's arguments are captured from PyTorch's OpInfo
  samples (forward, and backward for backward ops) under a dispatch mode, or from `EXAMPLE_CALLS`;
- `decomposed-unverified`: in the table, but no OpInfo sample calls the op, so we could not trace it;
- `decomposed-incomplete`: traced, but the decomposition produces ops without rules (named);
- `functionalized`: an `out=` overload; Dynamo/AOTAutograd functionalize it to the functional
  overload, so it is covered when that one is;
- `trace-time`: a symbolic-shape query (`sym_stride`, `sym_storage_offset`...): with static shapes
  it is a constant at trace time and never reaches the backend;
- `missing`: none of the above.

Writes a Markdown report (default tools/results/core_aten_coverage.md) listing the missing ones.

    /work/venv/bin/python tools/core_aten_coverage.py --out tools/results/core_aten_coverage.md
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
COVERED = ("rule", "decomposed", "functionalized", "trace-time")


@dataclass
class Coverage:
    overload: torch._ops.OpOverload
    status: str
    detail: str = ""
    uses: list = field(default_factory=list)  # ops the decomposition produces

    @property
    def covered(self) -> bool:
        return self.status in COVERED

    @property
    def name(self) -> str:
        return str(self.overload)


def core_overloads() -> list[torch._ops.OpOverload]:
    found = []
    for name in sorted(dir(torch.ops.aten)):
        packet = getattr(torch.ops.aten, name, None)
        if not isinstance(packet, torch._ops.OpOverloadPacket):
            continue
        for ov in packet.overloads():
            overload = getattr(packet, ov)
            if torch.Tag.core in overload.tags:
                found.append(overload)
    return sorted(set(found), key=str)


class _CaptureCalls(TorchDispatchMode):
    """Remembers the first (args, kwargs) each wanted overload is called with."""

    def __init__(self, wanted):
        super().__init__()
        self.wanted = set(wanted)
        self.calls: dict = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.wanted and func not in self.calls:
            clone = lambda x: x.detach().clone() if isinstance(x, torch.Tensor) else x  # noqa: E731
            self.calls[func] = (torch.utils._pytree.tree_map(clone, args),
                                torch.utils._pytree.tree_map(clone, kwargs))
        return func(*args, **kwargs)


def capture_example_calls(wanted, max_ops: Optional[int] = None) -> dict:
    """Example arguments of each overload in `wanted`, from the first float32 OpInfo sample of
    every OpInfo (forward, then backward when the op is differentiable); stops early once all
    are found."""
    import warnings

    from torch.testing._internal.common_methods_invocations import op_db

    mode = _CaptureCalls(wanted)
    for i, op in enumerate(op_db):
        if max_ops is not None and i >= max_ops or len(mode.calls) == len(mode.wanted):
            break
        for requires_grad in (False, True):
            if requires_grad and not op.supports_autograd:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sample = next(iter(op.sample_inputs("cpu", torch.float32, requires_grad=requires_grad)))
                    with mode:
                        out = op.op(sample.input, *sample.args, **sample.kwargs)
                        if requires_grad:
                            leaves = [o for o in torch.utils._pytree.tree_leaves(out)
                                      if isinstance(o, torch.Tensor) and o.requires_grad]
                            if leaves:
                                sum(o.sum() for o in leaves).backward()
            except Exception:  # a sample this op cannot run here: try the next op
                continue
    return mode.calls


# Example calls for decomposed overloads the first OpInfo samples do not reach (an OpInfo's first
# sample is often the 1-d case, or the op's other overload).
EXAMPLE_CALLS = {
    "aten.reflection_pad2d.default": lambda: ((torch.rand(1, 2, 4, 5), [1, 2, 2, 1]), {}),
    "aten.reflection_pad3d.default": lambda: ((torch.rand(1, 1, 3, 4, 5), [1, 1, 1, 2, 2, 1]), {}),
    "aten.replication_pad3d.default": lambda: ((torch.rand(1, 1, 3, 4, 5), [1, 1, 1, 2, 2, 1]), {}),
    "aten.avg_pool1d.default": lambda: ((torch.rand(2, 3, 9), [3], [2], [1]), {}),
    "aten.adaptive_avg_pool1d.default": lambda: ((torch.rand(2, 3, 7), [3]), {}),
    "aten.native_dropout.default": lambda: ((torch.rand(4, 5), 0.5, True), {}),
    "aten.var.dim": lambda: ((torch.rand(3, 4), [1], True, False), {}),
}


def decomposition_uses(overload, args, kwargs, table) -> set:
    """ATen overloads left after tracing `overload(*args, **kwargs)` with the decomposition table."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx

    flat, spec = torch.utils._pytree.tree_flatten((args, kwargs))
    tensor_pos = [i for i, x in enumerate(flat) if isinstance(x, torch.Tensor)]

    def call(*tensors):
        filled = list(flat)
        for pos, t in zip(tensor_pos, tensors):
            filled[pos] = t
        a, k = torch.utils._pytree.tree_unflatten(filled, spec)
        return overload(*a, **k)

    with FakeTensorMode(allow_non_fake_inputs=True):
        gm = make_fx(call, decomposition_table=table, tracing_mode="real")(
            *[flat[i] for i in tensor_pos])
    return {n.target for n in gm.graph.nodes
            if n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload)}


def coverage(max_ops: Optional[int] = None) -> list[Coverage]:
    from torch_mlir_backend.decompositions import decomposition_table
    from torch_mlir_backend.lowering import registered_overloads

    rules = set(registered_overloads())
    table = decomposition_table()
    core = core_overloads()
    result: dict = {}
    to_trace = []
    for ov in core:
        schema = ov._schema
        if ov in rules:
            result[ov] = Coverage(ov, "rule")
        elif schema.name.startswith("aten::sym_"):
            result[ov] = Coverage(ov, "trace-time", "symbolic shape query; a constant with static shapes")
        elif ov._overloadname == "out" or any(a.is_out for a in schema.arguments):
            functional = getattr(ov.overloadpacket, "default", None)
            ok = functional in rules or functional in table
            result[ov] = Coverage(ov, "functionalized" if ok else "missing",
                                  f"functional form {functional}" + ("" if ok else " is not covered"))
        elif ov in table:
            to_trace.append(ov)
        else:
            result[ov] = Coverage(ov, "missing")
    calls = capture_example_calls(to_trace, max_ops) if to_trace else {}
    for ov in to_trace:
        if ov not in calls and str(ov) in EXAMPLE_CALLS:
            calls[ov] = EXAMPLE_CALLS[str(ov)]()
    for ov in to_trace:
        if ov not in calls:
            result[ov] = Coverage(ov, "decomposed-unverified", "no OpInfo sample calls it")
            continue
        try:
            uses = decomposition_uses(ov, *calls[ov], table)
        except Exception as e:
            result[ov] = Coverage(ov, "decomposed-unverified", f"tracing failed: {type(e).__name__}: {str(e)[:120]}")
            continue
        unlowered = sorted(str(u) for u in uses if u not in rules)
        if unlowered:
            result[ov] = Coverage(ov, "decomposed-incomplete", "needs " + ", ".join(unlowered), sorted(map(str, uses)))
        else:
            result[ov] = Coverage(ov, "decomposed", "", sorted(map(str, uses)))
    return [result[ov] for ov in core]


def report(entries: list[Coverage]) -> str:
    counts = Counter(e.status for e in entries)
    covered = sum(e.covered for e in entries)
    lines = [
        "# Core ATen coverage", "",
        f"torch {torch.__version__}: {covered} of {len(entries)} `torch.Tag.core` overloads covered.", "",
        "| status | overloads |", "|---|---:|",
    ]
    for status in ("rule", "decomposed", "functionalized", "trace-time",
                   "decomposed-incomplete", "decomposed-unverified", "missing"):
        lines.append(f"| {status} | {counts.get(status, 0)} |")
    not_covered = [e for e in entries if not e.covered]
    lines += ["", f"## Not covered ({len(not_covered)})", ""]
    lines += [f"- `{e.name}` ({e.status}{': ' + e.detail if e.detail else ''})" for e in not_covered]
    special = [e for e in entries if e.status in ("functionalized", "trace-time", "decomposed")]
    lines += ["", "## Covered without a rule of their own", ""]
    lines += [f"- `{e.name}` ({e.status}{': ' + e.detail if e.detail else ''})" for e in special]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="tools/results/core_aten_coverage.md")
    args = parser.parse_args(argv)
    entries = coverage()
    text = report(entries)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
