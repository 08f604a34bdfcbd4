"""Build the C runtime with the system compiler, once per source version (cached), and link models.

Compilation runs in the source's folder on relative names, and archives are written without dates,
so that the same inputs give the same bytes from any build directory."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from ..core.errors import QCError

HERE = Path(__file__).resolve().parent
INCLUDE = HERE / "include"
SUPPORT = HERE / "qc_runtime.c"  # what generated code calls: the pool, weights, buffers
API = HERE / "qc_api.c"          # the public C API (include/qc/runtime.h)
GENERATE = HERE / "qc_generate.c"  # its generation part: decoders, sampling, the generate loop
CUDA = HERE / "qc_cuda.c"  # GPU models: the mgpu* functions of their host code, over the CUDA driver
HEADERS = [HERE / "qc_support.h", INCLUDE / "qc" / "runtime.h"]
CFLAGS = ["-O2", "-fPIC", "-pthread", "-std=c11", "-Wall"]


def cache_dir() -> Path:
    root = Path(os.environ.get("QC_CACHE_DIR", Path.home() / ".cache" / "qc"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cc() -> str:
    return os.environ.get("CC", "cc")


def runtime_object(source: Path = SUPPORT) -> Path:
    """The object of one runtime source (``SUPPORT`` or ``API``), cached by content."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in [source, *HEADERS]) + " ".join(CFLAGS).encode())
    obj = cache_dir() / f"{source.stem}-{digest.hexdigest()[:16]}.o"
    if not obj.exists():
        tmp = obj.with_suffix(f".{os.getpid()}.tmp.o")
        compile_c(source, tmp)
        tmp.replace(obj)  # atomic: concurrent builds never see a half-written object
    return obj


def api_library() -> Path:
    """The public C API as a shared library (cached), for Python callers of what only the API does:
    ``runtime.decoder`` drives generation through it."""
    objects = [runtime_object(s) for s in (SUPPORT, API, GENERATE)]
    flags = ["-shared", "-Wl,-z,nodelete", "-pthread", "-lm", "-ldl"]  # nodelete: see link()
    digest = hashlib.sha256(" ".join([o.name for o in objects] + flags).encode()).hexdigest()[:16]
    lib = cache_dir() / f"libqc-{digest}.so"
    if not lib.exists():
        tmp = lib.with_suffix(f".{os.getpid()}.tmp.so")
        _check([cc(), "-o", str(tmp), *map(str, objects), *flags], "linking failed")
        tmp.replace(lib)
    return lib


def compile_c(source: Path, obj: Path, extra: list[str] | None = None) -> None:
    cmd = [cc(), *CFLAGS, f"-I{HERE}", f"-I{INCLUDE}", "-c", source.name, "-o", str(obj.resolve()), *(extra or [])]
    _check(cmd, "C compiler failed", cwd=source.parent)


def link(objects: list[Path], output: Path, shared: bool, exports: list[str] = ()) -> None:
    """An executable, or a shared library exporting only ``exports`` (its runtime copy stays private).
    A shared model is never unloaded (``-z nodelete``): its thread pool's workers run its code, and
    a closed then reopened library would start a second pool while the first one's workers wait
    on the condition variable the new one maps at the same address (a C program's qc_model_free
    then qc_model_open hung so)."""
    flags = []
    if shared:
        script = output.with_name(output.name + ".exports")
        script.write_text("{ global: %s; local: *; };\n" % "; ".join(exports))
        flags = ["-shared", f"-Wl,-soname,{output.name}", f"-Wl,--version-script={script}", "-Wl,-z,nodelete"]
    try:
        _check([cc(), *flags, "-o", str(output), *map(str, objects), "-pthread", "-lm", "-ldl"], "linking failed")
    finally:
        if shared:
            script.unlink()


def archive(objects: list[Path], output: Path, keep: list[str]) -> None:
    """A static library of one relocatable object in which only ``keep`` stays global: two models
    linked into one program share no symbol but the runtime's."""
    combined = output.with_name(output.name + ".o")
    try:
        _check(["ld", "-r", "-o", str(combined), *map(str, objects)], "linking failed")
        _check(["objcopy", *(f"--keep-global-symbol={s}" for s in keep), str(combined)], "objcopy failed")
        output.unlink(missing_ok=True)
        _check(["ar", "rcD", str(output), str(combined)], "ar failed")
    finally:
        combined.unlink(missing_ok=True)


def _check(cmd: list[str], what: str, cwd: Path | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if proc.returncode:
        raise QCError(f"{what}: {' '.join(cmd)}\n{proc.stderr}")
