// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-reassociate-reductions)' | FileCheck %s

// A row sum: the add that takes the accumulator becomes reassociable, so LLVM can keep
// partial sums in vector lanes.
// CHECK-LABEL: func.func @row_sum
// CHECK: linalg.generic
// CHECK: arith.addf %{{.*}}, %{{.*}} fastmath<reassoc> : f32
func.func @row_sum(%x: memref<4x384xf32>, %s: memref<4xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<4x384xf32>) outs(%s : memref<4xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %0 = arith.addf %in, %acc : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// Only the combining op: the term |x| is computed exactly as before.
// CHECK-LABEL: func.func @absmax
// CHECK: %[[A:.*]] = math.absf %{{.*}} : f32
// CHECK-NEXT: arith.maximumf %[[A]], %{{.*}} fastmath<reassoc> : f32
func.func @absmax(%x: memref<4x384xf32>, %m: memref<4xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<4x384xf32>) outs(%m : memref<4xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %0 = math.absf %in : f32
    %1 = arith.maximumf %0, %acc : f32
    linalg.yield %1 : f32
  }
  return
}

// -----

// Elementwise ops are left alone: no accumulator, nothing to reorder.
// CHECK-LABEL: func.func @elementwise
// CHECK-NOT: fastmath
func.func @elementwise(%x: memref<4x384xf32>, %y: memref<4x384xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<4x384xf32>) outs(%y : memref<4x384xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.addf %in, %out : f32
    linalg.yield %0 : f32
  }
  return
}
