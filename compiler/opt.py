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
from .diagnostics import Diagnostic, format_diagnostic, silent_parse_failure
from ..core.errors import QCError
from ..core.calibration import Statistics
from ..core.weights import WeightStore

DEFAULT_SPLIT_MARKER = "// -----"


@dataclass
class OptOptions:
    """What ``qc-opt`` is asked to do, in mlir-opt's terms."""
    pipeline: str | None = None
    split_input_file: str | None = None  # the marker that splits the input ("// -----"), or one input
    verify_diagnostics: bool = False
    allow_unregistered_dialect: bool = False
    verify_each: bool = True  # run the verifier after each pass
    print_ir_before_all: bool = False
    print_ir_after_all: bool = False
    print_ir_after_change: bool = False
    print_ir_after_failure: bool = False
    print_ir_module_scope: bool = False
    print_debuginfo: bool = False
    print_generic: bool = False
    print_local_scope: bool = False
    elide_elements_larger_than: int | None = None
    timing: bool = False
    statistics: bool = False
    weights: str | None = None
    weights_out: str | None = None
    stats: str | None = None  # calibration statistics (.npz from --save-stats) for qc-smooth & co.


@dataclass
class OptResult:
    ok: bool
    output: str
    messages: list[str] = field(default_factory=list)


def _named(text: str, filename: str) -> str:
    """Locations in ``filename`` rather than the "-" that parsing a string gives them."""
    return text.replace('loc("-":', f'loc("{filename}":')


def _render(diag: Diagnostic, filename: str, lines: list[str]) -> str:
    """As mlir-opt prints a diagnostic: located in the input, with its line and a caret."""
    out = []
    for d in (diag, *diag.shown_notes()):
        where = re.fullmatch(r'loc\("-":(\d+):(\d+)\)', d.location)
        text = format_diagnostic(Diagnostic(d.severity, _named(d.location, filename), d.message))
        if where and 0 < int(where.group(1)) <= len(lines):
            text += f"\n{lines[int(where.group(1)) - 1]}\n{' ' * (int(where.group(2)) - 1)}^"
        out.append(text)
    return "\n".join(out)


def _chunks(text: str, marker: str | None) -> list[str]:
    """The input's chunks, split wherever the marker occurs (as mlir-opt splits), each padded with
    the newlines before it so that locations keep the file's line numbers."""
    if marker is None:
        return [text]
    out, line = [], 0
    for piece in text.split(marker):
        out.append("\n" * line + piece)
        line += piece.count("\n")
    return out


def run_opt(text: str, filename: str, options: OptOptions) -> OptResult:
    """Process one input (maybe split); returns what to print and whether it succeeded."""
    outputs, messages, ok = [], [], True
    store = WeightStore.load(options.weights) if options.weights else WeightStore()
    stats = Statistics.load(options.stats) if options.stats else Statistics()
    for chunk in _chunks(text, options.split_input_file):
        result = _run_chunk(chunk, filename, options, store, stats)
        outputs.append(result.output)
        messages.extend(result.messages)
        ok = ok and result.ok
    if ok and options.weights_out:
        store.save(options.weights_out)
    # as mlir-opt: each chunk's output and a blank line (nothing for a chunk that failed), the marker
    # and a newline between chunks
    return OptResult(ok, f"{DEFAULT_SPLIT_MARKER}\n".join(o and o + "\n" for o in outputs), messages)


def _pass_manager(options: OptOptions, store: WeightStore, stats: Statistics, ctx: ir.Context):
    pm = build(options.pipeline or "builtin.module()", PassState(store, stats), ctx)
    pm.enable_verifier(options.verify_each)
    if any((options.print_ir_before_all, options.print_ir_after_all, options.print_ir_after_change,
            options.print_ir_after_failure)):
        pm.enable_ir_printing(print_before_all=options.print_ir_before_all,
                              print_after_all=options.print_ir_after_all,
                              print_after_change=options.print_ir_after_change,
                              print_after_failure=options.print_ir_after_failure,
                              print_module_scope=options.print_ir_module_scope,
                              enable_debug_info=options.print_debuginfo,
                              print_generic_op_form=options.print_generic,
                              large_elements_limit=options.elide_elements_larger_than)
    if options.timing:
        pm.enable_timing()
    if options.statistics:
        pm.enable_statistics()
    return pm


