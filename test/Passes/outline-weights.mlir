// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-outline-weights{min-elements=4})' | FileCheck %s

// A dense constant at or above the threshold moves to the store.
// CHECK-LABEL: func.func @large
// CHECK: %[[W:.*]] = "qc.weight"() {name = @w} : () -> tensor<2x2xf32>
// CHECK-NOT: arith.constant dense
// CHECK: return %[[W]]
func.func @large() -> tensor<2x2xf32> {
  %c = arith.constant dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>
  return %c : tensor<2x2xf32>
}

// -----

// Small constants and splats stay inline.
// CHECK-LABEL: func.func @small_and_splat
// CHECK: arith.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
// CHECK: arith.constant dense<5.000000e-01> : tensor<8x8xf32>
// CHECK-NOT: qc.weight
func.func @small_and_splat() -> (tensor<2xf32>, tensor<8x8xf32>) {
  %a = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %b = arith.constant dense<0.5> : tensor<8x8xf32>
  return %a, %b : tensor<2xf32>, tensor<8x8xf32>
}

// -----

// Names come from the constant's location, made unique.
// CHECK-LABEL: func.func @named
// CHECK: "qc.weight"() {name = @fc1.weight}
// CHECK: "qc.weight"() {name = @fc1.weight_1}
func.func @named() -> (tensor<4xf32>, tensor<4xf32>) {
  %a = arith.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32> loc("fc1.weight")
  %b = arith.constant dense<[5.0, 2.0, 3.0, 4.0]> : tensor<4xf32> loc("fc1.weight")
  return %a, %b : tensor<4xf32>, tensor<4xf32>
}
