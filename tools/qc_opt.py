"""qc-opt: like mlir-opt, with the qc dialect and passes."""

from __future__ import annotations

import argparse
import itertools
import sys
from importlib import metadata

from ..core.errors import QCError
from ..compiler.opt import DEFAULT_SPLIT_MARKER, OptOptions, read_input, run_opt
from ..passes import REGISTRY
from ..passes.base import parse_bool
from .cli import ArgumentParser, entry_point


def _list_passes() -> str:
    lines = ["qc passes (usable in --pass-pipeline or as --NAME[=OPTIONS]):"]
    width = max(map(len, REGISTRY)) + 2
    for name, cls in REGISTRY.items():
        lines.append(f"  --{name:<{width}} {cls.SUMMARY}")
        for opt, o in cls.OPTIONS.items():
            lines.append(f"      {opt + '=' + str(o.default):<{width - 2}} {o.help}")
    lines.append("Every pass of the bundled upstream MLIR and torch-mlir is also available by its name.")
    return "\n".join(lines)


def _version() -> str:
    return (f"qc-opt (qc {metadata.version('qc')})\n"
            f"  MLIR from torch-mlir {metadata.version('torch-mlir')}")


def _normalise(argv: list[str]) -> list[str]:
    """LLVM's command line reads ``-flag`` as ``--flag``, a boolean as ``--flag[=true|false]`` and an
    optional value only after ``=``: argparse is given ``--flag`` / ``--no-flag`` and explicit values."""
    out = []
    for arg in argv:
        if arg != "-" and arg.startswith("-") and not arg.startswith("--"):
            arg = "-" + arg
        name, eq, value = arg.partition("=")
        if name in _BOOL_FLAGS and eq:
            try:
                arg = name if parse_bool(value) else "--no-" + name[2:]
            except ValueError:
                raise QCError(f"'{value}' is not a boolean for '{name}' (true, false, 1 or 0)") from None
        elif arg == "--split-input-file":
            arg += "=" + DEFAULT_SPLIT_MARKER
        out.append(arg)
    return out


def _pipeline_from_flags(flags: list[str]) -> list[str]:
    """Pass flags -> pipeline elements, each anchored as mlir-opt's implicit nesting does: on the
    module unless the pass is restricted to another op (``func.func``, ``gpu.module``), under
    which consecutive such passes share one nest."""
    from ..compiler.context import make_context
    from ..passes.pipeline import pass_anchor

    ctx, elements = make_context(), []
    for flag in flags:
        name, _, opts = flag.lstrip("-").partition("=")
        element = f"{name}{{{opts}}}" if opts else name
        anchor = "builtin.module" if name in REGISTRY else pass_anchor(element, ctx)
        if anchor is None:
            raise QCError(f"Unknown command line argument '{flag}'.  Try: 'qc-opt --help' (passes: --list-passes)")
        elements.append((anchor, element))
    out: list[str] = []
    for anchor, group in itertools.groupby(elements, key=lambda e: e[0]):
        names = [element for _, element in group]
        if anchor == "builtin.module":
            out += names
        else:
            out.append(f"{anchor}({','.join(names)})")
    return out


# LLVM cl::opt<bool> flags: --name, --name=true|false (and argparse's --no-name)
_BOOL_FLAGS = {
    "--verify-diagnostics": "check the input's expected-error/warning/note/remark comments",
    "--allow-unregistered-dialect": "accept ops of dialects that are not registered",
    "--verify-each": "run the verifier after each pass (default true)",
    "--mlir-disable-threading": "accepted for mlir-opt's command lines: qc-opt always runs on one thread",
    "--mlir-print-ir-before-all": "print the IR before each pass (stderr)",
    "--mlir-print-ir-after-all": "print the IR after each pass (stderr)",
    "--mlir-print-ir-after-change": "print the IR after each pass that changed it (stderr)",
    "--mlir-print-ir-after-failure": "print the IR after a pass fails (stderr)",
    "--mlir-print-ir-module-scope": "print the whole module when printing IR around passes",
    "--mlir-print-debuginfo": "print locations",
    "--mlir-print-op-generic": "print ops in the generic form",
    "--mlir-print-local-scope": "print types and locations inline rather than as aliases",
    "--mlir-timing": "print the time each pass took (stderr)",
    "--mlir-pass-statistics": "print pass statistics (stderr)",
}


