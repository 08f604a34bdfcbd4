"""Small IR matchers shared by the passes."""

from __future__ import annotations

from torch_mlir import ir

from ..core.quant.packing import PanelLayout
from ..dialects.qc import LayoutAttr, LinearOp, WeightOp

LAYOUT_ATTR = "qc.layout"  # on a contraction over packed weights: their PanelLayout


def producer(value: ir.Value) -> ir.Operation | None:
    owner = value.owner
    return None if isinstance(owner, ir.Block) else owner.operation


def single_user(value: ir.Value) -> ir.Operation | None:
    uses = list(value.uses)
    return uses[0].owner.operation if len(uses) == 1 else None


def indexing_maps(op: ir.Operation) -> list[ir.AffineMap]:
    return [ir.AffineMapAttr(a).value for a in op.attributes["indexing_maps"]]


# The indexing maps of linalg.matmul and linalg.batch_matmul when they are not transposed or broadcast.
_CONTRACTION_MAPS = {
    "linalg.matmul": ["affine_map<(d0, d1, d2) -> (d0, d2)>", "affine_map<(d0, d1, d2) -> (d2, d1)>",
                      "affine_map<(d0, d1, d2) -> (d0, d1)>"],
    "linalg.batch_matmul": ["affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>",
                            "affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>",
                            "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>"],
}


def default_maps(op: ir.Operation) -> bool:
    """A linalg.matmul / batch_matmul with its default indexing maps (none given, or the defaults given)."""
    if "indexing_maps" not in op.attributes:
        return True
    return [str(ir.AffineMapAttr.get(m)) for m in indexing_maps(op)] == _CONTRACTION_MAPS[op.name]


def iterator_types(op: ir.Operation) -> list[str]:
    """``["parallel", "reduction", ...]`` of a linalg.generic."""
    return [str(a).split("<")[-1].rstrip(">") for a in ir.ArrayAttr(op.attributes["iterator_types"])]


def num_outputs(op: ir.Operation) -> int:
    """How many of a linalg op's operands are ``outs`` (the last ones)."""
    return ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"])[1]


def identity_layout(t: ir.MemRefType) -> bool:
    """Whether a memref is laid out row-major and contiguous (the identity map)."""
    return isinstance(t.layout, ir.AffineMapAttr) and t.layout.value == ir.AffineMap.get_identity(t.rank, t.context)


MEMREF_VIEWS = ("memref.subview", "memref.expand_shape", "memref.collapse_shape", "memref.cast",
                "memref.reinterpret_cast")


def view_source(value: ir.Value, kinds: tuple[str, ...]) -> ir.Value:
    """The value that ``value`` is a view of, through any chain of the view ops named in ``kinds``."""
    while not isinstance(value.owner, ir.Block) and value.owner.name in kinds:
        value = value.owner.operands[0]
    return value


def top_level_in(op: ir.Operation, block: ir.Block) -> ir.Operation:
    """The op of ``block`` that is or contains ``op``."""
    owner = block.owner.operation
    while op.parent is not None and op.parent.operation != owner:
        op = op.parent.operation
    return op


def body_ops(op: ir.Operation) -> list[ir.Operation]:
    return [o.operation for o in op.regions[0].blocks[0].operations]


def is_copy_generic(op: ir.Operation) -> bool:
    """A one-input linalg.generic whose body only yields its input."""
    if op.name != "linalg.generic" or len(op.operands) != 2:
        return False
    body = body_ops(op)
    block = op.regions[0].blocks[0]
    return len(body) == 1 and body[0].name == "linalg.yield" and body[0].operands[0] == block.arguments[0]


def constant_float(value: ir.Value) -> float | None:
    """The value of a scalar float ``arith.constant``, else None."""
    cst = producer(value)
    if cst is None or cst.name != "arith.constant" or not isinstance(cst.attributes["value"], ir.FloatAttr):
        return None
    return ir.FloatAttr(cst.attributes["value"]).value


def is_zero_constant(value: ir.Value) -> bool:
    """``value`` is an ``arith.constant`` float 0.0."""
    return constant_float(value) == 0.0


def is_zero_fill(value: ir.Value) -> bool:
    op = producer(value)
    return op is not None and op.name == "linalg.fill" and is_zero_constant(op.operands[0])


def uses_value(op: ir.Operation, wanted, skip: tuple[str, ...] = ()) -> bool:
    """Whether ``op``, or an op nested in it, has an operand for which ``wanted(value)`` holds;
    ops named in ``skip`` do not count."""
    hit = False

    def visit(inner: ir.Operation) -> ir.WalkResult:
        nonlocal hit
        if inner.name not in skip and any(wanted(v) for v in inner.operands):
            hit = True
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    op.walk(visit)
    return hit


def aliases(root: ir.Value):
    """A predicate: whether a value is a memref view of ``root`` (``root`` itself included)."""
    return lambda v: isinstance(v.type, ir.MemRefType) and view_source(v, MEMREF_VIEWS) == root


def preceding_zero_fill(op: ir.Operation, buffer: ir.Value) -> ir.Operation | None:
    """The ``linalg.fill`` of 0.0 into ``buffer`` earlier in ``op``'s block, if no op in between
    (nested ones included) touches any view of the same memref: ``op`` is then the first to see
    the zeros."""
    block = op.block
    fills = [u.owner.operation for u in buffer.uses if u.owner.name == "linalg.fill"
             and u.owner.operation.block == block and u.owner.operation.is_before_in_block(op)]
    if not fills:
        return None
    fill = next(f for f in fills if not any(f.is_before_in_block(g) for g in fills))  # the last one
    if not is_zero_constant(fill.operands[0]):
        return None
    same = aliases(view_source(buffer, MEMREF_VIEWS))
    between = False
    for other in block.operations:
        other = other.operation
        if other == op:
            return fill
        if between and uses_value(other, same):
            return None
        between = between or other == fill
    return None


