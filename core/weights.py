"""The weight store: name -> numpy array, kept out of the IR text.

``qc.weight @name`` ops refer to entries by name.  Passes that rewrite weights
(smoothing, quantization, packing) replace entries here.  Stores are saved as
safetensors for tools (qc-opt ``--weights``/``--weights-out``) and as a flat,
64-byte aligned blob for the runtime, which maps it read-only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import QCError

BLOB_ALIGN = 64
BLOB_MAGIC = b"QCWB0001"


class WeightStore:
    def __init__(self, arrays: dict[str, np.ndarray] | None = None):
        self._arrays: dict[str, np.ndarray] = dict(arrays or {})

    def __contains__(self, name: str) -> bool:
        return name in self._arrays

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._arrays[name]
        except KeyError:
            raise QCError(f"weight '@{name}' is not in the weight store") from None

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self._arrays[name] = np.ascontiguousarray(value)

    def __len__(self) -> int:
        return len(self._arrays)

    def copy(self) -> "WeightStore":
        """A store with the same entries (the arrays shared): what a pipeline adds to it stays there."""
        return WeightStore(self._arrays)

    def retain(self, names) -> None:
        """Drop every entry but ``names`` (the arrays are freed unless something else holds them)."""
        self._arrays = {n: a for n, a in self._arrays.items() if n in names}

    def drop(self, name: str) -> None:
        """Drop the entry ``name`` (its array is freed unless something else holds it)."""
        del self._arrays[name]

    def names(self) -> list[str]:
        return list(self._arrays)

    def unique_name(self, stem: str) -> str:
        name, i = stem, 0
        while name in self._arrays:
            i += 1
            name = f"{stem}_{i}"
        return name

    def nbytes(self, names=None) -> int:
        """Bytes of the entries ``names`` (default: all)."""
        return sum(a.nbytes for n, a in self._arrays.items() if names is None or n in names)

    # -- safetensors ----------------------------------------------------------
    def save(self, path: str | Path, names: set[str] | None = None) -> None:
        """The entries ``names`` (default: all) as safetensors, with the umask's mode (safetensors'
        own writer makes the file 0600)."""
        from safetensors.numpy import save

        Path(path).write_bytes(save({n: a for n, a in self._arrays.items() if names is None or n in names}))

    @classmethod
    def load(cls, path: str | Path) -> "WeightStore":
        from safetensors.numpy import load_file

        try:
            return cls(load_file(str(path)))
        except (OSError, ValueError) as err:
            raise QCError(f"cannot read weight store '{path}': {err}") from None

    # -- runtime blob -----------------------------------------------------------
    def write_blob(self, path: str | Path, order: list[str]) -> dict[str, int]:
        """Write ``order``'s arrays into one aligned blob; returns name -> byte offset.  Entries with
        equal contents are stored once (a decoder's entry points quantize each layer's weight once
        per entry; a tied embedding and classifier may be one array).

        Layout: magic, u64 header length, JSON header, then the arrays, each
        starting on a ``BLOB_ALIGN`` boundary.
        """
        same = self._same_contents(order)
        offsets, cursor = {}, 0
        for name in order:
            if name in same:
                continue
            offsets[name] = cursor
            cursor += -(-self._arrays[name].nbytes // BLOB_ALIGN) * BLOB_ALIGN
        offsets.update({n: offsets[first] for n, first in same.items()})
        header = json.dumps({n: [offsets[n], list(self._arrays[n].shape), str(self._arrays[n].dtype)] for n in order}).encode()
        data_start = -(-(len(BLOB_MAGIC) + 8 + len(header)) // BLOB_ALIGN) * BLOB_ALIGN
        with open(path, "wb") as f:
            f.write(BLOB_MAGIC + np.uint64(data_start).tobytes() + header)
            for name in order:
                if name not in same:
                    f.seek(data_start + offsets[name])
                    f.write(self._arrays[name].tobytes())
            f.truncate(data_start + cursor)
        return {n: data_start + o for n, o in offsets.items()}

    def _same_contents(self, order: list[str]) -> dict[str, str]:
        """name -> the first entry of ``order`` with the same dtype, shape and bytes (only arrays of
        one dtype and shape are hashed)."""
        import hashlib

        by_kind: dict[tuple, list[str]] = {}
        for name in order:
            a = self._arrays[name]
            by_kind.setdefault((a.dtype.str, a.shape), []).append(name)
        same = {}
        for names in by_kind.values():
            first: dict[bytes, str] = {}
            for name in names if len(names) > 1 else ():
                digest = hashlib.blake2b(memoryview(self._arrays[name]).cast("B"), digest_size=20).digest()
                if digest in first and np.array_equal(self._arrays[first[digest]], self._arrays[name]):
                    same[name] = first[digest]
                else:
                    first[digest] = name
        return same
