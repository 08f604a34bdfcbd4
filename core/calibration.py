"""Calibration statistics of every ``qc.linear`` input.

An instrumented build (``qc-instrument{export=true}``) returns each observed
activation as an extra output named ``observe:<layer>``; running it over the
calibration samples and folding the outputs into ``LayerStats`` gives the
per-input-channel ranges SmoothQuant and activation quantization need and the
input Hessian ``X^T X`` GPTQ and AWQ need.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import QCError, load_numpy

OBSERVE_PREFIX = "observe:"
# |x| histogram bins: powers of two from 2^-24 to 2^16, 4 bins per octave.
HIST_EDGES = 2.0 ** np.arange(-24, 16.25, 0.25)


@dataclass
class LayerStats:
    """Statistics of one linear input ``X: [rows, K]`` over all calibration calls."""

    rows: int
    absmax: np.ndarray   # [K]
    minimum: np.ndarray  # [K]
    maximum: np.ndarray  # [K]
    abssum: np.ndarray   # [K]
    histogram: np.ndarray  # counts of |x| over HIST_EDGES (all channels)
    hessian: np.ndarray | None = None  # [K, K] sum of x^T x (float64)
    rowmax_sq: float = 0.0  # sum over rows of max|x_row|^2 (int8 rounding noise of per-row scales)

    @property
    def absmean(self) -> np.ndarray:
        return self.abssum / max(self.rows, 1)

    @classmethod
    def of(cls, x: np.ndarray, hessian: bool) -> "LayerStats":
        x = x.reshape(-1, x.shape[-1]).astype(np.float32)
        a = np.abs(x)
        return cls(len(x), a.max(axis=0), x.min(axis=0), x.max(axis=0), a.sum(axis=0, dtype=np.float64),
                   np.histogram(a, HIST_EDGES)[0], x.T.astype(np.float64) @ x if hessian else None,
                   float(np.sum(a.max(axis=1).astype(np.float64) ** 2)))

    def scaled(self, factors: np.ndarray) -> "LayerStats":
        """The statistics of ``x * factors`` (positive, per channel); the |x| histogram stays that of x."""
        f = factors.astype(np.float64)
        return LayerStats(self.rows, (self.absmax * f).astype(np.float32), (self.minimum * f).astype(np.float32),
                          (self.maximum * f).astype(np.float32), self.abssum * f, self.histogram,
                          None if self.hessian is None else self.hessian * np.outer(f, f),
                          self.rowmax_sq * float(np.max(f)) ** 2)  # a bound: the row maxima move apart

    def merge(self, other: "LayerStats") -> None:
        self.rows += other.rows
        self.absmax = np.maximum(self.absmax, other.absmax)
        self.minimum = np.minimum(self.minimum, other.minimum)
        self.maximum = np.maximum(self.maximum, other.maximum)
        self.abssum = self.abssum + other.abssum
        self.histogram = self.histogram + other.histogram
        self.rowmax_sq += other.rowmax_sq
        if self.hessian is not None and other.hessian is not None:
            self.hessian = self.hessian + other.hessian


SENSITIVITY_PREFIX = "sensitivity|"


class Statistics(dict):
    """Layer name -> LayerStats; saved to / loaded from one ``.npz``, with the sensitivities
    precision selection measured (``sensitivity[layer]["measured:cosine:w4a16-g32"]``), so a
    later compile reuses them."""

    FIELDS = ("absmax", "minimum", "maximum", "abssum", "histogram", "hessian", "rowmax_sq")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sensitivity: dict[str, dict[str, float]] = {}

    def save(self, path: str | Path) -> None:
        arrays = {}
        for name, s in self.items():
            arrays[f"{name}|rows"] = np.array(s.rows)
            for f in self.FIELDS:
                if getattr(s, f) is not None:
                    arrays[f"{name}|{f}"] = np.asarray(getattr(s, f))
        for layer, values in self.sensitivity.items():
            for key, value in values.items():
                arrays[f"{SENSITIVITY_PREFIX}{layer}|{key}"] = np.array(value)
        try:
            with open(path, "wb") as fh:  # np.savez would append ".npz" to other names
                np.savez(fh, **arrays)
        except OSError as err:
            raise QCError(f"cannot write statistics '{path}': {err}") from None

    @classmethod
    def load(cls, path: str | Path) -> "Statistics":
        data = load_numpy(path, "statistics")
        if not isinstance(data, dict):
            raise QCError(f"statistics '{path}' is one array; give the .npz that qc-compile --save-stats writes")
        stats = cls()
        for key in data:
            if key.startswith(SENSITIVITY_PREFIX):
                layer, _, what = key[len(SENSITIVITY_PREFIX):].rpartition("|")
                stats.sensitivity.setdefault(layer, {})[what] = float(data[key])
        names = sorted({key.rsplit("|", 1)[0] for key in data if not key.startswith(SENSITIVITY_PREFIX)})
        for name in names:
            get = lambda f: data[f"{name}|{f}"] if f"{name}|{f}" in data else None  # noqa: E731
            missing = [f for f in ("rows",) + cls.FIELDS[:-2] if get(f) is None]  # Hessian, rowmax_sq optional
            if missing:
                raise QCError(f"statistics '{path}' are malformed: no {', '.join(missing)} for '{name}'")
            rowmax_sq = get("rowmax_sq")
            stats[name] = LayerStats(int(get("rows")), get("absmax"), get("minimum"), get("maximum"), get("abssum"),
                                     get("histogram"), get("hessian"),
                                     float(rowmax_sq) if rowmax_sq is not None else 0.0)
        return stats


def collect(run, samples: Iterable[dict[str, np.ndarray]], hessian: bool, progress: bool = True,
            total: int | None = None) -> Statistics:
    """Run the instrumented model ``run(inputs) -> outputs`` on every sample and fold the observations."""
    from tqdm import tqdm

    stats = Statistics()
    for inputs in tqdm(samples, desc="calibrating", unit="sample", total=total, disable=not progress):
        for name, value in run(inputs).items():
            if not name.startswith(OBSERVE_PREFIX):
                continue
            layer = name[len(OBSERVE_PREFIX):]
            s = LayerStats.of(value, hessian)
            if layer in stats:
                stats[layer].merge(s)
            else:
                stats[layer] = s
    if not stats:
        raise QCError("calibration produced no statistics: the model has no linear layers to observe")
    return stats


def load_calibration_npz(path: str | Path, input_names: list[str]) -> list[dict[str, np.ndarray]]:
    """``calib.npz`` (one array per model input, samples on axis 0) -> one input dict per call."""
    data = load_numpy(path, "calibration data")
    if not isinstance(data, dict):
        raise QCError(f"calibration data '{path}' is one array; give a .npz with one array per model input "
                      f"({', '.join(input_names)}), samples on axis 0: np.savez(path, name=array, ...)")
    missing = [n for n in input_names if n not in data]
    if missing:
        raise QCError(f"calibration data '{path}' lacks input(s) {missing}; it has {sorted(data)}")
    arrays = {n: data[n] for n in input_names}
    counts = {n: len(a) for n, a in arrays.items()}
    if len(set(counts.values())) != 1:
        raise QCError(f"calibration arrays in '{path}' hold different sample counts: {counts}")
    return [{n: a[i] for n, a in arrays.items()} for i in range(next(iter(counts.values())))]
