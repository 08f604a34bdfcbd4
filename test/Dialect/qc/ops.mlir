// RUN: qc-opt %s | qc-opt | FileCheck %s
// Valid qc ops parse, verify and round-trip.

// CHECK-LABEL: func.func @all_ops
func.func @all_ops(%x: tensor<2x128xf32>, %b: tensor<16xf32>) -> tensor<2x16xf32> {
  // CHECK: "qc.weight"() {name = @w} : () -> tensor<16x128xf32>
  %w = "qc.weight"() {name = @w} : () -> tensor<16x128xf32>
  // CHECK: "qc.observe"(%{{.*}}) {id = "fc.in"}
  %o = "qc.observe"(%x) {id = "fc.in"} : (tensor<2x128xf32>) -> tensor<2x128xf32>
  // CHECK: "qc.linear"(%{{.*}}, %{{.*}}, %{{.*}}) {{.*}}qc.scheme = #qc.scheme<"w4a16-g128", "sym">
  %y = "qc.linear"(%o, %w, %b) {operandSegmentSizes = array<i32: 1, 1, 1>, qc.scheme = #qc.scheme<"w4a16-g128", "sym">} : (tensor<2x128xf32>, tensor<16x128xf32>, tensor<16xf32>) -> tensor<2x16xf32>
  %s = arith.constant dense<0.5> : tensor<16x1xf32>
  %z = arith.constant dense<0> : tensor<16x1xi8>
  // CHECK: "qc.quantize"{{.*}}group_size = 128
  %q = "qc.quantize"(%w, %s, %z) {bits = 4 : i64, axis = 0 : i64, group_size = 128 : i64} : (tensor<16x128xf32>, tensor<16x1xf32>, tensor<16x1xi8>) -> tensor<16x128xi8>
  // CHECK: "qc.dequantize"
  %d = "qc.dequantize"(%q, %s, %z) {bits = 4 : i64, axis = 0 : i64, group_size = 128 : i64} : (tensor<16x128xi8>, tensor<16x1xf32>, tensor<16x1xi8>) -> tensor<16x128xf32>
  %p = arith.constant dense<0> : tensor<16x64xi8>
  %zf = arith.constant dense<0.0> : tensor<16x1xf32>
  // CHECK: "qc.qgemm"{{.*}}bits = 4
  %g = "qc.qgemm"(%x, %p, %s, %zf, %b) {bits = 4 : i64, group_size = 128 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>} : (tensor<2x128xf32>, tensor<16x64xi8>, tensor<16x1xf32>, tensor<16x1xf32>, tensor<16xf32>) -> tensor<2x16xf32>
  return %y : tensor<2x16xf32>
}
