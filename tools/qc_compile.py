"""qc-compile: an ONNX model (or .mlir) to a native library, executable, object or IR."""

from __future__ import annotations

import argparse
import sys

from ..compiler.api import EMITS, compile
from ..compiler.errors import QCError
from ..compiler.signature import parse_shape_overrides


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="qc-compile", description="Compile a model with qc.")
    p.add_argument("model", help="model.onnx or model.mlir (with func.func @main)")
    p.add_argument("-o", dest="output", required=True, help="output path")
    p.add_argument("--emit", default="so", choices=EMITS, help="what to produce (default: so)")
    p.add_argument("--shape", action="append", metavar="NAME=DxD", help="fix an input's shape, e.g. input_ids=1x128")
    p.add_argument("--target-cpu", help="LLVM CPU name (default: this host), e.g. haswell, znver3")
    p.add_argument("--target-features", help="LLVM feature string, e.g. +avx2,+fma (default: the CPU's)")
    args = p.parse_args(argv)
    try:
        result = compile(args.model, args.output, emit=args.emit, shapes=parse_shape_overrides(args.shape),
                         target_cpu=args.target_cpu, target_features=args.target_features)
    except QCError as err:
        print(f"qc-compile: error: {err}", file=sys.stderr)
        return 1
    for path in result.files:
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
