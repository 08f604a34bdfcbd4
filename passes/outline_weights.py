"""qc-outline-weights: move large dense constants into the weight store.

    %c = arith.constant dense<...> : tensor<384x384xf32>
becomes
    %c = "qc.weight"() {name = @w3} : () -> tensor<384x384xf32>
and the array is stored under ``w3``; equal constants (attributes are uniqued) share one entry, as
a decoder's two entries imported from one ONNX graph do.  Splats and constants with fewer than
``min-elements`` elements stay inline, so small IR stays self-contained.
"""

import re

import numpy as np
from torch_mlir import ir

from ..dialects.qc import WeightOp
from .base import ModulePass, Option, PassState, walk_ops


def _name_stem(op: ir.Operation) -> str:
    loc = str(op.location)
    m = re.fullmatch(r'loc\("([^"]+)"\)', loc)  # a name, not file:line:col
    stem = re.sub(r"[^A-Za-z0-9_.]", "_", m.group(1)) if m else "w"
    return stem if stem[:1].isalpha() else "w" + stem


class OutlineWeights(ModulePass):
    NAME = "qc-outline-weights"
    SUMMARY = "Move large dense constants into the weight store (qc.weight)"
    OPTIONS = {"min-elements": Option(int, 256, "smallest constant (in elements) to outline")}

    def run(self, module: ir.Operation, state: PassState) -> None:
        threshold = self.options["min-elements"]
        outlined: dict[ir.Attribute, str] = {}  # attributes are uniqued: equal data, one attribute
        for op in walk_ops(module, "arith.constant"):
            value = op.attributes["value"]
            ttype = value.type
            if not isinstance(value, ir.DenseElementsAttr) or value.is_splat:
                continue  # splats are cheap inline; resource blobs carry no data to move
            if ttype.rank == 0 or np.prod(ttype.shape) < threshold:
                continue
            if value in outlined:  # one array in two functions (a decoder's entries): one entry
                name = outlined[value]
            else:
                name = outlined[value] = state.store.unique_name(_name_stem(op))
                state.store[name] = np.array(value).reshape(ttype.shape)
            with ir.InsertionPoint(op), op.location:
                new = WeightOp(ttype, ir.FlatSymbolRefAttr.get(name))
            op.result.replace_all_uses_with(new.result)
            op.erase()