def _run_chunk(text: str, filename: str, options: OptOptions, store: WeightStore, stats: Statistics) -> OptResult:
    ctx = make_context()
    # The context stays on one thread, as the bindings make it: the qc dialect's verifiers are
    # Python, and MLIR verifying functions in parallel calls them from threads that wait for the
    # GIL this thread holds (a deadlock on the first invalid qc op).
    ctx.allow_unregistered_dialects = options.allow_unregistered_dialect
    diags: list[Diagnostic] = []

    def handler(d):
        diags.append(Diagnostic.of(d))
        return True

    handle = ctx.attach_diagnostic_handler(handler)
    output, ok = "", True
    try:
        with ctx, ir.Location.unknown():
            try:
                module = ir.Module.parse(text)
            except ir.MLIRError as err:
                module, ok = None, False
                diags.extend([] if diags else map(Diagnostic.of, err.error_diagnostics))
                diags.extend([] if diags else [silent_parse_failure(text, "-")])
            if module is not None:
                pm = _pass_manager(options, store, stats, ctx)
                try:
                    pm.run(module.operation)
                except ir.MLIRError as err:
                    ok = False
                    diags.extend([] if diags else map(Diagnostic.of, err.error_diagnostics))
                del pm  # its timing and statistics reports print when it goes
            if module is not None and ok:
                output = _named(module.operation.get_asm(
                    enable_debug_info=options.print_debuginfo, print_generic_op_form=options.print_generic,
                    use_local_scope=options.print_local_scope,
                    large_elements_limit=options.elide_elements_larger_than, assume_verified=True), filename)
    finally:
        handle.detach()
    lines = text.splitlines()
    if options.verify_diagnostics:
        problems = verify_expected(text, diags)
        return OptResult(not problems, "" if problems else output, [_render(p, filename, lines) for p in problems])
    return OptResult(ok, output, [_render(d, filename, lines) for d in diags])


# mlir-opt's form: expected-error[-re][@+N|@-N|@above|@below|@unknown] {{text}} (``-re``: {{regex}} parts)
_EXPECTED = re.compile(r"expected-(error|warning|remark|note)(-re)?\s*(@[+-]\d+|@above|@below|@unknown)?\s*"
                       r"\{\{(.*)\}\}\s*$")
_OFFSETS = {None: 0, "@above": -1, "@below": 1, "@unknown": None}


def _matcher(text: str, regex: bool) -> re.Pattern:
    if not regex:
        return re.compile(re.escape(text))
    parts = re.split(r"\{\{(.*?)\}\}", text)  # literal, regex, literal, ...
    return re.compile("".join(p if i % 2 else re.escape(p) for i, p in enumerate(parts)))


def verify_expected(text: str, diags: list[Diagnostic]) -> list[Diagnostic]:
    """Match ``// expected-error {{...}}`` comments against the emitted diagnostics, as
    mlir-opt's ``-verify-diagnostics`` does; returns the problems as errors (none: verified)."""
    expected = []  # [kind, target line or None for @unknown, pattern, seen, where the comment is, text]
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _EXPECTED.search(line)
        if not m:
            continue
        kind, regex, where, msg = m.groups()
        offset = _OFFSETS[where] if where in _OFFSETS else int(where[1:])
        target = None if offset is None else lineno + offset
        expected.append([kind, target, _matcher(msg, bool(regex)), False, f'loc("-":{lineno}:{m.start() + 1})', msg])
    emitted = [d for diag in diags for d in (diag, *diag.shown_notes())]
    problems = []
    for d in emitted:
        line = d.line() if d.location.startswith('loc("-"') else None
        for e in expected:
            if not e[3] and e[0] == d.severity and e[1] == line and e[2].search(d.message):
                e[3] = True
                break
        else:
            problems.append(Diagnostic("error", d.location, f"unexpected {d.severity}: {d.message}"))
    problems += [Diagnostic("error", where, f'expected {kind} "{msg}" was not produced')
                 for kind, _, _, seen, where, msg in expected if not seen]
    return problems


def read_input(path: str) -> tuple[str, str]:
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(path).read_text(), path
    except OSError as err:
        raise QCError(f"could not open input file '{path}': {err.strerror}") from None
