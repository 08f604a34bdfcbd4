// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-lower-linear{panel-width=16})' | FileCheck %s

// A [N, K] weight becomes [ceil(N/16), K, 16] panels; the bias (zero-padded to
// whole panels) initialises the accumulator; the padding is sliced off.
// CHECK-LABEL: func.func @padded_bias
// CHECK-NOT: name = @w}
// CHECK: %[[W:.*]] = "qc.weight"() {name = @w.p16} : () -> tensor<2x8x16xf32>
// CHECK: %[[Y:.*]] = call @[[FN:[a-z0-9_]+]](%arg0, %[[W]], %arg1) : (tensor<2x3x8xf32>, tensor<2x8x16xf32>, tensor<20xf32>) -> tensor<2x3x20xf32>
// CHECK: return %[[Y]]
// CHECK: func.func private @[[FN]](
// CHECK: tensor.pad %{{.*}} low[0] high[12]
// CHECK: tensor.expand_shape %{{.*}} {{\[\[}}0, 1]] output_shape [2, 16]
// CHECK: %[[ACC:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<2x3x2x16xf32>)
// CHECK: %[[MM:.*]] = linalg.generic {{.*}}library_call = "qc_panel_matmul"{{.*}} ins(%arg0, %arg1 : tensor<2x3x8xf32>, tensor<2x8x16xf32>) outs(%[[ACC]] : tensor<2x3x2x16xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: %[[FLAT:.*]] = tensor.collapse_shape %[[MM]] {{\[\[}}0], [1], [2, 3]] : tensor<2x3x2x16xf32> into tensor<2x3x32xf32>
// CHECK: tensor.extract_slice %[[FLAT]][0, 0, 0] [2, 3, 20] [1, 1, 1]
func.func @padded_bias(%x: tensor<2x3x8xf32>, %b: tensor<20xf32>) -> tensor<2x3x20xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<20x8xf32>
  %y = "qc.linear"(%x, %w, %b) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<2x3x8xf32>, tensor<20x8xf32>, tensor<20xf32>) -> tensor<2x3x20xf32>
  return %y : tensor<2x3x20xf32>
}

// -----

// No bias: the accumulator starts at zero; whole panels need no slice.
// CHECK-LABEL: func.func @no_bias
// CHECK: "qc.weight"() {name = @w.p16} : () -> tensor<2x8x16xf32>
// CHECK: func.func private
// CHECK: %[[ACC:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<4x2x16xf32>)
// CHECK: library_call = "qc_panel_matmul"
// CHECK-NOT: tensor.extract_slice
func.func @no_bias(%x: tensor<4x8xf32>) -> tensor<4x32xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<32x8xf32>
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<4x8xf32>, tensor<32x8xf32>) -> tensor<4x32xf32>
  return %y : tensor<4x32xf32>
}

// -----

// Two linears of one shape share one helper; a weight used twice is packed once.
// CHECK-LABEL: func.func @shared
// CHECK-COUNT-1: "qc.weight"() {name = @w.p16}
// CHECK: call @[[FN:[a-z0-9_]+]](
// CHECK: call @[[FN]](
// CHECK-COUNT-1: func.func private
func.func @shared(%x: tensor<4x8xf32>) -> tensor<4x16xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<16x8xf32>
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
  %z = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
  %s = arith.addf %y, %z : tensor<4x16xf32>
  return %s : tensor<4x16xf32>
}

// -----

// An f16 weight (scheme f16) is packed as f16 panels and widened to f32 inside the contraction.
// CHECK-LABEL: func.func @half_weight
// CHECK: "qc.weight"() {name = @w.p16} : () -> tensor<2x8x16xf16>
// CHECK: call @{{.*}}_f16(
// CHECK: func.func private
// CHECK: library_call = "qc_panel_matmul"{{.*}} ins(%arg0, %arg1 : tensor<3x8xf32>, tensor<2x8x16xf16>)
// CHECK: ^bb0(%{{.*}}: f32, %[[H:.*]]: f16, %{{.*}}: f32):
// CHECK: arith.extf %[[H]] : f16 to f32
func.func @half_weight(%x: tensor<3x8xf32>) -> tensor<3x32xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<32x8xf16>
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<3x8xf32>, tensor<32x8xf16>) -> tensor<3x32xf32>
  return %y : tensor<3x32xf32>
}

// -----

// Few outputs (a 4-filter conv head): the panel narrows to 8 columns instead of 16 zero-padded ones.
// CHECK-LABEL: func.func @narrow
// CHECK: "qc.weight"() {name = @w.p8} : () -> tensor<1x8x8xf32>
// CHECK: qc.layout = #qc.layout<4 : i64, 8 : i64, 8 : i64, 32 : i64
// CHECK: tensor.extract_slice %{{.*}}[0, 0] [5, 4] [1, 1]
func.func @narrow(%x: tensor<5x8xf32>) -> tensor<5x4xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<4x8xf32>
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<5x8xf32>, tensor<4x8xf32>) -> tensor<5x4xf32>
  return %y : tensor<5x4xf32>
}
