// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-lower-qgemm{panel-width=32 split-activations=always})' | FileCheck %s --check-prefix=ALWAYS
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-lower-qgemm{panel-width=32 split-activations=gemv int8-piece-bits=7})' | FileCheck %s --check-prefix=GEMV
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-lower-qgemm{panel-width=32})' | FileCheck %s --check-prefix=NEVER

// f32 activations, int4 groups of 32, split: each row of x becomes three int8
// rows (x = s0 q0 + s1 q1 + s2 q2 + e, s0 = max|x| / 127, each next scale 1/254
// of the last, each piece rounding what the last left, by an fma), contracted
// on dot panels as int8 activations are, the three products summed into the bias
// after the contraction.
// ALWAYS-LABEL: func.func @int4
// ALWAYS-DAG: "qc.weight"() {name = @w.q.packed.d32} : () -> tensor<2x32x128xi8>
// ALWAYS: call @[[FN:qc_qgemm_1x256_40_w4g32_a8x3_d32_bias]](
// ALWAYS: func.func private @[[FN]](%[[X:.*]]: tensor<1x256xf32>,
// ALWAYS: %[[BIAS:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x2x32xf32>)
// ALWAYS: %[[ZERO:.*]] = linalg.fill {{.*}} -> tensor<1x3x2x32xf32>
// ALWAYS: math.absf
// ALWAYS: arith.divf %{{.*}}, %cst{{.*}} : f32
// ALWAYS: %[[S:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x3xf32>)
// ALWAYS: %[[Q:.*]] = linalg.generic {{.*}} ins(%[[X]], %{{.*}} : tensor<1x256xf32>, tensor<1xf32>) outs(%{{.*}} : tensor<1x3x256xi8>)
// ALWAYS: math.roundeven
// ALWAYS: math.fma
// ALWAYS: math.roundeven
// ALWAYS: math.fma
// ALWAYS: math.roundeven
// ALWAYS-NOT: math.fma
// ALWAYS: linalg.index 1 : index
// ALWAYS: arith.fptosi %{{.*}} : f32 to i8
// ALWAYS: %[[SUMS:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<1x3x8xi32>)
// ALWAYS: %[[P:.*]] = linalg.generic {{.*}}library_call = "qc_qgemm_dot_panel"} ins(%[[Q]], %[[S]], %[[SUMS]], {{.*}} outs(%[[ZERO]] : tensor<1x3x2x32xf32>)
// ALWAYS: %[[T:.*]] = linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[P]] : tensor<1x3x2x32xf32>) outs(%[[BIAS]] : tensor<1x2x32xf32>)
// ALWAYS: tensor.collapse_shape %[[T]] {{\[\[}}0], [1, 2]] : tensor<1x2x32xf32> into tensor<1x64xf32>
// GEMV-LABEL: func.func @int4
// GEMV: library_call = "qc_qgemm_dot_panel"
// NEVER-LABEL: func.func @int4
// NEVER: library_call = "qc_qgemm_panel"
func.func @int4(%x: tensor<1x256xf32>, %b: tensor<40xf32>) -> tensor<1x40xf32> {
  %p = "qc.weight"() {name = @w.q.packed} : () -> tensor<40x128xi8>
  %s = "qc.weight"() {name = @w.scale} : () -> tensor<40x8xf32>
  %z = "qc.weight"() {name = @w.zero} : () -> tensor<40x8xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z, %b) {bits = 4 : i64, group_size = 32 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>} : (tensor<1x256xf32>, tensor<40x128xi8>, tensor<40x8xf32>, tensor<40x8xi8>, tensor<40xf32>) -> tensor<1x40xf32>
  return %y : tensor<1x40xf32>
}

// -----

