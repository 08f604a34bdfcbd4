"""Precision schemes: ``w4a16-g128``, ``w8a8``, ... with an optional ``-asym`` suffix."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...dialects.qc import SCHEMES
from ..errors import QCError

SCHEME_NAMES = tuple(s for s in SCHEMES if s != "f16")  # f16 weights have no kernel yet


@dataclass(frozen=True)
class Scheme:
    """Weight bits (0: f32), group size (0: per output channel), activation bits, symmetry."""

    weight_bits: int
    group_size: int
    activation_bits: int
    symmetric: bool = True

    @property
    def kind(self) -> str:
        if not self.weight_bits:
            return "f32"
        group = f"-g{self.group_size}" if self.group_size else ""
        return f"w{self.weight_bits}a{self.activation_bits}{group}"

    @property
    def name(self) -> str:
        return self.kind + ("" if self.symmetric or not self.weight_bits else "-asym")

    @property
    def quantized(self) -> bool:
        return self.weight_bits != 0

    def weight_bytes(self, n: int, k: int) -> int:
        """Bytes of a quantized [n, k] weight with its f32 scales (and zero points when asymmetric)."""
        if not self.quantized:
            return 4 * n * k
        groups = k // self.group_size if self.group_size else 1
        per_group = 4 + (0 if self.symmetric else 1)
        return n * k * self.weight_bits // 8 + n * groups * per_group


def parse_scheme(text: str) -> Scheme:
    """``w4a16-g128`` / ``w8a8`` / ``w4a16-g32-asym`` / ``f32`` -> Scheme."""
    m = re.fullmatch(r"(f32|w(4|8)a(8|16)(?:-g(\d+))?)(?:-(sym|asym))?", text.strip())
    if not m or (m.group(1) != "f32" and m.group(1) not in SCHEME_NAMES):
        raise QCError(f"unknown scheme '{text}'; expected one of {', '.join(SCHEME_NAMES)} "
                      "(optionally with -asym)")
    if m.group(1) == "f32":
        return Scheme(0, 0, 32)
    return Scheme(int(m.group(2)), int(m.group(4) or 0), int(m.group(3)), m.group(5) != "asym")
