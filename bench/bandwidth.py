"""The machine's streaming-read bandwidth, measured in the benchmark's own run."""

from __future__ import annotations

import ctypes
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def read_bandwidth(threads: int, nbytes: int = 1 << 30, reps: int = 5) -> float:
    """Best bytes/s of ``threads`` threads summing a ``nbytes`` buffer (far larger than the caches)."""
    lib = Path(tempfile.mkdtemp(prefix="qc-bw-")) / "bandwidth.so"
    subprocess.run(["cc", "-O3", "-march=native", "-shared", "-fPIC", "-pthread", str(HERE / "bandwidth.c"),
                    "-o", str(lib)], check=True)
    fn = ctypes.CDLL(str(lib)).read_bandwidth
    fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    return fn(nbytes, threads, reps)
