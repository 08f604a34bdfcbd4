"""AWQ-style activation-aware scaling (Lin et al., 2023).

Input channels that see large activations matter more, so the weight's
columns are scaled up by ``s_j = mean|x_j| ^ alpha`` before rounding and the
activation is divided by ``s`` (``(x / s) @ (W * s)^T == x @ W^T``).  ``alpha``
is searched on a grid; each candidate is scored by the layer's output error on
the calibration inputs, ``tr((W - W_hat) H (W - W_hat)^T)`` with ``H = X^T X``.
Then, as AWQ does, each group's clipping range is shrunk where that lowers
the group's share of the output error (``d_g^T H_gg d_g``).
"""

from __future__ import annotations

import numpy as np

from .rtn import QuantizedWeight, dequantize, quant_params, quantize_rtn, quantize_with
from .scheme import Scheme

ALPHAS = tuple(i / 20 for i in range(21))
CLIP_RATIOS = tuple(1.0 - i / 20 for i in range(11))  # 1.0 down to 0.5


def row_errors(d: np.ndarray, hessian: np.ndarray) -> np.ndarray:
    """``d_n H d_n^T`` per row of a weight error ``d`` (float64): the squared output error it adds
    over the inputs whose ``X^T X`` is ``H``.  ``d @ H`` goes through BLAS; a three-operand einsum
    ran numpy's naive loop, 20x slower (0.25 s for a 1536 x 384 weight)."""
    d = d.astype(np.float64)
    return np.sum((d @ hessian) * d, axis=1)


def output_error(w: np.ndarray, w_hat: np.ndarray, hessian: np.ndarray) -> float:
    """Summed squared output error over the inputs whose ``X^T X`` is ``hessian``."""
    return float(row_errors(w - w_hat, hessian).sum())


def quantize_awq(w: np.ndarray, act_absmean: np.ndarray, hessian: np.ndarray, scheme: Scheme,
                 alphas=ALPHAS) -> tuple[QuantizedWeight, np.ndarray, float]:
    """Returns (quantized ``W * s``, the per-input-channel ``s``, the chosen alpha)."""
    mean = np.maximum(act_absmean.astype(np.float64), 1e-8)
    best = None
    for alpha in alphas:
        s = mean ** alpha
        s = (s / np.sqrt(s.max() * s.min())).astype(np.float32)  # centre the scales around 1
        qw = quantize_rtn(w * s, scheme)
        err = output_error(w, dequantize(qw) / s, hessian)
        if best is None or err < best[0]:
            best = (err, qw, s, alpha)
    _, qw, s, alpha = best
    return clip_search(w * s, hessian / np.outer(s, s), qw, scheme), s, alpha


def clip_search(w: np.ndarray, hessian: np.ndarray, qw: QuantizedWeight, scheme: Scheme) -> QuantizedWeight:
    """Per (row, group): the clipping ratio of the quantization range with the least output error."""
    n, k = w.shape
    gs = scheme.group_size or k
    w64 = w.astype(np.float64)
    for g in range(k // gs):
        cols = slice(g * gs, (g + 1) * gs)
        block, h = w64[:, cols], hessian[cols, cols]
        best_err = np.full(n, np.inf)
        for ratio in CLIP_RATIOS:
            scale, zero = quant_params(block * ratio, scheme.weight_bits, scheme.symmetric)
            q = quantize_with(block, scale[:, None], zero[:, None], scheme.weight_bits)
            d = block - (q.astype(np.float64) - zero[:, None]) * scale[:, None]
            err = row_errors(d, h)
            better = err < best_err
            best_err = np.where(better, err, best_err)
            qw.q[better, cols] = q[better]
            qw.scale[better, g], qw.zero_point[better, g] = scale[better], zero[better]
    return qw
