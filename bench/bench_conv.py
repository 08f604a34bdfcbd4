"""qc FP32 vs ONNX Runtime FP32 on one ResNet-shaped convolution (1x64x56x56, 64 filters 3x3), side by side.

    python bench/bench_conv.py [--threads N] [--iters 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=30)
    args = ap.parse_args()
    os.environ["QC_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import onnxruntime as ort
    import torch

    import qc
    from common import interleaved, table

    work = Path(tempfile.mkdtemp(prefix="qc-bench-"))
    torch.manual_seed(0)
    conv, x = torch.nn.Conv2d(64, 64, 3, padding=1).eval(), torch.randn(1, 64, 56, 56)
    torch.onnx.export(conv, (x,), str(work / "conv.onnx"), input_names=["x"], output_names=["y"], dynamo=False)
    qc.compile(work / "conv.onnx", work / "conv.so")
    model = qc.runtime.load(work / "conv.so")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
    sess = ort.InferenceSession(str(work / "conv.onnx"), opts, providers=["CPUExecutionProvider"])
    feeds = {"x": x.numpy()}
    err = float(np.abs(model.run(feeds)["y"] - sess.run(None, feeds)[0]).max())
    times = interleaved({"qc": lambda: model.run(feeds), "ort": lambda: sess.run(None, feeds)}, args.iters)
    print(f"Conv2d 64->64 3x3 on 1x64x56x56 FP32, {args.threads} threads; max |qc - ort| = {err:.2e}")
    print(table([("qc FP32", f"{times['qc'] * 1e3:.3f}", f"{times['qc'] / times['ort']:.2f}"),
                 ("ORT FP32", f"{times['ort'] * 1e3:.3f}", "1.00")], ("engine", "median ms", "time / ORT")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
