"""What the qc tools share on the command line."""

from __future__ import annotations

import argparse
import functools
import os
import sys

from ..core.errors import internal_error


class ArgumentParser(argparse.ArgumentParser):
    """argparse with mlir-opt's exit code for usage errors: 1, not argparse's 2."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def entry_point(prog: str):
    """A tool's ``main``: an exception that is not a user error is said as an internal error
    (exit 1), Ctrl-C as an interruption (exit 130), never a traceback; a reader of the output that left
    (``qc-opt ... | head``) ends it quietly, as SIGPIPE ends a C tool (exit 1: the output is incomplete)."""

    def wrap(main):
        @functools.wraps(main)
        def guarded(argv: list[str] | None = None) -> int:
            try:
                return main(argv)
            except KeyboardInterrupt:
                print(f"{prog}: interrupted", file=sys.stderr)
                return 130
            except BrokenPipeError:
                # stdout's buffer would fail again when Python flushes it at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 1
            except Exception as err:
                print(f"{prog}: {internal_error(err)}", file=sys.stderr)
                return 1
        return guarded
    return wrap
