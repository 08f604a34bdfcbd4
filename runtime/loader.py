"""ctypes loader for a compiled model library."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..core.errors import QCError
from ..core.signature import Signature


class Call(NamedTuple):
    """One call's arguments: the input arrays (kept alive while the pointers are used), the outputs,
    and the pointer arrays the model's run takes."""

    inputs: list[np.ndarray]
    outputs: list[np.ndarray]
    in_ptrs: ctypes.Array
    out_ptrs: ctypes.Array


class _TensorInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("rank", ctypes.c_int),
                ("shape", ctypes.POINTER(ctypes.c_int64))]


RunFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


class _ModelDef(ctypes.Structure):
    """``struct qc_model_def`` (include/qc/runtime.h)."""

    _fields_ = [("abi", ctypes.c_int), ("name", ctypes.c_char_p), ("signature", ctypes.c_char_p),
                ("num_inputs", ctypes.c_int), ("num_outputs", ctypes.c_int),
                ("inputs", ctypes.POINTER(_TensorInfo)), ("outputs", ctypes.POINTER(_TensorInfo)),
                ("load", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p))),
                ("run", RunFn),
                ("set_threads", ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int)),
                ("free", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
                ("last_error", ctypes.CFUNCTYPE(ctypes.c_char_p)),
                ("max_threads", ctypes.CFUNCTYPE(ctypes.c_int)),
                ("use_device", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)),
                ("alloc", ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_size_t)),
                ("free_buffer", ctypes.CFUNCTYPE(None, ctypes.c_void_p)),
                ("copy_rows", ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                                               ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t))]


MODEL_ABI = 3  # QC_MODEL_ABI


def _ordinal(device: str | None, compiled: str, path: Path) -> int | None:
    """The CUDA device ``device`` asks for ("cuda:<ordinal>"), None for the default; a QCError when it
    is not of the kind the model was compiled for (as qc_model_load_on)."""
    if not device:
        return None
    kind, colon, rest = device.partition(":")
    if device != "cpu" and (kind != "cuda" or colon and not rest.isdigit()):
        raise QCError(f"device '{device}': give cpu, cuda or cuda:<ordinal>")
    if kind != compiled.partition(":")[0]:
        raise QCError(f"model '{path}' was compiled for {compiled}, not for {device} (qc-compile --target)")
    return int(rest) if rest else None


class Model:
    """A shared model library (``qc-compile --emit so``) and its weights, through the model's
    ``qc_model_def``: what ``qc_model_open`` does in C, with nothing but ctypes and numpy."""

    def __init__(self, path: str | Path, weights: str | Path | None = None, threads: int | None = None,
                 entry: str = "main", device: str | None = None):
        path = Path(path).resolve()
        if not path.exists():
            raise QCError(f"{path}: no such file")
        try:
            self._lib = ctypes.CDLL(str(path))
        except OSError as err:
            raise QCError(f"cannot load '{path}': {err}") from None
        if not hasattr(self._lib, "qc_model_entry"):
            if hasattr(self._lib, "qc_model_signature"):
                raise QCError(f"'{path}' was compiled by an older qc (before the model ABI): compile it again")
            raise QCError(f"'{path}' is not a model qc compiled: it has no qc_model_entry")
        symbol = "qc_model_entry" if entry == "main" else f"qc_model_entry_{entry}"
        if not hasattr(self._lib, symbol):
            raise QCError(f"model '{path}' has no entry point '{entry}'")
        getattr(self._lib, symbol).restype = ctypes.POINTER(_ModelDef)
        self._def = getattr(self._lib, symbol)().contents
        if self._def.abi != MODEL_ABI:
            raise QCError(f"'{path}' was compiled for model ABI {self._def.abi}; this runtime reads ABI {MODEL_ABI}: "
                          "compile it again")
        self.name = self._def.name.decode()
        described = json.loads(self._def.signature)
        self.signature = Signature.from_json(described)
        self.device = described.get("device", "cpu")  # where its code runs: cpu, or cuda:<chip>
        ordinal = _ordinal(device, self.device, path)
        if ordinal is not None and self._def.use_device(ordinal) != 0:
            raise QCError(self.last_error())
        # What run() checks and allocates, resolved once: a decode step calls it per token, often
        # with its code and data evicted by the step before (each Python operation then costs a miss).
        self._inputs = [(t, np.dtype(t.dtype)) for t in self.signature.inputs]
        self._outputs = [(t.shape, np.dtype(t.dtype)) for t in self.signature.outputs]
        self._in_array = ctypes.c_void_p * max(len(self._inputs), 1)
        self._out_array = ctypes.c_void_p * max(len(self._outputs), 1)
        self._run = self._def.run
        handle = ctypes.c_void_p()
        if self._def.load(str(weights).encode() if weights else None, ctypes.byref(handle)) != 0:
            raise QCError(self.last_error())
        self._handle = handle.value
        if threads is not None:
            self.threads = threads

    @property
    def threads(self) -> int:
        """Threads one run may use (1 ..= the pool's, QC_NUM_THREADS); setting 0 means all."""
        return getattr(self, "_threads", 0) or self._def.max_threads()

    @threads.setter
    def threads(self, count: int) -> None:
        most = self._def.max_threads()
        if not 0 <= count <= most:
            raise QCError(f"model '{self.name}': {count} threads asked, the pool has {most} (QC_NUM_THREADS; 0 means all)")
        self._threads = count
        self._def.set_threads(self._handle, count)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.signature.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.signature.outputs]

    @property
    def c_api(self) -> tuple[ctypes._CFuncPtr, int]:
        """(the model's run function, this model's state): ``run(state, inputs, outputs)``, 0 on
        success, for callers that time or embed the C API directly."""
        return self._run, self._handle

    def last_error(self) -> str:
        return self._def.last_error().decode()

    def prepare(self, inputs: dict[str, np.ndarray]) -> Call:
        """Checks ``inputs`` against the signature and allocates the outputs: the arguments of one
        run of the model."""
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
        if self._run(self._handle, call.in_ptrs, call.out_ptrs) != 0:
            raise QCError(self.last_error())
        return dict(zip(self.output_names, call.outputs))

    def __del__(self):
        if getattr(self, "_handle", None):
            self._def.free(self._handle)
            self._handle = None


def load(path: str | Path, weights: str | Path | None = None, threads: int | None = None, entry: str = "main",
         device: str | None = None) -> Model:
    """A compiled model; ``entry``: another entry point of its library (a decoder's ``decode``);
    ``device``: ``cpu``, ``cuda`` or ``cuda:<ordinal>`` (which GPU), checked against what the model was
    compiled for (its own by default).
    A GPU model's load uploads its weights (CUDA driver loaded on first use; an error if there is none)."""
    return Model(path, weights, threads, entry, device)
