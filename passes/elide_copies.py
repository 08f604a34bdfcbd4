"""qc-elide-copies: remove the buffer copies that bufferization leaves around results and zero fills.

Runs after bufferization, on each function's top-level block.  Two rewrites:

1. A result computed in a local buffer and copied into its out-parameter,

       %r = memref.alloc() : memref<128x128x32xf32>
       ... writes %r ...
       %v = memref.collapse_shape %r [[0], [1, 2]] : ... into memref<128x4096xf32>
       memref.copy %v, %out : memref<128x4096xf32> to memref<128x4096xf32>

   is computed in the out-parameter instead (``%r`` becomes a ``memref.reinterpret_cast`` of
   ``%out`` with the same shape): the copy and the buffer go.  Applies when ``%out`` is a block
   argument used only by this copy, ``%r`` is a static, identity-layout alloc of as many
   elements, the view chain only reshapes (collapse/expand), and nothing but a dealloc uses
   ``%r`` after the copy.  (buffer-results-to-out-params does this only when the result is the
   alloc itself, not a reshape of it.)

2. A copy out of a buffer that, at that point, holds nothing but a ``linalg.fill`` value
   (CSE shares one zero-filled buffer among all the matmuls that start from zero)

       memref.copy %zeros, %acc   ->   linalg.fill ins(%c0 : f32) outs(%acc : ...)

   writes the constant instead of reading it.  A buffer left with no use but its fill and
   dealloc is erased.
"""

from __future__ import annotations

import math

from torch_mlir import ir
from torch_mlir.dialects import linalg, memref

from .base import ModulePass, PassState, walk_ops
from .matchers import identity_layout, top_level_in, uses_value, view_source

_RESHAPES = ("memref.collapse_shape", "memref.expand_shape")


def _reshaped_alloc(value: ir.Value) -> ir.Operation | None:
    """The local alloc that ``value`` is, or only reshapes, if any."""
    source = view_source(value, _RESHAPES)
    return None if isinstance(source.owner, ir.Block) or source.owner.name != "memref.alloc" else source.owner


def _users(value: ir.Value) -> list[ir.Operation]:
    """Every op that uses ``value`` or a reshape of it."""
    found = []
    for use in value.uses:
        op = use.owner
        found.append(op)
        if op.name in _RESHAPES:
            found += _users(op.results[0])
    return found


class ElideCopies(ModulePass):
    NAME = "qc-elide-copies"
    SUMMARY = "Compute results in their out-parameters and turn copies of filled buffers into fills"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for fn in walk_ops(module, "func.func"):
            if fn.regions[0].blocks:
                block = fn.regions[0].blocks[0]
                self._results_in_place(block)
                self._fills_for_copies(block)

    @staticmethod
    def _results_in_place(block: ir.Block) -> None:
        for copy in [op.operation for op in block.operations if op.operation.name == "memref.copy"]:
            src, dst = copy.operands
            if not isinstance(dst.owner, ir.Block) or len(list(dst.uses)) != 1:
                continue
            alloc = _reshaped_alloc(src)
            if alloc is None:
                continue
            atype, dtype = ir.MemRefType(alloc.results[0].type), ir.MemRefType(dst.type)
            if not (atype.has_static_shape and dtype.has_static_shape and identity_layout(atype)
                    and identity_layout(dtype) and atype.element_type == dtype.element_type
                    and math.prod(atype.shape) == math.prod(dtype.shape)):
                continue
            order = {op.operation: i for i, op in enumerate(block.operations)}  # erasing ops invalidates a kept map
            after = [u for u in _users(alloc.results[0]) if order[top_level_in(u, block)] > order[copy]]
            if any(u.name != "memref.dealloc" and u.name not in _RESHAPES for u in after):
                continue
            with ir.InsertionPoint(alloc), alloc.location:
                strides, _ = atype.get_strides_and_offset()
                view = memref.reinterpret_cast(atype, dst, [], [], [], static_offsets=[0],
                                               static_sizes=list(atype.shape), static_strides=strides)
            for u in after:
                if u.name == "memref.dealloc":
                    u.erase()
            alloc.results[0].replace_all_uses_with(view)
            alloc.erase()
            copy.erase()

    @staticmethod
    def _fills_for_copies(block: ir.Block) -> None:
        filled: dict[ir.Operation, tuple[ir.Value, set]] = {}  # alloc -> (the constant it holds now, its values)
        for op in [o.operation for o in block.operations]:
            if op.name == "linalg.fill":
                alloc = _reshaped_alloc(op.operands[1])
                if alloc is not None:
                    result = alloc.results[0]
                    filled[alloc] = (op.operands[0], {result} | {u.results[0] for u in _users(result)
                                                                 if u.name in _RESHAPES})
                    continue
            if op.name == "memref.copy":
                alloc = _reshaped_alloc(op.operands[0])
                if alloc in filled:
                    with ir.InsertionPoint(op), op.location:
                        linalg.fill(filled[alloc][0], outs=[op.operands[1]])
                    op.erase()
                    continue
            for alloc in [a for a, (_, values) in filled.items()
                          if uses_value(op, values.__contains__, _RESHAPES)]:  # it may write it
                del filled[alloc]
        for alloc in [op.operation for op in block.operations if op.operation.name == "memref.alloc"]:
            users = _users(alloc.results[0])
            if all(u.name in ("linalg.fill", "memref.dealloc") or u.name in _RESHAPES for u in users):
                for u in reversed(users):
                    u.erase()
                alloc.erase()

