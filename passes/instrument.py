"""qc-instrument: observe the input of every ``qc.linear``.

    %y = "qc.linear"(%x, %w) ...
becomes
    %o = "qc.observe"(%x) {id = "<layer>"} ...
    %y = "qc.linear"(%o, %w) ...

With ``export=true`` (the calibration build) nothing stays in the function:
each observed value is appended to the results of its function (which must
be the public entry point) and, in result order, the layers reading each
are recorded in its ``qc.observed`` attribute (``[[layer, ...], ...]``); the
runtime returns them as outputs named ``observe:<first layer>``.  One probe per distinct input value: q, k and v of
one attention block share theirs.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import func

from ..core.errors import QCError
from ..dialects.qc import LinearOp, ObserveOp
from .base import ModulePass, Option, PassState, ops_of, parse_bool, set_function_type
from .matchers import enclosing_func, layer_name

OBSERVED_ATTR = "qc.observed"


class Instrument(ModulePass):
    NAME = "qc-instrument"
    SUMMARY = "Insert qc.observe probes at qc.linear inputs (export=true: return them as extra results)"
    OPTIONS = {"export": Option(parse_bool, False, "append observed values to the function's results")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        probes: dict[ir.Value, list[ir.Operation]] = {}  # input -> the linears reading it
        for op in ops_of(module, LinearOp):
            if layer_name(op) is not None:
                probes.setdefault(op.input, []).append(op)
        if self.options["export"]:
            self._export(probes)
            return
        for x, linears in probes.items():
            with ir.InsertionPoint(linears[0]), linears[0].location:  # the first reader dominates the rest
                probe = ObserveOp(x.type, x, ir.StringAttr.get(layer_name(linears[0])))
            for op in linears:
                op.operands[0] = probe.result

    @staticmethod
    def _export(probes: dict[ir.Value, list[ir.Operation]]) -> None:
        by_func: dict[ir.Operation, list[tuple[list[str], ir.Value]]] = {}
        for value, linears in probes.items():
            by_func.setdefault(enclosing_func(linears[0]), []).append(([layer_name(op) for op in linears], value))
        for fn, observed in by_func.items():
            if "sym_visibility" in fn.attributes:
                raise QCError("linears in a private function cannot be exported; inline first", fn.location)
            block = fn.regions[0].blocks[0]
            ret = block.operations[len(block.operations) - 1]
            values = list(ret.operands) + [v for _, v in observed]
            with ir.InsertionPoint(ret), ret.location:
                func.ReturnOp(values)
            ret.erase()
            ftype = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
            set_function_type(fn, list(ftype.inputs), [v.type for v in values])
            fn.attributes[OBSERVED_ATTR] = ir.ArrayAttr.get(
                [ir.ArrayAttr.get([ir.StringAttr.get(n) for n in names]) for names, _ in observed])
