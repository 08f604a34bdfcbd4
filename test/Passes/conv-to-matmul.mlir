// RUN: qc-opt %s --pass-pipeline='builtin.module(qc-conv-to-matmul)' | FileCheck %s

// A strided, dilated 2-D convolution: im2col reads x at oh*2 + kh*3, then a
// batch_matmul of the [F, C*KH*KW] filter by the [C*KH*KW, OH*OW] columns.
// CHECK-DAG: #[[WINDOW:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4 * 2 + d2 * 3, d5 * 2 + d3 * 3)>
// CHECK-LABEL: func.func @conv
// CHECK: %[[Y:.*]] = call @[[FN:qc_conv_[0-9x_]+]](%arg0, %arg1, %arg2)
// CHECK: return %[[Y]]
// CHECK: func.func private @[[FN]]
// CHECK: %[[COL:.*]] = linalg.generic {indexing_maps = [#[[WINDOW]], {{.*}}} ins(%{{.*}} : tensor<2x3x11x11xf32>) outs(%{{.*}} : tensor<2x3x2x2x4x4xf32>)
// CHECK: %[[COL2:.*]] = tensor.collapse_shape %[[COL]] {{\[\[}}0], [1, 2, 3], [4, 5]] : tensor<2x3x2x2x4x4xf32> into tensor<2x12x16xf32>
// CHECK: tensor.collapse_shape %{{.*}} {{\[\[}}0], [1, 2, 3]] : tensor<5x3x2x2xf32> into tensor<5x12xf32>
// CHECK: %[[MM:.*]] = linalg.batch_matmul ins(%{{.*}}, %[[COL2]] : tensor<2x5x12xf32>, tensor<2x12x16xf32>) outs(%{{.*}} : tensor<2x5x16xf32>)
// CHECK: tensor.expand_shape %[[MM]] {{\[\[}}0], [1], [2, 3]] output_shape [2, 5, 4, 4]
func.func @conv(%x: tensor<2x3x11x11xf32>, %w: tensor<5x3x2x2xf32>, %init: tensor<2x5x4x4xf32>) -> tensor<2x5x4x4xf32> {
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<3> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
      ins(%x, %w : tensor<2x3x11x11xf32>, tensor<5x3x2x2xf32>) outs(%init : tensor<2x5x4x4xf32>) -> tensor<2x5x4x4xf32>
  return %y : tensor<2x5x4x4xf32>
}
