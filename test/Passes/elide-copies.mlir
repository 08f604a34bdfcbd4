// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-elide-copies)' | FileCheck %s

// Results are computed in their out-parameters: the local buffers become reinterpret casts of
// %out0 / %out1 and the final copies go.  The copies out of the shared zero-filled buffer
// become fills, and that buffer, left unused, goes too.
// CHECK-LABEL: func.func @two_results
// CHECK-SAME: (%[[X:.*]]: memref<4x64xf32>, %[[O0:.*]]: memref<4x64xf32>, %[[O1:.*]]: memref<4x64xf32>)
// CHECK-NOT: memref.alloc
// CHECK: %[[R0:.*]] = memref.reinterpret_cast %[[O0]] to offset: [0], sizes: [4, 2, 32], strides: [64, 32, 1] : memref<4x64xf32> to memref<4x2x32xf32>
// CHECK-NEXT: linalg.fill ins(%{{.*}} : f32) outs(%[[R0]] : memref<4x2x32xf32>)
// CHECK-NEXT: call @kernel(%[[X]], %[[R0]])
// CHECK-NEXT: %[[R1:.*]] = memref.reinterpret_cast %[[O1]]
// CHECK-NEXT: linalg.fill ins(%{{.*}} : f32) outs(%[[R1]] : memref<4x2x32xf32>)
// CHECK-NEXT: call @kernel(%[[X]], %[[R1]])
// CHECK-NOT: memref.copy
// CHECK-NOT: memref.dealloc
func.func @two_results(%x: memref<4x64xf32>, %out0: memref<4x64xf32>, %out1: memref<4x64xf32>) {
  %c0 = arith.constant 0.0 : f32
  %zeros = memref.alloc() : memref<4x2x32xf32>
  linalg.fill ins(%c0 : f32) outs(%zeros : memref<4x2x32xf32>)
  %a = memref.alloc() : memref<4x2x32xf32>
  memref.copy %zeros, %a : memref<4x2x32xf32> to memref<4x2x32xf32>
  call @kernel(%x, %a) : (memref<4x64xf32>, memref<4x2x32xf32>) -> ()
  %b = memref.alloc() : memref<4x2x32xf32>
  memref.copy %zeros, %b : memref<4x2x32xf32> to memref<4x2x32xf32>
  call @kernel(%x, %b) : (memref<4x64xf32>, memref<4x2x32xf32>) -> ()
  %va = memref.collapse_shape %a [[0], [1, 2]] : memref<4x2x32xf32> into memref<4x64xf32>
  memref.copy %va, %out0 : memref<4x64xf32> to memref<4x64xf32>
  %vb = memref.collapse_shape %b [[0], [1, 2]] : memref<4x2x32xf32> into memref<4x64xf32>
  memref.copy %vb, %out1 : memref<4x64xf32> to memref<4x64xf32>
  memref.dealloc %zeros : memref<4x2x32xf32>
  memref.dealloc %a : memref<4x2x32xf32>
  memref.dealloc %b : memref<4x2x32xf32>
  return
}
func.func private @kernel(memref<4x64xf32>, memref<4x2x32xf32>)

// -----

// Kept: the buffer is written again after it was copied out, and the out-parameter is also
// read (it is not only a result).
// CHECK-LABEL: func.func @still_needed
// CHECK: %[[A:.*]] = memref.alloc
// CHECK: memref.copy %[[A]], %arg1
// CHECK: call @kernel(%arg0, %[[A]])
// CHECK: memref.copy %[[A]], %arg2
// CHECK: call @reader(%arg2)
func.func @still_needed(%x: memref<4x64xf32>, %out: memref<4x64xf32>, %inout: memref<4x64xf32>) {
  %a = memref.alloc() : memref<4x64xf32>
  call @kernel(%x, %a) : (memref<4x64xf32>, memref<4x64xf32>) -> ()
  memref.copy %a, %out : memref<4x64xf32> to memref<4x64xf32>
  call @kernel(%x, %a) : (memref<4x64xf32>, memref<4x64xf32>) -> ()
  memref.copy %a, %inout : memref<4x64xf32> to memref<4x64xf32>
  call @reader(%inout) : (memref<4x64xf32>) -> ()
  memref.dealloc %a : memref<4x64xf32>
  return
}
func.func private @kernel(memref<4x64xf32>, memref<4x64xf32>)
func.func private @reader(memref<4x64xf32>)

// -----

// A filled buffer that a kernel then writes is copied as it is, not replaced by the fill.
// CHECK-LABEL: func.func @written_after_fill
// CHECK: linalg.fill
// CHECK: call @kernel
// CHECK: memref.copy %[[Z:.*]], %[[D:.*]] :
// CHECK-NOT: linalg.fill
func.func @written_after_fill(%x: memref<4x64xf32>) -> f32 {
  %c0 = arith.constant 0.0 : f32
  %i = arith.constant 0 : index
  %z = memref.alloc() : memref<4x64xf32>
  linalg.fill ins(%c0 : f32) outs(%z : memref<4x64xf32>)
  call @kernel(%x, %z) : (memref<4x64xf32>, memref<4x64xf32>) -> ()
  %d = memref.alloc() : memref<4x64xf32>
  memref.copy %z, %d : memref<4x64xf32> to memref<4x64xf32>
  %v = memref.load %d[%i, %i] : memref<4x64xf32>
  memref.dealloc %z : memref<4x64xf32>
  memref.dealloc %d : memref<4x64xf32>
  return %v : f32
}
func.func private @kernel(memref<4x64xf32>, memref<4x64xf32>)
