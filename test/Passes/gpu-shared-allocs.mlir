// RUN: qc-opt %s --pass-pipeline='builtin.module(func.func(gpu-async-region), qc-gpu-shared-allocs)' | FileCheck %s

// gpu-async-region chains the launches on one token and waits once at the end; the host-shared
// allocations it made asynchronous are synchronous again, each launch now depending on the token the
// allocation depended on.
// CHECK-LABEL: func.func @two_kernels
// CHECK: %[[T0:.*]] = gpu.wait async
// CHECK: %[[A:.*]] = gpu.alloc  host_shared () : memref<64xf32>
// CHECK: %[[T1:.*]] = gpu.launch_func async [%[[T0]]] @kernels::@fill {{.*}} args(%[[A]] : memref<64xf32>)
// CHECK: %[[B:.*]] = gpu.alloc  host_shared () : memref<64xf32>
// CHECK: %[[T2:.*]] = gpu.launch_func async [%[[T1]]] @kernels::@copy {{.*}} args(%[[A]] : memref<64xf32>, %[[B]] : memref<64xf32>)
// CHECK: %[[T3:.*]] = gpu.dealloc async [%[[T2]]] %[[A]]
// CHECK: %[[T4:.*]] = gpu.dealloc async [%[[T3]]] %[[B]]
// CHECK: gpu.wait [%[[T4]]]
// CHECK-NOT: gpu.wait
// CHECK: return
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @fill(%a: memref<64xf32>) kernel {
      gpu.return
    }
    gpu.func @copy(%a: memref<64xf32>, %b: memref<64xf32>) kernel {
      gpu.return
    }
  }
  func.func @two_kernels() {
    %c1 = arith.constant 1 : index
    %c64 = arith.constant 64 : index
    %a = gpu.alloc host_shared () : memref<64xf32>
    gpu.launch_func @kernels::@fill blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%a : memref<64xf32>)
    %b = gpu.alloc host_shared () : memref<64xf32>
    gpu.launch_func @kernels::@copy blocks in (%c1, %c1, %c1) threads in (%c64, %c1, %c1) args(%a : memref<64xf32>, %b : memref<64xf32>)
    gpu.dealloc %a : memref<64xf32>
    gpu.dealloc %b : memref<64xf32>
    return
  }
}
