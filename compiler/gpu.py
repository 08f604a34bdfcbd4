"""GPU codegen: a bufferized qc graph -> CUDA kernels (PTX) and the host code that launches them.

    linalg (after pre_bufferize + bufferization, as on the CPU)
      -> named ops generalized, libm calls expanded, each op's loops an scf.parallel
      -> qc-gpu-map: each scf.parallel a gpu.launch (1-D grid, one thread per iteration)
      -> gpu-kernel-outlining, the kernels gathered into one gpu.module
      -> gpu-async-region: launches queued on one stream, the host waiting only where it must
      -> device: convert-gpu-to-nvvm -> LLVM IR -> PTX (llvmlite's NVPTX target: the bundled MLIR has none)
         host:   gpu.binary holding the PTX, gpu-to-llvm -> calls of the mgpu* runtime functions
                 (module load, kernel launch, stream sync) that runtime/qc_cuda.c defines over the
                 CUDA driver API, loaded with dlopen when the model first runs on a GPU

The weights and every buffer live in CUDA managed memory (the runtime allocates them so), so the host
code never copies between the two sides: inputs are copied in and outputs out by the model's glue.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import NamedTuple
from pathlib import Path

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import gpu

from ..core.errors import QCError
from ..passes import ExpandMath, GpuAttention, GpuBuffers, GpuLinear, GpuMap, GpuReduce, GpuSharedAllocs, StridedCopies
from ..passes.base import PassState
from ..passes.checks_to_errors import CHECK_FAILED, CHECKS_ATTR
from ..passes.matchers import constant_index
from .codegen import _hex_double

CHIPS = ("sm_70", "sm_75", "sm_80", "sm_86", "sm_89", "sm_90")
DEFAULT_CHIP = "sm_80"

KERNELS = [StridedCopies(contiguous=True), GpuBuffers(), GpuAttention(), GpuLinear(), GpuReduce(), ExpandMath(no_libm=True), "func.func(linalg-generalize-named-ops)",
           "func.func(convert-linalg-to-parallel-loops)", GpuMap(), "func.func(gpu-launch-sink-index-computations)",
           "gpu-kernel-outlining", "canonicalize", "cse", "func.func(gpu-async-region)", GpuSharedAllocs(), "canonicalize"]

DEVICE_TO_NVVM = ("builtin.module(gpu.module(expand-strided-metadata, lower-affine, convert-scf-to-cf, "
                  "convert-gpu-to-nvvm{index-bitwidth=64}), reconcile-unrealized-casts)")

HOST_TO_LLVM = ("builtin.module(convert-scf-to-cf, expand-strided-metadata, lower-affine, "
                "finalize-memref-to-llvm{use-generic-functions}, convert-arith-to-llvm, convert-index-to-llvm, "
                "convert-func-to-llvm, convert-cf-to-llvm, gpu-to-llvm, convert-ub-to-llvm, reconcile-unrealized-casts)")


@dataclass(frozen=True)
class GpuTarget:
    """An NVIDIA GPU by compute capability (``sm_80``: A100, ``sm_90``: H100)."""

    chip: str = DEFAULT_CHIP

    @staticmethod
    def parse(text: str) -> "GpuTarget":
        """``cuda`` or ``cuda:sm_XX``."""
        kind, _, chip = text.partition(":")
        if kind != "cuda" or (chip and chip not in CHIPS):
            raise QCError(f"--target '{text}': give cpu, cuda or cuda:<chip> with a chip of {', '.join(CHIPS)}")
        return GpuTarget(chip or DEFAULT_CHIP)

    @property
    def ptx_version(self) -> str:
        """The PTX ISA version asked of LLVM: 7.8 is the first with sm_90 (CUDA 11.8 drivers read it)."""
        return "+ptx78"


def gather_kernels(module: ir.Module) -> ir.Operation | None:
    """The outlined kernels moved into the first ``gpu.module`` (one PTX module to load, not one per
    op), each renamed after the module it came from (those names are unique; the kernels' own are
    not), the launches pointed at them; that module, or None when there is no kernel."""
    modules = [op.operation for op in module.body.operations if op.operation.name == "gpu.module"]
    if not modules:
        return None
    first, name = modules[0], ir.StringAttr(modules[0].attributes["sym_name"]).value
    body = first.regions[0].blocks[0]
    renamed: dict[tuple[str, str], str] = {}
    with module.context:
        for m in modules:
            origin = ir.StringAttr(m.attributes["sym_name"]).value
            for inner in list(m.regions[0].blocks[0].operations):
                inner = inner.operation
                if inner.name != "gpu.func":
                    continue
                kernel = ir.StringAttr(inner.attributes["sym_name"]).value
                renamed[origin, kernel] = origin if not any(o == origin for o, _ in renamed) else f"{origin}_{kernel}"
                inner.attributes["sym_name"] = ir.StringAttr.get(renamed[origin, kernel])
                if m != first:
                    last = list(body.operations)[-1].operation
                    if last.name == "gpu.module_end":
                        inner.move_before(last)
                    else:
                        inner.move_after(last)
        for m in modules[1:]:
            m.erase()

        def retarget(op: ir.Operation) -> ir.WalkResult:
            if op.name == "gpu.launch_func":
                origin, kernel = ir.SymbolRefAttr(op.attributes["kernel"]).value
                op.attributes["kernel"] = ir.SymbolRefAttr.get([name, renamed[origin, kernel]])
            return ir.WalkResult.ADVANCE

        module.operation.walk(retarget)
    return first


# The libdevice functions convert-gpu-to-nvvm calls for math ops, as the LLVM intrinsics NVPTX has
# instructions for (qc-expand-math has already turned exp, log, tanh, erf, ... into arithmetic): the
# PTX then needs no libdevice, which only the CUDA toolkit ships.
LIBDEVICE = {"fmaf": ("llvm.fma.f32", 3), "floorf": ("llvm.floor.f32", 1), "ceilf": ("llvm.ceil.f32", 1),
             "truncf": ("llvm.trunc.f32", 1), "fabsf": ("llvm.fabs.f32", 1), "sqrtf": ("llvm.sqrt.f32", 1),
             "rintf": ("llvm.rint.f32", 1), "roundf": ("llvm.round.f32", 1), "fminf": ("llvm.minnum.f32", 2),
             "fmaxf": ("llvm.maxnum.f32", 2), "copysignf": ("llvm.copysign.f32", 2),
             "rsqrtf": ("llvm.sqrt.f32", 1),  # (1 / its result)
             "log2f": ("lg2.approx.f32", 1), "logf": ("lg2.approx.f32", 1),  # PTX instructions (2 ulp); logf x ln 2
             "exp2f": ("ex2.approx.f32", 1)}


def _define_libdevice(text: str) -> str:
    """``text`` (LLVM IR) with each libdevice function it declares defined by its intrinsic; a QCError
    names any other."""
    out, intrinsics = [], set(re.findall(r"^declare .*@(llvm\.[\w.]+)\(", text, re.M))
    for line in text.split("\n"):
        declared = re.match(r"declare .*@__nv_(\w+)\(", line)
        if not declared:
            out.append(line)
            continue
        name = declared.group(1)
        if name not in LIBDEVICE:
            raise QCError(f"the GPU path has no code for '{name}' (a math op of the model)")
        intrinsic, arity = LIBDEVICE[name]
        params = ", ".join(f"float %a{i}" for i in range(arity))
        body = [f"  %r = call float @{intrinsic}({params})"]
        if name == "rsqrtf":
            body = [f"  %s = call float @{intrinsic}({params})", "  %r = fdiv float 1.0, %s"]
        elif name in ("log2f", "logf", "exp2f"):  # PTX has them as approximate instructions, LLVM no intrinsic
            body = [f'  %{"r" if name != "logf" else "s"} = call float asm "{intrinsic} $0, $1;", "=f,f"(float %a0)']
            if name == "logf":
                body.append(f"  %r = fmul float %s, {_hex_double(float(np.float32(math.log(2))))}")
        if intrinsic.startswith("llvm.") and intrinsic not in intrinsics:  # (sqrtf and rsqrtf share one)
            intrinsics.add(intrinsic)
            out.append(f"declare float @{intrinsic}({', '.join(['float'] * arity)})")
        out += [f"define internal float @__nv_{name}({params}) alwaysinline {{", *body, "  ret float %r", "}"]
    return "\n".join(out)


def device_llvm_ir(kernels: ir.Operation) -> str:
    """The LLVM IR of ``kernels`` (a gpu.module already in the NVVM dialect): what becomes the PTX,
    its math still calls of libdevice's ``__nv_*`` (``--emit nvvm`` writes it)."""
    from torch_mlir.dialects.llvm import translate_module_to_llvmir

    from .codegen import _portable_llvm_ir

    with kernels.context, kernels.location:
        device = ir.Module.create()
        for op in kernels.regions[0].blocks[0].operations:
            op.operation.clone(ir.InsertionPoint(device.body))
    return _portable_llvm_ir(str(translate_module_to_llvmir(device.operation)))


