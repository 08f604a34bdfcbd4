"""Turning MLIR diagnostics into user-facing errors."""

from __future__ import annotations

import re

from torch_mlir import ir

from ..core.errors import QCError


def format_location(loc: ir.Location) -> str:
    """``loc("f.mlir":3:5)`` -> ``f.mlir:3:5``, as mlir-opt prints it."""
    text = str(loc)
    m = re.fullmatch(r'loc\((.*)\)', text)
    where = m.group(1) if m else text
    return re.sub(r'^"([^"]*)":(\d+):(\d+)$', r"\1:\2:\3", where).strip('"')


def format_diagnostic(diag) -> str:
    where = format_location(diag.location)
    text = f"{where}: error: {diag.message}"
    for note in diag.notes:
        if "see current operation" not in note.message:
            text += f"\n{where}: note: {note.message}"
    return text


def error_from(err: ir.MLIRError, prefix: str = "") -> QCError:
    lines = [format_diagnostic(d) for d in err.error_diagnostics] or [str(err)]
    return QCError(prefix + "\n".join(lines))
