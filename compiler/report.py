"""The quantization report: per-layer scheme, weight bytes, error; model size before and after."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import QCError


def notes(layers: dict[str, dict]) -> list[str]:
    """What the passes did not do that was asked (a layer left in f32, an input not smoothed), one
    line per distinct note with the layers it concerns."""
    by_note: dict[str, list[str]] = {}
    for name, entry in layers.items():
        if "note" in entry:
            by_note.setdefault(entry["note"], []).append(name)
    lines = []
    for note, names in by_note.items():
        shown = ", ".join(f"'{n}'" for n in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        lines.append(f"{'layer' if len(names) == 1 else f'{len(names)} layers'} {shown}: {note}")
    return lines


def summary(layers: dict[str, dict], weight_bytes: int, fixed_bytes: int, layer_bytes: dict[str, int]) -> dict:
    """``weight_bytes``: the weights the model reads, before quantization; ``fixed_bytes``: those of
    them no layer's scheme changes; ``layer_bytes``: each layer's f32 weight.  After: the fixed ones
    and every layer as stored (a tied table and head count once each)."""
    after = fixed_bytes + sum(layers.get(name, {}).get("bytes", f32) for name, f32 in layer_bytes.items())
    for name, entry in layers.items():  # a layer left in f32 is stored as f32 (a Winograd conv: transformed)
        if name in layer_bytes:
            entry.setdefault("bytes", layer_bytes[name])
            entry.setdefault("bytes_f32", layer_bytes[name])
    return {"model_bytes_before": weight_bytes, "model_bytes_after": after, "layers": layers}


def markdown(data: dict) -> str:
    before, after = data["model_bytes_before"], data["model_bytes_after"]
    lines = ["# qc quantization report", "",
             f"Model weights: {before / 2**20:.2f} MiB before, {after / 2**20:.2f} MiB after "
             f"({before / max(after, 1):.2f}x smaller).", ""]
    sel = data.get("selection")
    if sel:
        budgets = ", ".join(f"{k} {v:g}" for k, v in sel["budgets"].items() if v is not None)
        lines += [f"Schemes chosen by qc-select-precision (ILP) under {budgets}"
                  + (f", pins {sel['pins']}" if sel["pins"] else "") + f"; sensitivity: {sel['sensitivity']} "
                  f"({sel['metric']}).", "",
                  f"- layers: {sel['layer_bytes']} bytes, {sel['bits_per_weight']:.3f} bits per weight; predicted "
                  f"summed error {sel['predicted_error']:.4e}"]
        check = sel.get("error_check")
        if check:
            others = ", ".join(f"uniform {s} {e:.4e}" for s, e in check["uniform"].items()) or "none within the budgets"
            lines.append(f"- error check (every layer quantized at once, measured): the ILP's selection "
                         f"{check['selection']:.4e}; {others}; kept: {check['kept']}")
        if "predicted_ms" in sel:
            lines.append(f"- latency: predicted {sel['predicted_ms']:.3f} ms"
                         + (f", measured {sel['measured_ms']:.3f} ms" if "measured_ms" in sel else ""))
        for i, c in enumerate(sel.get("latency_checks", [])):
            lines.append(f"- latency check {i + 1}: predicted {c['predicted_ms']:.3f} ms (other schemes' kernels "
                         f"x{c['scale']:.2f}), measured {c['measured_ms']:.3f} ms: they ran {c['ratio']:.2f}x "
                         "their time alone")
        lines.append("")
    lines += ["| layer | scheme | method | activations | smoothing | shape | bytes f32 | bytes | weight rel. error "
              "| output rel. error | sensitivity | kernel ms | convolution | note |",
              "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for name, e in data["layers"].items():
        shape = "x".join(map(str, e.get("shape", [])))
        err = f"{e['weight_rel_error']:.3e}" if "weight_rel_error" in e else ""
        out = f"{e['output_rel_error']:.3e}" if "output_rel_error" in e else ""
        sens = f"{e['sensitivity']:.3e}" if "sensitivity" in e else ""
        ms = f"{e['latency_ms']:.4f}" if "latency_ms" in e else ""
        lines.append(f"| {name} | {e.get('scheme', '')} | {e.get('method', '')} | {e.get('activations', '')} | "
                     f"{e.get('smooth', '')} | {shape} | {e.get('bytes_f32', '')} | {e.get('bytes', '')} | {err} | "
                     f"{out} | {sens} | {ms} | {e.get('conv', '')} | {e.get('note', '')} |")
    return "\n".join(lines) + "\n"


def plot(data: dict, path: Path) -> None:
    """PNG of the per-layer table: weight bytes (f32 vs as compiled, coloured by scheme) above the
    weight and output relative errors (log scale)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    names = list(data["layers"])
    layers = [data["layers"][n] for n in names]
    schemes = sorted({e.get("scheme", "f32") for e in layers})
    colours = dict(zip(schemes, plt.get_cmap("tab10").colors))
    x = range(len(names))
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(max(6.0, 0.45 * len(names) + 2), 6.5))
    top.bar(x, [e.get("bytes_f32", 0) / 2**10 for e in layers], color="0.85", label="before (f32)")
    top.bar(x, [e.get("bytes", e.get("bytes_f32", 0)) / 2**10 for e in layers], width=0.5,
            color=[colours[e.get("scheme", "f32")] for e in layers])
    for scheme in schemes:
        top.bar([0], [0], color=colours[scheme], label=scheme)
    top.set_ylabel("weight KiB")
    top.legend(fontsize=8)
    before, after = data["model_bytes_before"], data["model_bytes_after"]
    top.set_title(f"weights {before / 2**20:.2f} MiB -> {after / 2**20:.2f} MiB ({before / max(after, 1):.2f}x smaller)")
    plotted = False
    for key, marker, label in (("weight_rel_error", "o", "weight rel. error"),
                               ("output_rel_error", "s", "output rel. error")):
        points = [(i, e[key]) for i, e in enumerate(layers) if e.get(key)]
        if points:
            bottom.plot(*zip(*points), marker, label=label)
            plotted = True
    if plotted:
        bottom.set_yscale("log")
        bottom.legend(fontsize=8)
    bottom.set_ylabel("relative error")
    bottom.set_xticks(list(x), names, rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(path: str | Path, data: dict) -> list[Path]:
    """Writes the report (``.md`` or ``.json``) and, next to it, its plot (``.png``); returns both paths."""
    path = Path(path)
    if path.suffix not in (".md", ".json"):
        raise QCError(f"report '{path}' must end in .md or .json")
    png = path.with_suffix(".png")
    try:
        path.write_text(json.dumps(data, indent=2) if path.suffix == ".json" else markdown(data))
        if data["layers"]:
            plot(data, png)
    except OSError as err:
        raise QCError(f"cannot write report '{path}': {err}") from None
    return [path, png] if data["layers"] else [path]