def _parser() -> ArgumentParser:
    p = ArgumentParser(prog="qc-opt", allow_abbrev=False,
                       description="Read, transform and print MLIR with qc passes. Flags take one dash or two, "
                       "as mlir-opt's do.",
                       epilog="Passes can also be given one by one as --NAME or --NAME='opt=value ...'; module "
                       "passes run on the module, passes restricted to an op are nested under it.")
    p.add_argument("input", nargs="?", default="-", help="input .mlir file ('-' for stdin)")
    p.add_argument("-o", "--o", dest="output", default="-", help="output file (default stdout)")
    p.add_argument("--version", action="store_true", help="print qc's and MLIR's versions and exit")
    p.add_argument("--list-passes", action="store_true", help="list qc passes and exit")
    p.add_argument("--pass-pipeline", help="textual pipeline, e.g. 'builtin.module(qc-raise,canonicalize)'; "
                   "pass flags given beside it run after it")
    p.add_argument("--split-input-file", metavar="MARKER",
                   help=f"split the input on MARKER lines (default '{DEFAULT_SPLIT_MARKER}'), process each chunk alone")
    for name, help in _BOOL_FLAGS.items():
        p.add_argument(name, action=argparse.BooleanOptionalAction, default=name == "--verify-each", help=help)
    p.add_argument("--mlir-elide-elementsattrs-if-larger", type=int, metavar="N",
                   help="print elements attributes with more than N elements as __elided__")
    p.add_argument("--weights", help="weight store (safetensors) that qc.weight ops refer to")
    p.add_argument("--weights-out", help="write the weight store after the pipeline (safetensors)")
    p.add_argument("--stats", help="calibration statistics (.npz from qc-compile --save-stats) for qc-smooth, "
                   "GPTQ, AWQ and static activation scales")
    return p


@entry_point("qc-opt")
def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        argv = _normalise(sys.argv[1:] if argv is None else argv)
    except QCError as err:
        parser.error(str(err))
    args, rest = parser.parse_known_args(argv)
    if args.version:
        print(_version())
        return 0
    if args.list_passes:
        print(_list_passes())
        return 0
    try:
        extra = [r for r in rest if not r.startswith("--")]
        if extra:
            raise QCError(f"unexpected positional arguments {extra}; one input file is read")
        elements = _pipeline_from_flags(rest)
        if args.pass_pipeline:
            from ..passes.pipeline import unwrap_module
            elements = [*unwrap_module(args.pass_pipeline), *elements]
        pipeline = f"builtin.module({','.join(elements)})" if elements else None
        text, name = read_input(args.input)
        result = run_opt(text, name, OptOptions(
            pipeline=pipeline, split_input_file=args.split_input_file, verify_diagnostics=args.verify_diagnostics,
            allow_unregistered_dialect=args.allow_unregistered_dialect, verify_each=args.verify_each,
            print_ir_before_all=args.mlir_print_ir_before_all,
            print_ir_after_all=args.mlir_print_ir_after_all, print_ir_after_change=args.mlir_print_ir_after_change,
            print_ir_after_failure=args.mlir_print_ir_after_failure,
            print_ir_module_scope=args.mlir_print_ir_module_scope, print_debuginfo=args.mlir_print_debuginfo,
            print_generic=args.mlir_print_op_generic, print_local_scope=args.mlir_print_local_scope,
            elide_elements_larger_than=args.mlir_elide_elementsattrs_if_larger, timing=args.mlir_timing,
            statistics=args.mlir_pass_statistics, weights=args.weights, weights_out=args.weights_out,
            stats=args.stats))
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
