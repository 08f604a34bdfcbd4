"""qc-weights-to-args: turn every ``qc.weight`` in an entry function into a trailing argument.

The entry functions are ``@main`` and the module's other public functions (a decoder's
``@decode``).  The runtime passes each argument as a pointer into the memory-mapped weight blob,
so no weight is ever copied into the code; entries that read one weight get the same pointer.
Each entry's argument order is recorded in its ``qc.weight_args`` attribute (an array of names).
Helper functions receive weights through their callers' arguments.

    func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
      %w = "qc.weight"() {name = @w} : () -> tensor<4xf32>
becomes
    func.func @main(%x: tensor<4xf32>, %w: tensor<4xf32>) -> tensor<4xf32> attributes {qc.weight_args = ["w"]} {
"""

from __future__ import annotations

from torch_mlir import ir

from ..dialects.qc import WeightOp
from ..core.errors import QCError
from .base import ModulePass, PassState, entry_funcs, ops_of, set_function_type


class WeightsToArgs(ModulePass):
    NAME = "qc-weights-to-args"
    SUMMARY = "Replace qc.weight ops in @main and the other entry functions by arguments (for the runtime's weight blob)"

    def run(self, module: ir.Operation, state: PassState) -> None:
        entries = entry_funcs(module)
        if not entries:
            first = next(iter(module.regions[0].blocks[0].operations), None)
            raise QCError("expected a function @main", first.location if first else None)
        for fn in entries:
            self._to_args(fn, state)
        for op in ops_of(module, WeightOp):
            raise QCError("qc.weight outside an entry function (@main or a public one); inline helpers first",
                          op.location)

    @staticmethod
    def _to_args(fn: ir.Operation, state: PassState) -> None:
        entry = fn.regions[0].blocks[0]
        args: dict[str, ir.Value] = {}
        for op in ops_of(fn, WeightOp):
            name = ir.FlatSymbolRefAttr(op.attributes["name"]).value
            if name not in args:
                args[name] = entry.add_argument(op.results[0].type, op.location)
            elif args[name].type != op.results[0].type:
                raise QCError(f"weight '@{name}' is used with two different types")
            op.results[0].replace_all_uses_with(args[name])
            op.erase()
        ftype = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
        set_function_type(fn, list(ftype.inputs) + [v.type for v in args.values()], list(ftype.results))
        fn.attributes["qc.weight_args"] = ir.ArrayAttr.get([ir.StringAttr.get(n) for n in args])
        if len(state.store):  # without a store (qc-opt) only the IR changes
            for name in args:
                state.store[name]  # fail early, with the name, if the store lacks it
