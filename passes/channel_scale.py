"""Multiply the last (channel) dimension of a tensor by a stored vector.

AWQ and SmoothQuant move per-input-channel factors from a linear's weight
onto its input.  The multiply is built inline, as an elementwise
``linalg.generic``, so elementwise fusion merges it into the producer's loop.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith, tensor

from ..dialects.qc import WeightOp
from .builders import generic


def scale_channels(x: ir.Value, factors: str, at: ir.Operation) -> ir.Value:
    """``x * store[factors]`` (broadcast over all but the last dim), inserted before ``at``."""
    xt = ir.RankedTensorType(x.type)
    rank, k = xt.rank, xt.shape[-1]
    f32 = ir.F32Type.get()
    identity = ir.AffineMap.get_identity(rank)
    last = ir.AffineMap.get(rank, 0, [ir.AffineExpr.get_dim(rank - 1)])
    with ir.InsertionPoint(at), at.location:
        s = WeightOp(ir.RankedTensorType.get([k], f32), ir.FlatSymbolRefAttr.get(factors))
        empty = tensor.EmptyOp(list(xt.shape), f32)
        return generic([x, s.result], [empty.result], [identity, last, identity],
                       lambda a: arith.MulFOp(a[0], a[1]).result)
