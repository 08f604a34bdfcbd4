"""qc-gpu-shared-allocs: host-shared allocations out of the asynchronous chain that ``gpu-async-region`` made.

``gpu-async-region`` threads one ``!gpu.async.token`` through a function's GPU ops, so that kernels are
queued on a stream one after another and the host waits for them only where it must (a ``gpu.wait``
before a host op with side effects and at the end), not after every launch.  It makes every
``gpu.alloc`` asynchronous too, but ``gpu-to-llvm`` cannot lower a ``host_shared`` one so: the
allocation is the host's (qc_cuda.c's managed memory pool), not work on the stream.  Each becomes
synchronous again, its token replaced by the one it depended on:

    %m, %t1 = gpu.alloc async [%t0] host_shared () : memref<2x37xf32>
    %t2 = gpu.launch_func async [%t1] @k::@k ... args(%m : memref<2x37xf32>)
becomes
    %m = gpu.alloc  host_shared () : memref<2x37xf32>
    %t2 = gpu.launch_func async [%t0] @k::@k ... args(%m : memref<2x37xf32>)

One stream runs everything in order, so a buffer freed (back into the pool) while kernels that read it
are still queued is only handed to kernels queued after them.
"""

from __future__ import annotations

from torch_mlir import ir
from torch_mlir.dialects import gpu

from .base import ModulePass, PassState, walk_ops


class GpuSharedAllocs(ModulePass):
    NAME = "qc-gpu-shared-allocs"
    SUMMARY = "Make gpu-async-region's host_shared gpu.alloc ops synchronous (their tokens replaced by their dependencies)"

    def run(self, module: ir.Operation, state: PassState) -> None:
        for op in walk_ops(module, "gpu.alloc"):
            alloc = op.opview
            if "hostShared" not in op.attributes or alloc.asyncToken is None:
                continue
            deps = list(alloc.asyncDependencies)
            with ir.InsertionPoint(op), op.location:
                token = deps[0] if len(deps) == 1 else gpu.WaitOp(gpu.AsyncTokenType.get(), deps).result
                sync = gpu.AllocOp(alloc.memref.type, None, [], list(alloc.dynamicSizes), list(alloc.symbolOperands),
                                   hostShared=True)
            alloc.memref.replace_all_uses_with(sync.memref)
            alloc.asyncToken.replace_all_uses_with(token)
            op.erase()
