"""ctypes loader for a compiled model library."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import numpy as np

from ..compiler.errors import QCError
from ..compiler.signature import Signature


class Model:
    def __init__(self, path: str | Path, weights: str | Path | None = None):
        path = Path(path).resolve()
        if not path.exists():
            raise QCError(f"{path}: no such file")
        try:
            self._lib = ctypes.CDLL(str(path))
        except OSError as err:
            raise QCError(f"cannot load '{path}': {err}") from None
        lib = self._lib
        lib.qc_model_signature.restype = ctypes.c_char_p
        lib.qc_model_error.restype = ctypes.c_char_p
        lib.qc_model_load.restype = ctypes.c_void_p
        lib.qc_model_load.argtypes = [ctypes.c_char_p]
        lib.qc_model_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.qc_model_free.argtypes = [ctypes.c_void_p]
        meta = json.loads(lib.qc_model_signature())
        self.signature = Signature.from_json(meta)
        self._handle = lib.qc_model_load(str(weights).encode() if weights else None)
        if not self._handle:
            raise QCError(lib.qc_model_error().decode())

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.signature.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.signature.outputs]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [t.name for t in self.signature.inputs if t.name not in inputs]
        extra = sorted(set(inputs) - set(self.input_names))
        if missing or extra:
            raise QCError(f"inputs do not match the model: missing {missing}, unknown {extra}; expected {self.input_names}")
        arrays = []
        for spec in self.signature.inputs:
            value = np.asarray(inputs[spec.name])
            if value.dtype.name != spec.dtype or tuple(value.shape) != spec.shape:
                raise QCError(f"input '{spec.name}': expected {spec.describe()}, given "
                              f"{value.dtype.name}[{'x'.join(map(str, value.shape))}]")
            arrays.append(np.ascontiguousarray(value))
        outputs = [np.empty(t.shape, dtype=t.dtype) for t in self.signature.outputs]
        in_ptrs = (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])
        out_ptrs = (ctypes.c_void_p * max(len(outputs), 1))(*[o.ctypes.data for o in outputs])
        if self._lib.qc_model_run(self._handle, in_ptrs, out_ptrs) != 0:
            raise QCError(self._lib.qc_model_error().decode())
        return dict(zip(self.output_names, outputs))

    def __del__(self):
        if getattr(self, "_handle", None):
            self._lib.qc_model_free(self._handle)
            self._handle = None


def load(path: str | Path, weights: str | Path | None = None) -> Model:
    return Model(path, weights)
