"""Plain data types every layer shares: errors, tensor signatures, the weight store, calibration
statistics and the numerics of quantization (numpy only; no MLIR, no compiler)."""
