"""An MLIR context with every dialect qc reads: upstream, ``torch`` and ``qc``."""

from torch_mlir import ir
from torch_mlir.dialects import torch as torch_d

from ..dialects.qc import QC


def make_context() -> ir.Context:
    ctx = ir.Context()
    torch_d.register_dialect(ctx)
    with ctx:
        QC.load()
    return ctx
