"""qc-weights-to-args: turn every ``qc.weight`` in ``@main`` into a trailing argument.

The runtime passes each argument as a pointer into the memory-mapped weight
blob, so no weight is ever copied into the code.  The argument order is
recorded in the ``qc.weight_args`` attribute of ``@main`` (an array of names).
Helper functions receive weights through their callers' arguments.
"""

from __future__ import annotations

from torch_mlir import ir

from ..dialects.qc import WeightOp
from ..core.errors import QCError
from .base import ModulePass, PassState, ops_of, set_function_type, walk_ops


class WeightsToArgs(ModulePass):
    NAME = "qc-weights-to-args"
    SUMMARY = "Replace qc.weight ops in @main by function arguments (for the runtime's weight blob)"

    def run(self, module: ir.Operation, state: PassState) -> None:
        mains = [op for op in walk_ops(module, "func.func") if ir.StringAttr(op.attributes["sym_name"]).value == "main"]
        if len(mains) != 1:
            first = next(iter(module.regions[0].blocks[0].operations), None)
            raise QCError("expected one function @main", first.location if first else None)
        main = mains[0]
        entry = main.regions[0].blocks[0]
        args: dict[str, ir.Value] = {}
        for op in ops_of(main, WeightOp):
            name = ir.FlatSymbolRefAttr(op.attributes["name"]).value
            if name not in args:
                args[name] = entry.add_argument(op.results[0].type, op.location)
            elif args[name].type != op.results[0].type:
                raise QCError(f"weight '@{name}' is used with two different types")
            op.results[0].replace_all_uses_with(args[name])
            op.erase()
        for op in ops_of(module, WeightOp):
            raise QCError("qc.weight outside @main; inline helpers first", op.location)
        ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
        new_inputs = list(ftype.inputs) + [v.type for v in args.values()]
        set_function_type(main, new_inputs, list(ftype.results))
        main.attributes["qc.weight_args"] = ir.ArrayAttr.get([ir.StringAttr.get(n) for n in args])
        if len(state.store):  # without a store (qc-opt) only the IR changes
            for name in args:
                state.store[name]  # fail early, with the name, if the store lacks it
