"""Precision schemes: ``w4a16-g128``, ``w8a8``, ... with an optional ``-asym`` suffix."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import QCError
from .packing import PanelLayout

# Schemes a layer can be given (DESIGN.md, "#qc.scheme").
SCHEMES = (
    "f32", "f16", "w8a8", "w8a7", "w7a8", "w8a16",
    "w4a16-g32", "w4a16-g64", "w4a16-g128", "w4a8-g32", "w4a8-g64", "w4a8-g128",
)
# Schemes whose 7-bit activations or 7-bit weights make vpmaddubsw's pairs exact without |q| x sign(x, q): only
# worth it where the int8 dot is vpmaddubsw (AVX2, AVX-512BW), so every-scheme selections offer them there only.
NARROW = ("w8a7", "w7a8")
# A decoder's KV cache element types (--kv-cache), which qc-select-precision can choose between.
KV_CACHE_TYPES = ("float32", "float16", "int8")


def signed_max(bits: int) -> int:
    """The largest magnitude symmetric ``bits``-bit integers take: 127 for 8, 63 for 7."""
    return (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class Scheme:
    """Weight bits (0: f32, 16: f16 storage, 7: int8 storage within [-64, 63]), group size (0: per output
    channel), activation bits (8 or 7: integers, 16 / 32: floats), symmetry."""

    weight_bits: int
    group_size: int
    activation_bits: int
    symmetric: bool = True

    @property
    def kind(self) -> str:
        if not self.weight_bits:
            return "f32"
        if self.half:
            return "f16"
        group = f"-g{self.group_size}" if self.group_size else ""
        return f"w{self.weight_bits}a{self.activation_bits}{group}"

    @property
    def name(self) -> str:
        return self.kind + ("" if self.symmetric or not self.weight_bits or self.half else "-asym")

    @property
    def storage_bits(self) -> int:
        """Bits each weight is stored in: 7-bit weights take a byte, as int8 ones."""
        return 8 if self.weight_bits == 7 else self.weight_bits

    @property
    def half(self) -> bool:
        """IEEE half weights, f32 activations and sums: no integers, no scales."""
        return self.weight_bits == 16

    @property
    def quantized(self) -> bool:
        return self.weight_bits != 0

    @property
    def int_activations(self) -> bool:
        """Activations quantized to integers at run time (``w8a8``, ``w4a8-g32``, ``w8a7``, ``w7a8``)."""
        return self.activation_bits in (7, 8)

    @property
    def act_max(self) -> int:
        """The integer activations' bound: ``xq = clamp(roundeven(x / s), -act_max, act_max)``, ``s = max|x| / act_max``."""
        return signed_max(self.activation_bits)

    def static_act_scale(self, absmax: np.ndarray) -> float:
        """The per-tensor activation scale of ``activations=static``: the calibration's largest ``|x|`` over ``act_max``."""
        return max(float(np.max(absmax)), 1e-30) / self.act_max

    @property
    def weight_only(self) -> "Scheme":
        """The same weights with f32 activations (``w4a8-g32`` -> ``w4a16-g32``; ``w7a8`` -> ``w8a16``: 7 bits only keep
        vpmaddubsw's pairs within int16, which f32 activations never meet)."""
        if not self.int_activations:
            return self
        return Scheme(self.storage_bits, self.group_size, 16, self.symmetric)

    def weight_bytes(self, n: int, k: int, panel_width: int = 0) -> int:
        """Bytes a quantized [n, k] weight is stored in, with its f32 scales.  ``panel_width`` 0: rows
        as they are (an embedding table; int8 zero points when asymmetric).  Otherwise the kernels'
        panels (``compiler.quant.packing``): rows padded to a multiple of the width and, when
        asymmetric, an f32 offset per group beside each scale."""
        if panel_width:
            return self.layout(n, k, panel_width).nbytes
        if not self.quantized or self.half:
            return (2 if self.half else 4) * n * k
        groups = k // self.group_size if self.group_size else 1
        return n * k * self.storage_bits // 8 + n * groups * (4 + (0 if self.symmetric else 1))

    def layout(self, n: int, k: int, panel_width: int) -> PanelLayout:
        """How a linear's [n, k] weight under this scheme is stored in the kernels' panels."""
        if self.half or not self.quantized:
            return PanelLayout.of_floats(n, k, panel_width, 16 if self.half else 32)
        return PanelLayout(n, k, panel_width, self.storage_bits, self.group_size or k, self.int_activations,
                           self.symmetric)


def all_schemes(narrow: bool = False) -> list[Scheme]:
    """Every scheme qc has kernels for: each name of ``SCHEMES``, the integer ones sym and asym; the
    ``NARROW`` ones (7-bit activations or weights) only with ``narrow``."""
    out = []
    for name in SCHEMES:
        if name in NARROW and not narrow:
            continue
        out.append(parse_scheme(name))
        if name not in ("f32", "f16"):
            out.append(parse_scheme(name + "-asym"))
    return out


def fits(scheme: Scheme, k: int, gather: bool = False) -> str | None:
    """Why ``scheme`` cannot hold a weight of reduction size ``k`` (None if it can). A ``gather``
    (embedding table) has no activations to quantize: its int8-activation schemes are not candidates."""
    if scheme.group_size and k % scheme.group_size:
        return f"K={k} is not a multiple of the group size {scheme.group_size} of {scheme.name}"
    if scheme.int_activations and gather:
        return f"{scheme.name} quantizes activations, and an embedding table has none"
    if scheme.int_activations and k % 4:
        return f"K={k} is not a multiple of 4, the integer dot product's step"
    return None


def parse_scheme(text: str) -> Scheme:
    """``w4a16-g128`` / ``w8a8`` / ``w8a7`` / ``w7a8`` / ``w4a16-g32-asym`` / ``f16`` / ``f32`` -> Scheme."""
    m = re.fullmatch(r"(f32|f16|w(4|7|8)a(7|8|16)(?:-g(\d+))?)(?:-(sym|asym))?", text.strip())
    if not m or m.group(1) not in SCHEMES or (m.group(1) in ("f32", "f16") and m.group(5) == "asym"):
        raise QCError(f"unknown scheme '{text}'; expected one of {', '.join(SCHEMES)} "
                      "(the integer ones optionally with -asym)")
    if m.group(1) == "f32":
        return Scheme(0, 0, 32)
    if m.group(1) == "f16":
        return Scheme(16, 0, 32)
    return Scheme(int(m.group(2)), int(m.group(4) or 0), int(m.group(3)), m.group(5) != "asym")
