"""qc-checks-to-errors: run-time checks that fail the model's run instead of aborting the process.

torch-mlir guards what it cannot prove at compile time (a shape read from an input's values) with
``cf.assert``, which lowers to ``abort()``: the caller's process died with the model.  Each check
becomes a call the C glue answers by returning the check's message as the run's error::

    cf.assert %ok, "onnx.Expand input has a dim that is not statically 1; ..."  loc("expand_by_s")

becomes::

    %failed = arith.xori %ok, %true : i1
    scf.if %failed {
      %id = arith.constant 0 : i32
      func.call @qc_check_failed(%id) : (i32) -> ()
    }

and the module carries ``qc.checks = ["node 'expand_by_s': onnx.Expand input has a dim ..."]``,
the messages by id.  ``qc_check_failed`` (compiler/artifacts.py) does not return: it jumps back to
the run that called ``qc_main``, which reports the message; buffers the run had allocated are not
freed on that path.

One check is dropped rather than kept: torch-mlir's lowering of ``aten.reciprocal`` asserts that no
element is 0 ("unimplemented: tensor with zero element"), where IEEE, ONNX's Reciprocal and PyTorch
give +-inf: the model would fail on inputs that are valid.
"""

from __future__ import annotations

import re

from torch_mlir import ir
from torch_mlir.dialects import arith, func, scf

from .base import ModulePass, PassState, walk_ops

CHECKS_ATTR = "qc.checks"
CHECK_FAILED = "qc_check_failed"
RECIPROCAL_OF_ZERO = "unimplemented: tensor with zero element"  # torch-mlir's aten.reciprocal


def _where(location: ir.Location) -> str:
    """The ONNX node (or file position) a location names, or ""."""
    m = re.search(r'loc\("([^"]+)"', str(location))
    return f"node '{m.group(1)}': " if m else ""


class ChecksToErrors(ModulePass):
    NAME = "qc-checks-to-errors"
    SUMMARY = "Turn cf.assert into a call that makes the model's run return the message as an error"

    def run(self, module: ir.Operation, state: PassState) -> None:
        checks = []
        for check in (op.opview for op in walk_ops(module, "cf.assert")):  # cf.AssertOp
            if ir.StringAttr(check.msg).value == RECIPROCAL_OF_ZERO:
                check.erase()
            else:
                checks.append(check)
        if not checks:
            return
        ctx = module.context
        i1, i32 = ir.IntegerType.get_signless(1, ctx), ir.IntegerType.get_signless(32, ctx)
        body = module.regions[0].blocks[0]
        with ir.InsertionPoint(body), ir.Location.unknown(ctx):
            func.FuncOp(CHECK_FAILED, ([i32], []), visibility="private")
        messages = []
        for check in checks:
            with ir.InsertionPoint(check), check.location:
                failed = arith.xori(check.arg, arith.constant(i1, 1))
                branch = scf.IfOp(failed)
                with ir.InsertionPoint(branch.then_block):
                    func.CallOp([], ir.FlatSymbolRefAttr.get(CHECK_FAILED), [arith.constant(i32, len(messages))])
                    scf.YieldOp([])
            messages.append(_where(check.location) + ir.StringAttr(check.msg).value)
            check.erase()
        module.attributes[CHECKS_ATTR] = ir.ArrayAttr.get([ir.StringAttr.get(m, ctx) for m in messages], ctx)
