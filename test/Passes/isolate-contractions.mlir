// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-isolate-contractions)' | FileCheck %s
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-isolate-contractions, func.func(linalg-fuse-elementwise-ops), inline)' | FileCheck %s --check-prefix=FUSED

// Each named contraction moves into a private function behind a call; its init stays outside.
// CHECK-LABEL: func.func @two_contractions
// CHECK: %[[FILL:.*]] = linalg.fill
// CHECK: call @[[BMM:qc_contraction_[0-9]+]](%arg0, %arg1, %[[FILL]]) : (tensor<2x4x8xf32>, tensor<2x8x4xf32>, tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
// CHECK: call @[[MM:qc_contraction_[0-9]+]](%arg2, %arg3, %{{.*}}) : (tensor<3x5xf32>, tensor<5x6xf32>, tensor<3x6xf32>) -> tensor<3x6xf32>
// CHECK-DAG: func.func private @[[MM]](%{{.*}}: tensor<3x5xf32>, %{{.*}}: tensor<5x6xf32>, %{{.*}}: tensor<3x6xf32>) -> tensor<3x6xf32>
// CHECK-DAG: func.func private @[[BMM]](%{{.*}}: tensor<2x4x8xf32>, %{{.*}}: tensor<2x8x4xf32>, %{{.*}}: tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
func.func @two_contractions(%q: tensor<2x4x8xf32>, %k: tensor<2x8x4xf32>, %x: tensor<3x5xf32>, %y: tensor<5x6xf32>) -> (tensor<2x4x4xf32>, tensor<3x6xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x4x4xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  %s = linalg.batch_matmul ins(%q, %k : tensor<2x4x8xf32>, tensor<2x8x4xf32>) outs(%acc : tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
  %e2 = tensor.empty() : tensor<3x6xf32>
  %acc2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<3x6xf32>) -> tensor<3x6xf32>
  %m = linalg.matmul ins(%x, %y : tensor<3x5xf32>, tensor<5x6xf32>) outs(%acc2 : tensor<3x6xf32>) -> tensor<3x6xf32>
  return %s, %m : tensor<2x4x4xf32>, tensor<3x6xf32>
}

// -----

// Softmax's division feeding P.V through a reshape: fusion would fold the reshape
// into the batch_matmul and the division into its inner loop; isolated, it stays a
// named batch_matmul on the divided, collapsed tensor.
// FUSED-LABEL: func.func @divide_then_matmul
// FUSED: %[[DIV:.*]] = linalg.generic
// FUSED: arith.divf
// FUSED: %[[P:.*]] = tensor.collapse_shape %[[DIV]]
// FUSED: linalg.batch_matmul ins(%[[P]], %{{.*}} : tensor<2x4x4xf32>, tensor<2x4x8xf32>)
// FUSED-NOT: call
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @divide_then_matmul(%p: tensor<1x2x4x4xf32>, %d: tensor<1x2x4x4xf32>, %v: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
  %e = tensor.empty() : tensor<1x2x4x4xf32>
  %q = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%p, %d : tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) outs(%e : tensor<1x2x4x4xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %r = arith.divf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<1x2x4x4xf32>
  %q3 = tensor.collapse_shape %q [[0, 1], [2], [3]] : tensor<1x2x4x4xf32> into tensor<2x4x4xf32>
  %zero = arith.constant 0.0 : f32
  %e2 = tensor.empty() : tensor<2x4x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e2 : tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  %o = linalg.batch_matmul ins(%q3, %v : tensor<2x4x4xf32>, tensor<2x4x8xf32>) outs(%acc : tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  return %o : tensor<2x4x8xf32>
}
