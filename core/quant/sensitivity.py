"""How much a layer's quantization hurts: the Hessian-weighted proxy and the model-output metrics.

The proxy (HAWQ-style, from the ``X^T X`` statistics calibration collects) is the layer's relative
output error on the calibration inputs,

    (tr(dW H dW^T) + E_act) / tr(W H W^T),      dW = W - dequant(quant(W)),  H = sum x^T x

with ``E_act = ||W_hat||_F^2 * sum_rows s_r^2 / 12`` for int8 activations (rounding noise of
variance s^2 / 12 per element, ``s_r = max|x_r| / 127`` per row, or one calibrated scale per tensor),
each error uncorrelated with the input.  Rounding is to nearest.
"""

from __future__ import annotations

import numpy as np

from .rtn import dequantize, quantize_rtn
from .scheme import Scheme

METRICS = ("cosine", "kl", "mse")


def fake_quantize(w: np.ndarray, scheme: Scheme) -> np.ndarray:
    """The f32 weight a layer computes with under ``scheme`` (round to nearest)."""
    if not scheme.quantized:
        return w
    if scheme.half:
        return w.astype(np.float16).astype(np.float32)
    return dequantize(quantize_rtn(w, scheme))


def activation_noise(stats, static: bool, scheme: Scheme) -> float:
    """``sum over rows of s^2 / 12``: the integer rounding noise energy per unit of weight energy
    (``s = max|x| / act_max``: the calibration's for static activations, each row's for dynamic)."""
    if static:
        return stats.rows * scheme.static_act_scale(stats.absmax) ** 2 / 12.0
    per_row = stats.rowmax_sq or stats.rows * float(np.max(stats.absmax)) ** 2  # older statistics: a bound
    return float(per_row) / float(scheme.act_max) ** 2 / 12.0


def proxy_error(w: np.ndarray, scheme: Scheme, stats, static: bool = False) -> float:
    """The relative output error of one linear ``y = x W^T`` under ``scheme`` on the calibration inputs."""
    if not scheme.quantized:
        return 0.0
    h = stats.hessian
    w64 = w.astype(np.float64)
    w_hat = fake_quantize(w, scheme).astype(np.float64)
    dw = w64 - w_hat
    num = float(np.sum((dw @ h) * dw))
    if scheme.int_activations:
        num += float(np.sum(w_hat * w_hat)) * activation_noise(stats, static, scheme)
    return num / max(float(np.sum((w64 @ h) * w64)), 1e-30)


def table_error(table: np.ndarray, scheme: Scheme) -> float:
    """An embedding table's proxy: its relative squared error (every row read alike)."""
    diff = table.astype(np.float64) - fake_quantize(table, scheme)
    return float(np.sum(diff * diff) / max(np.sum(table.astype(np.float64) ** 2), 1e-30))


def output_error(reference: np.ndarray, output: np.ndarray, metric: str) -> float:
    """How far a model output is from the f32 one, per row of the last axis, averaged:
    ``cosine``: 1 - cosine similarity; ``kl``: KL(softmax(reference) || softmax(output)) in nats
    (the last axis as logits); ``mse``: squared error relative to the reference's energy."""
    ref = reference.astype(np.float64).reshape(-1, reference.shape[-1] if reference.ndim else 1)
    out = output.astype(np.float64).reshape(ref.shape)
    if metric == "cosine":
        dot = np.sum(ref * out, axis=1)
        norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
        return float(np.mean(1.0 - dot / np.maximum(norms, 1e-30)))
    if metric == "kl":
        lp = ref - ref.max(axis=1, keepdims=True)
        lp -= np.log(np.exp(lp).sum(axis=1, keepdims=True))
        lq = out - out.max(axis=1, keepdims=True)
        lq -= np.log(np.exp(lq).sum(axis=1, keepdims=True))
        return float(np.mean(np.sum(np.exp(lp) * (lp - lq), axis=1)))
    return float(np.sum((out - ref) ** 2) / max(np.sum(ref * ref), 1e-30))


def outputs_error(references, outputs, metric: str) -> float:
    """One sample's error: the mean of ``output_error`` over its outputs."""
    return float(np.mean([output_error(r, o, metric) for r, o in zip(references, outputs)]))
