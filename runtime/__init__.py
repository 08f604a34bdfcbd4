"""Load and run compiled models from Python: ``qc.runtime.load("model.so").run({...})``."""

from .loader import Model, load

__all__ = ["Model", "load"]
