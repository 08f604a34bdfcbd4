"""The signature of compiled code from MLIR tensor types (every frontend's, and a .mlir model's)."""

from __future__ import annotations

from torch_mlir import ir

from ..core.errors import QCError
from ..core.signature import TensorSpec

_MLIR_TO_NUMPY = {"f32": "float32", "f64": "float64", "f16": "float16", "i64": "int64", "i32": "int32",
                  "i8": "int8", "ui8": "uint8", "i1": "bool"}


def spec_of(name: str, t: ir.Type) -> TensorSpec:
    rt = ir.RankedTensorType(t)
    elt = str(rt.element_type)
    if elt not in _MLIR_TO_NUMPY:
        raise QCError(f"'{name}' has unsupported element type {elt}")
    if not rt.has_static_shape:
        raise QCError(f"'{name}' has a dynamic shape {rt}; fix the input shapes with --shape")
    return TensorSpec(name, tuple(rt.shape), _MLIR_TO_NUMPY[elt])
