"""qc-compile: an ONNX model (or .mlir) to a native library, executable, object or IR."""

from __future__ import annotations

import argparse
import sys

from ..compiler.api import EMITS, CompileOptions, compile, read_overrides
from ..compiler.decoder import KV_CACHE_TYPES
from ..core.calibration import Statistics
from ..core.quant.sensitivity import METRICS
from ..passes.quantize_weights import ACTIVATIONS, METHODS
from ..passes.smooth import parse_alpha
from ..core.errors import QCError
from ..core.signature import parse_shape_overrides
from .cli import ArgumentParser, entry_point


def smooth_alpha(text: str) -> float | str:
    try:
        return parse_alpha(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1] or 'auto', got '{text}'") from None


def parse_pins(items: list[str] | None) -> dict[str, str]:
    """``["fc2=w8a16", ...]`` -> ``{"fc2": "w8a16"}`` (the last ``=`` splits)."""
    pins = {}
    for item in items or []:
        pattern, sep, scheme = item.rpartition("=")
        if not sep or not pattern:
            raise QCError(f"bad --pin '{item}': expected REGEX=SCHEME, e.g. 'fc2=w8a16'")
        pins[pattern] = scheme
    return pins


@entry_point("qc-compile")
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="qc-compile", description="Compile a model with qc.")
    p.add_argument("model", help="model.onnx, model.mlir (with func.func @main) or a llama2.c checkpoint .bin")
    p.add_argument("-o", dest="output", required=True, help="output path")
    p.add_argument("--emit", default="so", choices=EMITS,
                   help="what to produce (default: so); static: an archive holding the weights too; "
                        "ptx, nvvm: a GPU model's kernels as PTX or as the LLVM IR it is made from")
    p.add_argument("--name", help="the model's C name: <name>_model(), <name>_run(), <name>.h "
                                  "(default: the output's file name)")
    p.add_argument("--shape", action="append", metavar="NAME=DxD", help="fix an input's shape, e.g. input_ids=1x128")
    p.add_argument("--target", default="cpu", metavar="cpu|cuda[:sm_80|sm_90]",
                   help="where the model runs: this CPU (default), or an NVIDIA GPU of that compute capability "
                        "(every op a CUDA kernel; PTX compiled by the driver at first use; --emit ptx writes it)")
    p.add_argument("--target-cpu", help="LLVM CPU name (default: this host), e.g. haswell, znver3")
    p.add_argument("--target-features", help="LLVM feature string, e.g. +avx2,+fma (default: the CPU's)")
    p.add_argument("--weights", help="weight store (.safetensors) of a .mlir model's qc.weight ops")
    p.add_argument("--winograd", type=int, default=4, choices=(0, 2, 4), metavar="{4,2,0}",
                   help="f32 3x3 stride-1 convolutions as Winograd F(m x m, 3x3): the largest tile m each may take "
                        "(4: 4x fewer multiplications, 2: 2.25x, with errors closer to the direct form's; 0: all "
                        "direct; default 4)")
    q = p.add_argument_group("quantization")
    q.add_argument("--scheme", help="scheme of every layer: f32, f16, w8a16, w8a8, w8a7 / w7a8 (7-bit activations / "
                                    "weights: AVX2's fast exact int8 dot), w4a16-g32|g64|g128, w4a8-g32|g64|g128 "
                                    "(-asym), or auto (chosen per layer under the budgets)")
    q.add_argument("--scheme-overrides", metavar="FILE.json|FILE.yaml",
                   help='per-layer schemes: {"layer-name regex": "scheme", ...} (JSON, or a YAML mapping); '
                        'first match wins')
    q.add_argument("--method", default="rtn", choices=METHODS, help="weight quantization method (default: rtn)")
    q.add_argument("--act-order", action="store_true",
                   help="GPTQ: quantize columns in order of decreasing Hessian diagonal")
    q.add_argument("--damp", type=float, metavar="FRACTION",
                   help="GPTQ damping, a fraction of the Hessian's mean diagonal (default: 0.01)")
    q.add_argument("--calib", metavar="CALIB.npz", help="calibration data: one array per input, samples on axis 0")
    q.add_argument("--stats", metavar="STATS.npz", help="calibration statistics saved by --save-stats")
    q.add_argument("--save-stats", metavar="STATS.npz", help="save the calibration statistics")
    q.add_argument("--report", metavar="REPORT.md|.json", help="write the per-layer quantization report")
    q.add_argument("--smooth", metavar="ALPHA|auto", type=smooth_alpha,
                   help="SmoothQuant before quantizing (needs --calib or --stats): alpha in [0, 1] or auto")
    q.add_argument("--smooth-fallback", action="store_true",
                   help="smooth layers whose input producer cannot absorb the scale with an explicit multiply")
    q.add_argument("--activations", default="dynamic", choices=ACTIVATIONS,
                   help="integer activations (w8a8, w4a8, w8a7, w7a8): per-row scales at run time or one calibrated scale")
    a = p.add_argument_group("precision selection (--scheme auto)")
    a.add_argument("--budget-bits", type=float, metavar="B", help="average bits per weight, scales included")
    a.add_argument("--budget-mb", type=float, metavar="MB", help="MB (10^6 bytes) of all stored weights")
    a.add_argument("--budget-latency-ms", type=float, metavar="MS", help="end-to-end ms on this host (predicted)")
    a.add_argument("--pin", action="append", metavar="REGEX=SCHEME", help="fix matching layers' scheme")
    a.add_argument("--candidates", metavar="S1,S2,...", help="schemes to choose from (default: every scheme)")
    a.add_argument("--sensitivity", default="measured", choices=("measured", "proxy"),
                   help="per-layer error: the model's output measured with only that layer quantized, or the "
                        "Hessian-weighted proxy (default: measured)")
    a.add_argument("--metric", default="cosine", choices=METRICS,
                   help="output error of measured sensitivities: cosine, kl (logits) or mse (default: cosine)")
    a.add_argument("--pareto", metavar="FRONT.md|.json", help="sweep the bit budget; write the front and a .png")
    g = p.add_argument_group("decoders (a llama2.c checkpoint .bin, or an ONNX decoder with past_key_values): "
                             "prefill and decode entries over a KV cache")
    g.add_argument("--max-context", type=int, metavar="N",
                   help="positions the KV cache holds (a .bin's default: its training length; required for ONNX)")
    g.add_argument("--prefill-chunk", type=int, default=16, metavar="T",
                   help="prompt tokens one prefill step takes (default: 16)")
    g.add_argument("--kv-cache", choices=(*KV_CACHE_TYPES, "auto"), default="float32",
                   help="the KV cache's element type (float16: half the cache's memory; int8: a quarter, plus a "
                        "scale per head and position; auto: chosen with the layers by --scheme auto under "
                        "--budget-mb, which then counts the cache)")
    args = p.parse_args(argv)
    try:
        options = CompileOptions(
            emit=args.emit, name=args.name, shapes=parse_shape_overrides(args.shape), target_cpu=args.target_cpu,
            target_features=args.target_features, winograd=args.winograd, target=args.target, weights=args.weights,
            scheme=args.scheme,
            overrides=read_overrides(args.scheme_overrides), method=args.method, calibration=args.calib,
            stats=Statistics.load(args.stats) if args.stats else None, save_stats=args.save_stats,
            report=args.report, progress=True, smooth=args.smooth, smooth_fallback=args.smooth_fallback,
            activations=args.activations, act_order=args.act_order, damp=args.damp, budget_bits=args.budget_bits,
            budget_mb=args.budget_mb, budget_latency_ms=args.budget_latency_ms, pins=parse_pins(args.pin),
            candidates=args.candidates.split(",") if args.candidates else None, sensitivity=args.sensitivity,
            metric=args.metric, pareto=args.pareto, max_context=args.max_context, prefill_chunk=args.prefill_chunk,
            kv_cache=args.kv_cache)
        result = compile(args.model, args.output, options)
    except QCError as err:
        print(f"qc-compile: error: {err}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"qc-compile: warning: {warning}", file=sys.stderr)
    for path in result.files:
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
