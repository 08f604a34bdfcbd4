// RUN: python %S/Inputs/smooth_inputs.py write %t
// RUN: qc-opt %s --weights %t.safetensors --stats %t.npz --qc-smooth='alpha=0.5' -o %t.out.mlir --weights-out %t.out.safetensors
// RUN: FileCheck %s < %t.out.mlir
// RUN: python %S/Inputs/smooth_inputs.py check %t.safetensors %t.out.safetensors | FileCheck %s --check-prefix=STORE

// q and k share fc1's output: their columns are multiplied by s and fc1's rows (and bias) divided
// by it, new store entries; fc1 itself reads a function argument, so nothing can absorb its 1/s
// and it keeps its weight.  No op is added.
// CHECK-LABEL: func.func @main
// CHECK-DAG: %[[W1:.*]] = "qc.weight"() {name = @fc1.smoothed}
// CHECK-DAG: %[[B1:.*]] = arith.constant dense<{{.*}}> : tensor<8xf32>
// CHECK: %[[H:.*]] = "qc.linear"(%arg0, %[[W1]], %[[B1]])
// CHECK: %[[WQ:.*]] = "qc.weight"() {name = @q.smoothed}
// CHECK: "qc.linear"(%[[H]], %[[WQ]])
// CHECK: %[[WK:.*]] = "qc.weight"() {name = @k.smoothed}
// CHECK: "qc.linear"(%[[H]], %[[WK]])
// CHECK-NOT: linalg.generic
// STORE: largest factor on channel 3
// STORE: k scaled like q: True
// STORE: fc1 rows divided by s: True
func.func @main(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %w1 = "qc.weight"() {name = @fc1} : () -> tensor<8x8xf32>
  %b1 = "qc.weight"() {name = @fc1.bias} : () -> tensor<8xf32>
  %h = "qc.linear"(%x, %w1, %b1) {operandSegmentSizes = array<i32: 1, 1, 1>, qc.scheme = #qc.scheme<"w8a8", "sym">} : (tensor<4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %wq = "qc.weight"() {name = @q} : () -> tensor<8x8xf32>
  %wk = "qc.weight"() {name = @k} : () -> tensor<8x8xf32>
  %q = "qc.linear"(%h, %wq) {operandSegmentSizes = array<i32: 1, 1, 0>, qc.scheme = #qc.scheme<"w8a8", "sym">} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %k = "qc.linear"(%h, %wk) {operandSegmentSizes = array<i32: 1, 1, 0>, qc.scheme = #qc.scheme<"w8a8", "sym">} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  return %q, %k : tensor<4x8xf32>, tensor<4x8xf32>
}
