"""The quantization report: per-layer scheme, weight bytes, error; model size before and after."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import QCError


def summary(layers: dict[str, dict], weight_bytes: int) -> dict:
    """``weight_bytes``: all stored weights in f32, before quantization."""
    saved = sum(e["bytes_f32"] - e["bytes"] for e in layers.values() if "bytes" in e)
    return {"model_bytes_before": weight_bytes, "model_bytes_after": weight_bytes - saved,
            "layers": layers}


def markdown(data: dict) -> str:
    before, after = data["model_bytes_before"], data["model_bytes_after"]
    lines = ["# qc quantization report", "",
             f"Model weights: {before / 2**20:.2f} MiB before, {after / 2**20:.2f} MiB after "
             f"({before / max(after, 1):.2f}x smaller).", "",
             "| layer | scheme | method | activations | smoothing | shape | bytes f32 | bytes | weight rel. error "
             "| output rel. error | note |",
             "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for name, e in data["layers"].items():
        shape = "x".join(map(str, e.get("shape", [])))
        err = f"{e['weight_rel_error']:.3e}" if "weight_rel_error" in e else ""
        out = f"{e['output_rel_error']:.3e}" if "output_rel_error" in e else ""
        lines.append(f"| {name} | {e.get('scheme', '')} | {e.get('method', '')} | {e.get('activations', '')} | "
                     f"{e.get('smooth', '')} | {shape} | "
                     f"{e.get('bytes_f32', '')} | {e.get('bytes', '')} | {err} | {out} | {e.get('note', '')} |")
    return "\n".join(lines) + "\n"


def write_report(path: str | Path, data: dict) -> None:
    path = Path(path)
    if path.suffix not in (".md", ".json"):
        raise QCError(f"report '{path}' must end in .md or .json")
    try:
        path.write_text(json.dumps(data, indent=2) if path.suffix == ".json" else markdown(data))
    except OSError as err:
        raise QCError(f"cannot write report '{path}': {err}") from None
