// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-weights-to-args)' | FileCheck %s

// Each distinct weight becomes one trailing argument of @main, in order of first use;
// the order is recorded for the runtime.
// CHECK-LABEL: func.func @main
// CHECK-SAME: (%[[X:.*]]: tensor<4x8xf32>, %[[W:.*]]: tensor<4x8xf32>, %[[V:.*]]: tensor<4x8xf32>)
// CHECK-SAME: attributes {qc.weight_args = ["w", "v"]}
// CHECK-NOT: qc.weight
// CHECK: %[[A:.*]] = arith.addf %[[X]], %[[W]]
// CHECK: %[[B:.*]] = arith.addf %[[A]], %[[V]]
// CHECK: arith.addf %[[B]], %[[W]]
func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<4x8xf32>
  %v = "qc.weight"() {name = @v} : () -> tensor<4x8xf32>
  %w2 = "qc.weight"() {name = @w} : () -> tensor<4x8xf32>
  %a = arith.addf %x, %w : tensor<4x8xf32>
  %b = arith.addf %a, %v : tensor<4x8xf32>
  %c = arith.addf %b, %w2 : tensor<4x8xf32>
  return %c : tensor<4x8xf32>
}

// -----

// A decoder's second entry point gets its own arguments and order; private helpers are no entries.
// CHECK-LABEL: func.func @main
// CHECK-SAME: attributes {qc.weight_args = ["w"]}
// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%{{.*}}: tensor<1x8xf32>, %{{.*}}: tensor<1x8xf32>, %{{.*}}: tensor<4x8xf32>)
// CHECK-SAME: attributes {qc.weight_args = ["b", "w"]}
// CHECK-LABEL: func.func private @helper
// CHECK-NOT: qc.weight_args
func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<4x8xf32>
  %a = arith.addf %x, %w : tensor<4x8xf32>
  return %a : tensor<4x8xf32>
}
func.func @decode(%x: tensor<1x8xf32>) -> (tensor<1x8xf32>, tensor<4x8xf32>) {
  %b = "qc.weight"() {name = @b} : () -> tensor<1x8xf32>
  %w = "qc.weight"() {name = @w} : () -> tensor<4x8xf32>
  %a = arith.addf %x, %b : tensor<1x8xf32>
  return %a, %w : tensor<1x8xf32>, tensor<4x8xf32>
}
func.func private @helper(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}
