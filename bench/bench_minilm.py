"""qc vs ONNX Runtime on all-MiniLM-L6-v2, side by side in one process: qc FP32,
W8A8 + SmoothQuant (alpha 0.5, calibrated on 8 batches of other sentences), W8A7 and W7A8 (the same with
7-bit activations or 7-bit weights: AVX2's fast exact form) against ORT FP32 and ORT ``quantize_dynamic``
(per-channel int8).

    python bench/bench_minilm.py [--batch 1] [--seq 128] [--threads N] [--iters 30] [--target-cpu haswell]
                                 [--results docs/results.md]

Prints the compile time of the models and the median latency of all engines
(same thread count, calls interleaved) with their ratios, and each engine's error against ORT
FP32 (max |y - ref| / max |ref| of last_hidden_state, and the mean cosine of its token vectors).
``--target-cpu`` compiles qc for another ISA level (haswell: the AVX2 + FMA kernels).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--results", help="append the table to this markdown file")
    ap.add_argument("--target-cpu", help="compile qc for this LLVM CPU (e.g. haswell: the AVX2 kernels)")
    args = ap.parse_args()
    os.environ["QC_NUM_THREADS"] = str(args.threads)  # read once, when the runtime pool starts

    import numpy as np
    import onnxruntime as ort

    import qc
    from common import host, interleaved, publish, scratch, table
    from qc.compiler.models import minilm

    work = scratch("qc-bench-")
    onnx_path = work / "minilm.onnx"
    tokenizer = minilm.export_onnx(onnx_path, args.batch, args.seq)
    t0 = time.perf_counter()
    result = qc.compile(onnx_path, work / "minilm.so", target_cpu=args.target_cpu)
    compile_s = time.perf_counter() - t0
    model = qc.runtime.load(work / "minilm.so")

    calib = [minilm.encode(tokenizer, minilm.sample_sentences(8 * args.batch, seed=1)[i::8], args.seq)
             for i in range(8)]
    t0 = time.perf_counter()
    qc.compile(onnx_path, work / "minilm_w8a8.so", scheme="w8a8", calibration=calib, smooth=0.5,
               smooth_fallback=True, target_cpu=args.target_cpu)
    compile_q = time.perf_counter() - t0
    quant = qc.runtime.load(work / "minilm_w8a8.so")
    qc.compile(onnx_path, work / "minilm_w8a7.so", scheme="w8a7", calibration=calib, smooth=0.5,
               smooth_fallback=True, target_cpu=args.target_cpu)
    narrow = qc.runtime.load(work / "minilm_w8a7.so")
    qc.compile(onnx_path, work / "minilm_w7a8.so", scheme="w7a8", calibration=calib, smooth=0.5,
               smooth_fallback=True, target_cpu=args.target_cpu)
    seven = qc.runtime.load(work / "minilm_w7a8.so")

    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(onnx_path), str(work / "minilm_int8.onnx"), per_channel=True, weight_type=QuantType.QInt8)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    sess8 = ort.InferenceSession(str(work / "minilm_int8.onnx"), opts, providers=["CPUExecutionProvider"])
    sentences = ["Quantized models run faster on the CPUs people already have."] * args.batch
    feeds = minilm.encode(tokenizer, sentences, args.seq)
    ref = sess.run(None, feeds)[0]

    def error(y) -> str:
        cos = (y * ref).sum(-1) / (np.linalg.norm(y, axis=-1) * np.linalg.norm(ref, axis=-1))
        return f"{float(np.abs(y - ref).max() / np.abs(ref).max()):.1e} / {float(cos.mean()):.5f}"

    errors = {"qc": error(model.run(feeds)["last_hidden_state"]), "qc8": error(quant.run(feeds)["last_hidden_state"]),
              "qc7": error(narrow.run(feeds)["last_hidden_state"]),
              "qcw7": error(seven.run(feeds)["last_hidden_state"]),
              "ort": error(ref), "ort8": error(sess8.run(None, feeds)[0])}

    times = interleaved({"qc": lambda: model.run(feeds), "qc8": lambda: quant.run(feeds), "qc7": lambda: narrow.run(feeds),
                         "qcw7": lambda: seven.run(feeds),
                         "ort": lambda: sess.run(None, feeds), "ort8": lambda: sess8.run(None, feeds)}, args.iters)
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    head = (f"MiniLM, batch {args.batch}, seq {args.seq}, {args.threads} threads, {args.iters} interleaved calls; "
            f"host {host()}; qc target {args.target_cpu or 'this host'}; "
            f"qc compile FP32 {compile_s:.1f} s ({phases}), W8A8 + calibration {compile_q:.1f} s")
    rows = [(name, f"{times[key] * 1e3:.2f}", errors[key], f"{times['ort'] / times[key]:.2f}x",
             f"{times['ort8'] / times[key]:.2f}x")
            for name, key in (("qc FP32", "qc"), ("qc W8A8 + SmoothQuant", "qc8"), ("qc W8A7 + SmoothQuant", "qc7"),
                              ("qc W7A8 + SmoothQuant", "qcw7"),
                              ("ORT FP32", "ort"),
                              ("ORT quantize_dynamic int8", "ort8"))]
    text = head + "\n\n" + table(rows, ("engine", "median ms", "error vs ORT FP32 (max rel. / cosine)",
                                          "speed-up vs ORT FP32", "speed-up vs ORT int8"))
    publish(text, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
