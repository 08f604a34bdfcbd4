"""ctypes loader for a compiled model library."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..compiler.errors import QCError
from ..compiler.signature import Signature


class Call(NamedTuple):
    """One call's arguments: the input arrays (kept alive while the pointers are used), the outputs,
    and the pointer arrays ``qc_model_run`` takes."""

    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    in_ptrs: ctypes.Array
    out_ptrs: ctypes.Array


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
        if not hasattr(lib, "qc_model_signature"):
            raise QCError(f"'{path}' is not a model qc compiled: it has no qc_model_signature")
        lib.qc_model_signature.restype = ctypes.c_char_p
        lib.qc_model_error.restype = ctypes.c_char_p
        lib.qc_model_load.restype = ctypes.c_void_p
        lib.qc_model_load.argtypes = [ctypes.c_char_p]
        lib.qc_model_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.qc_model_free.argtypes = [ctypes.c_void_p]
        meta = json.loads(lib.qc_model_signature())
        self.signature = Signature.from_json(meta)
        # What run() checks and allocates, resolved once: a decode step calls it per token, often
        # with its code and data evicted by the step before (each Python operation then costs a miss).
        self._inputs = [(t, np.dtype(t.dtype)) for t in self.signature.inputs]
        self._outputs = [(t.shape, np.dtype(t.dtype)) for t in self.signature.outputs]
        self._in_array = ctypes.c_void_p * max(len(self._inputs), 1)
        self._out_array = ctypes.c_void_p * max(len(self._outputs), 1)
        self._handle = lib.qc_model_load(str(weights).encode() if weights else None)
        if not self._handle:
            raise QCError(lib.qc_model_error().decode())

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.signature.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.signature.outputs]

    @property
    def c_api(self) -> tuple[ctypes._CFuncPtr, int]:
        """(``qc_model_run``, this model's handle): for callers that time or embed the C API directly."""
        return self._lib.qc_model_run, self._handle

    def last_error(self) -> str:
        return self._lib.qc_model_error().decode()

    def prepare(self, inputs: dict[str, np.ndarray]) -> Call:
        """Checks ``inputs`` against the signature and allocates the outputs: the arguments of one
        ``qc_model_run``."""
        if len(inputs) != len(self._inputs) or any(t.name not in inputs for t, _ in self._inputs):
            missing = [t.name for t, _ in self._inputs if t.name not in inputs]
            extra = sorted(set(inputs) - set(self.input_names))
            raise QCError(f"inputs do not match the model: missing {missing}, unknown {extra}; expected {self.input_names}")
        arrays = []
        for spec, dtype in self._inputs:
            value = np.asarray(inputs[spec.name])
            if value.dtype != dtype or value.shape != spec.shape:
                byte_order = value.dtype != dtype and value.dtype.name == spec.dtype  # e.g. >f4 for <f4
                given = value.dtype.str if byte_order else value.dtype.name
                raise QCError(f"input '{spec.name}': expected {spec.describe()}, given "
                              f"{given}[{'x'.join(map(str, value.shape))}]")
            arrays.append(np.ascontiguousarray(value))
        outputs = [np.empty(shape, dtype) for shape, dtype in self._outputs]
        return Call(arrays, outputs, self._in_array(*[a.ctypes.data for a in arrays]),
                    self._out_array(*[o.ctypes.data for o in outputs]))

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        call = self.prepare(inputs)
        if self._lib.qc_model_run(self._handle, call.in_ptrs, call.out_ptrs) != 0:
            raise QCError(self.last_error())
        return dict(zip(self.output_names, call.outputs))

    def __del__(self):
        if getattr(self, "_handle", None):
            self._lib.qc_model_free(self._handle)
            self._handle = None


def load(path: str | Path, weights: str | Path | None = None) -> Model:
    return Model(path, weights)
