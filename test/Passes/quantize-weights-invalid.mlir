// RUN: qc-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(qc-outline-weights{min-elements=1}, qc-quantize-weights{method=gptq scheme=w8a16})'

// GPTQ needs the layer's input Hessian from calibration.
func.func @no_statistics(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
  %w = arith.constant dense<[[-0.67, 0.16, -0.83, 2.35, -0.70, -0.45, -1.07, -0.35], [-0.01, 0.77, -0.61, -0.19, -1.42, -0.83, 2.76, 1.04], [-0.78, -1.34, -0.98, -0.02, 0.03, -0.74, -1.29, 1.42], [0.45, -0.37, -0.22, -0.53, -2.94, 0.12, -1.07, -1.00]]> : tensor<4x8xf32> loc("w")
  // expected-error@below {{qc-quantize-weights: method=gptq needs calibration statistics with the input Hessian for layer 'w'}}
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

func.func @bad_scheme(%x: tensor<2x8xf32>) -> tensor<2x4xf32> {
  %w = arith.constant dense<[[-0.67, 0.16, -0.83, 2.35, -0.70, -0.45, -1.07, -0.35], [-0.01, 0.77, -0.61, -0.19, -1.42, -0.83, 2.76, 1.04], [-0.78, -1.34, -0.98, -0.02, 0.03, -0.74, -1.29, 1.42], [0.45, -0.37, -0.22, -0.53, -2.94, 0.12, -1.07, -1.00]]> : tensor<4x8xf32> loc("w")
  // expected-error@below {{unknown scheme 'w5a16'}}
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>, qc.scheme = #qc.scheme<"w5a16", "sym">} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}
