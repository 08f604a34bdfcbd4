"""PyTorch ``nn.Module`` -> linalg-on-tensors through ``torch_mlir.fx``."""

from __future__ import annotations

from torch_mlir import ir

from .errors import QCError
from .frontend_onnx import spec_of
from .signature import Signature


def _dense_literal_hooks():
    """FxImporter hooks that import tensor literals (parameters) as DenseElementsAttr.

    The default, a resource blob, holds data qc-outline-weights cannot read, so
    the weights would stay in the code and linears would not be recognised."""
    import numpy as np
    import torch
    from torch_mlir.extras.fx_importer import FxImporterHooks, create_mlir_tensor_type

    class DenseLiterals(FxImporterHooks):
        def resolve_literal(self, gni, literal, info):
            if not isinstance(literal, torch.Tensor) or literal.numel() <= 1 or literal.dtype == torch.bfloat16:
                return None  # the importer's own path
            array = np.ascontiguousarray(literal.detach().cpu().numpy())
            attr = ir.DenseElementsAttr.get(array, type=create_mlir_tensor_type(literal).element_type)
            return ir.Operation.create("torch.vtensor.literal", results=[gni._cc.tensor_to_vtensor_type(literal)],
                                       attributes={"value": attr}).result

    return DenseLiterals()


def import_torch(module, example_inputs: tuple, ctx: ir.Context,
                 input_names: list[str] | None = None) -> tuple[ir.Module, Signature]:
    import torch
    from torch_mlir import fx
    from torch_mlir.extras.fx_importer import FxImporter

    module = module.eval()
    try:
        with torch.no_grad():
            mlir_module = fx.export_and_import(module, *example_inputs, output_type="linalg-on-tensors",
                                               fx_importer=FxImporter(context=ctx, hooks=_dense_literal_hooks()), func_name="main")
    except Exception as err:  # torch.export and the lowering raise many kinds
        raise QCError(f"cannot import the PyTorch module: {err.__class__.__name__}: {err}") from None
    main = next(op.operation for op in mlir_module.body.operations if op.operation.name == "func.func")
    ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
    names = input_names or [f"input{i}" for i in range(len(ftype.inputs))]
    sig = Signature(tuple(spec_of(n, t) for n, t in zip(names, ftype.inputs)),
                    tuple(spec_of(f"output{i}", t) for i, t in enumerate(ftype.results)))
    return mlir_module, sig
