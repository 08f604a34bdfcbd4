"""Prefill GEMM (M=128 tokens) on the seven linears of one LLaMA-7B decoder layer, side by
side: qc W8A8 (int8 per-channel weights, int8 per-token activations, VNNI/AVX2 integer
dot products), W8A7 (the same with 7-bit activations, +-63: AVX2's vpmaddubsw pairs exact
without the sign trick) and W7A8 (7-bit weights in [-64, 63] against 8-bit activations: the same form on
q + 64; its own random weights, and its error against their product) vs ONNX Runtime on the same weights,
FP32 (MatMul) and ``quantize_dynamic``
(per-channel int8, MatMulInteger with dynamically quantized activations).

    python bench/bench_prefill.py [--threads N] [--iters 10] [--rows 128] [--results docs/results.md]

Weights are random int8 with random per-channel scales; ORT gets them dequantized to f32
(FP32) and re-quantized by quantize_dynamic (int8).  Each engine's error against the f64 product of
the dequantized weights is printed beside its time (ORT's u8s8 int8 path saturates on hosts without
VNNI: its error shows it, and the benchmark still runs).  ``--target-cpu haswell`` compiles qc's
kernels for an AVX2 host (run here on any host that has AVX2).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def ort_fp32_model(weights, rows: int, path: Path) -> None:
    """Seven MatMul nodes with f32 initializers W^T [K, N]."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from bench_decode import LAYER

    nodes, inits, outputs = [], [], []
    for name, n, k in LAYER:
        q, scale = weights[name]
        w = (q.astype(np.float32) * scale).T
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w), f"{name}_W"))
        nodes.append(helper.make_node("MatMul", ["h" if k == 11008 else "x", f"{name}_W"], [f"y_{name}"]))
        outputs.append(helper.make_tensor_value_info(f"y_{name}", TensorProto.FLOAT, [rows, n]))
    graph = helper.make_graph(nodes, "layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, 4096]),
                                               helper.make_tensor_value_info("h", TensorProto.FLOAT, [rows, 11008])],
                              outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--rows", type=int, default=128)
    ap.add_argument("--results", help="append the table to this markdown file")
    ap.add_argument("--target-cpu", help="compile qc's kernels for this LLVM CPU (e.g. haswell: the AVX2 paths)")
    args = ap.parse_args()
    os.environ["QC_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from bench_decode import LAYER, error, make_weights, qc_model, reference
    from common import host, interleaved, publish, scratch, table

    work = scratch("qc-bench-prefill-")
    weights = make_weights(8, 0)
    model = qc_model(weights, 8, 0, 8, work, rows=args.rows, target_cpu=args.target_cpu)
    narrow = qc_model(weights, 8, 0, 7, work, rows=args.rows, target_cpu=args.target_cpu)
    weights7 = make_weights(7, 0)  # 7-bit weights in [-64, 63], stored as int8 (its own files: the same tag)
    (work / "w7").mkdir()
    seven = qc_model(weights7, 8, 0, 8, work / "w7", rows=args.rows, target_cpu=args.target_cpu)
    ort_fp32_model(weights, args.rows, work / "fp32.onnx")
    quantize_dynamic(str(work / "fp32.onnx"), str(work / "int8.onnx"), per_channel=True,
                     weight_type=QuantType.QInt8, use_external_data_format=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    sessions = {kind: ort.InferenceSession(str(work / f"{kind}.onnx"), opts, providers=["CPUExecutionProvider"])
                for kind in ("fp32", "int8")}
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((args.rows, 4096), dtype=np.float32),
             "h": rng.standard_normal((args.rows, 11008), dtype=np.float32)}
    qc_feeds = {"arg0": feeds["x"], "arg1": feeds["h"]}
    ref = reference(weights, feeds)
    errors = {"qc": error(model.run(qc_feeds).values(), ref), "qc7": error(narrow.run(qc_feeds).values(), ref),
              "qcw7": error(seven.run(qc_feeds).values(), reference(weights7, feeds))}
    errors |= {kind: error(sess.run(None, feeds), ref) for kind, sess in sessions.items()}
    times = interleaved({"qc": lambda: model.run(qc_feeds), "qc7": lambda: narrow.run(qc_feeds),
                         "qcw7": lambda: seven.run(qc_feeds),
                         **{kind: (lambda s=s: s.run(None, feeds)) for kind, s in sessions.items()}}, args.iters)
    macs = args.rows * sum(n * k for _, n, k in LAYER)
    rows = [(name, f"{times[key] * 1e3:.1f}", f"{macs / times[key] / 1e9:.0f}", f"{errors[key]:.1e}",
             f"{times['fp32'] / times[key]:.2f}x", f"{times['int8'] / times[key]:.2f}x")
            for name, key in (("qc W8A8", "qc"), ("qc W8A7", "qc7"), ("qc W7A8", "qcw7"), ("ORT FP32", "fp32"),
                              ("ORT quantize_dynamic int8", "int8"))]
    text = (f"Prefill GEMM, one LLaMA-7B layer (7 linears), M={args.rows}, {args.threads} threads, median of "
            f"{args.iters} interleaved calls; host {host()}; qc target {args.target_cpu or 'this host'}; error: "
            f"max |y - ref| / max |ref| against the f64 product of the dequantized weights\n\n"
            + table(rows, ("engine", "ms", "GMAC/s", "error vs f64", "speed-up vs ORT FP32", "speed-up vs ORT int8")))
    publish(text, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
