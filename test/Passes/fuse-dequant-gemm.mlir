// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-fuse-dequant-gemm)' | FileCheck %s

// A linear on a dequantized stored weight becomes one qc.qgemm on the packed
// integers (two int4 values per byte); scale, zero point, bias and scheme carry over.
// CHECK-LABEL: func.func @int4
// CHECK-NOT: qc.dequantize
// CHECK-NOT: name = @w.q}
// CHECK: %[[P:.*]] = "qc.weight"() {name = @w.q.packed} : () -> tensor<16x32xi8>
// CHECK: "qc.qgemm"(%arg0, %[[P]], %{{.*}}, %{{.*}}, %arg1) {act_bits = 0 : i64, act_scale = 0.000000e+00 : f32, bits = 4 : i64, group_size = 32 : i64, {{.*}}qc.scheme = #qc.scheme<"w4a16-g32", "sym">}
// CHECK-SAME: (tensor<3x64xf32>, tensor<16x32xi8>, tensor<16x2xf32>, tensor<16x2xi8>, tensor<16xf32>) -> tensor<3x16xf32>
func.func @int4(%x: tensor<3x64xf32>, %b: tensor<16xf32>) -> tensor<3x16xf32> {
  %q = "qc.weight"() {name = @w.q} : () -> tensor<16x64xi8>
  %s = "qc.weight"() {name = @w.scale} : () -> tensor<16x2xf32>
  %z = "qc.weight"() {name = @w.zero} : () -> tensor<16x2xi8>
  %w = "qc.dequantize"(%q, %s, %z) {axis = 0 : i64, bits = 4 : i64, group_size = 32 : i64} : (tensor<16x64xi8>, tensor<16x2xf32>, tensor<16x2xi8>) -> tensor<16x64xf32>
  %y = "qc.linear"(%x, %w, %b) {operandSegmentSizes = array<i32: 1, 1, 1>, qc.scheme = #qc.scheme<"w4a16-g32", "sym">} : (tensor<3x64xf32>, tensor<16x64xf32>, tensor<16xf32>) -> tensor<3x16xf32>
  return %y : tensor<3x16xf32>
}

// -----

// An int8-activation scheme asks for quantized activations: per row at run time
// (act_scale 0) unless the linear carries a calibrated per-tensor qc.act_scale.
// CHECK-LABEL: func.func @w8a8
// CHECK: "qc.qgemm"{{.*}}{act_bits = 8 : i64, act_scale = 0.000000e+00 : f32, bits = 8 : i64, group_size = 0 : i64
// CHECK: "qc.qgemm"{{.*}}{act_bits = 8 : i64, act_scale = 2.500000e-01 : f32, bits = 8 : i64, group_size = 0 : i64
func.func @w8a8(%x: tensor<2x8xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %q = "qc.weight"() {name = @v.q} : () -> tensor<4x8xi8>
  %s = "qc.weight"() {name = @v.scale} : () -> tensor<4xf32>
  %z = "qc.weight"() {name = @v.zero} : () -> tensor<4xi8>
  %w = "qc.dequantize"(%q, %s, %z) {axis = 0 : i64, bits = 8 : i64, group_size = 0 : i64} : (tensor<4x8xi8>, tensor<4xf32>, tensor<4xi8>) -> tensor<4x8xf32>
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>, qc.scheme = #qc.scheme<"w8a8", "sym">} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  %y2 = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>, qc.scheme = #qc.scheme<"w8a8", "sym">, qc.act_scale = 0.25 : f32} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  return %y, %y2 : tensor<2x4xf32>, tensor<2x4xf32>
}

// -----

// A dequantized value that is not a linear's weight stays as it is.
// CHECK-LABEL: func.func @not_a_weight
// CHECK: "qc.dequantize"
// CHECK-NOT: qc.qgemm
func.func @not_a_weight(%q: tensor<4x8xi8>, %s: tensor<4xf32>, %z: tensor<4xi8>) -> tensor<4x8xf32> {
  %w = "qc.dequantize"(%q, %s, %z) {axis = 0 : i64, bits = 8 : i64, group_size = 0 : i64} : (tensor<4x8xi8>, tensor<4xf32>, tensor<4xi8>) -> tensor<4x8xf32>
  return %w : tensor<4x8xf32>
}
