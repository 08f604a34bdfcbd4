"""Load and run compiled models from Python: ``qc.runtime.load("model.so").run({...})``; generate
with a compiled decoder: ``qc.runtime.load_decoder("llama.so").generate(prompt_ids, 100)``."""

from .decoder import Decoder, GenerateStats, load_decoder
from .loader import Model, load

__all__ = ["Decoder", "GenerateStats", "Model", "load", "load_decoder"]
