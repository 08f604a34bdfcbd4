"""The machine's streaming-read bandwidth ceiling (the best of several read kernels), and cold-cache timing of a model's C API, measured in
the benchmark's own run (bandwidth.c)."""

from __future__ import annotations

import ctypes
import functools
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


@functools.cache
def _lib() -> ctypes.CDLL:
    lib = Path(tempfile.mkdtemp(prefix="qc-bw-")) / "bandwidth.so"
    subprocess.run(["cc", "-O3", "-march=native", "-shared", "-fPIC", "-pthread", str(HERE / "bandwidth.c"),
                    "-o", str(lib)], check=True)
    dll = ctypes.CDLL(str(lib))
    dll.read_bandwidth.restype = ctypes.c_double
    dll.read_bandwidth.argtypes = [ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
    dll.read_kernel_name.restype = ctypes.c_char_p
    dll.cold_run_median.restype = ctypes.c_double
    dll.cold_run_median.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
    dll.flush_and_settle.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_double]
    dll.cold_read_bandwidth.restype = ctypes.c_double
    dll.cold_read_bandwidth.argtypes = [ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_size_t]
    return dll


def read_bandwidths(threads: int, nbytes: int = 1 << 30, reps: int = 5) -> dict[str, float]:
    """Bytes/s of each read kernel in bandwidth.c (``threads`` threads reading a ``nbytes`` buffer, far
    larger than the caches; best of ``reps`` passes)."""
    lib = _lib()
    each = (ctypes.c_double * lib.read_kernels())()
    if lib.read_bandwidth(nbytes, threads, reps, each) <= 0:
        raise RuntimeError("read_bandwidth: out of memory")
    return {lib.read_kernel_name(i).decode(): each[i] for i in range(len(each))}


def read_bandwidth(threads: int, nbytes: int = 1 << 30, reps: int = 5) -> tuple[float, str]:
    """The read ceiling: the best bytes/s of any read kernel, and which kernel it was."""
    found = read_bandwidths(threads, nbytes, reps)
    best = max(found, key=found.get)
    return found[best], best


def cold_run_median(model, inputs: dict, iters: int, threads: int, flush_bytes: int = 4 << 30) -> float:
    """Median seconds of ``model``'s ``qc_model_run`` called from C, each call after ``threads``
    threads have read ``flush_bytes`` (see cold_run_median in bandwidth.c)."""
    run, handle = model.c_api
    call = model.prepare(inputs)
    seconds = _lib().cold_run_median(ctypes.cast(run, ctypes.c_void_p), handle, call.in_ptrs, call.out_ptrs, iters,
                                     flush_bytes, threads)
    if seconds < 0:
        raise RuntimeError("cold_run_median: " + ("out of memory" if seconds == -1 else model.last_error()))
    return seconds


def cold_read_bandwidth(nbytes: int, threads: int, iters: int, flush_bytes: int = 4 << 30) -> float:
    """Bytes/s of the best read kernel streaming ``nbytes`` from memory, each read after a flush, as
    ``cold_run_median`` times a model with ``nbytes`` of weights (see cold_read_bandwidth in bandwidth.c)."""
    found = _lib().cold_read_bandwidth(nbytes, threads, iters, flush_bytes)
    if found < 0:
        raise RuntimeError("cold_read_bandwidth: out of memory")
    return found


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
