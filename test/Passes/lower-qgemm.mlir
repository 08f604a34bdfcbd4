// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-lower-qgemm{panel-width=32})' | FileCheck %s

// int4, groups of 32: the weight is repacked into [P, K, 16] bytes (columns n and
// n + 16 of a panel share a byte), scale and offset into [P, G, 32]; the
// contraction picks the nibble by column and dequantizes with one multiply-add.
// CHECK-LABEL: func.func @int4
// CHECK-DAG: "qc.weight"() {name = @w.q.packed.p32} : () -> tensor<2x64x16xi8>
// CHECK-DAG: "qc.weight"() {name = @w.scale.p32} : () -> tensor<2x2x32xf32>
// CHECK-DAG: "qc.weight"() {name = @w.zero.p32} : () -> tensor<2x2x32xf32>
// CHECK: call @[[FN:qc_qgemm_[a-z0-9_]+]](
// CHECK: func.func private @[[FN]](
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[MW:.*]], #[[MS:.*]], #[[MS]], #{{.*}}], {{.*}}library_call = "qc_qgemm_panel"}
// The packing travels with the contraction (n, k, width, bits, group, dot, symmetric) for qc-microkernels.
// CHECK-SAME: attrs = {qc.layout = #qc.layout<40 : i64, 64 : i64, 32 : i64, 4 : i64, 32 : i64, 0 : i64, 0 : i64>}
// CHECK: linalg.index 2
// CHECK: arith.shrui
// CHECK: arith.andi
// CHECK: arith.uitofp
// CHECK: tensor.extract_slice %{{.*}}[0, 0] [3, 40] [1, 1]
func.func @int4(%x: tensor<3x64xf32>) -> tensor<3x40xf32> {
  %p = "qc.weight"() {name = @w.q.packed} : () -> tensor<40x32xi8>
  %s = "qc.weight"() {name = @w.scale} : () -> tensor<40x2xf32>
  %z = "qc.weight"() {name = @w.zero} : () -> tensor<40x2xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 4 : i64, group_size = 32 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<3x64xf32>, tensor<40x32xi8>, tensor<40x2xf32>, tensor<40x2xi8>) -> tensor<3x40xf32>
  return %y : tensor<3x40xf32>
}

// -----

// int8 per output channel: one group spanning K; bytes are sign-extended.
// CHECK-LABEL: func.func @int8
// CHECK-DAG: "qc.weight"() {name = @v.q.packed.p32} : () -> tensor<1x8x32xi8>
// CHECK-DAG: "qc.weight"() {name = @v.scale.p32} : () -> tensor<1x1x32xf32>
// CHECK: func.func private
// CHECK: library_call = "qc_qgemm_panel"
// CHECK-NOT: arith.shrui
// CHECK: arith.sitofp
func.func @int8(%x: tensor<2x8xf32>, %b: tensor<32xf32>) -> tensor<2x32xf32> {
  %p = "qc.weight"() {name = @v.q.packed} : () -> tensor<32x8xi8>
  %s = "qc.weight"() {name = @v.scale} : () -> tensor<32xf32>
  %z = "qc.weight"() {name = @v.zero} : () -> tensor<32xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z, %b) {bits = 8 : i64, group_size = 0 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>} : (tensor<2x8xf32>, tensor<32x8xi8>, tensor<32xf32>, tensor<32xi8>, tensor<32xf32>) -> tensor<2x32xf32>
  return %y : tensor<2x32xf32>
}

// -----

// int8 activations, int4 groups of 32: x is quantized per row in the helper
// (absmax, scale, round-to-even, group sums), then an integer contraction on
// dot-product panels [P, K/8, 32 * 4] (4 k per 4-byte cell, k+4..7 in the high
// nibbles) whose offsets meet the activation group sums once per group.
// CHECK-LABEL: func.func @int4_a8
// CHECK-DAG: "qc.weight"() {name = @w.q.packed.d32} : () -> tensor<2x8x128xi8>
// CHECK-DAG: "qc.weight"() {name = @w.scale.d32} : () -> tensor<2x2x32xf32>
// CHECK: call @[[FN:qc_qgemm_3x64_40_w4g32_a8_d32]](
// CHECK: func.func private @[[FN]](
// CHECK: math.absf
// CHECK: arith.maximumf
// CHECK: math.roundeven
// CHECK: arith.fptosi %{{.*}} : f32 to i8
// CHECK: tensor.expand_shape %{{.*}} {{\[\[}}0], [1, 2]] output_shape [3, 2, 32]
// CHECK: arith.extsi %{{.*}} : i8 to i32
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}, #[[MW:.*]], #{{.*}}, #{{.*}}, #{{.*}}], {{.*}}library_call = "qc_qgemm_dot_panel"}
// CHECK-SAME: attrs = {qc.layout = #qc.layout<40 : i64, 64 : i64, 32 : i64, 4 : i64, 32 : i64, 1 : i64, 0 : i64>}
// CHECK: arith.muli %{{.*}}, %{{.*}} : i32
// CHECK: arith.select
func.func @int4_a8(%x: tensor<3x64xf32>) -> tensor<3x40xf32> {
  %p = "qc.weight"() {name = @w.q.packed} : () -> tensor<40x32xi8>
  %s = "qc.weight"() {name = @w.scale} : () -> tensor<40x2xf32>
  %z = "qc.weight"() {name = @w.zero} : () -> tensor<40x2xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 4 : i64, group_size = 32 : i64, act_bits = 8 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<3x64xf32>, tensor<40x32xi8>, tensor<40x2xf32>, tensor<40x2xi8>) -> tensor<3x40xf32>
  return %y : tensor<3x40xf32>
}

