// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-lower-qgemm{panel-width=32 f32-cells=true})' | FileCheck %s

// f32-cells (the GPU's layout): f32 activations contract over dot panels too.  int4, groups of 32,
// K = 64: [P, K / 8, 128] bytes, each 4-byte cell holding 8 consecutive k of one column (k mod 8 < 4
// in the low nibbles); the body reads the cell of (k floordiv 8, 4 n + k mod 4) and picks the nibble
// by k.
// CHECK-LABEL: func.func @int4
// CHECK-DAG: "qc.weight"() {name = @w.q.packed.d32} : () -> tensor<2x8x128xi8>
// CHECK-DAG: "qc.weight"() {name = @w.scale.d32} : () -> tensor<2x2x32xf32>
// CHECK: func.func private @{{qc_qgemm_3x64_40_w4g32_f32_d32}}(
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[MW:[a-z0-9]+]], {{.*}}library_call = "qc_qgemm_cell_panel"}
// CHECK-SAME: attrs = {qc.layout = #qc.layout<40 : i64, 64 : i64, 32 : i64, 4 : i64, 32 : i64, 1 : i64, 0 : i64>}
// CHECK: linalg.index 3
// CHECK: arith.remui
// CHECK: arith.shrui
// CHECK: arith.andi
// CHECK: arith.extui
// CHECK: arith.uitofp
func.func @int4(%x: tensor<3x64xf32>) -> tensor<3x40xf32> {
  %p = "qc.weight"() {name = @w.q.packed} : () -> tensor<40x32xi8>
  %s = "qc.weight"() {name = @w.scale} : () -> tensor<40x2xf32>
  %z = "qc.weight"() {name = @w.zero} : () -> tensor<40x2xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 4 : i64, group_size = 32 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<3x64xf32>, tensor<40x32xi8>, tensor<40x2xf32>, tensor<40x2xi8>) -> tensor<3x40xf32>
  return %y : tensor<3x40xf32>
}

// -----

// K not a whole number of cells (per-channel int4, K = 36): the byte panels as without f32-cells.
// CHECK-LABEL: func.func @int4_odd_k
// CHECK: "qc.weight"() {name = @w.q.packed.p32} : () -> tensor<1x36x16xi8>
// CHECK: library_call = "qc_qgemm_panel"
func.func @int4_odd_k(%x: tensor<1x36xf32>) -> tensor<1x8xf32> {
  %p = "qc.weight"() {name = @w.q.packed} : () -> tensor<8x18xi8>
  %s = "qc.weight"() {name = @w.scale} : () -> tensor<8xf32>
  %z = "qc.weight"() {name = @w.zero} : () -> tensor<8xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 4 : i64, group_size = 0 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<1x36xf32>, tensor<8x18xi8>, tensor<8xf32>, tensor<8xi8>) -> tensor<1x8xf32>
  return %y : tensor<1x8xf32>
}
