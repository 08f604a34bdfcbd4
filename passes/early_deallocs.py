"""qc-early-deallocs: free each local buffer right after its last use, not at the end of its block.

buffer-deallocation-pipeline (ownership-based) frees a buffer at the end of the block that owns
it.  A decoder's prefill step is one block of 22 unrolled layers, so every layer's activations
(attention scores, FFN intermediates) stayed live to the end of the call: 540 MiB more than one
layer's worth at a 64-token chunk.  Freed as soon as they are dead, the runtime's allocator hands
the same blocks to the next layer.

    %a = memref.alloc() : memref<64xf32>           %a = memref.alloc() : memref<64xf32>
    call @produce(%a)                              call @produce(%a)
    %v = memref.expand_shape %a ...                %v = memref.expand_shape %a ...
    call @consume(%v)                        ->    call @consume(%v)
    %b = memref.alloc() : memref<64xf32>           memref.dealloc %a : memref<64xf32>
    call @produce(%b)                              %b = memref.alloc() : memref<64xf32>
    memref.dealloc %a : memref<64xf32>             call @produce(%b)

A use of a view of the buffer (subview, reshape, cast) is a use of the buffer; a use inside a
nested region (a loop body) counts at the op of the block that holds it.  A buffer that may
escape where uses cannot be followed — yielded or returned, turned into a pointer, or given to an
op with memref results that is not a known view — keeps its dealloc where it was.
"""

from __future__ import annotations

from torch_mlir import ir

from .base import ModulePass, PassState, walk_ops
from .matchers import BUFFER_VIEWS, top_level_in
# Ops through which a buffer's address leaves what its uses show.
_ESCAPES = ("memref.extract_aligned_pointer_as_index", "memref.extract_strided_metadata",
            "builtin.unrealized_conversion_cast")


def _escapes(op: ir.Operation) -> bool:
    name = op.name
    return (name in _ESCAPES or name.endswith(".yield") or name.endswith(".return") or name.startswith("cf.")
            or name == "scf.condition"
            or any(isinstance(r.type, ir.MemRefType) for r in op.results) and name not in BUFFER_VIEWS)


def _last_use(alloc: ir.Operation, dealloc: ir.Operation, block: ir.Block,
              order: dict[ir.Operation, int]) -> ir.Operation | None:
    """The op of ``block`` after which ``alloc``'s buffer is dead, or None if that is unknown."""
    last, pending = alloc, [alloc.results[0]]
    while pending:
        for use in pending.pop().uses:
            user = use.owner
            if user == dealloc:
                continue
            if _escapes(user):
                return None
            if user.name in BUFFER_VIEWS:
                pending.append(user.results[0])
            top = top_level_in(user, block)
            if top not in order:  # in another block of the region
                return None
            if order[top] > order[last]:
                last = top
    return last


class EarlyDeallocs(ModulePass):
    NAME = "qc-early-deallocs"
    SUMMARY = "Free each local buffer right after its last use"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for fn in walk_ops(module, "func.func"):
            for region in fn.regions:
                for block in region.blocks:
                    self._block(block)

    @staticmethod
    def _block(block: ir.Block) -> None:
        deallocs = [op.operation for op in block.operations if op.operation.name == "memref.dealloc"]
        if not deallocs:
            return
        order = {op.operation: i for i, op in enumerate(block.operations)}
        moves = []
        for dealloc in deallocs:
            buffer = dealloc.operands[0]
            alloc = buffer.owner
            if isinstance(alloc, ir.Block) or alloc.name != "memref.alloc" or alloc not in order:
                continue
            last = _last_use(alloc, dealloc, block, order)
            if last is not None and order[last] + 1 < order[dealloc]:
                moves.append((dealloc, last))
        for dealloc, last in moves:
            dealloc.move_after(last)
