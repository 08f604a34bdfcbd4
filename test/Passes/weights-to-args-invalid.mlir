// RUN: qc-opt %s --split-input-file --verify-diagnostics --pass-pipeline='builtin.module(qc-weights-to-args)'

// The runtime's entry point must be there.
// expected-error@below {{qc-weights-to-args: expected a function @main}}
func.func @not_main(%x: tensor<4xf32>) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = call @helper(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}
func.func private @helper(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error@below {{qc-weights-to-args: qc.weight outside an entry function (@main or a public one); inline helpers first}}
  %w = "qc.weight"() {name = @w} : () -> tensor<4xf32>
  %y = arith.addf %x, %w : tensor<4xf32>
  return %y : tensor<4xf32>
}
