"""Textual pipelines that mix qc passes and upstream MLIR passes.

``builtin.module(qc-outline-weights, qc-raise, canonicalize, func.func(cse))``:
qc passes become Python passes in the same PassManager; runs of upstream
elements are handed to MLIR's own pipeline parser unchanged.
"""

from __future__ import annotations

import re

from torch_mlir import ir, passmanager

from ..core.errors import QCError
from . import REGISTRY
from .base import PassState


def split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def parse_options(text: str) -> dict[str, str]:
    """``a=1 b=x`` (MLIR's pass option syntax) -> dict."""
    options = {}
    for item in re.findall(r"[^\s]+", text):
        key, _, value = item.partition("=")
        options[key] = value
    return options


def parse(pipeline: str) -> list:
    """``builtin.module(...)`` text -> its elements: qc pass objects and upstream element texts."""
    elements: list = []
    for element in unwrap_module(pipeline):
        name = re.match(r"[\w.\-]+", element)
        name = name.group(0) if name else element
        if name in REGISTRY:
            opts = re.fullmatch(r"[\w.\-]+\s*(?:\{(.*)\})?", element, re.S)
            if not opts:
                raise QCError(f"bad pipeline element '{element}'")
            elements.append(REGISTRY[name](**parse_options(opts.group(1) or "")))
        elif any(q in element for q in REGISTRY):
            raise QCError(f"qc passes run on builtin.module; put them at the top level of the pipeline: '{element}'")
        else:
            elements.append(element)
    return elements


def build(pipeline: str | list, state: PassState, ctx: ir.Context) -> passmanager.PassManager:
    """A PassManager on builtin.module from pipeline text or from a list of qc pass objects and
    upstream element texts (``"canonicalize"``, ``"func.func(cse)"``), run in order."""
    elements = parse(pipeline) if isinstance(pipeline, str) else pipeline
    pm = passmanager.PassManager("builtin.module", ctx)
    pending: list[str] = []

    def flush():
        if pending:
            try:
                pm.add(",".join(pending))
            except ValueError as err:
                raise QCError(f"bad pipeline: {err}") from None
            pending.clear()

    for element in elements:
        if isinstance(element, str):
            pending.append(element)
            continue
        flush()
        pm.add(element(state), name=element.NAME, argument=element.NAME, description=element.SUMMARY)
    flush()
    return pm


def unwrap_module(pipeline: str) -> list[str]:
    """``builtin.module(a, func.func(b))`` -> ``["a", "func.func(b)"]``."""
    m = re.fullmatch(r"\s*builtin\.module\s*\((.*)\)\s*", pipeline, re.S)
    if not m:
        raise QCError(f"pipeline must be anchored on builtin.module: 'builtin.module(...)', got '{pipeline}'")
    return split_top_level(m.group(1))


def pass_anchor(element: str, ctx: ir.Context) -> str | None:
    """The op an upstream pass element runs on when it is added to a module's pass manager:
    ``builtin.module`` for op-agnostic and module passes, the op a pass is restricted to
    (``func.func``, ``gpu.module``) otherwise; None when no such pass is registered."""
    try:
        passmanager.PassManager.parse(f"builtin.module({element})", ctx)
        return "builtin.module"
    except ValueError as err:
        # MLIR names the op only in this message: "Can't add pass 'X' restricted to 'func.func' ..."
        m = re.search(r"restricted to '([\w.]+)'", str(err))
        return m.group(1) if m else None
