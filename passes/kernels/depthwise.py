"""The depthwise convolution kernel: qc-conv-to-matmul's channels-last depthwise generic

    out[n, oh, ow, c] += x[n, oh * sh + kh * dh, ow * sw + kw * dw, c] * w[kh, kw, c]

as generic loops keeps the window innermost but one: each tap reads, adds to and writes back the
output vector.  Here a task is an output row (n, oh); for each block of ``pixels`` output pixels and
each vector of channels the accumulators stay in registers over all KH x KW taps (each filter vector
loaded once per block), and are stored once:

    for ow0 in 0..OW step P:  for c0 in 0..C step L (the last vector masked):
      acc[p] = out[n, oh, ow0 + p, c0..]
      for kh, kw (unrolled):  wv = w[kh, kw, c0..];  acc[p] = fma(x[n, .., (ow0 + p) * sw + kw * dw, c0..], wv, acc[p])
      out[n, oh, ow0 + p, c0..] = acc[p]
"""

from __future__ import annotations

from typing import NamedTuple

from torch_mlir import ir
from torch_mlir.dialects import arith

from .builder import KernelBuilder, f32, vec

PIXELS = 4  # output pixels per register block


class Depthwise(NamedTuple):
    """A 2-D channels-last depthwise convolution: operand types and window."""

    x: ir.MemRefType  # [N, H, W, C]
    w: ir.MemRefType  # [KH, KW, C]
    out: ir.MemRefType  # [N, OH, OW, C]
    strides: tuple[int, int]
    dilations: tuple[int, int]

    @property
    def tasks(self) -> int:
        return self.out.shape[0] * self.out.shape[1]


def build(name: str, d: Depthwise, lanes: int) -> None:
    """``@name(X, W, OUT, t0, t1)``: tasks [t0, t1) are output rows (n, oh)."""
    _, oh_count, ow_count, channels = d.out.shape
    kh_count, kw_count, _ = d.w.shape
    (sh, sw), (dh, dw) = d.strides, d.dilations
    b = KernelBuilder(name, [d.x, d.w, d.out, ir.IndexType.get(), ir.IndexType.get()])
    x, w, out, t0, t1 = b.args
    vt = vec(lanes, f32())

    def pixels(n: ir.Value, oh: ir.Value, ow0: ir.Value, count: int) -> None:
        def block(c0: ir.Value, mask: ir.Value | None) -> None:
            ows = [b.add(ow0, p) for p in range(count)]
            acc = [b.load(vt, out, [n, oh, ow, c0], mask) for ow in ows]
            for kh in range(kh_count):
                row = b.add(b.mul(oh, sh), kh * dh)
                for kw in range(kw_count):
                    wv = b.load(vt, w, [kh, kw, c0], mask)
                    cols = [b.add(b.mul(ow, sw), kw * dw) for ow in ows]
                    acc = [b.fma(b.load(vt, x, [n, row, col, c0], mask), wv, a) for col, a in zip(cols, acc)]
            for ow, a in zip(ows, acc):
                b.store(a, out, [n, oh, ow, c0], mask)

        b.vector_blocks(channels, lanes, block)

    with b.loop(t0, t1) as task:
        n, oh = arith.divui(task.iv, b.index(oh_count)), arith.remui(task.iv, b.index(oh_count))
        full = ow_count - ow_count % PIXELS
        if full:
            with b.loop(0, full, PIXELS) as ow:
                pixels(n, oh, ow.iv, PIXELS)
        if ow_count % PIXELS:
            pixels(n, oh, b.index(full), ow_count % PIXELS)
    b.finish()