// -----

// A static (calibrated) activation scale is a constant: no absmax reduction.
// CHECK-LABEL: func.func @int8_static
// CHECK: func.func private @qc_qgemm_2x8_32_w8g8_a8s3E800000_d32
// CHECK-NOT: math.absf
// CHECK: arith.constant 2.500000e-01 : f32
// CHECK: library_call = "qc_qgemm_dot_panel"
func.func @int8_static(%x: tensor<2x8xf32>) -> tensor<2x32xf32> {
  %p = "qc.weight"() {name = @v.q.packed} : () -> tensor<32x8xi8>
  %s = "qc.weight"() {name = @v.scale} : () -> tensor<32xf32>
  %z = "qc.weight"() {name = @v.zero} : () -> tensor<32xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 8 : i64, group_size = 0 : i64, act_bits = 8 : i64, act_scale = 0.25 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x8xf32>, tensor<32x8xi8>, tensor<32xf32>, tensor<32xi8>) -> tensor<2x32xf32>
  return %y : tensor<2x32xf32>
}

// -----

// int8 activations of an im2col (qc-conv-to-matmul's, 3x3 stride 1 on a 4-channel image, the
// window's KW pixels one run of 12 floats): the helper takes the image, not the columns.  The row
// maxima are each pixel's maximum over its 4 channels pooled over the 3x3 window; the int8 columns
// are quantized straight from the image through the im2col's map (the f32 columns are never written).
// CHECK: #[[GATHER:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1 + d3, d2 * 4 + d4)>
// CHECK: #[[POOL:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1 + d3, d2 + d4)>
// CHECK-LABEL: func.func @im2col_a8
// CHECK: call @[[FN:qc_qgemm_16x36_from1x6x24_[0-9a-f]+_8_w8g36_a8_d32]](%arg0,
// CHECK: func.func private @[[FN]](%{{.*}}: tensor<1x6x24xf32>
// CHECK: tensor.expand_shape %{{.*}} {{\[\[}}0], [1], [2, 3]] output_shape [1, 6, 6, 4]
// CHECK: math.absf
// CHECK: %[[WIN:.*]] = tensor.empty() : tensor<3x3xf32>
// CHECK: linalg.generic {indexing_maps = [#[[POOL]], #{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%{{.*}}, %[[WIN]] : tensor<1x6x6xf32>, tensor<3x3xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[GATHER]], #{{.*}}, #{{.*}}], {{.*}} ins(%{{.*}}, %{{.*}} : tensor<1x6x24xf32>, tensor<1x4x4xf32>) outs(%{{.*}} : tensor<1x4x4x3x12xi8>)
// CHECK: math.roundeven
// CHECK: tensor.collapse_shape %{{.*}} {{\[\[}}0, 1, 2], [3, 4]] : tensor<1x4x4x3x12xi8> into tensor<16x36xi8>
// CHECK: library_call = "qc_qgemm_dot_panel"
func.func @im2col_a8(%img: tensor<1x6x24xf32>) -> tensor<16x8xf32> {
  %e = tensor.empty() : tensor<1x4x4x3x12xf32>
  %col = linalg.generic {indexing_maps = [affine_map<(n, oh, ow, kh, j) -> (n, oh + kh, ow * 4 + j)>, affine_map<(n, oh, ow, kh, j) -> (n, oh, ow, kh, j)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%img : tensor<1x6x24xf32>) outs(%e : tensor<1x4x4x3x12xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x4x4x3x12xf32>
  %x = tensor.collapse_shape %col [[0, 1, 2], [3, 4]] : tensor<1x4x4x3x12xf32> into tensor<16x36xf32>
  %p = "qc.weight"() {name = @c.q.packed} : () -> tensor<8x36xi8>
  %s = "qc.weight"() {name = @c.scale} : () -> tensor<8xf32>
  %z = "qc.weight"() {name = @c.zero} : () -> tensor<8xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 8 : i64, group_size = 0 : i64, act_bits = 8 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<16x36xf32>, tensor<8x36xi8>, tensor<8xf32>, tensor<8xi8>) -> tensor<16x8xf32>
  return %y : tensor<16x8xf32>
}

// -----

// A copy whose innermost dim does not run along its source's last (a channels-last transpose)
// is not read through: the helper quantizes the copied x as usual.
// CHECK-LABEL: func.func @transpose_a8
// CHECK: call @qc_qgemm_16x4_8_w8g4_a8_d32(%{{.*}},
func.func @transpose_a8(%img: tensor<1x4x16xf32>) -> tensor<16x8xf32> {
  %e = tensor.empty() : tensor<1x16x4xf32>
  %t = linalg.generic {indexing_maps = [affine_map<(n, p, c) -> (n, c, p)>, affine_map<(n, p, c) -> (n, p, c)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%img : tensor<1x4x16xf32>) outs(%e : tensor<1x16x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x16x4xf32>
  %x = tensor.collapse_shape %t [[0, 1], [2]] : tensor<1x16x4xf32> into tensor<16x4xf32>
  %p = "qc.weight"() {name = @t.q.packed} : () -> tensor<8x4xi8>
  %s = "qc.weight"() {name = @t.scale} : () -> tensor<8xf32>
  %z = "qc.weight"() {name = @t.zero} : () -> tensor<8xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 8 : i64, group_size = 0 : i64, act_bits = 8 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<16x4xf32>, tensor<8x4xi8>, tensor<8xf32>, tensor<8xi8>) -> tensor<16x8xf32>
  return %y : tensor<16x8xf32>
}

// -----

// The same im2col with a static (calibrated) activation scale: no maxima at all; the int8 columns
// are still quantized straight from the image.
// CHECK-LABEL: func.func @im2col_a8_static
// CHECK: call @{{qc_qgemm_16x36_from1x6x24_[0-9a-f]+_8_w8g36_a8s3E800000_d32}}(%arg0,
// CHECK: func.func private
// CHECK-NOT: math.absf
// CHECK: arith.constant 2.500000e-01 : f32
// CHECK: ins(%{{.*}}, %{{.*}} : tensor<1x6x24xf32>, tensor<1x4x4xf32>) outs(%{{.*}} : tensor<1x4x4x3x12xi8>)
// CHECK: library_call = "qc_qgemm_dot_panel"
func.func @im2col_a8_static(%img: tensor<1x6x24xf32>) -> tensor<16x8xf32> {
  %e = tensor.empty() : tensor<1x4x4x3x12xf32>
  %col = linalg.generic {indexing_maps = [affine_map<(n, oh, ow, kh, j) -> (n, oh + kh, ow * 4 + j)>, affine_map<(n, oh, ow, kh, j) -> (n, oh, ow, kh, j)>], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]} ins(%img : tensor<1x6x24xf32>) outs(%e : tensor<1x4x4x3x12xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x4x4x3x12xf32>
  %x = tensor.collapse_shape %col [[0, 1, 2], [3, 4]] : tensor<1x4x4x3x12xf32> into tensor<16x36xf32>
  %p = "qc.weight"() {name = @c.q.packed} : () -> tensor<8x36xi8>
  %s = "qc.weight"() {name = @c.scale} : () -> tensor<8xf32>
  %z = "qc.weight"() {name = @c.zero} : () -> tensor<8xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 8 : i64, group_size = 0 : i64, act_bits = 8 : i64, act_scale = 0.25 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<16x36xf32>, tensor<8x36xi8>, tensor<8xf32>, tensor<8xi8>) -> tensor<16x8xf32>
  return %y : tensor<16x8xf32>
}

// -----

// 7-bit activations (act_bits = 7, scheme w8a7): row scales max |x| / 63, xq clamped to +-63, and
// the contraction says so (qc.act_max = 63) for qc-microkernels, whose vpmaddubsw kernels then take
// the unsigned weight cells as they are.
// CHECK-LABEL: func.func @int8_a7
// CHECK: call @[[FN:qc_qgemm_2x8_32_w8g8_a7_d32]](
// CHECK: func.func private @[[FN]]
// CHECK: arith.constant 6.300000e+01 : f32
// CHECK: math.roundeven
// CHECK: arith.constant -6.300000e+01 : f32
// CHECK: library_call = "qc_qgemm_dot_panel"
// CHECK-SAME: qc.act_max = 63 : i64
func.func @int8_a7(%x: tensor<2x8xf32>) -> tensor<2x32xf32> {
  %p = "qc.weight"() {name = @v.q.packed} : () -> tensor<32x8xi8>
  %s = "qc.weight"() {name = @v.scale} : () -> tensor<32xf32>
  %z = "qc.weight"() {name = @v.zero} : () -> tensor<32xi8>
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 8 : i64, group_size = 0 : i64, act_bits = 7 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x8xf32>, tensor<32x8xi8>, tensor<32xf32>, tensor<32xi8>) -> tensor<2x32xf32>
  return %y : tensor<2x32xf32>
}
