"""The weight store lower-qgemm-seven-bit.mlir feeds qc-opt: ``python seven_bit_weights.py OUT.safetensors``.

int8 weights [32, 8] with per-channel scales and zero points: ``seven`` within [-64, 63] (both ends
taken), ``eight`` the same with one weight at 64."""

import sys

import numpy as np
from safetensors.numpy import save_file

rng = np.random.default_rng(0)
seven = rng.integers(-64, 64, (32, 8), dtype=np.int8)
seven[0, :2] = (-64, 63)
eight = seven.copy()
eight[5, 3] = 64
save_file({"seven.q.packed": seven, "eight.q.packed": eight, "w.scale": np.full(32, 0.01, np.float32),
           "w.zero": np.zeros(32, np.int8)}, sys.argv[1])
