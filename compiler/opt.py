"""The library behind ``qc-opt``: parse, run a pipeline, print; like ``mlir-opt``."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from torch_mlir import ir

from ..passes.base import PassState
from ..passes.pipeline import build
from .context import make_context
from .diagnostics import format_diagnostic
from ..core.errors import QCError
from ..core.calibration import Statistics
from ..core.weights import WeightStore

SPLIT_MARKER = re.compile(r"^// -----\s*$", re.M)


@dataclass
class OptOptions:
    pipeline: str | None = None
    split_input_file: bool = False
    verify_diagnostics: bool = False
    print_ir_after_all: bool = False
    print_debuginfo: bool = False
    weights: str | None = None
    weights_out: str | None = None
    stats: str | None = None  # calibration statistics (.npz from --save-stats) for qc-smooth & co.


@dataclass
class OptResult:
    ok: bool
    output: str
    messages: list[str] = field(default_factory=list)


def _render(diag, filename: str) -> str:
    """A diagnostic with the input's name in place of the parser's "-"."""
    text = format_diagnostic(diag)
    return text.replace("-:", f"{filename}:") if str(diag.location).startswith('loc("-"') else text


def _chunks(text: str, split: bool) -> list[tuple[int, str]]:
    """(line offset, text) per chunk; offsets keep diagnostics on the file's lines."""
    if not split:
        return [(0, text)]
    out, line = [], 0
    for piece in SPLIT_MARKER.split(text):
        out.append((line, "\n" * line + piece))
        line += piece.count("\n")
    return out


def run_opt(text: str, filename: str, options: OptOptions) -> OptResult:
    """Process one input (maybe split); returns what to print and whether it succeeded."""
    outputs, messages, ok = [], [], True
    store = WeightStore.load(options.weights) if options.weights else WeightStore()
    stats = Statistics.load(options.stats) if options.stats else Statistics()
    for offset, chunk in _chunks(text, options.split_input_file):
        result = _run_chunk(chunk, filename, options, store, stats)
        outputs.append(result.output)
        messages.extend(result.messages)
        ok = ok and result.ok
    if ok and options.weights_out:
        store.save(options.weights_out)
    return OptResult(ok, "// -----\n".join(o for o in outputs if o), messages)


def _run_chunk(text: str, filename: str, options: OptOptions, store: WeightStore, stats: Statistics) -> OptResult:
    ctx = make_context()
    diags: list = []

    def handler(d):
        diags.append(d)
        return True

    handle = ctx.attach_diagnostic_handler(handler)
    output, ok, ir_dumps = "", True, []
    try:
        with ctx, ir.Location.unknown():
            try:
                module = ir.Module.parse(text)
            except ir.MLIRError as err:
                module, ok = None, False
                diags.extend([] if diags else err.error_diagnostics)
            if module is not None and options.pipeline:
                pm = build(options.pipeline, PassState(store, stats), ctx)
                if options.print_ir_after_all:
                    pm.enable_ir_printing(print_after_all=True, print_module_scope=True)
                try:
                    pm.run(module.operation)
                except ir.MLIRError as err:
                    ok = False
                    diags.extend([] if diags else err.error_diagnostics)
            if module is not None and ok:
                output = module.operation.get_asm(enable_debug_info=options.print_debuginfo, assume_verified=True)
    finally:
        handle.detach()
    messages = [_render(d, filename) for d in diags]
    if options.verify_diagnostics:
        problems = verify_expected(text, diags, filename)
        return OptResult(not problems, output if not problems else "", problems)
    return OptResult(ok, output, messages)


_EXPECTED = re.compile(r"//\s*expected-(error|warning|remark|note)\s*(@above|@below|@[+-]\d+)?\s*\{\{(.*?)\}\}")


def _diag_line(diag) -> int | None:
    m = re.search(r":(\d+):\d+\)?$", str(diag.location))
    return int(m.group(1)) if m else None


def verify_expected(text: str, diags: list, filename: str) -> list[str]:
    """Match ``// expected-error {{...}}`` comments against emitted diagnostics."""
    expected = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for kind, where, msg in _EXPECTED.findall(line):
            target = lineno
            if where == "@above":
                target = lineno - 1
            elif where == "@below":
                target = lineno + 1
            elif where:
                target = lineno + int(where[1:])
            expected.append([kind, target, msg, False, lineno])
    severity = {ir.DiagnosticSeverity.ERROR: "error", ir.DiagnosticSeverity.WARNING: "warning",
                ir.DiagnosticSeverity.REMARK: "remark", ir.DiagnosticSeverity.NOTE: "note"}
    problems = []
    for d in diags:
        kind, line = severity.get(d.severity, "error"), _diag_line(d)
        for e in expected:
            if not e[3] and e[0] == kind and e[1] == line and e[2] in d.message:
                e[3] = True
                break
        else:
            problems.append(f"{filename}:{line}: error: unexpected {kind}: {d.message}")
    for kind, target, msg, seen, lineno in expected:
        if not seen:
            problems.append(f"{filename}:{lineno}: error: expected {kind} \"{msg}\" was not produced")
    return problems


def read_input(path: str) -> tuple[str, str]:
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(path).read_text(), path
    except OSError as err:
        raise QCError(f"could not open input file '{path}': {err.strerror}") from None
