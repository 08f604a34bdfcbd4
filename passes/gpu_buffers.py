"""qc-gpu-buffers: the host code's buffers -> ``gpu.alloc host_shared`` / ``gpu.dealloc``.

In a GPU model every op runs as a kernel (qc-gpu-map), so each buffer the entry functions allocate
is read and written on the device; ``gpu-to-llvm`` turns these into the runtime's ``mgpuMemAlloc`` /
``mgpuMemFree`` (runtime/qc_cuda.c: CUDA managed memory, which the host may also touch):

    %b = memref.alloc() {alignment = 64 : i64} : memref<4x10xf32>   ...   memref.dealloc %b
becomes
    %b = gpu.alloc host_shared () : memref<4x10xf32>                 ...   gpu.dealloc %b

Constants the compiler kept as globals (a padded bias, a small table) are the library's static data,
which a kernel cannot read; each is copied into managed memory by the host before the kernels run,
freed at the function's end:

    %g = memref.get_global @__constant_3x32xf32 : memref<3x32xf32>
becomes
    %g = gpu.alloc host_shared () : memref<3x32xf32>
    %0 = memref.get_global @__constant_3x32xf32 : memref<3x32xf32>
    memref.copy %0, %g : memref<3x32xf32> to memref<3x32xf32>       ...   gpu.dealloc %g  (before each return)
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import gpu, memref

from .base import ModulePass, PassState, walk_ops
from .matchers import enclosing_func


class GpuBuffers(ModulePass):
    NAME = "qc-gpu-buffers"
    SUMMARY = "Allocate the host code's static buffers with gpu.alloc host_shared (freed with gpu.dealloc)"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in walk_ops(module, "memref.alloc"):
            t = ir.MemRefType(op.results[0].type)
            if not t.has_static_shape or len(op.operands):
                continue
            with ir.InsertionPoint(op), op.location:
                buffer = gpu.AllocOp(t, None, [], [], [], hostShared=True).result
            op.results[0].replace_all_uses_with(buffer)
            op.erase()
        for op in walk_ops(module, "memref.get_global"):
            t = ir.MemRefType(op.results[0].type)
            with ir.InsertionPoint(op), op.location:
                buffer = gpu.AllocOp(t, None, [], [], [], hostShared=True).result
                memref.copy(memref.get_global(t, ir.FlatSymbolRefAttr(op.attributes["name"]).value), buffer)
            op.results[0].replace_all_uses_with(buffer)
            fn = enclosing_func(buffer.owner)
            for ret in walk_ops(fn, "func.return"):
                with ir.InsertionPoint(ret), ret.location:
                    gpu.DeallocOp(None, [], buffer)
            op.erase()
        for op in walk_ops(module, "memref.dealloc"):
            if producer_is_gpu_alloc(op.operands[0]):
                with ir.InsertionPoint(op), op.location:
                    gpu.DeallocOp(None, [], op.operands[0])
                op.erase()


def producer_is_gpu_alloc(value: ir.Value) -> bool:
    owner = value.owner
    return not isinstance(owner, ir.Block) and owner.name == "gpu.alloc"
