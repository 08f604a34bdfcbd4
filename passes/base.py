"""Pass plumbing: typed options and the state passes share (the weight store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from torch_mlir import ir

from ..core.calibration import Statistics
from ..core.errors import QCError, internal_error
from ..core.quant.latency import LatencyTable
from ..core.weights import WeightStore
from . import trampoline


@dataclass(frozen=True)
class Option:
    type: Callable[[str], Any]
    default: Any
    help: str


def parse_bool(text: str) -> bool:
    """A boolean pass option as MLIR spells it."""
    if text not in ("true", "false", "1", "0"):
        raise ValueError(text)
    return text in ("true", "1")


def one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    """A pass option that takes one of ``choices``."""
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(text)
        return text
    return parse


@dataclass
class PassState:
    """What a pipeline run shares between passes."""

    store: WeightStore = field(default_factory=WeightStore)
    stats: Statistics = field(default_factory=Statistics)  # calibration, by layer name
    report: dict[str, dict] = field(default_factory=dict)  # what passes did, by layer name
    latency: LatencyTable | None = None  # measured kernel latencies, for qc-select-precision
    selection: dict = field(default_factory=dict)  # what qc-select-precision chose and predicted
    # Nothing reads the store after this pipeline but the module: an entry a pass replaces (a weight
    # packed into panels) is dropped as soon as no qc.weight reads it, not at the end (a large model's peak).
    own_store: bool = False


class ModulePass:
    """A pass over a ``builtin.module``; subclasses set NAME, SUMMARY, OPTIONS, run()."""

    NAME: ClassVar[str]
    SUMMARY: ClassVar[str]
    OPTIONS: ClassVar[dict[str, Option]] = {}

    def __init__(self, **options: Any):
        """Options by their MLIR names (``act-order``) or as Python keywords (``act_order``)."""
        options = {key.replace("_", "-") if key.replace("_", "-") in self.OPTIONS else key: value
                   for key, value in options.items()}
        unknown = set(options) - set(self.OPTIONS)
        if unknown:
            raise QCError(f"'{self.NAME}' has no option(s) {sorted(unknown)}; options: {sorted(self.OPTIONS) or 'none'}")
        self.options = {k: o.default for k, o in self.OPTIONS.items()}
        for key, value in options.items():
            try:
                self.options[key] = self.OPTIONS[key].type(value) if isinstance(value, str) else value
            except ValueError:
                raise QCError(f"'{self.NAME}': bad value '{value}' for option '{key}'") from None

    def run(self, module: ir.Operation, state: PassState) -> None:
        raise NotImplementedError

    def __call__(self, state: PassState) -> Callable[[ir.Operation, Any], None]:
        """The callable that ``PassManager.add`` runs."""

        def run(op: ir.Operation, pass_) -> None:
            try:
                self.run(op, state)
            except QCError as err:
                (err.location or op.location).emit_error(f"{self.NAME}: {err}")
                pass_.signal_pass_failure()
            except Exception as err:  # a bug in the pass: a diagnostic, not a traceback through the pass manager
                op.location.emit_error(f"{self.NAME}: {internal_error(err)}")
                pass_.signal_pass_failure()

        run.__name__ = self.NAME
        return run


def walk_ops(root: ir.Operation, name: str | None = None) -> list[ir.Operation]:
    """All ops called ``name`` under ``root`` (every op, ``root`` included, without one), collected before any
    rewrite."""
    found = []

    def visit(op):
        if name is None or op.name == name:
            found.append(op)
        return ir.WalkResult.ADVANCE

    root.walk(visit)
    return found


def ops_of(root: ir.Operation, cls: type[ir.OpView]) -> list:
    """All ``cls`` ops under ``root`` as typed views (``op.weight``, ``op.bias``), collected before any rewrite."""
    return [op.opview for op in walk_ops(root, cls.OPERATION_NAME)]


class WeightReaders:
    """How many ``qc.weight`` ops read each store entry, counted once and kept as a pass erases them."""

    def __init__(self, module: ir.Operation, state: PassState):
        self.state = state
        self.count: dict[str, int] = {}
        for op in walk_ops(module, "qc.weight"):
            name = ir.FlatSymbolRefAttr(op.attributes["name"]).value
            self.count[name] = self.count.get(name, 0) + 1

    @staticmethod
    def grouped(ops: list, name_of: Callable[[Any], str | None]) -> list:
        """``ops`` with the readers of one weight next to each other (groups in order of first reader): a
        weight both of a decoder's entry functions read is replaced, and dropped, before the next one is
        packed, not after every other weight of the first function."""
        groups: dict = {}
        for op in ops:
            groups.setdefault(name_of(op) or id(op), []).append(op)
        return [op for group in groups.values() for op in group]

    def erase(self, op: ir.Operation, name: str) -> None:
        """Erases the qc.weight ``op`` (of entry ``name``) if nothing uses it; with ``state.own_store``
        drops the entry once no qc.weight reads it."""
        if list(op.results[0].uses):
            return
        op.erase()
        self.count[name] -= 1
        if self.state.own_store and not self.count[name]:
            self.state.store.drop(name)


def entry_funcs(module: ir.Operation) -> list[ir.Operation]:
    """The functions the runtime calls: ``@main`` first, then the other public ones with bodies
    (a decoder's ``@decode``) but the kernels that trampolines run, in module order; none without ``@main``."""
    funcs = [op.operation for op in module.regions[0].blocks[0].operations if op.operation.name == "func.func"]
    kernels = {part.kernel for f in funcs for part in trampoline.parts(f) or ()}
    public = [f for f in funcs if "sym_visibility" not in f.attributes and len(f.regions[0].blocks)
              and ir.StringAttr(f.attributes["sym_name"]).value not in kernels]
    mains = [f for f in public if ir.StringAttr(f.attributes["sym_name"]).value == "main"]
    return mains + [f for f in public if f not in mains] if mains else []


def set_function_type(fn: ir.Operation, inputs: list[ir.Type], results: list[ir.Type]) -> None:
    """Give ``fn`` a new signature; argument/result attributes (such as ``qc.name``) are kept and
    new trailing arguments/results get none, as the func verifier wants one entry per value."""
    fn.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(inputs, results))
    for key, count in (("arg_attrs", len(inputs)), ("res_attrs", len(results))):
        if key in fn.attributes:
            attrs = list(ir.ArrayAttr(fn.attributes[key]))[:count]
            fn.attributes[key] = ir.ArrayAttr.get(attrs + [ir.DictAttr.get({})] * (count - len(attrs)))
