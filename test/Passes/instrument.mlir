// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-instrument)' | FileCheck %s
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-instrument{export=true})' | FileCheck %s --check-prefix=EXPORT

// One probe per distinct linear input, named after the first layer reading it:
// q and k share theirs.
// CHECK-LABEL: func.func @main
// CHECK: %[[P:.*]] = "qc.observe"(%arg0) {id = "q"}
// CHECK: "qc.linear"(%[[P]], %{{.*}})
// CHECK: "qc.linear"(%[[P]], %{{.*}})
// CHECK: %[[P2:.*]] = "qc.observe"(%{{.*}}) {id = "o"}
// CHECK: "qc.linear"(%[[P2]], %{{.*}})
// CHECK-NOT: qc.observe

// Exported: no probe stays; the observed values become extra results, in order,
// with the layers reading each recorded on the function.
// EXPORT-LABEL: func.func @main
// EXPORT-SAME: -> (tensor<4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>)
// EXPORT-SAME: qc.observed = {{\[\[}}"q", "k"], ["o"]]
// EXPORT-NOT: qc.observe
// EXPORT: %[[Q:.*]] = "qc.linear"(%arg0
// EXPORT: %[[K:.*]] = "qc.linear"(%arg0
// EXPORT: %[[S:.*]] = arith.addf %[[Q]], %[[K]]
// EXPORT: %[[O:.*]] = "qc.linear"(%[[S]]
// EXPORT: return %[[O]], %arg0, %[[S]]
func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %wq = "qc.weight"() {name = @q} : () -> tensor<8x8xf32>
  %wk = "qc.weight"() {name = @k} : () -> tensor<8x8xf32>
  %wo = "qc.weight"() {name = @o} : () -> tensor<8x8xf32>
  %q = "qc.linear"(%x, %wq) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %k = "qc.linear"(%x, %wk) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %s = arith.addf %q, %k : tensor<4x8xf32>
  %o = "qc.linear"(%s, %wo) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  return %o : tensor<4x8xf32>
}
