// RUN: python %S/Inputs/smooth_inputs.py write %t
// RUN: qc-opt %s --weights %t.safetensors --stats %t.npz --qc-smooth='alpha=0.5 fallback=true' | FileCheck %s

// The input is a function argument: nothing can absorb 1/s, so with fallback=true an explicit
// multiply by the stored factors comes before the linear, whose columns are scaled.
// CHECK-LABEL: func.func @lone
// CHECK: %[[INV:.*]] = "qc.weight"() {name = @lone.smooth} : () -> tensor<8xf32>
// CHECK: %[[X:.*]] = linalg.generic {{.*}} ins(%arg0, %[[INV]] : tensor<4x8xf32>, tensor<8xf32>)
// CHECK: arith.mulf
// CHECK: %[[W:.*]] = "qc.weight"() {name = @lone.smoothed}
// CHECK: "qc.linear"(%[[X]], %[[W]])
func.func @lone(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %w = "qc.weight"() {name = @lone} : () -> tensor<8x8xf32>
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>, qc.scheme = #qc.scheme<"w8a8", "sym">} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}
