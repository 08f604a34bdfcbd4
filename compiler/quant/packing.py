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
    offset = 8 if bits == 4 else 0  # int4 as unsigned nibbles
    padded = np.full((panels * width, k), offset, np.int16)
    padded[:n] = q.astype(np.int16) + offset
    cols = padded.reshape(panels, width, k).transpose(0, 2, 1)  # [P, K, width]
    if bits == 8:
        return np.ascontiguousarray(cols.astype(np.int8))
    return np.ascontiguousarray(_nibbles(cols[:, :, :width // 2], cols[:, :, width // 2:]))


def panel_scales(scale: np.ndarray, zero: np.ndarray, bits: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """[N, G] scale and zero point -> ([P, G, width] scale, [P, G, width] offset), zero in the padding."""
    n, g = scale.shape
    panels = -(-n // width)
    offset = 8 if bits == 4 else 0
    s = np.zeros((panels * width, g), np.float32)
    z = np.zeros((panels * width, g), np.float32)
    s[:n] = scale
    z[:n] = -(zero.astype(np.float32) + offset) * scale
    shape = lambda a: np.ascontiguousarray(a.reshape(panels, width, g).transpose(0, 2, 1))  # noqa: E731
    return shape(s), shape(z)
