"""qc-strip-probes: remove ``qc.observe`` probes, which only mark values for calibration.

    %o = "qc.observe"(%x) {id = "fc1"} : (tensor<4x64xf32>) -> tensor<4x64xf32>
    %y = "qc.linear"(%o, %w) ...
becomes
    %y = "qc.linear"(%x, %w) ...

A ``.mlir`` written after ``qc-instrument`` (without ``export``) carries them; compiling it
runs this first, since a probe has no lowering of its own.
"""

from __future__ import annotations

from torch_mlir import ir

from ..dialects.qc import ObserveOp
from .base import ModulePass, PassState, ops_of


class StripProbes(ModulePass):
    NAME = "qc-strip-probes"
    SUMMARY = "Remove qc.observe probes (their result is their input)"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in ops_of(module, ObserveOp):
            op.result.replace_all_uses_with(op.input)
            op.erase()
