"""PyTorch ``nn.Module`` -> linalg-on-tensors through ``torch_mlir.fx``."""

from __future__ import annotations

from torch_mlir import ir

from ..core.errors import QCError
from .signatures import spec_of
from ..core.signature import Signature


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


def _name_parameters(mlir_module: ir.Module, module) -> None:
    """Give each constant that holds a parameter the parameter's name as its location.

    The lowering to linalg folds constants and drops the importer's locations;
    qc-outline-weights names store entries after locations, and reports and
    scheme overrides name layers after store entries."""
    import hashlib

    import numpy as np
    from torch_mlir.dialects import arith

    from ..passes.base import walk_ops

    def key(array: np.ndarray) -> tuple:
        return array.shape, str(array.dtype), hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()

    names = {}
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        if tensor.numel() > 1 and tensor.dtype.is_floating_point:
            names.setdefault(key(tensor.detach().cpu().numpy()), name)
    for op in walk_ops(mlir_module.operation, "arith.constant"):
        value = op.attributes["value"]
        if not isinstance(value, ir.DenseElementsAttr) or value.is_splat:
            continue
        name = names.get(key(np.array(value).reshape(value.type.shape)))
        if name is not None:
            with ir.InsertionPoint(op), ir.Location.name(name, context=op.context):
                named = arith.ConstantOp(value.type, value)
            op.result.replace_all_uses_with(named.result)
            op.erase()


def export_torch(module, example_inputs: tuple):
    """``module`` traced by torch.export on ``example_inputs`` and decomposed as torch-mlir imports it:
    what ``import_torch`` imports, kept by a caller that imports the same graph again (a Decoder's steps)."""
    import torch
    from torch_mlir.extras.fx_decomp_util import get_decomposition_table

    try:
        with torch.no_grad():
            program = torch.export.export(module.eval(), tuple(example_inputs), strict=False).run_decompositions(
                get_decomposition_table())
    except Exception as err:  # torch.export raises many kinds
        raise QCError(f"cannot import the PyTorch module: {err.__class__.__name__}: {err}") from None
    # the program would keep the example inputs alive with it: a decoder's example KV caches are GBs at 7B
    program.example_inputs = None
    return program


def import_torch(module, example_inputs: tuple, ctx: ir.Context,
                 input_names: list[str] | None = None, program=None) -> tuple[ir.Module, Signature]:
    """``module`` on ``example_inputs`` as linalg-on-tensors in ``ctx``; ``program``: its ``export_torch``,
    if the caller keeps one."""
    import torch
    from torch_mlir import fx
    from torch_mlir.extras.fx_importer import FxImporter

    module = module.eval()
    if program is None:
        program = export_torch(module, example_inputs)
    try:
        with torch.no_grad():
            mlir_module = fx.export_and_import(program, output_type="linalg-on-tensors", decomposition_table={},
                                               fx_importer=FxImporter(context=ctx, hooks=_dense_literal_hooks()), func_name="main")
    except Exception as err:  # the lowering raises many kinds
        raise QCError(f"cannot import the PyTorch module: {err.__class__.__name__}: {err}") from None
    _name_parameters(mlir_module, module)
    main = next(op.operation for op in mlir_module.body.operations if op.operation.name == "func.func")
    ftype = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
    names = input_names or [f"input{i}" for i in range(len(ftype.inputs))]
    sig = Signature(tuple(spec_of(n, t) for n, t in zip(names, ftype.inputs)),
                    tuple(spec_of(f"output{i}", t) for i, t in enumerate(ftype.results)))
    return mlir_module, sig
