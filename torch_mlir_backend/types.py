"""Tensor specs and the dtype tables shared by importer, lowering and runtime.

One place maps a torch dtype to its Torch-dialect spelling (`si64`, `ui8`, `i1`, ...), its
builtin MLIR element type (signless `i64`, `i8`, `i1`, ...) and c10's ScalarType number.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

# torch dtype -> (Torch dialect element type, builtin element type, c10::ScalarType number)
_DTYPE_TABLE = {
    torch.float32: ("f32", "f32", 6),
    torch.float64: ("f64", "f64", 7),
    torch.float16: ("f16", "f16", 5),
    torch.bfloat16: ("bf16", "bf16", 15),
    torch.int64: ("si64", "i64", 4),
    torch.int32: ("si32", "i32", 3),
    torch.int16: ("si16", "i16", 2),
    torch.int8: ("si8", "i8", 1),
    torch.uint8: ("ui8", "i8", 0),
    torch.bool: ("i1", "i1", 11),
    # Only as a result (hash_tensor's): no rule computes on uint64 operands unless it lists it.
    torch.uint64: ("ui64", "i64", 29),
    torch.complex64: ("complex<f32>", "complex<f32>", 9),
    torch.complex128: ("complex<f64>", "complex<f64>", 10),
    torch.complex32: ("complex<f16>", "complex<f16>", 8),
}
_TORCH_NAME_TO_DTYPE = {v[0]: k for k, v in _DTYPE_TABLE.items()}
_SCALAR_TYPE_TO_DTYPE = {v[2]: k for k, v in _DTYPE_TABLE.items()}

# The real dtypes every rule handles unless it says otherwise (the `@lowers` default); others
# (float8, ...) are rejected by rules.
SUPPORTED_DTYPES = (
    torch.float32, torch.float64, torch.float16, torch.bfloat16,
    torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool,
)
FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
SIGNED_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8)
# Complex dtypes reach only the rules that list them (lowering/complex.py and the cast, copy and
# elementwise rules that dispatch to it): element type `complex<fN>`, 2 x N bits an element,
# real part first, as c10::complex stores it.
COMPLEX_DTYPES = (torch.complex64, torch.complex128, torch.complex32)
# complex dtype -> the dtype of its real and imaginary parts, and back
COMPLEX_PART_DTYPE = {torch.complex64: torch.float32, torch.complex128: torch.float64,
                      torch.complex32: torch.float16}
COMPLEX_OF_PART = {v: k for k, v in COMPLEX_PART_DTYPE.items()}
SUPPORTED_AND_COMPLEX_DTYPES = SUPPORTED_DTYPES + COMPLEX_DTYPES


def torch_dialect_dtype(dtype: torch.dtype) -> str:
    try:
        return _DTYPE_TABLE[dtype][0]
    except KeyError:
        raise TypeError(f"dtype {dtype} has no Torch dialect element type") from None


def builtin_dtype(dtype: torch.dtype) -> str:
    try:
        return _DTYPE_TABLE[dtype][1]
    except KeyError:
        raise TypeError(f"dtype {dtype} has no builtin MLIR element type") from None


def scalar_type_number(dtype: torch.dtype) -> int:
    return _DTYPE_TABLE[dtype][2]


def dtype_from_scalar_type(number: int) -> torch.dtype:
    return _SCALAR_TYPE_TO_DTYPE[number]


def dtype_from_torch_dialect(name: str) -> torch.dtype:
    return _TORCH_NAME_TO_DTYPE[name]


@dataclass(frozen=True)
class TensorSpec:
    """Shape (None marks a dynamic dimension) and dtype of one tensor value."""

    shape: tuple[Optional[int], ...]
    dtype: torch.dtype

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return all(d is not None for d in self.shape)

    def torch_type(self) -> str:
        """`!torch.vtensor<[2,?],f32>`; `!torch.vtensor<[],f32>` for 0-d."""
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"!torch.vtensor<[{dims}],{torch_dialect_dtype(self.dtype)}>"

    def builtin_type(self) -> str:
        """`tensor<2x?xf32>`; `tensor<f32>` for 0-d."""
        dims = "".join(("?" if d is None else str(d)) + "x" for d in self.shape)
        return f"tensor<{dims}{builtin_dtype(self.dtype)}>"

    def __str__(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"[{dims}]{str(self.dtype).replace('torch.', '')}"

    @staticmethod
    def from_torch_type(text: str) -> "TensorSpec":
        """Parse `!torch.vtensor<[2,?],f32>` (or `!torch.tensor<...>`)."""
        body = text[text.index("<") + 1 : text.rindex(">")]
        dims_text, _, dtype_text = body.rpartition("],")
        dims_text = dims_text.lstrip("[")
        shape = tuple(
            None if d.strip() == "?" else int(d) for d in dims_text.split(",") if d.strip()
        )
        return TensorSpec(shape, dtype_from_torch_dialect(dtype_text.strip()))

    @staticmethod
    def from_tensor(t, dynamic_dims: Sequence[int] = ()) -> "TensorSpec":
        shape = []
        for i, d in enumerate(t.shape):
            static = isinstance(d, int) or (hasattr(d, "node") and d.node.is_constant())
            shape.append(None if (i in dynamic_dims or not static) else int(d))
        return TensorSpec(tuple(shape), t.dtype)


def format_specs(specs) -> str:
    return ", ".join("-" if s is None else str(s) for s in specs)
