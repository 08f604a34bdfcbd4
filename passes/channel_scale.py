"""Multiply the last (channel) dimension of a tensor by a stored vector.

AWQ and SmoothQuant move per-input-channel factors from a linear's weight
onto its input.  The multiply is built inline, as an elementwise
``linalg.generic``, so elementwise fusion merges it into the producer's loop.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor

from ..dialects.qc import WeightOp


def scale_channels(x: ir.Value, factors: str, at: ir.Operation) -> ir.Value:
    """``x * store[factors]`` (broadcast over all but the last dim), inserted before ``at``."""
    xt = ir.RankedTensorType(x.type)
    rank, k = xt.rank, xt.shape[-1]
    f32 = ir.F32Type.get()
    identity = ir.AffineMap.get_identity(rank)
    last = ir.AffineMap.get(rank, 0, [ir.AffineExpr.get_dim(rank - 1)])
    parallel = ir.Attribute.parse("#linalg.iterator_type<parallel>")
    with ir.InsertionPoint(at), at.location:
        s = WeightOp(ir.RankedTensorType.get([k], f32), ir.FlatSymbolRefAttr.get(factors))
        empty = tensor.EmptyOp(list(xt.shape), f32)
        generic = linalg.GenericOp([xt], [x, s.result], [empty.result],
                                   ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in (identity, last, identity)]),
                                   ir.ArrayAttr.get([parallel] * rank))
        block = generic.regions[0].blocks.append(f32, f32, f32)
        with ir.InsertionPoint(block):
            linalg.YieldOp([arith.MulFOp(block.arguments[0], block.arguments[1]).result])
    return generic.results[0]
