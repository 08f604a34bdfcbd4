"""qc FP32 vs ONNX Runtime FP32 on convolutions, side by side in one run: one ResNet-shaped
convolution (1x64x56x56, 64 filters 3x3) and real CNNs written in plain PyTorch with random weights
(compiler/models/cnn.py: MobileNetV3-small, ResNet-18, a UNet/FPN head, a CRNN text recognizer).

    python bench/bench_conv.py [--threads N] [--iters 30] [--models conv,resnet18,...] [--schemes f32,w8a8]
                               [--target-cpu haswell]
                               [--results docs/results.md]

Each engine's error is against the PyTorch FP32 model; calls alternate between the engines.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODELS = ("conv", "mobilenetv3_small", "resnet18", "unet_head", "crnn")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    ap.add_argument("--schemes", default="f32,w8a8", help="qc schemes to run beside ORT FP32 (f32, w8a8, ...)")
    ap.add_argument("--target-cpu", help="compile qc's kernels for this LLVM CPU (e.g. haswell: the AVX2 paths)")
    ap.add_argument("--results", help="append the table to this markdown file")
    args = ap.parse_args()
    os.environ["QC_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import onnxruntime as ort
    import torch

    import qc
    from common import host, interleaved, publish, scratch, table
    from qc.compiler.models import cnn

    torch.set_num_threads(args.threads)
    work = scratch("qc-bench-")
    rows, schemes = [], args.schemes.split(",")
    for name in args.models.split(","):
        torch.manual_seed(0)
        if name == "conv":
            model, shape, label = torch.nn.Conv2d(64, 64, 3, padding=1).eval(), (1, 64, 56, 56), "Conv2d 64->64 3x3, 1x64x56x56"
        else:
            (model, shape), label = cnn.build(name), name
        x = torch.randn(*shape)
        path = work / f"{name}.onnx"
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False, opset_version=17)
        compiled = {}
        for scheme in schemes:
            print(f"compiling {label} at {scheme} ...", file=sys.stderr, flush=True)
            out = work / f"{name}_{scheme}.so"
            qc.compile(path, out, scheme=None if scheme == "f32" else scheme, target_cpu=args.target_cpu)
            compiled[scheme] = qc.runtime.load(out)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feeds = {"x": x.numpy()}
        with torch.no_grad():
            ref = model(x).numpy()
        scale = float(np.abs(ref).max())
        outputs = {scheme: m.run(feeds)["y"] for scheme, m in compiled.items()} | {"ort": sess.run(None, feeds)[0]}
        errors = {engine: float(np.abs(out - ref).max()) / scale for engine, out in outputs.items()}
        runners = {scheme: (lambda m=m: m.run(feeds)) for scheme, m in compiled.items()}
        times = interleaved(runners | {"ort": lambda: sess.run(None, feeds)}, args.iters)
        for scheme in schemes:
            rows.append((label, f"qc {scheme}", f"{times[scheme] * 1e3:.2f}", f"{times['ort'] * 1e3:.2f}",
                         f"{times['ort'] / times[scheme]:.2f}x", f"{errors[scheme]:.1e}", f"{errors['ort']:.1e}"))
    text = (f"Convolutions and CNNs, qc at each scheme beside ORT FP32, batch 1, {args.threads} threads, median of {args.iters} alternating calls; "
            f"host {host()}; qc target {args.target_cpu or 'this host'}; error = max |engine - PyTorch FP32| / max |PyTorch|\n\n"
            + table(rows, ("model", "qc", "qc ms", "ORT FP32 ms", "qc speed vs ORT", "qc error", "ORT error")))
    publish(text, args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
