"""qc-strided-copies: ``memref.copy`` with a strided side -> an elementwise ``linalg.generic``.

Bufferization leaves ``memref.copy`` wherever a value lands in a slice of another buffer (padding:
the interior of a zero-filled tensor).  When either side is not contiguous, MLIR lowers the copy to
a call of the runtime's generic strided copy, one element per call level; as a generic it becomes
loops that LLVM vectorizes along the contiguous inner dim and that qc-parallelize splits:

    memref.copy %a, %b : memref<1x56x56x64xf32> to memref<1x56x56x64xf32, strided<[215296, 3712, 64, 1], offset: 3776>>
becomes
    linalg.generic {indexing_maps = [identity, identity], iterator_types = [parallel x 4]}
        ins(%a : ...) outs(%b : ...) { ^bb0(%in: f32, %out: f32): linalg.yield %in : f32 }

Contiguous copies stay (they become one memcpy), unless ``contiguous`` (a GPU model: its buffers are
the device's, so every copy must be a kernel).
"""

from __future__ import annotations

from torch_mlir import ir

from .base import ModulePass, Option, PassState, parse_bool, walk_ops
from .builders import generic
from .matchers import identity_layout


class StridedCopies(ModulePass):
    NAME = "qc-strided-copies"
    SUMMARY = "Rewrite memref.copy with a non-contiguous side as a linalg.generic copy (vectorized, parallel loops)"
    OPTIONS = {"contiguous": Option(parse_bool, False, "contiguous copies too (a GPU model's)")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in walk_ops(module, "memref.copy"):
            src, dst = op.operands
            types = [ir.MemRefType(v.type) for v in (src, dst)]
            if types[0].rank == 0 or all(identity_layout(t) for t in types) and not self.options["contiguous"]:
                continue
            identity = ir.AffineMap.get_identity(types[0].rank)
            with ir.InsertionPoint(op), op.location:
                generic([src], [dst], [identity, identity], lambda a: a[0])
            op.erase()
