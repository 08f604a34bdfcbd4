"""Turning MLIR diagnostics into user-facing errors."""

from __future__ import annotations

import re

from torch_mlir import ir

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
