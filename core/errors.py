"""Errors that reach users as a message, never a traceback."""


class QCError(Exception):
    """A user-facing error; CLIs print ``str(err)`` and exit 1.

    ``location`` (an ``ir.Location``), when given, is where a pass reports it."""

    def __init__(self, message: str, location=None):
        super().__init__(message)
        self.location = location


def make_folder(path) -> None:
    """``mkdir -p path``, or a QCError naming what is in the way."""
    from pathlib import Path

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        why = f"'{blocker}' is a file" if blocker is not None else err.strerror
        raise QCError(f"cannot create the output folder '{path}': {why}") from None


def load_numpy(path, what: str):
    """A .npy's array or a .npz's arrays (a dict, read in full now), without pickles, or a QCError
    that says what the file is not: a damaged archive is found here, not at the first use."""
    import zipfile
    import zlib

    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
        return {k: data[k] for k in data.files} if isinstance(data, np.lib.npyio.NpzFile) else data
    except FileNotFoundError:
        raise QCError(f"{what}: '{path}': no such file") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        why = "it is not a NumPy .npy/.npz file (text, pickled objects or something else)" if "pickle" in str(err) \
            else f"it is damaged ({type(err).__name__}: {err})"
        raise QCError(f"{what}: cannot read '{path}': {why}") from None


def internal_error(err: BaseException) -> str:
    """The message for an exception that is not a QCError: a bug in qc, said as one, with the qc
    source line it came from; ``QC_TRACEBACK=1`` also prints Python's traceback (stderr)."""
    import os
    import sys
    import traceback

    if os.environ.get("QC_TRACEBACK") == "1":
        traceback.print_exception(err, file=sys.stderr)
    frames = traceback.extract_tb(err.__traceback__)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ours = [f for f in frames if os.path.abspath(f.filename).startswith(here + os.sep)]
    where = f" at {os.path.relpath(ours[-1].filename, here)}:{ours[-1].lineno}" if ours else ""
    return (f"internal error: {type(err).__name__}: {err}{where} (a bug in qc; please report it with this input; "
            "QC_TRACEBACK=1 prints the traceback)")
