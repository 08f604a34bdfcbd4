// RUN: python %S/Inputs/seven_bit_weights.py %t.safetensors
// RUN: qc-opt %s --split-input-file --weights %t.safetensors --pass-pipeline='builtin.module(qc-lower-qgemm{panel-width=16})' | FileCheck %s

// int8 weights that all lie in [-64, 63] (scheme w7a8: 7-bit weights stored as int8) against int8
// activations: the dot contraction says so (qc.weight_bits = 7) for qc-microkernels, whose vpmaddubsw
// kernels then take u - 64 (within [0, 127]) without the sign trick.  The helper's name tells it from
// the 8-bit one's, so the two contractions are not shared.
// CHECK-LABEL: func.func @seven
// CHECK: call @[[FN:qc_qgemm_2x8_32_w7g8_a8_d16_sym]](
// CHECK: func.func private @[[FN]]
// CHECK: library_call = "qc_qgemm_dot_panel_sym"
// CHECK-SAME: qc.weight_bits = 7 : i64
func.func @seven(%x: tensor<2x8xf32>) -> tensor<2x32xf32> {
  %p = "qc.weight"() {name = @seven.q.packed} : () -> tensor<32x8xi8>
  %s = "qc.weight"() {name = @w.scale} : () -> tensor<32xf32>
  %z = "qc.weight"() {name = @w.zero} : () -> tensor<32xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 8 : i64, group_size = 0 : i64, act_bits = 8 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x8xf32>, tensor<32x8xi8>, tensor<32xf32>, tensor<32xi8>) -> tensor<2x32xf32>
  return %y : tensor<2x32xf32>
}

// -----

// One weight at 64: 8-bit weights, no qc.weight_bits.
// CHECK-LABEL: func.func @eight
// CHECK: call @[[FN:qc_qgemm_2x8_32_w8g8_a8_d16_sym]](
// CHECK: func.func private @[[FN]]
// CHECK: library_call = "qc_qgemm_dot_panel_sym"
// CHECK-NOT: qc.weight_bits
// CHECK: return
func.func @eight(%x: tensor<2x8xf32>) -> tensor<2x32xf32> {
  %p = "qc.weight"() {name = @eight.q.packed} : () -> tensor<32x8xi8>
  %s = "qc.weight"() {name = @w.scale} : () -> tensor<32xf32>
  %z = "qc.weight"() {name = @w.zero} : () -> tensor<32xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 8 : i64, group_size = 0 : i64, act_bits = 8 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x8xf32>, tensor<32x8xi8>, tensor<32xf32>, tensor<32xi8>) -> tensor<2x32xf32>
  return %y : tensor<2x32xf32>
}
