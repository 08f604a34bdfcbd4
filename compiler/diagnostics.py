"""Turning MLIR diagnostics into user-facing errors."""

from __future__ import annotations

import re

from torch_mlir import ir, passmanager

from .errors import QCError


def format_diagnostic(diag) -> str:
    loc = str(diag.location)
    m = re.fullmatch(r'loc\((.*)\)', loc)
    where = m.group(1) if m else loc
    where = re.sub(r'^"([^"]*)":(\d+):(\d+)$', r"\1:\2:\3", where)
    where = where.strip('"')
    text = f"{where}: error: {diag.message}"
    for note in diag.notes:
        if "see current operation" not in note.message:
            text += f"\n{where}: note: {note.message}"
    return text


def error_from(err: ir.MLIRError, prefix: str = "") -> QCError:
    lines = [format_diagnostic(d) for d in err.error_diagnostics] or [str(err)]
    return QCError(prefix + "\n".join(lines))


def run_pipeline(module: ir.Module | ir.Operation, pipeline: str, what: str) -> None:
    """Run a textual upstream pipeline; failures become a QCError naming ``what``."""
    op = module.operation if isinstance(module, ir.Module) else module
    with op.context:
        pm = passmanager.PassManager.parse(pipeline)
        try:
            pm.run(op)
        except ir.MLIRError as err:
            raise error_from(err, f"{what} failed:\n") from None
