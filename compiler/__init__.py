"""qc's compiler: frontends, pipeline, weight store, codegen, artifacts."""

from .errors import QCError
from .api import compile  # noqa: E402

__all__ = ["QCError", "compile"]
