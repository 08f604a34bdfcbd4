"""The weight store, calibration statistics and latency table that select-precision.mlir feeds qc-opt.

    python select_inputs.py OUT   -> OUT.safetensors, OUT.npz (Hessians, no measured sensitivities),
                                     OUT.measured.npz (the same with measured ones, and a KV
                                     cache's), OUT.latency.json

Layers (all K = 64): ``outlier`` (heavy-tailed weights: int4 hurts it most), ``plain`` (Gaussian),
both reading one input, and the embedding table ``embed`` (32 x 64, Gaussian).  The measured
sensitivities rank them the other way round (``plain`` most sensitive), so a test can tell which
kind the pass used.  In the latency table int4 kernels are slow (10 ms) and int8 ones fast (1 ms),
as on a host whose int4 kernel family is poor."""

import sys

import numpy as np
from safetensors.numpy import save_file

from qc.core.calibration import LayerStats, Statistics
from qc.core.quant import all_schemes
from qc.core.quant.latency import LatencyTable

out = sys.argv[1]
rng = np.random.default_rng(0)
weights = {"outlier": (rng.standard_t(1.5, (64, 64)) * 0.1).astype(np.float32),
           "plain": (rng.standard_normal((64, 64)) * 0.1).astype(np.float32),
           "embed": rng.standard_normal((32, 64)).astype(np.float32)}
save_file(weights, out + ".safetensors")
x = rng.standard_normal((32, 64)).astype(np.float32)
stats = Statistics({layer: LayerStats.of(x, hessian=True) for layer in ("outlier", "plain")})
stats.save(out + ".npz")
for scheme in all_schemes():
    if scheme.quantized:
        bits = scheme.weight_bits if not scheme.half else 12
        for layer, weight in (("outlier", 1.0), ("plain", 10.0), ("embed", 0.1)):
            stats.sensitivity.setdefault(layer, {})[f"measured:cosine:{scheme.name}"] = weight * 2.0 ** -bits
# a decoder's KV cache types (select-precision-kv-cache.mlir): half costs little, int8 ten times more
stats.sensitivity["kv_cache"] = {"measured:cosine:float16": 1e-3, "measured:cosine:int8": 1e-2}
stats.save(out + ".measured.npz")
table = LatencyTable({"cpu": "test", "features": ""})
for scheme in all_schemes():
    ms = 10.0 if scheme.weight_bits == 4 else 1.0 if scheme.weight_bits == 8 else 2.0
    table.set_ms("4x64x64", scheme.name, ms)
table.save(out + ".latency.json")
