"""The weight store and calibration statistics that smooth.mlir feeds qc-opt, and a check of
what qc-smooth stored.

    python smooth_inputs.py write OUT        -> OUT.safetensors, OUT.npz
    python smooth_inputs.py check IN OUT     prints the per-channel factors and whether the fold is exact

Input channel 3 of every linear is an outlier (about 50x the others)."""

import sys

import numpy as np
from safetensors.numpy import load_file, save_file

from qc.core.calibration import LayerStats, Statistics

if sys.argv[1] == "write":
    rng = np.random.default_rng(0)
    weights = {name: rng.standard_normal((8, 8)).astype(np.float32) for name in ("fc1", "q", "k", "lone")}
    weights["fc1.bias"] = rng.standard_normal(8).astype(np.float32)
    save_file(weights, sys.argv[2] + ".safetensors")
    x = rng.standard_normal((16, 8)).astype(np.float32)
    x[:, 3] *= 50
    Statistics({layer: LayerStats.of(x, hessian=False) for layer in ("fc1", "q", "lone")}).save(sys.argv[2] + ".npz")
else:
    before, after = load_file(sys.argv[2]), load_file(sys.argv[3])
    s = after["q.smoothed"][0] / before["q"][0]  # column j of q (and k) times s_j
    print("largest factor on channel", int(np.argmax(s)))
    print("k scaled like q:", np.allclose(after["k.smoothed"] / before["k"], s[None, :], rtol=1e-6))
    print("fc1 rows divided by s:", np.allclose(after["fc1.smoothed"] * s[:, None], before["fc1"], rtol=1e-6))
