"""Ranked memref descriptors pointing straight at torch tensors' storage, laid out for one call.

MLIR's ranked memref descriptor is, in 64-bit words:
`[allocated, aligned, offset, sizes[rank], strides[rank]]` (a 0-d memref has only the first 3).
The element type does not change the layout, so every descriptor of a call lives in one flat
`c_int64` array (`CallFrame.words`); `CallFrame.args` is the packed `void**` the JIT's
`_mlir__mlir_ciface_<fn>` wrapper takes: entry i points to a slot holding a pointer to descriptor i.
A frame is built once (per thread) and a call only patches the data pointers (and, for dynamic
dims or strided layouts, the sizes/strides).
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Optional, Sequence

HEADER_WORDS = 3  # allocated, aligned, offset


def descriptor_words(rank: int) -> int:
    return HEADER_WORDS + 2 * rank


def contiguous_strides(shape: Sequence[int]) -> list[int]:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= max(int(d), 1)
    return strides[::-1]


@dataclass(frozen=True)
class DescriptorSlot:
    """Where one memref's descriptor sits in a frame, and what a call must write into it.

    `static_shape` is the shape when fully known at compile time (its sizes/strides are written
    once); `write_strides` is set for strided layouts (strides are read from the tensor each call).
    """

    offset: int  # in words, inside CallFrame.words
    rank: int
    static_shape: Optional[tuple[int, ...]]
    write_strides: bool = False

    @property
    def needs_shape_per_call(self) -> bool:
        return self.static_shape is None or self.write_strides


def plan_slots(shapes: Sequence[tuple], strided: Sequence[bool]) -> tuple[list[DescriptorSlot], int]:
    """Descriptor slots for memrefs with the given (possibly dynamic, None) shapes; returns the
    slots and the number of words the frame needs."""
    slots, offset = [], 0
    for shape, is_strided in zip(shapes, strided):
        static = tuple(shape) if all(d is not None for d in shape) else None
        slots.append(DescriptorSlot(offset, len(shape), static, bool(is_strided) and len(shape) > 0))
        offset += descriptor_words(len(shape))
    return slots, offset


class CallFrame:
    """The memory for one call: all descriptors plus the packed argument array. Not thread-safe
    by itself: keep one per thread."""

    __slots__ = ("words", "pointers", "args", "args_address")

    def __init__(self, slots: Sequence[DescriptorSlot], total_words: int):
        self.words = (ctypes.c_int64 * max(total_words, 1))()
        base = ctypes.addressof(self.words)
        n = len(slots)
        # pointers[i] = &descriptor_i ; args[i] = &pointers[i]
        self.pointers = (ctypes.c_void_p * max(n, 1))(*[base + 8 * s.offset for s in slots])
        pointers_base = ctypes.addressof(self.pointers)
        self.args = (ctypes.c_void_p * max(n, 1))(*[pointers_base + 8 * i for i in range(n)])
        self.args_address = ctypes.addressof(self.args)
        for s in slots:
            if s.static_shape is not None:
                self.write_shape(s, s.static_shape, contiguous_strides(s.static_shape))

    def write_shape(self, slot: DescriptorSlot, sizes: Sequence[int], strides: Sequence[int]) -> None:
        start = slot.offset + HEADER_WORDS
        r = slot.rank
        if r:
            self.words[start : start + r] = list(sizes)
            self.words[start + r : start + 2 * r] = list(strides)

    def descriptor(self, slot: DescriptorSlot) -> list[int]:
        """The words of one descriptor (for tests and debugging)."""
        return list(self.words[slot.offset : slot.offset + descriptor_words(slot.rank)])
