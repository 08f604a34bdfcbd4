"""qc-isolate-contractions: move named matmuls into private functions until ``inline``.

    %c = linalg.batch_matmul ins(%a, %b) outs(%init)
becomes
    %c = func.call @qc_contraction_0(%a, %b, %init)
    func.func private @qc_contraction_0(%a, %b, %init) { linalg.batch_matmul ... }

Elementwise fusion folds reshapes into named contractions (turning them into
generics) and then fuses producers such as softmax's division into their
inner loop, which recomputes them K times and hides the matmul from the
micro-kernels.  Behind a call the contraction is out of its reach; ``inline``
restores it afterwards.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import func

from .base import ModulePass, PassState, walk_ops

CONTRACTIONS = ("linalg.matmul", "linalg.batch_matmul")


class IsolateContractions(ModulePass):
    NAME = "qc-isolate-contractions"
    SUMMARY = "Move linalg.matmul/batch_matmul into private functions (kept out of elementwise fusion until inline)"

    def run(self, module: ir.Operation, state: PassState) -> None:
        body = module.regions[0].blocks[0]
        taken = {ir.StringAttr(op.attributes["sym_name"]).value for op in body.operations
                 if "sym_name" in op.attributes}
        ops = [op for name in CONTRACTIONS for op in walk_ops(module, name) if not _isolated(op)]
        counter = 0
        for op in ops:
            while f"qc_contraction_{counter}" in taken:
                counter += 1
            name = f"qc_contraction_{counter}"
            taken.add(name)
            types = [v.type for v in op.operands]
            with ir.InsertionPoint(body), op.location:
                fn = func.FuncOp(name, (types, [r.type for r in op.results]), visibility="private")
                entry = fn.add_entry_block()
                with ir.InsertionPoint(entry):
                    clone = op.clone()
                    for j, arg in enumerate(entry.arguments):
                        clone.operands[j] = arg
                    func.ReturnOp(list(clone.results))
            with ir.InsertionPoint(op), op.location:
                call = func.CallOp(list(fn.type.results), ir.FlatSymbolRefAttr.get(name), list(op.operands))
            for old, new in zip(op.results, call.results):
                old.replace_all_uses_with(new)
            op.erase()


def _isolated(op: ir.Operation) -> bool:
    fn = op.parent
    return fn.name == "func.func" and ir.StringAttr(fn.attributes["sym_name"]).value.startswith("qc_contraction_")
