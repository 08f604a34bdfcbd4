// RUN: qc-opt %s --pass-pipeline='builtin.module(qc-gpu-buffers)' | FileCheck %s

// A GPU model's host buffers: allocated host-shared on the device, freed there.
// CHECK-LABEL: func.func @buffers
// CHECK: %[[B:.*]] = gpu.alloc  host_shared () : memref<4x10xf32>
// CHECK-NOT: memref.alloc
// CHECK: gpu.dealloc  %[[B]] : memref<4x10xf32>
// CHECK-NOT: memref.dealloc
func.func @buffers(%x: memref<4x10xf32>, %y: memref<4x10xf32>) {
  %b = memref.alloc() {alignment = 64 : i64} : memref<4x10xf32>
  linalg.copy ins(%x : memref<4x10xf32>) outs(%b : memref<4x10xf32>)
  linalg.copy ins(%b : memref<4x10xf32>) outs(%y : memref<4x10xf32>)
  memref.dealloc %b : memref<4x10xf32>
  return
}
