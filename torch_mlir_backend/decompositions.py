"""The decomposition table AOTAutograd applies before import: PyTorch's Core ATen table plus
the ops we prefer to see decomposed (each listed with why). Edit this one place to change what
the importer sees."""
from __future__ import annotations

import functools

import torch
from torch._decomp import core_aten_decompositions, get_decompositions

aten = torch.ops.aten

# Ops outside Core ATen's own decompositions that we lower through PyTorch's reference
# decompositions rather than a rule of our own (the decomposition is already fused well by
# linalg elementwise fusion, or the op is rare).
EXTRA = [
]


@functools.lru_cache(maxsize=None)
def _table():
    table = dict(core_aten_decompositions())
    table.update(get_decompositions(EXTRA))
    return table


def decomposition_table() -> dict:
    return _table()
