"""qc: a quantization compiler built on MLIR."""

from .compiler import QCError, compile

__all__ = ["QCError", "compile"]
