"""qc-assign-schemes: give every layer a ``qc.scheme`` from a default and regex overrides.

    %y = "qc.linear"(%x, %w)                                     (layer "fc2")
    %e = linalg.generic ... tensor.extract %table[%row, %col]    (table "embed")
with ``scheme=w4a16-g128 overrides=fc2=w8a16`` becomes
    %y = "qc.linear"(%x, %w) {qc.scheme = #qc.scheme<"w8a16", "sym">}
    %e = linalg.generic {qc.scheme = #qc.scheme<"w4a16-g128", "sym">, ...}

The first override whose regex matches the whole layer name wins; layers no override matches get
``scheme`` (none when it is empty); embedding tables take the default's weight format (``w8a8`` ->
``w8a16``), having no activations to quantize.  An override that matches no layer is an error (a mistyped name
would otherwise compile silently), and so is a scheme a layer cannot take (a group size that does not
divide its K, int8 activations on an embedding table), where qc-quantize-weights would otherwise
leave it in f32.  ``overrides``: ``REGEX=SCHEME`` pairs separated by ``;`` (the last ``=`` splits).
"""

from __future__ import annotations

import re

from torch_mlir import ir

from ..core.errors import QCError
from ..core.quant import Scheme, fits, parse_scheme
from ..dialects.qc import LinearOp
from .base import ModulePass, Option, PassState
from .matchers import embedding_table, scheme_targets, set_scheme, target_name
from .quantize_weights import scheme_attr


def parse_pairs(text: str | dict) -> list[tuple[re.Pattern, Scheme]]:
    """``"a.*=w8a16;b=f16"`` (or a {regex: scheme} dict) -> [(compiled regex, scheme)], in order."""
    items = text.items() if isinstance(text, dict) else [
        tuple(part.rsplit("=", 1)) for part in text.split(";") if part.strip()]
    pairs = []
    for item in items:
        if len(item) != 2:
            raise QCError(f"bad layer pattern '{item[0]}': expected REGEX=SCHEME")
        pattern, scheme = item
        try:
            pairs.append((re.compile(pattern.strip()), parse_scheme(scheme)))
        except re.error as err:
            raise QCError(f"bad layer pattern '{pattern}': {err}") from None
    return pairs


def reduction_size(op: ir.Operation) -> int:
    """K of a linear's weight [N, K], D of an embedding table [V, D]."""
    value = op.opview.weight if isinstance(op.opview, LinearOp) else embedding_table(op)[0].opview.tensor
    return ir.RankedTensorType(value.type).shape[-1]


def check_fits(op: ir.Operation, scheme: Scheme) -> None:
    why = fits(scheme, reduction_size(op), gather=not isinstance(op.opview, LinearOp))
    if why is not None:
        raise QCError(f"layer '{target_name(op)}' cannot take {scheme.name}: {why}", op.location)


class AssignSchemes(ModulePass):
    NAME = "qc-assign-schemes"
    SUMMARY = "Set qc.scheme on every linear and embedding gather from a default and REGEX=SCHEME overrides"
    OPTIONS = {"scheme": Option(str, "", "scheme of layers no override matches (empty: leave them)"),
               "overrides": Option(str, "", "REGEX=SCHEME pairs separated by ';', first match wins")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        default = parse_scheme(self.options["scheme"]) if self.options["scheme"] else None
        pairs = parse_pairs(self.options["overrides"])
        targets = scheme_targets(module)
        names = [target_name(op) for op in targets]
        for pattern, _ in pairs:
            if not any(pattern.fullmatch(n) for n in names):
                raise QCError(f"scheme override '{pattern.pattern}' matches no layer; layers: {', '.join(names)}")
        for op, name in zip(targets, names):
            matched = next((s for p, s in pairs if p.fullmatch(name)), None)
            scheme = matched or default
            if scheme is None:
                continue
            gather = not isinstance(op.opview, LinearOp)
            if matched is None and gather and scheme.int_activations:
                scheme = scheme.weight_only  # a table has no activations; its weights take the default's
            why = fits(scheme, reduction_size(op), gather)
            if matched is None and why is not None:
                # the default leaves what cannot take it in f32 (said in the report); an override
                # names the layer, so it must fit
                state.report.setdefault(name, {}).update(scheme="f32", note=f"left in f32: {why}")
                continue
            check_fits(op, scheme)
            set_scheme(op, name, scheme_attr(scheme))
