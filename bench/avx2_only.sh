#!/bin/sh
# Runs a command as on an AVX2-only x86 host (AVX2 + FMA; no AVX-512, VNNI, AVX-VNNI, AMX) by hiding the other
# features from CPUID (bench/cpuid_avx2.c): ONNX Runtime, PyTorch, LLVM (qc's host target) and gcc -march=native
# then choose what they choose on such a CPU.  Example: bench/avx2_only.sh python bench/bench_minilm.py
set -e
lib="${TMPDIR:-/tmp}/qc-cpuid-avx2-$(id -u).so"
cc -O2 -shared -fPIC "$(dirname "$0")/cpuid_avx2.c" -o "$lib.$$" -ldl
mv "$lib.$$" "$lib"
LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" exec "$@"
