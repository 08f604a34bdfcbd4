"""Quantization numerics (numpy): schemes, RTN, GPTQ, AWQ-style scaling, packing.

The passes in ``passes/`` decide *where* to quantize; this package decides the
numbers.  Every quantized weight here is a signed integer array ``q`` with a
``scale`` and a ``zero_point`` per channel (``group_size == 0``) or per group of
``group_size`` input channels, and means ``w = (q - zero_point) * scale``.
"""

from .scheme import Scheme, all_schemes, fits, parse_scheme
from .rtn import QuantizedWeight, dequantize, quantize_rtn, quant_params
from .gptq import quantize_gptq
from .awq import quantize_awq

__all__ = ["Scheme", "all_schemes", "fits", "parse_scheme", "QuantizedWeight", "dequantize", "quantize_rtn", "quant_params",
           "quantize_gptq", "quantize_awq"]
