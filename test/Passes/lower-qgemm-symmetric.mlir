// RUN: qc-opt %s --pass-pipeline='builtin.module(qc-outline-weights{min-elements=1}, qc-quantize-weights{scheme=w4a16-g32}, qc-fuse-dequant-gemm, qc-lower-qgemm{panel-width=32})' | FileCheck %s

// With the store at hand the lowering sees the zero points: all zero (the default,
// symmetric scheme) gives qc_qgemm_panel_sym, whose kernel does not stream the
// offsets; the asymmetric layer keeps qc_qgemm_panel.
// CHECK-LABEL: func.func @sym_and_asym
// CHECK: call @[[SYM:qc_qgemm_2x32_4_w4g32_p32_sym]](
// CHECK: call @[[ASYM:qc_qgemm_2x32_4_w4g32_p32]](
// CHECK: func.func private @[[SYM]](
// CHECK: library_call = "qc_qgemm_panel_sym"
// CHECK: func.func private @[[ASYM]](
// CHECK: library_call = "qc_qgemm_panel"}
func.func @sym_and_asym(%x: tensor<2x32xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %w = arith.constant dense<[[0.13, -0.13, 0.64, 0.10, -0.54, 0.36, 1.30, 0.95, -0.70, -1.27, -0.62, 0.04, -2.33, -0.22, -1.25, -0.73, -0.54, -0.32, 0.41, 1.04, -0.13, 1.37, -0.67, 0.35, 0.90, 0.09, -0.74, -0.92, -0.46, 0.22, -1.01, -0.21], [-0.16, 0.54, 0.21, 0.36, -0.65, -0.13, 0.78, 1.49, -1.26, 1.51, 1.35, 0.78, 0.26, -0.31, 1.46, 1.96, 1.80, 1.32, 0.36, -1.21, -0.00, 0.66, -1.29, 0.40, 0.43, 0.70, -1.18, -0.66, -0.44, -1.17, 1.74, -0.50], [0.33, -0.26, 1.58, 1.32, 0.63, -2.20, 0.05, 0.68, 1.00, -0.62, 1.82, -1.32, -0.66, 0.94, 0.05, 2.00, 0.19, -0.63, -0.38, -1.09, -1.28, 0.63, 0.58, 1.29, -0.75, 1.69, -0.29, 1.57, -0.43, -0.74, 0.25, 1.03], [0.16, -0.59, -1.34, -1.40, 0.50, 0.99, -0.16, -1.07, 0.87, -1.28, -0.71, 0.62, -2.25, 0.39, -0.58, 0.11, -0.08, 0.20, 0.69, -0.76, 1.42, 0.73, 0.84, 1.16, 0.79, 0.84, 0.08, -1.43, -0.14, -0.77, -1.42, 0.26]]> : tensor<4x32xf32> loc("w")
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<2x32xf32>, tensor<4x32xf32>) -> tensor<2x4xf32>
  %z = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>, qc.scheme = #qc.scheme<"w4a16-g32", "asym">} : (tensor<2x32xf32>, tensor<4x32xf32>) -> tensor<2x4xf32>
  return %y, %z : tensor<2x4xf32>, tensor<2x4xf32>
}
