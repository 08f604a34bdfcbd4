"""qc-run: run a compiled model on .npy inputs; one .npy per output."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..core.errors import QCError, load_numpy, make_folder
from ..runtime import load
from .cli import ArgumentParser


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="qc-run", description="Run a model compiled by qc-compile.")
    p.add_argument("model", help="model.so")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy", help="an input (repeat per input)")
    p.add_argument("--output-dir", default=".", help="where to write <output name>.npy")
    p.add_argument("--weights", help="weight blob (default: beside the library)")
    p.add_argument("--threads", type=int, help="threads of the run (default: the pool's, QC_NUM_THREADS)")
    args = p.parse_args(argv)
    try:
        model = load(args.model, args.weights, args.threads)
        feeds = {}
        for item in args.input:
            name, sep, path = item.partition("=")
            if not sep:
                raise QCError(f"bad --input '{item}': expected NAME=FILE.npy")
            if name in feeds:
                raise QCError(f"input '{name}' is given twice")
            feeds[name] = load_numpy(path, f"input '{name}'")
        outputs = model.run(feeds)
        out_dir = Path(args.output_dir)
        make_folder(out_dir)
        for name, value in outputs.items():
            path = out_dir / (name.replace("/", "_") + ".npy")
            np.save(path, value)
            print(f"wrote {path} {value.dtype}{list(value.shape)}", file=sys.stderr)
    except QCError as err:
        print(f"qc-run: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
