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
