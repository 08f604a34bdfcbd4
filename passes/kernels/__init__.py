"""The CPU kernel families qc-microkernels emits, one module each, built with ``builder.KernelBuilder``:

- ``f32``: f32 (and f16-panel) matmuls, register-tiled FMA;
- ``weight_only``: int4 / int8 panels against f32 activations, dequantized in registers;
- ``dot``: int8 activations against int4 / int8 dot panels (VNNI, vpmaddubsw, generic), with
  ``amx`` for whole 32-row blocks of int8 per-channel panels.

Each ``build(name, contraction, rows, ...)`` appends ``func.func @name(operands..., %t0, %t1)``
at the insertion point: the kernel runs tasks [t0, t1) (the trampoline ABI of ``passes/trampoline.py``).
"""
