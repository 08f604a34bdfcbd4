"""Building ``linalg.generic`` ops with the Python bindings: the attributes and the body block."""

from __future__ import annotations

from typing import Callable

from torch_mlir import ir
from torch_mlir.dialects import arith, linalg, tensor


def iterators(kinds: str) -> ir.ArrayAttr:
    """``"ppr"`` -> [parallel, parallel, reduction]."""
    names = {"p": "parallel", "r": "reduction"}
    return ir.ArrayAttr.get([ir.Attribute.parse(f"#linalg.iterator_type<{names[k]}>") for k in kinds])


def f32_const(value: float) -> ir.Value:
    return arith.constant(ir.F32Type.get(), ir.FloatAttr.get(ir.F32Type.get(), value))


def zero_pad(src: ir.Value, low: list[int], high: list[int]) -> ir.Value:
    """``tensor.pad`` of f32 ``src`` with zeros: ``low`` / ``high`` elements before / after each dim."""
    t = ir.RankedTensorType(src.type)
    shape = [d + lo + hi for d, lo, hi in zip(t.shape, low, high)]
    pad = tensor.PadOp(ir.RankedTensorType.get(shape, t.element_type), src, [], [], low, high)
    with ir.InsertionPoint(pad.region.blocks.append(*[ir.IndexType.get()] * t.rank)):
        tensor.YieldOp(f32_const(0.0))
    return pad.result


def reassociation(groups: list[list[int]]) -> ir.ArrayAttr:
    """The ``reassociation`` of a collapse/expand shape: ``[[0, 1], [2]]`` as an array of i64 arrays."""
    i64 = ir.IntegerType.get_signless(64)
    return ir.ArrayAttr.get([ir.ArrayAttr.get([ir.IntegerAttr.get(i64, i) for i in g]) for g in groups])


def generic(inputs: list[ir.Value], outputs: list[ir.Value], maps: list[ir.AffineMap],
            body: Callable[[list[ir.Value]], ir.Value], kinds: str | None = None) -> ir.Value | None:
    """``linalg.generic`` at the insertion point, all-parallel unless ``kinds`` says otherwise;
    ``body(block arguments)`` gives the value it yields.  Its result for a tensor output, None for
    a memref one."""
    results = [o.type for o in outputs if isinstance(o.type, ir.RankedTensorType)]
    op = linalg.GenericOp(results, inputs, outputs, ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
                          iterators(kinds or "p" * maps[-1].n_dims))
    block = op.regions[0].blocks.append(*[ir.ShapedType(v.type).element_type for v in (*inputs, *outputs)])
    with ir.InsertionPoint(block):
        linalg.YieldOp([body(list(block.arguments))])
    return op.results[0] if results else None
