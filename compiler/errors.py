"""Errors that reach users as a message, never a traceback."""


class QCError(Exception):
    """A user-facing error; CLIs print ``str(err)`` and exit 1.

    ``location`` (an ``ir.Location``), when given, is where a pass reports it."""

    def __init__(self, message: str, location=None):
        super().__init__(message)
        self.location = location
