"""qc-run: run a compiled model on .npy inputs, one .npy per output; or generate tokens with a
compiled decoder (``--generate``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..core.errors import QCError, load_numpy, make_folder
from ..runtime import load, load_decoder
from .cli import ArgumentParser, entry_point


def token_ids(text: str) -> list[int]:
    import argparse

    try:
        return [int(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected token ids like 1,42,7, got '{text}'") from None


def generate(args) -> int:
    """Streams the new tokens to stdout, one line; the speed to stderr."""
    decoder = load_decoder(args.model, args.weights, args.threads)
    for token in decoder.generate(args.prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                                  top_p=args.top_p, seed=args.seed, stop=args.stop):
        print(token, end=" ", flush=True)
    print()
    s = decoder.stats
    print(f"prompt {s.prompt_tokens} tokens: {s.prefill_tokens_per_s:.1f} tokens/s; {s.new_tokens} new tokens: "
          f"{s.decode_tokens_per_s:.1f} tokens/s after the first (stopped: {s.stopped})", file=sys.stderr)
    return 0


@entry_point("qc-run")
def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="qc-run", description="Run a model compiled by qc-compile.")
    p.add_argument("model", help="model.so")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy", help="an input (repeat per input)")
    p.add_argument("--output-dir", default=".", help="where to write <output name>.npy")
    p.add_argument("--weights", help="weight blob (default: beside the library)")
    p.add_argument("--threads", type=int, help="threads of the run (default: the pool's, QC_NUM_THREADS)")
    p.add_argument("--device", help="cpu, cuda or cuda:<ordinal> (default: what the model was compiled for)")
    g = p.add_argument_group("generation (a decoder: qc-compile --max-context)")
    g.add_argument("--generate", action="store_true", help="print new token ids after --prompt as they come")
    g.add_argument("--prompt", type=token_ids, metavar="ID,ID,...", help="the prompt's token ids")
    g.add_argument("--max-new-tokens", type=int, default=128, metavar="N", help="at most N new tokens (default: 128)")
    g.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default); > 0: sample")
    g.add_argument("--top-k", type=int, default=0, metavar="K", help="sample among the K most likely (0: all)")
    g.add_argument("--top-p", type=float, default=1.0, metavar="P", help="nucleus sampling (1: all)")
    g.add_argument("--seed", type=int, default=0, help="of the sampler (default: 0)")
    g.add_argument("--stop", type=token_ids, default=[], metavar="ID,...", help="token ids that end the generation")
    args = p.parse_args(argv)
    if args.generate != (args.prompt is not None):
        p.error("--generate and --prompt go together")
    if args.generate and args.input:
        p.error("--generate takes --prompt, not --input")
    try:
        if args.generate:
            return generate(args)
        model = load(args.model, args.weights, args.threads, device=args.device)
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
