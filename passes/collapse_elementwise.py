"""qc-collapse-elementwise: the trailing dims that every operand of a bufferized elementwise generic
holds contiguously become one dim.

A channels-last activation slice such as [1, 1, 112, 16] (a row of 112 pixels of 16 channels) lowers
to a 16-iteration inner loop; LLVM unrolls it fully and then vectorizes the 112-iteration loop around
it, with gathers at stride 16 (MobileNetV3's stem hard-swish: 8.7 % of the model's time on one core).
Collapsed, the same op is one loop of 1792 contiguous floats.  Runs after qc-parallelize, on the
generics it outlined (their operands are the tasks' slices) and on those it left in place:

    linalg.generic {maps [id, id], all parallel} ins(%a : memref<1x1x112x16xf32, strided<[200704, 1792, 16, 1], offset: ?>>)
                                                 outs(%b : memref<1x1x112x16xf32, strided<...>>)
becomes
    %a2 = memref.collapse_shape %a [[0], [1], [2, 3]] : ... into memref<1x1x1792xf32, strided<[200704, 1792, 1], offset: ?>>
    %b2 = memref.collapse_shape %b [[0], [1], [2, 3]] : ...
    linalg.generic {maps [id, id], all parallel} ins(%a2) outs(%b2)     (the same body)

Only all-parallel generics whose operands all have the op's full shape through identity maps, and
whose body does not read ``linalg.index``, are rewritten.
"""

from __future__ import annotations

import math

from torch_mlir import ir
from torch_mlir.dialects import memref

from .base import ModulePass, PassState, walk_ops
from .builders import reassociation
from .matchers import body_ops, identity_layout, indexing_maps, iterator_types


def _strides(t: ir.MemRefType) -> tuple[list[int], int] | None:
    """(strides, offset) of ``t``, None when its layout is neither the identity nor strided."""
    if isinstance(t.layout, ir.StridedLayoutAttr):
        layout = ir.StridedLayoutAttr(t.layout)
        return list(layout.strides), layout.offset
    if identity_layout(t):
        return [math.prod(t.shape[i + 1:]) for i in range(t.rank)], 0
    return None


def contiguous_from(op: ir.Operation) -> int | None:
    """The first dim of the longest run of trailing dims (two or more) that every operand of
    elementwise generic ``op`` holds contiguously, or None."""
    maps = indexing_maps(op)
    if any(it != "parallel" for it in iterator_types(op)) or \
            any(m != ir.AffineMap.get_identity(m.n_dims) for m in maps) or \
            any(inner.name == "linalg.index" for inner in body_ops(op)):
        return None
    types = [v.type for v in op.operands]
    if not all(isinstance(t, ir.MemRefType) and t.has_static_shape for t in types):
        return None
    shape = types[0].shape
    first = len(shape) - 1
    layouts = [_strides(t) for t in types]
    if any(t.shape != shape for t in types) or None in layouts or any(s[-1] != 1 for s, _ in layouts):
        return None
    while first > 0 and all(s[first - 1] == s[first] * shape[first] for s, _ in layouts):
        first -= 1
    return first if first < len(shape) - 1 else None


def _collapsed(value: ir.Value, first: int) -> ir.Value:
    t = ir.MemRefType(value.type)
    shape = t.shape[:first] + [math.prod(t.shape[first:])]
    strides, offset = _strides(t)
    layout = ir.StridedLayoutAttr.get(offset, strides[:first] + [1]) if isinstance(t.layout, ir.StridedLayoutAttr) \
        else None
    result = ir.MemRefType.get(shape, t.element_type, layout, t.memory_space)
    groups = [[i] for i in range(first)] + [list(range(first, t.rank))]
    return memref.collapse_shape(result, value, reassociation(groups))


class CollapseElementwise(ModulePass):
    NAME = "qc-collapse-elementwise"
    SUMMARY = "Collapse the contiguous trailing dims of bufferized elementwise generics into one (long vector loops)"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in walk_ops(module, "linalg.generic"):
            first = contiguous_from(op)
            if first is None:
                continue
            with ir.InsertionPoint(op), op.location:
                operands = [_collapsed(v, first) for v in op.operands]
                rank = first + 1
                clone = op.clone()
                for i, value in enumerate(operands):
                    clone.operands[i] = value
                identity = ir.AffineMapAttr.get(ir.AffineMap.get_identity(rank))
                clone.attributes["indexing_maps"] = ir.ArrayAttr.get([identity] * len(operands))
                clone.attributes["iterator_types"] = ir.ArrayAttr.get(
                    list(ir.ArrayAttr(op.attributes["iterator_types"]))[:rank])
            op.erase()
