"""Build the C runtime with the system compiler, once per source version (cached)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from ..compiler.errors import QCError

HERE = Path(__file__).resolve().parent
SOURCES = [HERE / "qc_runtime.c", HERE / "qc_runtime.h"]
CFLAGS = ["-O2", "-fPIC", "-pthread", "-std=c11", "-Wall"]


def cache_dir() -> Path:
    root = Path(os.environ.get("QC_CACHE_DIR", Path.home() / ".cache" / "qc"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cc() -> str:
    return os.environ.get("CC", "cc")


def runtime_object() -> Path:
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in SOURCES) + " ".join(CFLAGS).encode()).hexdigest()[:16]
    obj = cache_dir() / f"qc_runtime-{digest}.o"
    if not obj.exists():
        tmp = obj.with_suffix(f".{os.getpid()}.tmp.o")
        compile_c(HERE / "qc_runtime.c", tmp)
        tmp.replace(obj)  # atomic: concurrent builds never see a half-written object
    return obj


def compile_c(source: Path, obj: Path, extra: list[str] | None = None) -> None:
    cmd = [cc(), *CFLAGS, f"-I{HERE}", "-c", str(source), "-o", str(obj), *(extra or [])]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise QCError(f"C compiler failed: {' '.join(cmd)}\n{proc.stderr}")


def link(objects: list[Path], output: Path, shared: bool) -> None:
    cmd = [cc(), *(["-shared"] if shared else []), "-o", str(output), *map(str, objects), "-pthread", "-lm", "-ldl"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise QCError(f"linking failed: {' '.join(cmd)}\n{proc.stderr}")
