"""The depthwise convolution kernel: qc-conv-to-matmul's channels-last depthwise generic

    out[n, oh, ow, c] += x[n, oh * sh + kh * dh, ow * sw + kw * dw, c] * w[kh, kw, c]

as generic loops keeps the window innermost but one: each tap reads, adds to and writes back the
output vector.  Here a task is an output row (n, oh); for each block of ``pixels`` output pixels and
each vector of channels the accumulators stay in registers over all KH x KW taps (each filter vector
loaded once per block), and are stored once:

    for ow0 in 0..OW step P:  for c0 in 0..C step L (the last vector masked):
      acc[p] = out[n, oh, ow0 + p, c0..]        (or bias[c0..], when out held only the bias)
      for kh, kw (unrolled):  wv = w[kh, kw, c0..];  acc[p] = fma(x[n, .., (ow0 + p) * sw + kw * dw, c0..], wv, acc[p])
      out[n, oh, ow0 + p, c0..] = epilogue(acc[p])   (an activation fused by qc-microkernels, or none)

With ``pads`` (qc-microkernels' implicit padding) x is the unpadded source and the window's taps
outside it are skipped (the padding they would read is zero): a task's valid rows kh are a range
computed from oh (a loop), and the output columns split into an interior, where every kw is valid,
and a few border pixels, each with the kw it may read.  The padded copy of x (its zero border swept, its
interior copied) is not made.
"""

from __future__ import annotations

from typing import NamedTuple

from torch_mlir import ir
from torch_mlir.dialects import arith

from . import elementwise
from .builder import Index, KernelBuilder, f32, vec

PIXELS = 4  # output pixels per register block


class Depthwise(NamedTuple):
    """A 2-D channels-last depthwise convolution: operand types and window."""

    x: ir.MemRefType  # [N, H, W, C]
    w: ir.MemRefType  # [KH, KW, C]
    out: ir.MemRefType  # [N, OH, OW, C]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    pads: tuple[int, int] = (0, 0)  # x's first row and column sit at (pads) in the window's coordinates
    epilogue: tuple = ()  # an elementwise.Function applied to out as it is stored
    bias: ir.MemRefType | None = None  # [C], an operand after out: out held only it, broadcast (not read)

    @property
    def tasks(self) -> int:
        return self.out.shape[0] * self.out.shape[1]


def build(name: str, d: Depthwise, lanes: int) -> None:
    """``@name(X, W, OUT, [bias,] t0, t1)``: tasks [t0, t1) are output rows (n, oh)."""
    _, oh_count, ow_count, channels = d.out.shape
    _, height, width, _ = d.x.shape
    kh_count, kw_count, _ = d.w.shape
    (sh, sw), (dh, dw), (ph, pw) = d.strides, d.dilations, d.pads
    b = KernelBuilder(name, [d.x, d.w, d.out, *([d.bias] if d.bias else []), ir.IndexType.get(), ir.IndexType.get()])
    x, w, out, *bias, t0, t1 = b.args
    vt = vec(lanes, f32())
    rows_checked = ph > 0 or (oh_count - 1) * sh + (kh_count - 1) * dh - ph > height - 1

    def taps_of(ow: int) -> list[int]:
        return [kw for kw in range(kw_count) if 0 <= ow * sw + kw * dw - pw < width]

    def pixels(n: ir.Value, oh: ir.Value, rows: tuple, ow0: ir.Value, count: int, taps: list[int]) -> None:
        def block(c0: ir.Value, mask: ir.Value | None) -> None:
            ows = [b.add(ow0, p) for p in range(count)]
            acc = [b.load(vt, bias[0], [c0], mask)] * count if bias else \
                [b.load(vt, out, [n, oh, ow, c0], mask) for ow in ows]

            def row(kh: Index, r: ir.Value, acc: list[ir.Value]) -> list[ir.Value]:
                for kw in taps:
                    wv = b.load(vt, w, [kh, kw, c0], mask)
                    cols = [b.add(b.mul(ow, sw), kw * dw - pw) for ow in ows]
                    acc = [b.fma(b.load(vt, x, [n, r, col, c0], mask), wv, a) for col, a in zip(cols, acc)]
                return acc

            if rows_checked:
                first, end = rows
                with b.loop(first, end, carried=acc) as kl:
                    kl.carry(row(kl.iv, b.add(b.mul(oh, sh), arith.subi(b.mul(kl.iv, dh), b.index(ph))), kl.args))
                acc = kl.results
            else:
                for kh in range(kh_count):
                    acc = row(kh, b.add(b.mul(oh, sh), kh * dh - ph), acc)
            for ow, a in zip(ows, acc):
                b.store(elementwise.apply(b, d.epilogue, a), out, [n, oh, ow, c0], mask)

        b.vector_blocks(channels, lanes, block)

    # output columns whose every tap lies inside x: [inner, inner_end)
    inner = -(-pw // sw)
    inner_end = max(inner, min(ow_count, (width - 1 + pw - (kw_count - 1) * dw) // sw + 1))
    with b.loop(t0, t1) as task:
        n, oh = arith.divui(task.iv, b.index(oh_count)), arith.remui(task.iv, b.index(oh_count))
        rows = None
        if rows_checked:  # kh with 0 <= oh * sh + kh * dh - ph < height
            top = arith.subi(b.index(ph), b.mul(oh, sh))
            bottom = arith.subi(b.index(height - 1 + ph), b.mul(oh, sh))
            rows = (arith.maxsi(arith.ceildivsi(top, b.index(dh)), b.index(0)),
                    arith.minsi(b.add(arith.floordivsi(bottom, b.index(dh)), 1), b.index(kh_count)))
        for ow in [*range(min(inner, ow_count)), *range(inner_end, ow_count)]:
            pixels(n, oh, rows, b.index(ow), 1, taps_of(ow))
        full = inner + (inner_end - inner) // PIXELS * PIXELS
        if full > inner:
            with b.loop(inner, full, PIXELS) as ow:
                pixels(n, oh, rows, ow.iv, PIXELS, list(range(kw_count)))
        if inner_end > full:
            pixels(n, oh, rows, b.index(full), inner_end - full, list(range(kw_count)))
    b.finish()
