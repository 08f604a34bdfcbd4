"""Measured kernel latencies, keyed by layer shape and scheme, for one host.

A table is a JSON file (in qc's cache, one per CPU name and feature set) mapping
``"MxKxN[+bias]:scheme"`` to milliseconds, with the host it was measured on; precision
selection reads it, ``qc-compile`` fills it by timing the generated kernel of each shape.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import QCError

# How the driver times kernels (selection.kernels_ms) and what they are; tables measured another way, or
# of other kernels, are not reused.  r2: each layer's weights come from beyond L2 (copies of the layer run
# in turn); r3: weight-only layers take f32 activations as int8 pieces where the target splits them; r4: the
# copies hold different weights (r2 and r3's were one array, which the weight file stores once).
METHOD = "r4"


def shape_key(rows: int, k: int, n: int, bias: bool) -> str:
    return f"{rows}x{k}x{n}{'+bias' if bias else ''}"


def scheme_key(scheme, activations: str = "dynamic") -> str:
    """A scheme as latencies are keyed: int8-activation kernels differ with static scales."""
    return scheme.name + ("/static" if scheme.int_activations and activations == "static" else "")


class LatencyTable(dict):
    """``"MxKxN[+bias]:scheme"`` -> ms, measured on ``host`` (CPU name and LLVM features)."""

    def __init__(self, host: dict | None = None, entries: dict | None = None):
        super().__init__(entries or {})
        self.host = host or {}

    @staticmethod
    def file_name(cpu: str, features: str) -> str:
        return f"latency-{METHOD}-{cpu}-{hashlib.sha256(features.encode()).hexdigest()[:12]}.json"

    def get_ms(self, shape: str, scheme: str) -> float | None:
        return self.get(f"{shape}:{scheme}")

    def set_ms(self, shape: str, scheme: str, ms: float) -> None:
        self[f"{shape}:{scheme}"] = ms

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        try:
            data = json.loads(Path(path).read_text())
            return cls(data["host"], {str(k): float(v) for k, v in data["ms"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise QCError(f"cannot read latency table '{path}': {err}") from None

    def save(self, path: str | Path) -> None:
        try:
            Path(path).write_text(json.dumps({"host": self.host, "ms": dict(sorted(self.items()))}, indent=1))
        except OSError as err:
            raise QCError(f"cannot write latency table '{path}': {err}") from None
