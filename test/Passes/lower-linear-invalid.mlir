// RUN: qc-opt %s --verify-diagnostics --pass-pipeline='builtin.module(qc-lower-linear)'

// The weight must be a compile-time constant to be packed.
func.func @weight_not_constant(%x: tensor<4x8xf32>, %w: tensor<16x8xf32>) -> tensor<4x16xf32> {
  // expected-error@below {{qc-lower-linear: qc.linear's weight must be a qc.weight to be lowered}}
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
  return %y : tensor<4x16xf32>
}
