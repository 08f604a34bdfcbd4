"""qc-opt: like mlir-opt, with the qc dialect and passes."""

from __future__ import annotations

import sys

from ..core.errors import QCError
from ..compiler.opt import OptOptions, read_input, run_opt
from ..passes import REGISTRY
from .cli import ArgumentParser


def _list_passes() -> str:
    lines = ["qc passes (usable in --pass-pipeline or as --NAME[=OPTIONS]):"]
    for name, cls in REGISTRY.items():
        lines.append(f"  --{name:28s} {cls.SUMMARY}")
        for opt, o in cls.OPTIONS.items():
            lines.append(f"      {opt}={o.default!s:<20} {o.help}")
    lines.append("Every pass of the bundled upstream MLIR and torch-mlir is also available by its name.")
    return "\n".join(lines)


def _pipeline_from_flags(flags: list[str]) -> str:
    from ..compiler.context import make_context
    from ..passes.pipeline import is_upstream_pass

    ctx, elements = make_context(), []
    for flag in flags:
        name, _, opts = flag.lstrip("-").partition("=")
        element = f"{name}{{{opts}}}" if opts else name
        if name in REGISTRY or is_upstream_pass(element, ctx) and not is_upstream_pass(f"func.func({element})", ctx):
            elements.append(element)
        elif is_upstream_pass(element, ctx):
            elements.append(f"func.func({element})")
        else:
            raise QCError(f"unknown command line argument '{flag}'; see --list-passes")
    return f"builtin.module({','.join(elements)})"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="qc-opt", description="Read, transform and print MLIR with qc passes.",
                                     epilog="Passes can also be given one by one as --NAME or --NAME='opt=value ...'.")
    parser.add_argument("input", nargs="?", default="-", help="input .mlir file ('-' for stdin)")
    parser.add_argument("-o", dest="output", default="-", help="output file (default stdout)")
    parser.add_argument("--pass-pipeline", help="textual pipeline, e.g. 'builtin.module(qc-raise,canonicalize)'")
    parser.add_argument("--split-input-file", action="store_true", help="split the input on '// -----' lines")
    parser.add_argument("--verify-diagnostics", action="store_true", help="check expected-error comments")
    parser.add_argument("--mlir-print-ir-after-all", action="store_true", help="print the IR after each pass")
    parser.add_argument("--mlir-print-debuginfo", action="store_true", help="print locations")
    parser.add_argument("--list-passes", action="store_true", help="list qc passes and exit")
    parser.add_argument("--weights", help="weight store (safetensors) that qc.weight ops refer to")
    parser.add_argument("--weights-out", help="write the weight store after the pipeline (safetensors)")
    parser.add_argument("--stats", help="calibration statistics (.npz from qc-compile --save-stats) for qc-smooth, "
                        "GPTQ, AWQ and static activation scales")
    args, rest = parser.parse_known_args(argv)
    if args.list_passes:
        print(_list_passes())
        return 0
    try:
        flags = [r for r in rest if r.startswith("--")]
        if len(flags) != len(rest):
            raise QCError(f"unexpected arguments {[r for r in rest if not r.startswith('--')]}")
        if flags and args.pass_pipeline:
            raise QCError("give passes either as --pass-pipeline or as flags, not both")
        pipeline = args.pass_pipeline or (_pipeline_from_flags(flags) if flags else None)
        text, name = read_input(args.input)
        result = run_opt(text, name, OptOptions(
            pipeline=pipeline, split_input_file=args.split_input_file, verify_diagnostics=args.verify_diagnostics,
            print_ir_after_all=args.mlir_print_ir_after_all, print_debuginfo=args.mlir_print_debuginfo,
            weights=args.weights, weights_out=args.weights_out, stats=args.stats))
    except QCError as err:
        print(f"qc-opt: error: {err}", file=sys.stderr)
        return 1
    for message in result.messages:
        print(message, file=sys.stderr)
    if args.output == "-":
        sys.stdout.write(result.output)  # like mlir-opt, the chunks that passed even if one failed
    elif result.ok:  # a file is only written on success
        with open(args.output, "w") as f:
            f.write(result.output)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