def erase_dead_ops(root: ir.Operation) -> None:
    """Erase ops left without users (MLIR's greedy driver does it with no patterns)."""
    from torch_mlir import rewrite

    rewrite.apply_patterns_and_fold_greedily(root, rewrite.RewritePatternSet(root.context).freeze())


def stored_weight(value: ir.Value) -> tuple[ir.Operation, str] | None:
    """The qc.weight producing ``value`` and its store name (None if another op produces it)."""
    op = producer(value)
    if op is None or not isinstance(op.opview, WeightOp):
        return None
    return op, op.opview.name.value


def linear_weight_name(linear: ir.Operation) -> str | None:
    """Store name of a qc.linear's weight (None unless it is a qc.weight)."""
    found = stored_weight(linear.opview.weight)
    return found[1] if found else None


LAYER_ATTR = "qc.layer"  # set where a pass re-points a linear at a new weight entry


def layer_name(linear: ir.Operation) -> str | None:
    """A qc.linear's name in reports, statistics and overrides: its ``qc.layer``, else its weight's
    store name less qc-raise's '.nk'."""
    if LAYER_ATTR in linear.attributes:
        return ir.StringAttr(linear.attributes[LAYER_ATTR]).value
    name = linear_weight_name(linear)
    return name[:-3] if name and name.endswith(".nk") else name


def enclosing_func(op: ir.Operation) -> ir.Operation:
    while op.name != "func.func":
        op = op.parent
    return op


def embedding_table(op: ir.Operation) -> tuple[ir.Operation, ir.Operation, str] | None:
    """(the ``tensor.extract``, the ``qc.weight``, its store name) when ``op`` is a gather of rows of a
    stored 2-D table: a ``linalg.generic`` whose body reads ``table[row, linalg.index <last>]`` with
    ``row`` computed from its inputs, as an ONNX ``Gather`` / ``torch.embedding`` imports."""
    if op.name != "linalg.generic":
        return None
    extracts = [o for o in body_ops(op) if o.name == "tensor.extract"]
    if len(extracts) != 1:
        return None
    extract = extracts[0]
    table = extract.opview.tensor
    found = stored_weight(table)
    if found is None or ir.RankedTensorType(table.type).rank != 2:
        return None
    column = producer(extract.opview.indices[1])
    if column is None or column.name != "linalg.index":
        return None
    loops = len(iterator_types(op))
    if ir.IntegerAttr(column.attributes["dim"]).value != loops - 1:
        return None
    return extract, found[0], found[1]


def scheme_targets(root: ir.Operation) -> list[ir.Operation]:
    """The ops a precision is chosen for: named ``qc.linear``s and embedding-table gathers."""
    found = []

    def visit(op):
        if (isinstance(op.opview, LinearOp) and layer_name(op) is not None) or embedding_table(op) is not None:
            found.append(op)
        return ir.WalkResult.ADVANCE

    root.walk(visit)
    return found


GATHER_SUFFIX = ".gather"


def target_name(op: ir.Operation) -> str:
    """The layer name of a scheme target: a linear's ``layer_name``; a gather's table entry, with
    ``.gather`` appended where a linear of the same function has that name (a tied LM head)."""
    if isinstance(op.opview, LinearOp):
        return layer_name(op)
    if LAYER_ATTR in op.attributes:  # named when its scheme was set: a quantized tied head no longer matches
        return ir.StringAttr(op.attributes[LAYER_ATTR]).value
    table = embedding_table(op)[2]
    tied = []

    def visit(inner):
        if isinstance(inner.opview, LinearOp) and layer_name(inner) == table:
            tied.append(inner)
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    enclosing_func(op).walk(visit)
    return table + GATHER_SUFFIX if tied else table


def set_scheme(op: ir.Operation, name: str, attr: ir.Attribute) -> None:
    """Give a scheme target its ``qc.scheme``, and its name as ``qc.layer`` so later rewrites keep it."""
    op.attributes["qc.scheme"] = attr
    op.attributes[LAYER_ATTR] = ir.StringAttr.get(name)


def target_weight(op: ir.Operation) -> str | None:
    """Store name of a scheme target's f32 weight: a linear's weight, a gather's table."""
    if isinstance(op.opview, LinearOp):
        return linear_weight_name(op)
    return embedding_table(op)[2]


def layout_attr(layout: PanelLayout) -> ir.Attribute:
    """``#qc.layout<...>`` of ``layout``."""
    i64 = ir.IntegerType.get_signless(64)
    return LayoutAttr.get(*(ir.IntegerAttr.get(i64, int(v)) for v in (
        layout.n, layout.k, layout.width, layout.bits, layout.group, layout.dot, layout.symmetric)))


def layout_of(op: ir.Operation) -> PanelLayout | None:
    """The PanelLayout a contraction's ``qc.layout`` names (None without one)."""
    if LAYOUT_ATTR not in op.attributes:
        return None
    attr = LayoutAttr(op.attributes[LAYOUT_ATTR])
    n, k, width, bits, group, dot, symmetric = (ir.IntegerAttr(getattr(attr, f)).value for f in (
        "n", "k", "width", "bits", "group", "dot", "symmetric"))
    return PanelLayout(n, k, width, bits, group, bool(dot), bool(symmetric))