def to_ptx(device_ir: str, target: GpuTarget) -> str:
    """The PTX of ``device_ir`` (``device_llvm_ir``'s), through llvmlite's NVPTX target."""
    import llvmlite.binding as llvm

    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    parsed = llvm.parse_assembly(_define_libdevice(device_ir))
    machine = llvm.Target.from_triple("nvptx64-nvidia-cuda").create_target_machine(
        cpu=target.chip, features=target.ptx_version, opt=3)
    parsed.triple = "nvptx64-nvidia-cuda"
    parsed.data_layout = str(machine.target_data)
    parsed.verify()
    return machine.emit_assembly(parsed)


def embed(kernels: ir.Operation, ptx: str, target: GpuTarget) -> None:
    """Replace ``kernels`` (a gpu.module) by a ``gpu.binary`` of the same name holding ``ptx``: the host
    code's launches then load it (at the library's start) and run its kernels."""
    with kernels.context, kernels.location:
        # (neither attribute has a Python builder; the op's handler must be given: its printer reads it)
        nvvm_target = ir.Attribute.parse(f'#nvvm.target<chip = "{target.chip}">')
        obj = gpu.ObjectAttr.get(nvvm_target, int(gpu.CompilationTarget.Assembly), ptx.encode() + b"\0")
        with ir.InsertionPoint(kernels):
            gpu.BinaryOp(ir.StringAttr(kernels.attributes["sym_name"]).value, ir.ArrayAttr.get([obj]),
                         offloadingHandler=ir.Attribute.parse("#gpu.select_object<0>"))
    kernels.erase()


