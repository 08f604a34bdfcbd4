"""What the integer dot kernels (dot.py, amx.py) share: their vector types and the group and row
epilogues (the row's with a fused activation), so that every flavour rounds alike."""

from __future__ import annotations

from typing import NamedTuple

from torch_mlir import ir
from torch_mlir.dialects import arith

from . import elementwise
from .builder import KernelBuilder, f32, i, vec
from .contraction import Contraction


class DotTypes(NamedTuple):
    """The vector types of a dot kernel with ``lanes`` f32 lanes per half-panel."""

    f: ir.VectorType   # f32 x lanes
    i: ir.VectorType   # i32 x lanes
    b: ir.VectorType   # i8 x 4 lanes: one cell of a half-panel
    w: ir.VectorType   # i16 x 2 lanes: vpmaddubsw's pairs

    @staticmethod
    def of(lanes: int) -> DotTypes:
        return DotTypes(vec(lanes, f32()), vec(lanes, i(32)), vec(4 * lanes, i(8)), vec(2 * lanes, i(16)))


def fold_group(b: KernelBuilder, t: DotTypes, acc, scale, ysum, offset, prev) -> ir.Value:
    """``sitofp(acc) * scale + prev`` then ``+ ysum * offset``: one group's integer sums into the
    f32 accumulator (the VNNI and AMX paths share this order, so they round alike)."""
    return b.fma(ysum, offset, b.fma(arith.sitofp(t.f, acc), scale, prev))


def group_offset(b: KernelBuilder, c: Contraction, t: DotTypes, scale: ir.Value, o: ir.Value, idx) -> ir.Value:
    """A group's offset vector: read from O, or for symmetric weights ``-shift * scale`` (exact:
    the shift is a power of two, so the product equals the stored one bit for bit and O is not streamed)."""
    if c.sym_offset is not None:
        return arith.mulf(scale, b.splat(t.f, -float(c.sym_offset)))
    return b.load(t.f, o, idx)


def store_row(b: KernelBuilder, c: Contraction, t: DotTypes, out: ir.Value, value, row_scale, idx,
              bias: ir.Value | None = None) -> None:
    """``C[idx..] += value * row_scale`` (C holds the bias), ``=`` when C was zero-filled, or
    ``= value * row_scale + bias[p, col..]`` with the bias an operand (``idx`` = [row, p, col]);
    the contraction's epilogue applied to the sum as it is stored."""
    if c.zero_c:
        y = arith.mulf(value, row_scale)
    elif c.bias:
        y = b.fma(value, row_scale, b.load(t.f, bias, idx[1:]))
    else:
        y = b.fma(value, row_scale, b.load(t.f, out, idx))
    b.store(elementwise.apply(b, c.epilogue, y), out, idx)
