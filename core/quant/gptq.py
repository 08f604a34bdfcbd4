"""GPTQ (Frantar et al., 2022): quantize one input column at a time and spread
its rounding error over the columns not yet quantized, weighted by the inverse
Hessian of the layer's input, ``H = X^T X``."""

from __future__ import annotations

import numpy as np

from .rtn import QuantizedWeight, quant_params, quantize_with
from .scheme import Scheme


def _inverse_hessian_cholesky(h: np.ndarray, damp: float) -> np.ndarray:
    """Upper Cholesky factor of (H + damp * mean(diag H) * I)^-1."""
    h = h + np.eye(len(h)) * damp * np.mean(np.diag(h))
    lower = np.linalg.cholesky(h)
    inv = np.linalg.inv(lower)
    return np.linalg.cholesky(inv.T @ inv).T


def quantize_gptq(w: np.ndarray, hessian: np.ndarray, scheme: Scheme, *, damp: float = 0.01,
                  act_order: bool = False, block: int = 128) -> QuantizedWeight:
    """GPTQ on ``w: [N, K]`` with ``hessian: [K, K]``.

    Groups keep their original, contiguous input channels also under
    ``act_order`` (their parameters are fixed from the unmodified weight, the
    "static groups" variant), so the result packs like any other."""
    n, k = w.shape
    bits, gs = scheme.weight_bits, scheme.group_size or k
    h = hessian.astype(np.float64).copy()
    w = w.astype(np.float64).copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    groups = k // gs
    blocks = w.reshape(n, groups, gs).transpose(1, 0, 2).reshape(groups * n, gs)
    g_scale, g_zero = quant_params(blocks, bits, scheme.symmetric)
    g_scale, g_zero = g_scale.reshape(groups, n).T, g_zero.reshape(groups, n).T  # [N, G]

    order = np.argsort(-np.diag(h), kind="stable") if act_order else np.arange(k)
    w, h = w[:, order], h[np.ix_(order, order)]
    hinv = _inverse_hessian_cholesky(h, damp)
    q = np.zeros((n, k), np.int8)
    for b0 in range(0, k, block):
        b1 = min(b0 + block, k)
        err = np.zeros((n, b1 - b0))
        for i in range(b0, b1):
            col = order[i]
            s, z = g_scale[:, col // gs], g_zero[:, col // gs]
            qi = quantize_with(w[:, i], s, z, bits)
            deq = (qi.astype(np.float64) - z) * s
            e = (w[:, i] - deq) / hinv[i, i]
            w[:, i + 1:b1] -= np.outer(e, hinv[i, i + 1:b1])
            err[:, i - b0] = e
            q[:, col] = qi
        w[:, b1:] -= err @ hinv[b0:b1, b1:]
    return QuantizedWeight(q, g_scale.astype(np.float32), g_zero.astype(np.int8), scheme.storage_bits,
                           scheme.group_size)
