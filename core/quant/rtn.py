"""Round-to-nearest quantization and the shared quantization-parameter math."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scheme import Scheme


@dataclass
class QuantizedWeight:
    """``w[n, k] ~= (q[n, k] - zero_point[n, g]) * scale[n, g]`` with ``g = k // group_size``."""

    q: np.ndarray           # int8 [N, K], values in [-2^(b-1), 2^(b-1) - 1]
    scale: np.ndarray       # float32 [N, G]
    zero_point: np.ndarray  # int8 [N, G] (zeros when symmetric)
    bits: int
    group_size: int         # 0: one group spanning K (per output channel)


def _groups(k: int, group_size: int) -> int:
    return k // group_size if group_size else 1


def quant_params(w: np.ndarray, bits: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point for each row of ``w`` ([R, C] -> [R], [R]), float64 math."""
    w = w.astype(np.float64)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if symmetric:
        scale = np.abs(w).max(axis=1) / hi
        zero = np.zeros(len(w))
    else:
        wmin, wmax = np.minimum(w.min(axis=1), 0.0), np.maximum(w.max(axis=1), 0.0)
        scale = (wmax - wmin) / (hi - lo)
        zero = np.clip(np.round(lo - wmin / np.where(scale > 0, scale, 1.0)), lo, hi)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return scale, zero.astype(np.int8)


def quantize_with(w: np.ndarray, scale: np.ndarray, zero: np.ndarray, bits: int) -> np.ndarray:
    """q = clamp(round(w / scale) + zero) with ``scale``/``zero`` broadcast over the last axis."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    q = np.round(w.astype(np.float64) / scale.astype(np.float64)) + zero.astype(np.float64)
    return np.clip(q, lo, hi).astype(np.int8)


def quantize_rtn(w: np.ndarray, scheme: Scheme) -> QuantizedWeight:
    """Round each weight to the nearest level of its row's (or group's) grid."""
    n, k = w.shape
    gs = scheme.group_size or k
    blocks = w.reshape(n, k // gs, gs).reshape(-1, gs)
    scale, zero = quant_params(blocks, scheme.weight_bits, scheme.symmetric)
    q = quantize_with(blocks, scale[:, None], zero[:, None], scheme.weight_bits)
    g = _groups(k, scheme.group_size)
    return QuantizedWeight(q.reshape(n, k), scale.reshape(n, g), zero.reshape(n, g), scheme.weight_bits,
                           scheme.group_size)


def dequantize(qw: QuantizedWeight) -> np.ndarray:
    """The float32 weight the quantized one stands for."""
    n, k = qw.q.shape
    gs = qw.group_size or k
    q = qw.q.reshape(n, k // gs, gs).astype(np.float32)
    w = (q - qw.zero_point[:, :, None].astype(np.float32)) * qw.scale[:, :, None]
    return w.reshape(n, k)
