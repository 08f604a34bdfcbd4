"""Helpers for passes that build IR from text templates."""

from __future__ import annotations

from torch_mlir import ir


def tensor_type(shape, elt: str = "f32") -> str:
    """``tensor<2x3xf32>`` for shape [2, 3]."""
    return f"tensor<{''.join(f'{d}x' for d in shape)}{elt}>"


def append_parsed(block: ir.Block, text: str, ctx: ir.Context) -> None:
    """Parses ``text`` (one top-level op, e.g. a func.func) and appends a copy to ``block``.

    The parsed module must outlive the clone: cloning out of a temporary that
    is already freed leaves a function without its body."""
    parsed = ir.Module.parse(text, ctx)
    with ir.InsertionPoint(block):
        parsed.body.operations[0].operation.clone()
