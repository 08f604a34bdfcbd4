"""qc FP32 vs ONNX Runtime FP32 on all-MiniLM-L6-v2, side by side in one process.

    python bench/bench_minilm.py [--batch 1] [--seq 128] [--threads N] [--iters 30]

Prints the compile time of the model and the median latency of both engines
(same thread count, calls interleaved) with their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=30)
    args = ap.parse_args()
    os.environ["QC_NUM_THREADS"] = str(args.threads)  # read once, when the runtime pool starts

    import numpy as np
    import onnxruntime as ort

    import qc
    from common import interleaved, table
    from qc.compiler.models import minilm

    work = Path(tempfile.mkdtemp(prefix="qc-bench-"))
    onnx_path = work / "minilm.onnx"
    tokenizer = minilm.export_onnx(onnx_path, args.batch, args.seq)
    t0 = time.perf_counter()
    result = qc.compile(onnx_path, work / "minilm.so")
    compile_s = time.perf_counter() - t0
    model = qc.runtime.load(work / "minilm.so")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    sentences = ["Quantized models run faster on the CPUs people already have."] * args.batch
    feeds = minilm.encode(tokenizer, sentences, args.seq)
    err = float(np.abs(model.run(feeds)["last_hidden_state"] - sess.run(None, feeds)[0]).max())

    times = interleaved({"qc": lambda: model.run(feeds), "ort": lambda: sess.run(None, feeds)}, args.iters)
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    print(f"MiniLM FP32, batch {args.batch}, seq {args.seq}, {args.threads} threads, {args.iters} interleaved calls")
    print(f"qc compile: {compile_s:.1f} s ({phases}); max |qc - ort| = {err:.2e}")
    print(table([("qc FP32", f"{times['qc'] * 1e3:.2f}", f"{times['qc'] / times['ort']:.2f}"),
                 ("ORT FP32", f"{times['ort'] * 1e3:.2f}", "1.00")],
                ("engine", "median ms", "time / ORT")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
