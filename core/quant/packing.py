"""Byte layouts of quantized weights.

Canonical (``qc.qgemm``'s ``packed`` operand), per output row: int8 values
as they are; int4 values as unsigned nibbles ``u = q + 8`` where byte ``j`` of
each 32-value block holds value ``j`` (low nibble) and ``j + 16`` (high).

Kernel panels (``PanelLayout``: what ``qc-lower-linear`` / ``qc-lower-qgemm`` feed the micro-kernels): columns cut
into panels of ``width`` output channels, ``[P, K, width * bits / 8]``, so one
load per k yields the whole panel row: int8 as is; int4 with byte ``j``
holding columns ``j`` (low) and ``j + width/2`` (high), so the low and high
nibbles unpack into two ready vectors.  Scales and offsets come as
``[P, G, width]`` f32 with ``w = u * scale + offset`` (``offset = -zero * scale``),
one FMA per weight vector.

Integer dot-product panels (int8-activation kernels, ``PanelLayout(dot=True)``):
``[P, K / q, width * 4]`` bytes with q = 4 (int8) or 8 (int4); the 4 bytes at
``4 * c`` hold column ``c`` for 4 consecutive k, the operand layout of
``vpdpbusd`` / ``vpmaddubsw``.  Values are unsigned (the instructions' u8
operand): int8 ``u = q + 128``; int4 ``u = q + 8`` with k 0..3 of each group
of 8 in the low nibbles and k 4..7 in the high ones.  The offset then carries
``-(zero + 128 or 8) * scale``, applied to the activations' group sums.  Symmetric weights store
no offsets: the kernels compute ``-(128 or 8) * scale``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INT4_BLOCK = 32


def _nibbles(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (lo.astype(np.uint8) | (hi.astype(np.uint8) << 4)).view(np.int8)


def pack_rows(q: np.ndarray, bits: int) -> np.ndarray:
    """Signed [N, K] -> canonical [N, K * bits / 8] int8."""
    if bits == 8:
        return np.ascontiguousarray(q.astype(np.int8))
    n, k = q.shape
    u = (q.astype(np.int16) + 8).reshape(n, k // INT4_BLOCK, 2, INT4_BLOCK // 2)
    return np.ascontiguousarray(_nibbles(u[:, :, 0], u[:, :, 1]).reshape(n, k // 2))


def unpack_rows(packed: np.ndarray, bits: int) -> np.ndarray:
    """Canonical [N, K * bits / 8] -> signed [N, K] int8."""
    if bits == 8:
        return packed.astype(np.int8)
    n, half = packed.shape
    b = packed.view(np.uint8).reshape(n, half // (INT4_BLOCK // 2), 1, INT4_BLOCK // 2)
    u = np.concatenate([b & 15, b >> 4], axis=2).reshape(n, half * 2)
    return (u.astype(np.int16) - 8).astype(np.int8)


def unsigned_offset(bits: int, dot: bool) -> int:
    """What is added to a signed weight to store it unsigned: int4 always, int8 in dot-product panels."""
    return 8 if bits == 4 else 128 if dot else 0


def float_panel_width(n: int, width: int) -> int:
    """The panel width of an f32 / f16 weight with ``n`` output channels: the target's ``width``,
    halved (down to 8) while ``n`` fits in half of it, so that a 4-filter conv head does not
    multiply 28 zero columns of every 32 (the float kernels take any width; the integer ones
    keep the target's)."""
    while width > 8 and n <= width // 2:
        width //= 2
    return width


@dataclass(frozen=True)
class PanelLayout:
    """How the kernels store one [n, k] weight: its output channels cut into ``panels`` of ``width``
    (the last one padded with zero weights), the arrays' shapes and bytes, and the packing.

    ``bits``: 32 (f32), 16 (f16), 8 or 4 (integers, with f32 group scales); ``group``: the integers'
    group size along k (k: per channel); ``dot``: integer dot-product cells (int8 activations);
    ``symmetric``: the kernels compute the group offset from the scale, so none is stored."""

    n: int
    k: int
    width: int
    bits: int = 32
    group: int = 0
    dot: bool = False
    symmetric: bool = True

    @staticmethod
    def of_floats(n: int, k: int, width: int, bits: int = 32) -> PanelLayout:
        """The layout of an f32 (or f16: ``bits`` 16) weight, in panels of ``float_panel_width``."""
        return PanelLayout(n, k, float_panel_width(n, width), bits)

    @property
    def panels(self) -> int:
        return -(-self.n // self.width)

    @property
    def integer(self) -> bool:
        return self.bits in (4, 8)

    @property
    def groups(self) -> int:
        return self.k // (self.group or self.k)

    @property
    def weight_shape(self) -> list[int]:
        """Floats [P, K, width]; integers [P, K, width * bits / 8], dot cells [P, K / (32 / bits), width * 4]."""
        if not self.integer:
            return [self.panels, self.k, self.width]
        if self.dot:
            return [self.panels, self.k // (32 // self.bits), self.width * 4]
        return [self.panels, self.k, self.width * self.bits // 8]

    @property
    def scale_shape(self) -> list[int]:
        """Scales (and offsets) [P, G, width] f32."""
        return [self.panels, self.groups, self.width]

    @property
    def nbytes(self) -> int:
        """Bytes stored: the weight panels, and for integers the scales (and offsets unless symmetric)."""
        weights = self.panels * self.width * self.k * self.bits // 8
        if not self.integer:
            return weights
        return weights + 4 * self.panels * self.groups * self.width * (1 if self.symmetric else 2)

    def _padded(self, rows: np.ndarray, fill) -> np.ndarray:
        out = np.full((self.panels * self.width,) + rows.shape[1:], fill, rows.dtype)
        out[:self.n] = rows
        return out

    def weights(self, w: np.ndarray) -> np.ndarray:
        """[N, K] (floats as stored, or signed integers) -> the weight panels (padding reads as zero weights).

        Floats: panel p holds columns p * width.. of W^T.  Integers unsigned (``unsigned_offset``):
        int8 as is; int4 with byte j holding columns j (low nibble) and j + width / 2 (high); dot
        cells with the 4 bytes at 4c holding column c for 4 consecutive k (int4: k 0..3 of each 8 in
        the low nibbles, 4..7 in the high ones)."""
        p, k, width = self.panels, self.k, self.width
        if not self.integer:
            return np.ascontiguousarray(self._padded(w, 0).reshape(p, width, k).transpose(0, 2, 1))
        offset = unsigned_offset(self.bits, self.dot)
        u = self._padded(w.astype(np.int16) + offset, offset)
        if self.dot:
            per = 32 // self.bits  # k per 4-byte cell
            cells = u.reshape(p, width, k // per, per).transpose(0, 2, 1, 3)  # [P, K/per, width, per]
            if self.bits == 8:
                return np.ascontiguousarray(cells.astype(np.uint8).reshape(p, k // 4, width * 4).view(np.int8))
            return np.ascontiguousarray(_nibbles(cells[..., :4], cells[..., 4:]).reshape(p, k // 8, width * 4))
        cols = u.reshape(p, width, k).transpose(0, 2, 1)  # [P, K, width]
        if self.bits == 8:
            return np.ascontiguousarray(cols.astype(np.int8))
        return np.ascontiguousarray(_nibbles(cols[:, :, :width // 2], cols[:, :, width // 2:]))

    def scales(self, scale: np.ndarray, zero: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """[N, G] scale and zero point -> [P, G, width] scales and offsets ``-(zero + unsigned
        offset) * scale`` (None when symmetric: not stored), zero in the padding."""
        shape = lambda a: np.ascontiguousarray(  # noqa: E731
            self._padded(a, 0).reshape(self.panels, self.width, self.groups).transpose(0, 2, 1))
        if self.symmetric:
            return shape(scale.astype(np.float32)), None
        offset = -(zero.astype(np.float32) + unsigned_offset(self.bits, self.dot)) * scale
        return shape(scale.astype(np.float32)), shape(offset.astype(np.float32))