// gemv (vpmaddubsw targets) splits only one-row contractions: more rows keep the f32
// kernels there.  Against int8 weights its pieces are 7-bit (int8-piece-bits=7: within
// +-63, s0 = max|x| / 63, each next scale 1/126 of the last), and the contraction says so.
// ALWAYS-LABEL: func.func @rows_and_int8
// ALWAYS: call @qc_qgemm_2x256_40_w4g32_a8x3_d32(
// ALWAYS: call @qc_qgemm_1x256_32_w8g256_a8x3_d32(
// ALWAYS-COUNT-2: library_call = "qc_qgemm_dot_panel"
// GEMV-LABEL: func.func @rows_and_int8
// GEMV: call @qc_qgemm_2x256_40_w4g32_p32(
// GEMV: call @qc_qgemm_1x256_32_w8g256_a7x3_d32(
// GEMV-NOT: qc_qgemm_dot_panel
// GEMV: library_call = "qc_qgemm_panel"
// GEMV: arith.constant 6.300000e+01 : f32
// GEMV: arith.constant 1.260000e+02 : f32
// GEMV: library_call = "qc_qgemm_dot_panel"
// GEMV-SAME: qc.act_max = 63 : i64
func.func @rows_and_int8(%x: tensor<2x256xf32>, %x1: tensor<1x256xf32>) -> (tensor<2x40xf32>, tensor<1x32xf32>) {
  %p = "qc.weight"() {name = @w.q.packed} : () -> tensor<40x128xi8>
  %s = "qc.weight"() {name = @w.scale} : () -> tensor<40x8xf32>
  %z = "qc.weight"() {name = @w.zero} : () -> tensor<40x8xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 4 : i64, group_size = 32 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x256xf32>, tensor<40x128xi8>, tensor<40x8xf32>, tensor<40x8xi8>) -> tensor<2x40xf32>
  %p8 = "qc.weight"() {name = @v.q.packed} : () -> tensor<32x256xi8>
  %s8 = "qc.weight"() {name = @v.scale} : () -> tensor<32xf32>
  %z8 = "qc.weight"() {name = @v.zero} : () -> tensor<32xi8>
  %y8 = "qc.qgemm"(%x1, %p8, %s8, %z8) {bits = 8 : i64, group_size = 0 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<1x256xf32>, tensor<32x256xi8>, tensor<32xf32>, tensor<32xi8>) -> (tensor<1x32xf32>)
  return %y, %y8 : tensor<2x40xf32>, tensor<1x32xf32>
}

// -----

// Declined, staying f32: an int4 K that is not a multiple of 8 (dot panels take K in 4-byte
// cells), and rows shorter than 256 (splitting them costs what their products save).
// ALWAYS-LABEL: func.func @odd_k
// ALWAYS-NOT: qc_qgemm_dot_panel
// ALWAYS: library_call = "qc_qgemm_panel"
// ALWAYS-NOT: qc_qgemm_dot_panel
// ALWAYS: library_call = "qc_qgemm_panel"
// ALWAYS-NOT: qc_qgemm_dot_panel
func.func @odd_k(%x: tensor<1x260xf32>, %x64: tensor<1x64xf32>) -> (tensor<1x40xf32>, tensor<1x40xf32>) {
  %p = "qc.weight"() {name = @w.q.packed} : () -> tensor<40x130xi8>
  %s = "qc.weight"() {name = @w.scale} : () -> tensor<40xf32>
  %z = "qc.weight"() {name = @w.zero} : () -> tensor<40xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 4 : i64, group_size = 0 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<1x260xf32>, tensor<40x130xi8>, tensor<40xf32>, tensor<40xi8>) -> tensor<1x40xf32>
  %p64 = "qc.weight"() {name = @u.q.packed} : () -> tensor<40x32xi8>
  %s64 = "qc.weight"() {name = @u.scale} : () -> tensor<40x2xf32>
  %z64 = "qc.weight"() {name = @u.zero} : () -> tensor<40x2xi8>
  %y64 = "qc.qgemm"(%x64, %p64, %s64, %z64) {bits = 4 : i64, group_size = 32 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<1x64xf32>, tensor<40x32xi8>, tensor<40x2xf32>, tensor<40x2xi8>) -> tensor<1x40xf32>
  return %y, %y64 : tensor<1x40xf32>, tensor<1x40xf32>
}
