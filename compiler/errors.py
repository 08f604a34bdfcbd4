"""Errors that reach users as a message, never a traceback."""


class QCError(Exception):
    """A user-facing error; CLIs print ``str(err)`` and exit 1."""
