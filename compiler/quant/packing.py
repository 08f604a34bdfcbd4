"""Byte layouts of quantized weights.

Canonical (``qc.qgemm``'s ``packed`` operand), per output row: int8 values
as they are; int4 values as unsigned nibbles ``u = q + 8`` where byte ``j`` of
each 32-value block holds value ``j`` (low nibble) and ``j + 16`` (high).

Kernel panels (what ``qc-lower-qgemm`` feeds the micro-kernel): columns cut
into panels of ``width`` output channels, ``[P, K, width * bits / 8]``, so one
load per k yields the whole panel row: int8 as is; int4 with byte ``j``
holding columns ``j`` (low) and ``j + width/2`` (high), so the low and high
nibbles unpack into two ready vectors.  Scales and offsets come as
``[P, G, width]`` f32 with ``w = u * scale + offset`` (``offset = -zero * scale``),
one FMA per weight vector.

Integer dot-product panels (int8-activation kernels, ``dot_panel_weights``):
``[P, K / q, width * 4]`` bytes with q = 4 (int8) or 8 (int4); the 4 bytes at
``4 * c`` hold column ``c`` for 4 consecutive k, the operand layout of
``vpdpbusd`` / ``vpmaddubsw``.  Values are unsigned (the instructions' u8
operand): int8 ``u = q + 128``; int4 ``u = q + 8`` with k 0..3 of each group
of 8 in the low nibbles and k 4..7 in the high ones.  The offset then carries
``-(zero + 128 or 8) * scale``, applied to the activations' group sums.
"""

from __future__ import annotations

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


def panel_weights(q: np.ndarray, bits: int, width: int) -> np.ndarray:
    """Signed [N, K] -> kernel panels [P, K, width * bits / 8] (padding columns read as zero weights)."""
    n, k = q.shape
    panels = -(-n // width)
    offset = unsigned_offset(bits, False)
    padded = np.full((panels * width, k), offset, np.int16)
    padded[:n] = q.astype(np.int16) + offset
    cols = padded.reshape(panels, width, k).transpose(0, 2, 1)  # [P, K, width]
    if bits == 8:
        return np.ascontiguousarray(cols.astype(np.int8))
    return np.ascontiguousarray(_nibbles(cols[:, :, :width // 2], cols[:, :, width // 2:]))


def unsigned_offset(bits: int, dot: bool) -> int:
    """What is added to a signed weight to store it unsigned: int4 always, int8 in dot-product panels."""
    return 8 if bits == 4 else 128 if dot else 0


def dot_panel_weights(q: np.ndarray, bits: int, width: int) -> np.ndarray:
    """Signed [N, K] -> dot-product panels [P, K / (32 / bits), width * 4] (padding columns: zero weights)."""
    n, k = q.shape
    panels, offset = -(-n // width), unsigned_offset(bits, True)
    padded = np.full((panels * width, k), offset, np.int16)
    padded[:n] = q.astype(np.int16) + offset
    per = 32 // bits  # k per 4-byte cell
    cells = padded.reshape(panels, width, k // per, per).transpose(0, 2, 1, 3)  # [P, K/per, width, per]
    if bits == 8:
        return np.ascontiguousarray(cells.astype(np.uint8).reshape(panels, k // 4, width * 4).view(np.int8))
    return np.ascontiguousarray(_nibbles(cells[..., :4], cells[..., 4:]).reshape(panels, k // 8, width * 4))


def panel_scales(scale: np.ndarray, zero: np.ndarray, bits: int, width: int,
                 dot: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """[N, G] scale and zero point -> ([P, G, width] scale, [P, G, width] offset), zero in the padding."""
    n, g = scale.shape
    panels = -(-n // width)
    offset = unsigned_offset(bits, dot)
    s = np.zeros((panels * width, g), np.float32)
    z = np.zeros((panels * width, g), np.float32)
    s[:n] = scale
    z[:n] = -(zero.astype(np.float32) + offset) * scale
    shape = lambda a: np.ascontiguousarray(a.reshape(panels, width, g).transpose(0, 2, 1))  # noqa: E731
    return shape(s), shape(z)
