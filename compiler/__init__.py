"""qc's compiler: frontends, pipeline, weight store, codegen, artifacts."""

from ..core.errors import QCError
from .api import CompileOptions, compile  # noqa: E402
from .decoder import Decoder  # noqa: E402

__all__ = ["CompileOptions", "Decoder", "QCError", "compile"]
