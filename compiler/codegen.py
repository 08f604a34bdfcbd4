"""linalg-on-tensors (+ qc ops) -> LLVM IR -> native object, through llvmlite.

The module is bufferized with outputs as caller-provided buffers, weights as
arguments (see qc-weights-to-args), lowered to the LLVM dialect, translated
to LLVM IR, optimised at O3 for the target CPU and emitted as a PIC object.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
from typing import NamedTuple
from dataclasses import dataclass

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects.llvm import translate_module_to_llvmir

from ..passes import (ChecksToErrors, ExpandMath, FoldWidening, FuseCachedAttention, FuseDequantGemm,
                      IsolateContractions, LowerLinear, LowerQGemm, Microkernels, Parallelize, ReassociateReductions,
                      WeightsToArgs, FuseIntoTransposes, Winograd, CollapseElementwise, MergeDispatches)
from ..passes.checks_to_errors import CHECKS_ATTR
from ..passes.kernels import dot
from ..passes import gpu_attention
from ..passes.gpu_map import WARP
from ..passes.base import PassState, entry_funcs
from ..passes.trampoline import trampolines
from ..passes.pipeline import build
from ..core.errors import QCError

def pre_bufferize(panel: int, winograd: int = 4, attention_rows: int = 0, split_activations: str = "never",
                  int8_piece_bits: int = 8, cells: bool = False, gpu: bool = False) -> list:
    """Before bufferization: a decode step's attention over its KV cache to one kernel (CPU targets:
    ``attention_rows`` is their register tile, 0 keeps it; ``gpu``: a CUDA kernel), f16 widenings folded into contractions,
    elementwise fusion (contractions kept out of it behind calls; a second round after the layout changes
    get their own copies of the ops they read), f32 3x3 convolutions to Winograd form, qc ops to linalg
    (``split_activations``, ``int8_piece_bits``, ``cells``: qc-lower-qgemm's options), run-time checks to errors,
    weights to arguments."""
    fuse = ([FuseCachedAttention(gpu=True, max_rows=gpu_attention.MAX_ROWS)] if gpu else
            [FuseCachedAttention(vector_width=panel // 2, rows=attention_rows)] if attention_rows else [])
    return [*fuse, FuseDequantGemm(), FoldWidening(), IsolateContractions(), "func.func(linalg-fuse-elementwise-ops)",
            FuseIntoTransposes(), "func.func(linalg-fuse-elementwise-ops)", *([Winograd(tile=winograd)] if winograd else []),
            LowerLinear(panel_width=panel),
            LowerQGemm(panel_width=panel, split_activations=split_activations, int8_piece_bits=int8_piece_bits,
                       f32_cells=cells),
            "inline", "symbol-dce", ChecksToErrors(), WeightsToArgs(), "canonicalize", "cse"]


# Loops that yield a new tensor each iteration (LSTM/GRU/RNN steps) may return allocations.
BUFFERIZE = ("builtin.module(eliminate-empty-tensors, one-shot-bufferize{bufferize-function-boundaries "
             "function-boundary-type-conversion=identity-layout-map allow-return-allocs-from-loops}, "
             "buffer-results-to-out-params{hoist-static-allocs modify-public-functions}, "
             "canonicalize, buffer-deallocation-pipeline, qc-elide-copies, qc-strided-copies, canonicalize, qc-early-deallocs)")

def kernel_passes(target: "Target") -> list:
    """After bufferization: matmuls to vector micro-kernels and large elementwise ops and reductions
    to split loops, both on the thread pool (independent ones in one region of it); libm calls to arithmetic."""
    return [Microkernels(vector_width=target.vector_width, rows=target.rows, int8_dot=target.int8_dot,
                         prefetch_min_reuse=target.prefetch_min_reuse), ExpandMath(),
            ReassociateReductions(), Parallelize(), CollapseElementwise(), MergeDispatches(), "canonicalize"]


TO_LLVM = ("builtin.module(func.func(convert-linalg-to-loops), "
           "convert-vector-to-scf, convert-scf-to-cf, "
           "expand-strided-metadata, lower-affine, finalize-memref-to-llvm{use-generic-functions}, convert-vector-to-llvm, "
           "convert-math-to-llvm, convert-math-to-libm, convert-arith-to-llvm, convert-index-to-llvm, "
           "convert-func-to-llvm, convert-cf-to-llvm, convert-ub-to-llvm, reconcile-unrealized-casts, qc-noalias-args, "
           "qc-serial-loops, qc-small-loops)")


ENTRY = "qc_main"

# Substrings of LLVM CPU names with 512-bit (AVX-512) or 256-bit (AVX2) float vectors.
_AVX512_CPUS = ("avx512", "knl", "knm", "cannonlake", "icelake", "tigerlake", "rocketlake", "cascadelake",
                "cooperlake", "sapphirerapids", "emeraldrapids", "graniterapids", "diamondrapids", "znver4",
                "znver5", "x86-64-v4")
_AVX2_CPUS = ("haswell", "broadwell", "skylake", "kabylake", "coffeelake", "cometlake", "alderlake", "raptorlake",
              "meteorlake", "arrowlake", "lunarlake", "gracemont", "sierraforest", "grandridge", "clearwaterforest",
              "znver1", "znver2", "znver3", "bdver4", "x86-64-v3")

_VNNI_CPUS = ("cascadelake", "cooperlake", "icelake", "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids",
              "graniterapids", "diamondrapids", "alderlake", "raptorlake", "meteorlake", "arrowlake", "lunarlake",
              "sierraforest", "grandridge", "clearwaterforest", "znver4", "znver5")
_AMX_CPUS = ("sapphirerapids", "emeraldrapids", "graniterapids", "diamondrapids")


@dataclass(frozen=True)
class Target:
    """The CPU code is generated for, the register tile its kernels use, and the largest Winograd
    tile of its f32 3x3 convolutions (0: direct)."""

    cpu: str
    features: str
    winograd: int = 4

    @staticmethod
    def of(cpu: str | None = None, features: str | None = None, winograd: int = 4) -> "Target":
        """``cpu``/``features`` as for llc; both None: this host."""
        if cpu is None:
            host_name, host_features = host_cpu()
            return Target(host_name, features if features is not None else host_features, winograd)
        return Target(cpu, features or "", winograd)

    def check(self) -> None:
        """A QCError naming the CPU or features LLVM does not know (it would ignore them with a warning,
        then may abort: an unknown CPU is not 64-bit)."""
        import llvmlite.binding as llvm

        llvm.initialize_native_target()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as said:  # LLVM warns on the process's stderr
            os.dup2(said.fileno(), 2)
            try:
                llvm.Target.from_default_triple().create_target_machine(cpu=self.cpu, features=self.features)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            said.seek(0)
            text = said.read().decode(errors="replace")
        unknown = sorted(set(re.findall(r"'([^']+)' is not a recognized (processor|feature)", text)))
        if unknown:
            raise QCError("; ".join(
                f"--target-cpu '{name}' is not a CPU LLVM knows (e.g. haswell, skylake-avx512, znver3, x86-64-v3)"
                if kind == "processor" else f"--target-features '{name}' is not a feature LLVM knows "
                "(e.g. +avx2, +fma, +avx512f, +avx512vnni)" for name, kind in unknown))

    def _has(self, feature: str) -> bool:
        return f"+{feature}" in self.features.split(",")

    @property
    def vector_width(self) -> int:
        """f32 lanes of one SIMD register."""
        if self._has("avx512f") or (not self.features and any(c in self.cpu for c in _AVX512_CPUS)):
            return 16
        if self._has("avx") or (not self.features and any(c in self.cpu for c in _AVX2_CPUS)):
            return 8
        return 4

    @property
    def panel_width(self) -> int:
        """Columns of a packed weight panel: two vectors of f32 lanes."""
        return 2 * self.vector_width

    @property
    def int8_dot(self) -> str:
        """How kernels multiply int8 activations: amx (tiles, and vpdpbusd), vnni (vpdpbusd),
        avx512bw / avx2 (vpmaddubsw at 16 / 8 lanes) or generic."""
        width = self.vector_width
        if not self.features:
            vnni = any(c in self.cpu for c in _VNNI_CPUS)
            avx2 = width == 8 and any(c in self.cpu for c in _AVX2_CPUS)
            bw = width == 16 and not any(c in self.cpu for c in ("knl", "knm"))
            amx = any(c in self.cpu for c in _AMX_CPUS)
        else:
            vnni = self._has("avx512vnni") if width == 16 else self._has("avxvnni") or (
                self._has("avx512vnni") and self._has("avx512vl"))
            avx2 = self._has("avx2")
            bw = self._has("avx512bw")
            amx = self._has("amx-int8") and self._has("amx-tile")
        if vnni and width == 16 and amx:
            return "amx"
        if vnni and width in (8, 16):
            return "vnni"
        return "avx512bw" if bw and width == 16 else "avx2" if avx2 and width == 8 else "generic"

    @property
    def split_activations(self) -> str:
        """Which weight-only contractions take their f32 activations as int8 pieces (qc-lower-qgemm's
        option): all where ``vpdpbusd`` makes three pieces cheaper than unpacking the weights to f32,
        one-row ones where only ``vpmaddubsw`` multiplies bytes (int8 weights' with 7-bit pieces), none without
        either."""
        return "always" if self.int8_dot in ("vnni", "amx") else "gemv" if self.maddubs else "never"

    @property
    def int8_piece_bits(self) -> int:
        """Bits of the pieces of f32 activations split against int8 weights (qc-lower-qgemm's int8-piece-bits):
        7 where vpmaddubsw multiplies bytes (the unsigned cells then need no sign trick), else 8."""
        return 7 if self.maddubs else 8

    @property
    def maddubs(self) -> bool:
        """Whether its int8 dot products are vpmaddubsw's (where 7-bit activations make them cheaper)."""
        return self.int8_dot in dot.MADDUBS

    @property
    def prefetch_min_reuse(self) -> int:
        """Multiply-adds per weight byte under which int8-dot kernels leave their weight stream to the hardware
        prefetchers (qc-microkernels' option).  Measured on Zen 4 (decode layer, cold; decisions.md): without
        software prefetches its VNNI kernels at 1 to 3 per byte ran up to 1.4x faster, the three-row int4 one
        (6 per byte) and the AVX2 kernels on the same CPU up to 25 % slower.  The Xeon kind's kernels were tuned
        with them (kernels/contraction.py): 0, always."""
        return 4 if self.cpu == "znver4" and self.int8_dot == "vnni" else 0

    @property
    def rows(self) -> int:
        """Rows of the register tile: rows x 2 accumulators + B vectors + a broadcast fit the register file."""
        return 12 if self.vector_width == 16 else 6


def run(module: ir.Module, pipeline: str | list, state: PassState, what: str) -> None:
    """Runs ``pipeline`` (text, or qc pass objects and upstream element texts) on ``module``."""
    from .diagnostics import error_from, format_diagnostic

    errors: list[str] = []

    def collect(diag) -> bool:  # ahead of any handler a frontend left on the context
        if diag.severity == ir.DiagnosticSeverity.ERROR:
            errors.append(format_diagnostic(diag))
        return True

    with module.context:
        pm = build(pipeline, state, module.context)
        handler = module.context.attach_diagnostic_handler(collect)
        try:
            pm.run(module.operation)
        except ir.MLIRError as err:
            if err.error_diagnostics or not errors:
                raise error_from(err, f"{what} failed:\n") from None
            raise QCError(f"{what} failed:\n" + "\n".join(errors)) from None
        finally:
            handler.detach()


class Entry(NamedTuple):
    name: str  # the function's name in the module: main, or a decoder's decode
    symbol: str  # its C name (``_mlir_ciface_<symbol>``)
    weight_args: list[str]  # its weight arguments, by store entry


class Lowered(NamedTuple):
    entries: list[Entry]  # @main first
    kernels: list  # the kernel trampolines the C glue defines (trampoline.Trampoline)
    checks: list[str]  # the run-time checks' messages, by id (qc-checks-to-errors)
    device: object = None  # a GPU model's kernels (gpu.DeviceCode)


def entry_symbol(name: str) -> str:
    """The C name of entry function ``name``: @main's ``qc_main`` would clash with an executable's main."""
    return ENTRY if name == "main" else f"{ENTRY}_{name}"


def stored_layout(target: Target, gpu: bool) -> tuple[int, int]:
    """(panel width, largest Winograd tile) of the weights as the build stores them: a GPU's panels are a
    warp wide (qc-gpu-linear's lanes) and its convolutions direct."""
    return (WARP, 0) if gpu else (target.panel_width, target.winograd)


def lower_to_llvm_dialect(module: ir.Module, state: PassState, target: Target, device=None) -> Lowered:
    """Runs the codegen pipelines in place; returns what the C glue needs to know of the result.
    ``device``: a ``gpu.GpuTarget`` whose kernels run every op, ``target`` then the host's CPU."""
    cpu = device is None
    panel, winograd = stored_layout(target, not cpu)
    if cpu:
        stages = pre_bufferize(panel, winograd, target.rows, target.split_activations, target.int8_piece_bits)
    else:  # every quantized weight in dot cells (qc-gpu-linear's kernels)
        stages = pre_bufferize(panel, winograd, 0, "never", cells=True, gpu=True)
    run(module, stages, state, "lowering qc ops")
    entries = []
    with module.context:
        for fn in entry_funcs(module.operation):
            name = ir.StringAttr(fn.attributes["sym_name"]).value
            entries.append(Entry(name, entry_symbol(name),
                                 [ir.StringAttr(a).value for a in fn.attributes["qc.weight_args"]]))
            fn.attributes["llvm.emit_c_interface"] = ir.UnitAttr.get()
            fn.attributes["sym_name"] = ir.StringAttr.get(entry_symbol(name))
    run(module, BUFFERIZE, state, "bufferization")
    attrs = module.operation.attributes
    checks = [ir.StringAttr(m).value for m in ir.ArrayAttr(attrs[CHECKS_ATTR])] if CHECKS_ATTR in attrs else []
    if device is not None:
        from . import gpu

        code = gpu.lower_kernels(module, state, device)
        run(module, gpu.HOST_TO_LLVM, state, "lowering the host code to LLVM")
        return Lowered(entries, [], checks, code)
    run(module, kernel_passes(target), state, "kernel generation")
    kernels = trampolines(module)
    run(module, TO_LLVM, state, "lowering to LLVM")
    return Lowered(entries, kernels, checks)


def copy_module(module: ir.Module, main_only: bool = False) -> ir.Module:
    """A deep copy of ``module`` (its top-level ops cloned into a new module); ``main_only`` leaves out
    the other entry points (a decoder's @decode), for the builds that run @main alone."""
    with module.context, module.operation.location:
        copy = ir.Module.create()
        for op in module.body.operations:
            op = op.operation
            if main_only and op.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value != "main" \
                    and "sym_visibility" not in op.attributes:
                continue
            op.clone(ir.InsertionPoint(copy.body))
    return copy


def main_func(module: ir.Module) -> ir.Operation:
    for op in module.body.operations:
        op = op.operation
        if op.name == "func.func" and ir.StringAttr(op.attributes["sym_name"]).value == "main":
            return op
    raise QCError("module has no @main")


def _hex_double(value: float) -> str:
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", value))[0]


def _portable_llvm_ir(text: str) -> str:
    """Spell float constants the way every LLVM version parses them.

    The bindings' LLVM prints ``f0x3F800000`` and shortest decimals for
    ``float`` (inexact as doubles); llvmlite's parser wants the double-width
    hex form, and neither ``+qnan`` nor ``-inf``.  A bare decimal's type is
    that of its line (float unless the line mentions double)."""
    def hexfloat(m):
        bits = bytes.fromhex(m.group(1))[::-1]
        return _hex_double(float(np.frombuffer(bits, np.float32)[0]))

    def typed(m):
        value = float(m.group(2))
        if m.group(1) == "float":
            value = float(np.float32(value))
        return f"{m.group(1)} {_hex_double(value)}"

    def line(text_line: str) -> str:
        is_float = "float" in text_line and "double" not in text_line
        text_line = re.sub(r"\b(float|double) ([-+]?(?:inf|nan))\b", typed, text_line)
        # newer LLVM also prints special values apart from their type: fmul float %x, +qnan
        text_line = re.sub(r"(?<![\w.%@])([-+])([qs]?nan|inf)\b",
                           lambda m: _hex_double(float(m.group(1) + m.group(2).lstrip("qs"))), text_line)
        return re.sub(r"(?<![\w.])(-?[0-9]+\.[0-9]+e[-+][0-9]+)\b",
                      lambda m: _hex_double(float(np.float32(m.group(1))) if is_float else float(m.group(1))),
                      text_line)

    text = re.sub(r"\bf0x([0-9A-Fa-f]{8})\b", hexfloat, text)
    return "\n".join(line(t) if "e+" in t or "e-" in t or "inf" in t or "nan" in t else t for t in text.split("\n"))


def to_llvm_ir(module: ir.Module) -> str:
    return _portable_llvm_ir(str(translate_module_to_llvmir(module.operation)))


def host_cpu() -> tuple[str, str]:
    import llvmlite.binding as llvm

    return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()


SPLIT_OPS = 20_000  # below this many LLVM-dialect ops a worker's start costs more than it saves


def split_units(module: ir.Module, count: int) -> list[ir.Module]:
    """An LLVM-dialect ``module`` as up to ``count`` modules for LLVM to compile side by side.

    Its public functions (entries with their C-interface wrappers, kernels) are dealt out by size,
    the largest first, each to the unit with the fewest ops so far; a unit defines its share and
    the private functions they reach, and declares the other units' functions it calls.  A module
    of fewer than ``SPLIT_OPS`` ops stays one unit."""

    def funcs(m: ir.Module) -> dict[str, ir.Operation]:
        return {ir.StringAttr(op.operation.attributes["sym_name"]).value: op.operation
                for op in m.body.operations if op.operation.name == "llvm.func"}

    def is_private(op: ir.Operation) -> bool:
        return "linkage" in op.attributes and str(op.attributes["linkage"]) in ("#llvm.linkage<private>",
                                                                                 "#llvm.linkage<internal>")

    def size(op: ir.Operation) -> int:  # LLVM-dialect functions are flat: ops of their blocks
        return sum(len(block.operations) for block in op.regions[0].blocks)

    defined = {n: op for n, op in funcs(module).items() if len(op.regions[0].blocks)}
    groups: dict[str, list[str]] = {}  # an entry's C-interface wrapper goes with it
    for name, op in defined.items():
        if not is_private(op):
            groups.setdefault(name.removeprefix("_mlir_ciface_"), []).append(name)
    sizes = {g: sum(size(defined[n]) for n in names) for g, names in groups.items()}
    count = min(count, len(groups))
    if count < 2 or sum(size(op) for op in defined.values()) < SPLIT_OPS:
        return [module]

    def referenced(op: ir.Operation) -> set[str]:
        names = set()

        def visit(inner: ir.Operation) -> ir.WalkResult:
            for key in ("callee", "global_name"):
                if key in inner.attributes:
                    names.add(ir.FlatSymbolRefAttr(inner.attributes[key]).value)
            return ir.WalkResult.ADVANCE

        op.walk(visit)
        return names

    shares: list[list[str]] = [[] for _ in range(count)]
    load = [0] * count
    for g in sorted(groups, key=lambda g: -sizes[g]):
        i = load.index(min(load))
        shares[i] += groups[g]
        load[i] += sizes[g]
    calls = {name: referenced(op) for name, op in defined.items()}
    private = {name for name, op in defined.items() if is_private(op)}
    units = [module] + [copy_module(module) for _ in shares[1:]]
    with module.context:
        for unit, share in zip(units, shares):
            keep, todo = set(), list(share)
            while todo:  # its functions and the private functions they reach
                name = todo.pop()
                if name not in keep:
                    keep.add(name)
                    todo += [n for n in calls[name] if n in private]
            for name, op in funcs(unit).items():
                if name in keep or name not in defined:
                    continue
                if name not in private:  # another unit defines it
                    attrs = {a.name: a.attr for a in (op.attributes[i] for i in range(len(op.attributes)))}
                    with ir.InsertionPoint(op), op.location:
                        ir.Operation.create("llvm.func", attributes=attrs, regions=1)
                op.erase()
    return units


def emit_objects(llvm_irs: list[str], target: Target) -> list[bytes]:
    """``emit_object`` of each unit, side by side: the first here, the others in worker processes
    (llvmlite lets one thread at a time into LLVM)."""
    import subprocess
    import sys

    from . import llvm_object

    if len(llvm_irs) == 1:
        return [emit_object(llvm_irs[0], target)]
    with tempfile.TemporaryDirectory(prefix="qc-llvm-") as tmp:
        workers = []
        for i, text in enumerate(llvm_irs[1:], 1):
            src, dst = os.path.join(tmp, f"unit{i}.ll"), os.path.join(tmp, f"unit{i}.o")
            with open(src, "w") as f:
                f.write(text)
            workers.append((dst, subprocess.Popen([sys.executable, llvm_object.__file__, src, dst, target.cpu,
                                                   target.features], stderr=subprocess.PIPE, text=True)))
        try:
            objs = [emit_object(llvm_irs[0], target)]
            for dst, proc in workers:
                err = proc.communicate()[1]
                if proc.returncode:
                    raise QCError(f"internal error: LLVM failed on a unit of the generated IR (a qc bug; please "
                                  f"report it): {err.strip()}")
                with open(dst, "rb") as f:
                    objs.append(f.read())
        finally:
            for _, proc in workers:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    return objs


def emit_object(llvm_ir: str, target: Target) -> bytes:
    """O3-optimise ``llvm_ir`` for ``target`` and emit a PIC object."""
    from .llvm_object import emit

    try:
        return emit(llvm_ir, target.cpu, target.features)
    except RuntimeError as err:  # a bug of qc's, not the user's: said as such, with LLVM's words
        raise QCError(f"internal error: LLVM rejected the generated IR (a qc bug; please report it): {err}") from None
