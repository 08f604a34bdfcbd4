// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-raise)' | FileCheck %s

#id2 = affine_map<(d0, d1) -> (d0, d1)>
#bias2 = affine_map<(d0, d1) -> (d1)>

// matmul with a [K, N] weight plus a bias add: one qc.linear, weight transposed in the store.
// CHECK-LABEL: func.func @matmul_bias
// CHECK-SAME: (%[[X:.*]]: tensor<4x8xf32>, %[[B:.*]]: tensor<16xf32>)
// CHECK: %[[W:.*]] = "qc.weight"() {name = @w.nk} : () -> tensor<16x8xf32>
// CHECK: %[[Y:.*]] = "qc.linear"(%[[X]], %[[W]], %[[B]])
// CHECK-NOT: linalg.matmul
// CHECK-NOT: linalg.generic
// CHECK: return %[[Y]]
func.func @matmul_bias(%x: tensor<4x8xf32>, %b: tensor<16xf32>) -> tensor<4x16xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<8x16xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<4x8xf32>, tensor<8x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  %y = linalg.generic {indexing_maps = [#id2, #bias2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%mm, %b : tensor<4x16xf32>, tensor<16xf32>) outs(%e : tensor<4x16xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %s = arith.addf %a, %c : f32
    linalg.yield %s : f32
  } -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}

// -----

// nn.Linear as PyTorch lowers it: transpose of an [N, K] weight; no store rewrite.
// CHECK-LABEL: func.func @transposed_weight
// CHECK: %[[W:.*]] = "qc.weight"() {name = @w} : () -> tensor<16x8xf32>
// CHECK: "qc.linear"(%{{.*}}, %[[W]]) {operandSegmentSizes = array<i32: 1, 1, 0>}
// CHECK-NOT: linalg.transpose
func.func @transposed_weight(%x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<16x8xf32>
  %et = tensor.empty() : tensor<8x16xf32>
  %wt = linalg.transpose ins(%w : tensor<16x8xf32>) outs(%et : tensor<8x16xf32>) permutation = [1, 0]
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %mm = linalg.matmul ins(%x, %wt : tensor<4x8xf32>, tensor<8x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %mm : tensor<4x16xf32>
}

// -----

#bcast = affine_map<(d0, d1, d2) -> (d1, d2)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>

// ONNX MatMul on a 3-D activation: batch_matmul against a broadcast weight.
// CHECK-LABEL: func.func @batch_matmul_broadcast
// CHECK: "qc.linear"(%{{.*}}, %{{.*}}) {{.*}} : (tensor<1x4x8xf32>, tensor<16x8xf32>) -> tensor<1x4x16xf32>
// CHECK-NOT: linalg.batch_matmul
func.func @batch_matmul_broadcast(%x: tensor<1x4x8xf32>) -> tensor<1x4x16xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<8x16xf32>
  %eb = tensor.empty() : tensor<1x8x16xf32>
  %wb = linalg.generic {indexing_maps = [#bcast, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%w : tensor<8x16xf32>) outs(%eb : tensor<1x8x16xf32>) {
  ^bb0(%in: f32, %o: f32):
    linalg.yield %in : f32
  } -> tensor<1x8x16xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x4x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<1x4x16xf32>) -> tensor<1x4x16xf32>
  %mm = linalg.batch_matmul ins(%x, %wb : tensor<1x4x8xf32>, tensor<1x8x16xf32>) outs(%acc : tensor<1x4x16xf32>) -> tensor<1x4x16xf32>
  return %mm : tensor<1x4x16xf32>
}

// -----

// Not raised: the right-hand side is an activation, not a weight.
// CHECK-LABEL: func.func @activation_rhs
// CHECK: linalg.matmul
// CHECK-NOT: qc.linear
func.func @activation_rhs(%x: tensor<4x8xf32>, %y: tensor<8x16xf32>) -> tensor<4x16xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x16xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<4x16xf32>) -> tensor<4x16xf32>
  %mm = linalg.matmul ins(%x, %y : tensor<4x8xf32>, tensor<8x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %mm : tensor<4x16xf32>
}

// -----

// Not raised: the accumulator is not zero, so the matmul is not a plain linear.
// CHECK-LABEL: func.func @nonzero_accumulator
// CHECK: linalg.matmul
// CHECK-NOT: qc.linear
func.func @nonzero_accumulator(%x: tensor<4x8xf32>, %acc: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<8x16xf32>
  %mm = linalg.matmul ins(%x, %w : tensor<4x8xf32>, tensor<8x16xf32>) outs(%acc : tensor<4x16xf32>) -> tensor<4x16xf32>
  return %mm : tensor<4x16xf32>
}
