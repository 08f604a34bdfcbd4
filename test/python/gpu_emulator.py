"""A GPU model's kernels run on the CPU, for tests on machines without a GPU.

The kernels' LLVM IR (``qc-compile --target cuda --emit nvvm``: the IR that llvmlite's NVPTX target
turns into the model's PTX) is compiled for the host instead: the NVPTX intrinsics it calls (thread
and block ids, barriers, warp shuffles) become calls of ``test/c/gpu_emu.c``, which runs a launch's
blocks and threads (as fibers where the kernel synchronizes), and each kernel gets a
``<kernel>__emu(void **params)`` entry taking the arguments as ``cuLaunchKernel`` is given them.
``test/c/mock_libcuda.c`` runs every launch through it when ``MOCK_CUDA_KERNELS`` names the library.

What this checks is everything of the GPU path but the NVPTX backend and the driver's JIT (ptxas
assembles the same PTX in test_gpu.py): the kernels' logic and indexing, the launches' grids, the
host code, the runtime and the glue.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SREG = re.compile(r"@llvm\.nvvm\.read\.ptx\.sreg\.(tid|ctaid|ntid|nctaid)\.([xyz])\b")
# NVPTX intrinsics -> (result, the emulator's function, its parameters, whether threads wait in it)
INTRINSICS = {"llvm.nvvm.barrier0": ("void", "qc_emu_barrier", "", True),
              "llvm.nvvm.barrier.cta.sync.aligned.all": ("void", "qc_emu_barrier_n", "i32", True),
              "llvm.nvvm.shfl.sync.bfly.f32": ("float", "qc_emu_shfl_bfly_f32", "i32, float, i32, i32", True),
              "llvm.nvvm.shfl.sync.down.f32": ("float", "qc_emu_shfl_down_f32", "i32, float, i32, i32", True),
              "llvm.nvvm.shfl.sync.idx.f32": ("float", "qc_emu_shfl_idx_f32", "i32, float, i32, i32", True),
              "llvm.nvvm.idp4a.u.s": ("i32", "qc_emu_dp4a_u_s", "i32, i32, i32", False),
              "llvm.nvvm.idp4a.s.s": ("i32", "qc_emu_dp4a_s_s", "i32, i32, i32", False)}


def _split_params(text: str) -> list[str]:
    """The types of a ``define``'s parameter list (``ptr noalias %0, i64 %1`` -> ``ptr``, ``i64``)."""
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(text):
        depth += ch in "([{<"
        depth -= ch in ")]}>"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    types = []
    for part in (p.strip() for p in parts if p.strip()):
        m = re.match(r"(ptr(?: addrspace\(\d+\))?|[a-z0-9]+)\b", part)
        types.append(m.group(1))
    return types


def host_llvm_ir(device_ir: str) -> str:
    """``device_ir`` with its NVPTX intrinsics calls of gpu_emu.c and a ``__emu`` entry per kernel."""
    lines, kernels = [], []
    for line in device_ir.split("\n"):
        if line.startswith("declare") and ("@llvm.nvvm." in line):
            continue  # declared again below under the emulator's names
        line = SREG.sub(lambda m: f"@qc_emu_{m.group(1)}_{m.group(2)}", line)
        for intrinsic, (_, name, _, _) in INTRINSICS.items():
            line = line.replace(f"@{intrinsic}(", f"@{name}(")
        unknown = re.search(r"@(llvm\.nvvm\.[\w.]+)", line)
        if unknown:
            raise ValueError(f"the GPU emulator has no code for {unknown.group(1)}")
        kernel = re.match(r"define ptx_kernel void @(\w+)\((.*)\)", line)
        if kernel:
            kernels.append([kernel.group(1), _split_params(kernel.group(2)), False])
            line = line.replace("define ptx_kernel void", "define void", 1)
        if kernels and any(f"@{name}(" in line for _, name, _, syncs in INTRINSICS.values() if syncs):
            kernels[-1][2] = True  # (kernels are whole: NVPTX IR from MLIR calls no other function that syncs)
        lines.append(line)
    lines += [f"declare i32 @qc_emu_{r}_{d}()" for r in ("tid", "ctaid", "ntid", "nctaid") for d in "xyz"]
    lines += [f"declare {ret} @{name}({args})" for ret, name, args, _ in INTRINSICS.values()]
    for name, types, sync in kernels:
        body = [f"@{name}__emu_sync = global i32 {int(sync)}", f"define void @{name}__emu(ptr %args) {{"]
        for i, t in enumerate(types):
            body += [f"  %p{i} = getelementptr ptr, ptr %args, i64 {i}", f"  %a{i} = load ptr, ptr %p{i}",
                     f"  %v{i} = load {t}, ptr %a{i}"]
        body += [f"  call void @{name}({', '.join(f'{t} %v{i}' for i, t in enumerate(types))})", "  ret void", "}"]
        lines += body
    return "\n".join(lines)


def build(device_ir: str, out: Path) -> Path:
    """The kernels of ``device_ir`` as a host shared library at ``out``, linked with gpu_emu.c."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    module = llvm.parse_assembly(host_llvm_ir(device_ir))
    machine = llvm.Target.from_default_triple().create_target_machine(opt=2, reloc="pic", codemodel="default")
    module.triple = llvm.get_default_triple()
    module.data_layout = str(machine.target_data)
    module.verify()
    obj = out.with_suffix(".o")
    obj.write_bytes(machine.emit_object(module))
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", str(REPO / "test" / "c" / "gpu_emu.c"), str(obj), "-o", str(out),
                    "-lm", "-ldl"], check=True)
    os.unlink(obj)
    return out
