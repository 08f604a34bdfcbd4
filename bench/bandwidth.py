"""The machine's streaming-read bandwidth ceiling (the best of several read kernels), and runners that time
a model's C API and a cold read of its weights' size in C, for the benchmark's own interleaved run
(bandwidth.c)."""

from __future__ import annotations

import ctypes
import functools
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


@functools.cache
def _lib() -> ctypes.CDLL:
    lib = Path(tempfile.mkdtemp(prefix="qc-bw-")) / "bandwidth.so"
    subprocess.run(["cc", "-O3", "-march=native", "-shared", "-fPIC", "-pthread", str(HERE / "bandwidth.c"),
                    "-o", str(lib)], check=True)
    dll = ctypes.CDLL(str(lib))
    dll.read_bandwidth.restype = ctypes.c_double
    dll.read_bandwidth.argtypes = [ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
    dll.read_kernel_name.restype = ctypes.c_char_p
    dll.timed_run.restype = ctypes.c_double
    dll.timed_run.argtypes = [ctypes.c_void_p] * 4
    dll.flush_and_settle.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_double]
    dll.read_buffer.restype = ctypes.c_void_p
    dll.read_buffer.argtypes = [ctypes.c_size_t]
    dll.timed_read_seconds.restype = ctypes.c_double
    dll.timed_read_seconds.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    return dll


def read_bandwidths(threads: int, nbytes: int = 1 << 30, reps: int = 5) -> dict[str, float]:
    """Bytes/s of each read kernel in bandwidth.c (``threads`` threads reading a ``nbytes`` buffer, far
    larger than the caches; best of ``reps`` passes)."""
    lib = _lib()
    each = (ctypes.c_double * lib.read_kernels())()
    if lib.read_bandwidth(nbytes, threads, reps, each) <= 0:
        raise RuntimeError("read_bandwidth: out of memory")
    return {lib.read_kernel_name(i).decode(): each[i] for i in range(len(each))}


def read_bandwidth(threads: int, nbytes: int = 1 << 30, reps: int = 5) -> tuple[float, str, int]:
    """The read ceiling: the best bytes/s of any read kernel, which kernel it was and its index."""
    found = read_bandwidths(threads, nbytes, reps)
    best = max(found, key=found.get)
    return found[best], best, list(found).index(best)


class CApiRun:
    """A runner of ``common.interleaved`` that calls ``model``'s ``qc_model_run`` on ``inputs`` and
    returns the seconds timed in C (bandwidth.c's timed_run): the C API's time without the Python
    wrapper."""

    def __init__(self, model, inputs: dict):
        self.model, self.call = model, model.prepare(inputs)
        self.run, self.handle = model.c_api

    def __call__(self) -> float:
        seconds = _lib().timed_run(ctypes.cast(self.run, ctypes.c_void_p), self.handle, self.call.in_ptrs,
                                   self.call.out_ptrs)
        if seconds < 0:
            raise RuntimeError("timed_run: " + self.model.last_error())
        return seconds


class ColdRead:
    """A runner of ``common.interleaved`` that reads ``nbytes`` (on 2 MiB pages) with ``threads`` threads and
    read kernel ``kernel`` (an index of ``read_bandwidths``' names) and returns the seconds timed in C:
    timed between a model's calls, after the same flush, its ``fastest`` call is that model's read
    ceiling at the same moments (a median would not be one: single calls here move by +-30 %)."""

    def __init__(self, nbytes: int, threads: int, kernel: int):
        self.nbytes, self.threads, self.kernel = nbytes, threads, kernel
        self.fastest = float("inf")
        self.buffer = _lib().read_buffer(nbytes)
        if not self.buffer:
            raise RuntimeError(f"read_buffer: cannot allocate {nbytes} bytes")

    def __call__(self) -> float:
        seconds = _lib().timed_read_seconds(self.buffer, self.nbytes, self.threads, self.kernel)
        self.fastest = min(self.fastest, seconds)
        return seconds

    def __del__(self):
        if getattr(self, "buffer", None):
            _libc().free(self.buffer)


def flush_and_settle(buffer, threads: int, seconds: float = 0.1) -> None:
    """``threads`` threads read ``buffer`` (a numpy array larger than the caches), then all
    busy-wait ``seconds`` (see flush_and_settle in bandwidth.c)."""
    _lib().flush_and_settle(buffer.ctypes.data, buffer.nbytes, threads, seconds)


if __name__ == "__main__":
    import argparse
    import os
    import sys

    sys.path.insert(0, str(HERE))
    from common import host, table

    ap = argparse.ArgumentParser(description="Each read kernel's bandwidth; the ceiling is the best.")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    found = read_bandwidths(args.threads)
    print(f"Read bandwidth, 1 GiB, {args.threads} threads, best of 5; host {host()}\n")
    print(table([(name, f"{bw / 1e9:.1f}") for name, bw in found.items()], ("read kernel", "GB/s")))
