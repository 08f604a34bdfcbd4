"""qc: a quantization compiler built on MLIR."""

from .compiler import CompileOptions, QCError, compile

__all__ = ["CompileOptions", "QCError", "compile"]
