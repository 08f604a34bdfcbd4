"""Generation with a compiled decoder (``qc-compile --max-context``), through the C API's
``qc_decoder_*`` (qc/runtime.h): the KV cache, the prefill/decode steps and sampling all run in C;
this module only drives them."""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..core.errors import QCError
from . import build


class _Sampling(ctypes.Structure):
    _fields_ = [("temperature", ctypes.c_float), ("top_k", ctypes.c_int), ("top_p", ctypes.c_float),
                ("seed", ctypes.c_uint64)]


_I64P = ctypes.POINTER(ctypes.c_int64)
_F32P = ctypes.POINTER(ctypes.c_float)
_SIGNATURES = {
    "qc_decoder_open": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]),
    "qc_decoder_free": (None, [ctypes.c_void_p]),
    "qc_decoder_context": (ctypes.c_int64, [ctypes.c_void_p]),
    "qc_decoder_vocab": (ctypes.c_int64, [ctypes.c_void_p]),
    "qc_decoder_position": (ctypes.c_int64, [ctypes.c_void_p]),
    "qc_decoder_reset": (None, [ctypes.c_void_p]),
    "qc_decoder_set_num_threads": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
    "qc_decoder_feed": (ctypes.c_int, [ctypes.c_void_p, _I64P, ctypes.c_int64, _F32P]),
    "qc_sample": (ctypes.c_int64, [_F32P, ctypes.c_int64, ctypes.POINTER(_Sampling), ctypes.POINTER(ctypes.c_uint64)]),
    "qc_last_error": (ctypes.c_char_p, []),
}
_api = None


def _lib() -> ctypes.CDLL:
    global _api
    if _api is None:
        lib = ctypes.CDLL(str(build.api_library()))
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        _api = lib
    return _api


@dataclass
class GenerateStats:
    prompt_tokens: int = 0
    new_tokens: int = 0
    prefill_seconds: float = 0.0  # the prompt through the model, to the first new token's logits
    decode_seconds: float = 0.0  # the new tokens after the first
    stopped: str = ""  # length | token | context

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.prompt_tokens / self.prefill_seconds if self.prefill_seconds else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        return (self.new_tokens - 1) / self.decode_seconds if self.decode_seconds and self.new_tokens > 1 else 0.0


class Decoder:
    """A compiled decoder library and its KV cache: ``feed`` tokens, ``generate`` new ones."""

    def __init__(self, path: str | Path, weights: str | Path | None = None, threads: int | None = None):
        path = Path(path).resolve()
        if not path.exists():
            raise QCError(f"{path}: no such file")
        self._api = _lib()
        handle = ctypes.c_void_p()
        if self._api.qc_decoder_open(str(path).encode(), str(weights).encode() if weights else None,
                                     ctypes.byref(handle)):
            raise QCError(self._error())
        self._handle = handle.value
        self.context = self._api.qc_decoder_context(self._handle)
        self.vocab = self._api.qc_decoder_vocab(self._handle)
        self._logits = np.empty(self.vocab, np.float32)
        self.stats = GenerateStats()
        if threads is not None and self._api.qc_decoder_set_num_threads(self._handle, threads):
            raise QCError(self._error())

    def _error(self) -> str:
        return self._api.qc_last_error().decode()

    @property
    def position(self) -> int:
        """Tokens in the cache: the position of the next one fed."""
        return self._api.qc_decoder_position(self._handle)

    def reset(self) -> None:
        self._api.qc_decoder_reset(self._handle)

    def feed(self, tokens) -> np.ndarray:
        """Appends ``tokens`` at the current position; returns the last one's logits [vocab]."""
        ids = np.ascontiguousarray(np.asarray(tokens, dtype=np.int64).reshape(-1))
        if self._api.qc_decoder_feed(self._handle, ids.ctypes.data_as(_I64P), ids.size,
                                     self._logits.ctypes.data_as(_F32P)):
            raise QCError(self._error())
        return self._logits.copy()

    def generate(self, prompt_ids, max_new_tokens: int, temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
                 seed: int = 0, stop=()) -> Iterator[int]:
        """New tokens after ``prompt_ids``, yielded as they are chosen (greedy at temperature 0; else
        sampled with ``top_k`` / ``top_p``, reproducibly for one ``seed``).  Ends after
        ``max_new_tokens``, a token of ``stop`` (which is yielded), or a full cache; then ``stats``
        holds the prefill and decode speed.  The cache is reset first."""
        if max_new_tokens < 0:
            raise QCError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        prompt = np.asarray(prompt_ids, dtype=np.int64).reshape(-1)
        if prompt.size == 0:
            raise QCError("the prompt is empty (give at least one token, e.g. BOS)")
        sampling = _Sampling(temperature, top_k, top_p, seed)
        rng, stop = ctypes.c_uint64(seed), set(int(t) for t in stop)
        self.stats = stats = GenerateStats(prompt_tokens=int(prompt.size), stopped="length")
        self.reset()
        token = None
        while stats.new_tokens < max_new_tokens:
            t0 = time.perf_counter()
            if token is None:
                logits = self.feed(prompt)
            elif self.position == self.context:
                stats.stopped = "context"
                break
            else:
                logits = self.feed([token])
            token = int(self._api.qc_sample(logits.ctypes.data_as(_F32P), self.vocab, ctypes.byref(sampling),
                                            ctypes.byref(rng)))
            spent = time.perf_counter() - t0  # not the caller's time between tokens
            if stats.new_tokens:
                stats.decode_seconds += spent
            else:
                stats.prefill_seconds = spent
            stats.new_tokens += 1
            yield token
            if token in stop:
                stats.stopped = "token"
                break

    def __del__(self):
        if getattr(self, "_handle", None):
            self._api.qc_decoder_free(self._handle)
            self._handle = None


def load_decoder(path: str | Path, weights: str | Path | None = None, threads: int | None = None) -> Decoder:
    return Decoder(path, weights, threads)
