"""qc: a quantization compiler built on MLIR.

The compiler loads on first use (``qc.compile``, ``qc.CompileOptions``), so that ``import qc.runtime``
(a deployed model) never imports torch-mlir, llvmlite or a pass."""

import importlib

from .core.errors import QCError

__version__ = "0.1.0"
__all__ = ["CompileOptions", "Decoder", "QCError", "compile"]
_SUBPACKAGES = ("compiler", "core", "dialects", "passes", "runtime", "tools")


def __getattr__(name: str):
    if name in ("compile", "CompileOptions", "Decoder"):
        return getattr(importlib.import_module(".compiler", __name__), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'qc' has no attribute '{name}'")
