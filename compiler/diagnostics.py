"""Turning MLIR diagnostics into user-facing errors."""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch_mlir import ir

from ..core.errors import QCError

SEVERITY = {ir.DiagnosticSeverity.ERROR: "error", ir.DiagnosticSeverity.WARNING: "warning",
            ir.DiagnosticSeverity.REMARK: "remark", ir.DiagnosticSeverity.NOTE: "note"}


@dataclass(frozen=True)
class Diagnostic:
    """A diagnostic copied out of MLIR's: a handler's ``ir.Diagnostic`` is only valid inside the
    callback, and verifying or printing happens after the pass manager returns."""
    severity: str  # error, warning, remark, note
    location: str  # as MLIR prints it: loc("f.mlir":3:5)
    message: str
    notes: tuple[Diagnostic, ...] = ()

    @staticmethod
    def of(diag) -> Diagnostic:
        """From an ``ir.Diagnostic`` (inside a handler) or an ``ir.DiagnosticInfo`` (an MLIRError's)."""
        return Diagnostic(SEVERITY.get(diag.severity, "error"), str(diag.location), diag.message,
                          tuple(Diagnostic.of(n) for n in diag.notes))

    def shown_notes(self) -> tuple[Diagnostic, ...]:
        """The notes worth printing: not the op dump MLIR attaches to pass failures."""
        return tuple(n for n in self.notes if "see current operation" not in n.message)

    def line(self) -> int | None:
        m = re.search(r":(\d+):\d+\)?$", self.location)
        return int(m.group(1)) if m else None


def format_location(loc) -> str:
    """``loc("f.mlir":3:5)`` -> ``f.mlir:3:5``, as mlir-opt prints it."""
    text = str(loc)
    m = re.fullmatch(r'loc\((.*)\)', text)
    where = m.group(1) if m else text
    return re.sub(r'^"([^"]*)":(\d+):(\d+)$', r"\1:\2:\3", where).strip('"')


def format_diagnostic(diag) -> str:
    """``f.mlir:3:5: error: message`` and its notes, for an ``ir.Diagnostic``, an
    ``ir.DiagnosticInfo`` or a :class:`Diagnostic`."""
    if not isinstance(diag, Diagnostic):
        diag = Diagnostic.of(diag)
    text = f"{format_location(diag.location)}: {diag.severity}: {diag.message}"
    for note in diag.shown_notes():
        text += f"\n{format_location(note.location)}: note: {note.message}"
    return text


_CUSTOM_FORM = re.compile(r'^\s*(?:%[^="]*=\s*)?(qc\.\w+)\b')


def silent_parse_failure(text: str, filename: str) -> Diagnostic:
    """The error for a parse that failed without a diagnostic: MLIR's parser gives none for the
    custom form of an op of a Python-defined (IRDL) dialect such as qc, so name that op."""
    for lineno, line in enumerate(text.splitlines(), start=1):
        if m := _CUSTOM_FORM.match(line):
            op = m.group(1)
            return Diagnostic("error", f'loc("{filename}":{lineno}:{m.start(1) + 1})',
                              f"'{op}' has no custom assembly form; write it in the generic form: "
                              f'"{op}"(operands) {{attributes}} : (types) -> types')
    return Diagnostic("error", f'loc("{filename}":1:1)', "MLIR could not parse this input and gave no reason")


def error_from(err: ir.MLIRError, prefix: str = "") -> QCError:
    lines = [format_diagnostic(d) for d in err.error_diagnostics] or [str(err)]
    return QCError(prefix + "\n".join(lines))
