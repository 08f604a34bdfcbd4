"""Round-to-nearest quantization and the shared quantization-parameter math."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scheme import Scheme


@dataclass
class QuantizedWeight:
    """``w[n, k] ~= (q[n, k] - zero_point[n, g]) * scale[n, g]`` with ``g = k // group_size``."""

    q: np.ndarray           # int8 [N, K], values in [-2^(b-1), 2^(b-1) - 1] for the scheme's b (7: [-64, 63])
    scale: np.ndarray       # float32 [N, G]
    zero_point: np.ndarray  # int8 [N, G] (zeros when symmetric)
    bits: int               # as stored: 4 or 8 (7-bit weights are stored as int8)
    group_size: int         # 0: one group spanning K (per output channel)


def _groups(k: int, group_size: int) -> int:
    return k // group_size if group_size else 1


def quant_params(w: np.ndarray, bits: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point for each row of ``w`` ([R, C] -> [R], [R]), float64 math (on the rows'
    extremes, which are exact in ``w``'s own type)."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if symmetric:
        scale = np.abs(w).max(axis=1).astype(np.float64) / hi
        zero = np.zeros(len(w))
    else:
        wmin = np.minimum(w.min(axis=1).astype(np.float64), 0.0)
        wmax = np.maximum(w.max(axis=1).astype(np.float64), 0.0)
        scale = (wmax - wmin) / (hi - lo)
        zero = np.clip(np.round(lo - wmin / np.where(scale > 0, scale, 1.0)), lo, hi)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return scale, zero.astype(np.int8)


_CHUNK = 1 << 22  # elements per slab of a float32 quantization: temporaries stay in cache-sized pieces


def quantize_with(w: np.ndarray, scale: np.ndarray, zero: np.ndarray, bits: int) -> np.ndarray:
    """q = clamp(round(w / scale) + zero) with ``scale``/``zero`` broadcast over the last axis; the
    quotient rounded as float64 math rounds it."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if w.dtype != np.float32 or scale.dtype != np.float32 or w.ndim != 2 or np.ndim(scale) != 2 or np.ndim(zero) != 2:
        q = np.round(w.astype(np.float64) / scale.astype(np.float64)) + zero.astype(np.float64)
        return np.clip(q, lo, hi).astype(np.int8)
    out = np.empty(w.shape, np.int8)
    rows = max(1, _CHUNK // max(1, w.shape[1]))
    # A quotient of magnitude 2^bits or more clips whichever way it rounds; below that its rounding
    # error (half an ulp) is under ``tol``.
    tol = np.float32(0.5 - 2.0 ** (bits - 23))
    for r0 in range(0, len(w), rows):
        ws, ss = w[r0:r0 + rows], scale[r0:r0 + rows]
        r = ws / ss  # float32 division is correctly rounded, so it rounds to the float64 quotient's integer
        q = np.rint(r)  # unless a half-integer lies within its rounding error: redo those in float64
        near = r - q
        np.abs(near, out=near)
        near = near >= tol
        if near.any():
            i, j = np.nonzero(near)
            q[i, j] = np.round(ws[i, j].astype(np.float64) / ss[i, j % ss.shape[1]].astype(np.float64))
        q += zero[r0:r0 + rows]
        np.clip(q, lo, hi, out=q)
        out[r0:r0 + rows] = q
    return out


def quantize_rtn(w: np.ndarray, scheme: Scheme) -> QuantizedWeight:
    """Round each weight to the nearest level of its row's (or group's) grid."""
    n, k = w.shape
    gs = scheme.group_size or k
    blocks = w.reshape(n, k // gs, gs).reshape(-1, gs)
    scale, zero = quant_params(blocks, scheme.weight_bits, scheme.symmetric)
    q = quantize_with(blocks, scale[:, None], zero[:, None], scheme.weight_bits)
    g = _groups(k, scheme.group_size)
    return QuantizedWeight(q.reshape(n, k), scale.reshape(n, g), zero.reshape(n, g), scheme.storage_bits,
                           scheme.group_size)


def dequantize(qw: QuantizedWeight) -> np.ndarray:
    """The float32 weight the quantized one stands for: ``(q - zero_point) * scale`` in float32, in
    slabs of rows (no weight-sized temporaries)."""
    n, k = qw.q.shape
    gs = qw.group_size or k
    out = np.empty((n, k), np.float32)
    rows = max(1, _CHUNK // max(1, k))
    for r0 in range(0, n, rows):
        o = out[r0:r0 + rows].reshape(-1, k // gs, gs)
        np.subtract(qw.q[r0:r0 + rows].reshape(o.shape), qw.zero_point[r0:r0 + rows, :, None], out=o, dtype=np.float32)
        o *= qw.scale[r0:r0 + rows, :, None]
    return out
