// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-gpu-buffers)' | FileCheck %s

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

// -----

// A constant global (the library's static data, which a kernel cannot read): copied into a host-shared
// buffer that its readers take instead, freed before the return.
// CHECK-LABEL: func.func @constant
// CHECK: %[[C:.*]] = gpu.alloc  host_shared () : memref<3xf32>
// CHECK: %[[G:.*]] = memref.get_global @bias : memref<3xf32>
// CHECK: memref.copy %[[G]], %[[C]]
// CHECK: linalg.add ins(%arg0, %[[C]] : memref<3xf32>, memref<3xf32>)
// CHECK: gpu.dealloc  %[[C]] : memref<3xf32>
// CHECK-NEXT: return
memref.global "private" constant @bias : memref<3xf32> = dense<[1.0, 2.0, 3.0]>
func.func @constant(%x: memref<3xf32>, %y: memref<3xf32>) {
  %g = memref.get_global @bias : memref<3xf32>
  linalg.add ins(%x, %g : memref<3xf32>, memref<3xf32>) outs(%y : memref<3xf32>)
  return
}