def ptxas(ptx: str, chip: str) -> str | None:
    """Assemble ``ptx`` for ``chip`` with ``ptxas`` (the CUDA toolkit's; None when it is not on PATH):
    its complaints, empty when it took the code."""
    tool = shutil.which("ptxas")
    if tool is None:
        return None
    with tempfile.TemporaryDirectory(prefix="qc-ptx-") as tmp:
        src = Path(tmp) / "kernels.ptx"
        src.write_text(ptx)
        done = subprocess.run([tool, f"--gpu-name={chip}", str(src), "-o", str(Path(tmp) / "kernels.cubin")],
                              capture_output=True, text=True)
    return (done.stderr + done.stdout).strip() if done.returncode else ""


def refuse_kernel_checks(kernels: ir.Operation, module: ir.Module) -> None:
    """A QCError naming the first run-time check (qc-checks-to-errors) left inside a kernel: a kernel
    cannot call back into the host to fail the run."""
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == "func.call" and ir.FlatSymbolRefAttr(op.attributes["callee"]).value == CHECK_FAILED:
            found.append(op)
            return ir.WalkResult.INTERRUPT
        return ir.WalkResult.ADVANCE

    kernels.walk(visit)
    if found:
        messages = [ir.StringAttr(m).value for m in ir.ArrayAttr(module.operation.attributes[CHECKS_ATTR])]
        raise QCError("a run-time check inside an op cannot fail a GPU run yet (the CPU target can): "
                      + messages[constant_index(found[0].operands[0])])


class DeviceCode(NamedTuple):
    ptx: str  # "" when there is no kernel
    llvm_ir: str  # the kernels' LLVM IR before PTX emission (``device_llvm_ir``)


def lower_kernels(module: ir.Module, state: PassState, target: GpuTarget) -> DeviceCode:
    """Bufferized ``module`` -> its ops as kernels in a ``gpu.binary`` of PTX for ``target`` and host code
    that launches them (still to lower to LLVM)."""
    from .codegen import run

    run(module, KERNELS, state, "GPU kernel generation")
    kernels = gather_kernels(module)
    if kernels is None:
        return DeviceCode("", "")
    refuse_kernel_checks(kernels, module)
    run(module, DEVICE_TO_NVVM, state, "lowering the kernels to NVVM")
    device_ir = device_llvm_ir(kernels)
    ptx = to_ptx(device_ir, target)
    embed(kernels, ptx, target)
    return DeviceCode(ptx, device_ir)
