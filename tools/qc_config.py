"""qc-config (and ``python -m qc``): where qc's files are, for build systems."""

from __future__ import annotations

import sys
from pathlib import Path

from .cli import ArgumentParser, entry_point

PACKAGE = Path(__file__).resolve().parents[1]


@entry_point("qc-config")
def main(argv: list[str] | None = None) -> int:
    import qc

    p = ArgumentParser(prog="qc-config", description="Where qc's CMake package, headers and sources are.")
    p.add_argument("--cmake-dir", "--cmakedir", action="store_true",
                   help="the folder of qcConfig.cmake: cmake -Dqc_DIR=$(qc-config --cmake-dir)")
    p.add_argument("--include-dir", "--includedir", action="store_true", help="the folder holding qc/runtime.h")
    p.add_argument("--package-dir", action="store_true", help="the qc Python package")
    p.add_argument("--python", action="store_true", help="the Python interpreter qc runs in")
    p.add_argument("--version", action="store_true", help="qc's version")
    args = p.parse_args(argv)
    answers = [(args.cmake_dir, PACKAGE / "cmake"), (args.include_dir, PACKAGE / "runtime" / "include"),
               (args.package_dir, PACKAGE), (args.python, sys.executable), (args.version, qc.__version__)]
    asked = [str(value) for wanted, value in answers if wanted]
    if not asked:
        p.print_usage(sys.stderr)
        print("qc-config: error: ask for at least one of the options", file=sys.stderr)
        return 1
    print("\n".join(asked))
    return 0


if __name__ == "__main__":
    sys.exit(main())
