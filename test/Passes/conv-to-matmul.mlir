// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-conv-to-matmul)' | FileCheck %s
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-conv-to-matmul, qc-raise)' | FileCheck %s --check-prefix=RAISE

// A strided, dilated 2-D convolution: x goes channels last, the columns read it at oh*2 + kh*3
// with the channels innermost, and a matmul of the [N*OH*OW, KH*KW*C] columns by the transposed
// [F, KH*KW*C] filter gives pixels x filters, moved back to NCHW with the accumulator added.
// CHECK-DAG: #[[WINDOW:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1 * 2 + d3 * 3, d2 * 2 + d4 * 3, d5)>
// CHECK-DAG: #[[BACK:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3, d1)>
// CHECK-DAG: #[[LAST:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d3, d1, d2)>
// CHECK-LABEL: func.func @conv
// CHECK: %[[XT:.*]] = linalg.generic {indexing_maps = [#[[LAST]], {{.*}}} ins(%arg0 : tensor<2x3x11x11xf32>) outs(%{{.*}} : tensor<2x11x11x3xf32>)
// CHECK: %[[COL:.*]] = linalg.generic {indexing_maps = [#[[WINDOW]], {{.*}}} ins(%[[XT]] : tensor<2x11x11x3xf32>) outs(%{{.*}} : tensor<2x4x4x2x2x3xf32>)
// CHECK: %[[COL2:.*]] = tensor.collapse_shape %[[COL]] {{\[\[}}0, 1, 2], [3, 4, 5]] : tensor<2x4x4x2x2x3xf32> into tensor<32x12xf32>
// CHECK: linalg.transpose ins(%arg1 : tensor<5x3x2x2xf32>) outs(%{{.*}} : tensor<5x2x2x3xf32>) permutation = [0, 2, 3, 1]
// CHECK: %[[WT:.*]] = linalg.transpose ins(%{{.*}} : tensor<5x12xf32>) outs(%{{.*}} : tensor<12x5xf32>) permutation = [1, 0]
// CHECK: %[[MM:.*]] = linalg.matmul ins(%[[COL2]], %[[WT]] : tensor<32x12xf32>, tensor<12x5xf32>)
// CHECK: %[[E:.*]] = tensor.expand_shape %[[MM]] {{\[\[}}0, 1, 2], [3]] output_shape [2, 4, 4, 5]
// CHECK: linalg.generic {indexing_maps = [#[[BACK]], {{.*}}} ins(%[[E]], %arg2 : tensor<2x4x4x5xf32>, tensor<2x5x4x4xf32>)
// CHECK: arith.addf
func.func @conv(%x: tensor<2x3x11x11xf32>, %w: tensor<5x3x2x2xf32>, %init: tensor<2x5x4x4xf32>) -> tensor<2x5x4x4xf32> {
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<3> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
      ins(%x, %w : tensor<2x3x11x11xf32>, tensor<5x3x2x2xf32>) outs(%init : tensor<2x5x4x4xf32>) -> tensor<2x5x4x4xf32>
  return %y : tensor<2x5x4x4xf32>
}

// -----

// A stored filter with a broadcast bias: the store entry is rearranged to [F, KH*KW*C] (no transpose
// in the IR), the bias is added over the filters, and qc-raise makes the matmul a qc.linear with it.
// The zero padding is redone channels last: zeros on the border (four fills), the transpose writes
// the interior.
// CHECK-DAG: #[[WROW:.*]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1 + d3, d2 * 2 + d4)>
// CHECK-LABEL: func.func @stored
// CHECK-COUNT-4: linalg.fill
// CHECK: %[[F:.*]] = tensor.insert_slice %{{.*}} into %{{.*}}[0, 0, 5, 0] [1, 6, 1, 2] [1, 1, 1, 1] : tensor<1x6x1x2xf32> into tensor<1x6x6x2xf32>
// CHECK: %[[IN:.*]] = tensor.extract_slice %[[F]][0, 1, 1, 0] [1, 4, 4, 2] [1, 1, 1, 1]
// CHECK: %[[T:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<1x2x4x4xf32>) outs(%[[IN]] : tensor<1x4x4x2xf32>)
// CHECK: %[[P:.*]] = tensor.insert_slice %[[T]] into %[[F]][0, 1, 1, 0]
// Unit stride and dilation along W: each column row reads KW x C adjacent floats, from xt viewed as [N, H, W x C].
// CHECK: %[[P2:.*]] = tensor.collapse_shape %[[P]] {{\[\[}}0], [1], [2, 3]] : tensor<1x6x6x2xf32> into tensor<1x6x12xf32>
// CHECK: linalg.generic {indexing_maps = [#[[WROW]], {{.*}}} ins(%[[P2]] : tensor<1x6x12xf32>) outs(%{{.*}} : tensor<1x4x4x3x6xf32>)
// CHECK: "qc.weight"() {name = @w} : () -> tensor<4x18xf32>
// CHECK-NOT: tensor<4x2x3x3xf32>
// RAISE-LABEL: func.func @stored
// RAISE: %[[W:.*]] = "qc.weight"() {name = @w} : () -> tensor<4x18xf32>
// RAISE: "qc.linear"(%{{.*}}, %[[W]], %arg1) {{.*}} : (tensor<16x18xf32>, tensor<4x18xf32>, tensor<4xf32>) -> tensor<16x4xf32>
// RAISE-NOT: linalg.matmul
func.func @stored(%x0: tensor<1x2x4x4xf32>, %b: tensor<4xf32>) -> tensor<1x4x4x4xf32> {
  %z = arith.constant 0.0 : f32
  %x = tensor.pad %x0 low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %z : f32
  } : tensor<1x2x4x4xf32> to tensor<1x2x6x6xf32>
  %w = "qc.weight"() {name = @w} : () -> tensor<4x2x3x3xf32>
  %e = tensor.empty() : tensor<1x4x4x4xf32>
  %init = linalg.broadcast ins(%b : tensor<4xf32>) outs(%e : tensor<1x4x4x4xf32>) dimensions = [0, 2, 3]
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<1x2x6x6xf32>, tensor<4x2x3x3xf32>) outs(%init : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  return %y : tensor<1x4x4x4xf32>
}

// -----

// Depthwise: one channels-last generic whose innermost loop runs over the channels (contiguous in
// x, the [KH, KW, C] filter and y), kh and kw reduced, started from the bias broadcast channels last.
// CHECK-DAG: #[[X:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1 * 2 + d3, d2 * 2 + d4, d5)>
// CHECK-DAG: #[[W:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d3, d4, d5)>
// CHECK-DAG: #[[Y:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d5)>
// CHECK-LABEL: func.func @depthwise
// The constant filter is rearranged to [KH, KW, C]: its first row is w[0..2, 0, 0].
// CHECK: %[[WT:.*]] = arith.constant dense<{{\[\[\[}}1.000000e+00, 1.500000e+00, 1.000000e-01]
// CHECK: %[[B:.*]] = linalg.generic {{.*}} ins(%arg1 : tensor<3xf32>) outs(%{{.*}} : tensor<2x5x5x3xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[X]], #[[W]], #[[Y]]], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]}
// CHECK-SAME: ins(%{{.*}}, %[[WT]] : tensor<2x11x11x3xf32>, tensor<3x3x3xf32>) outs(%[[B]] : tensor<2x5x5x3xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: -> tensor<2x3x5x5xf32>
func.func @depthwise(%x: tensor<2x3x11x11xf32>, %b: tensor<3xf32>) -> tensor<2x3x5x5xf32> {
  %w = arith.constant dense<[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
                             [[1.5, 2.5, 3.5], [4.5, 5.5, 6.5], [7.5, 8.5, 9.5]],
                             [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]]> : tensor<3x3x3xf32>
  %e = tensor.empty() : tensor<2x3x5x5xf32>
  %init = linalg.broadcast ins(%b : tensor<3xf32>) outs(%e : tensor<2x3x5x5xf32>) dimensions = [0, 2, 3]
  %y = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%x, %w : tensor<2x3x11x11xf32>, tensor<3x3x3xf32>) outs(%init : tensor<2x3x5x5xf32>) -> tensor<2x3x5x5xf32>
  return %y : tensor<2x3x5x5xf32>
}

// -----

// A ConvTranspose (2x2, stride 2) as the importer gives it: a conv over the input inserted with
// stride 2 into zeros. It becomes 4 phase convs on the input itself, each with one tap of the
// filter (a 1x1 conv: a matmul over the 8 channels), written into every other output pixel; the
// zero-upsampled tensor is gone.
// CHECK-LABEL: func.func @conv_transpose
// RAISE-LABEL: func.func @conv_transpose
// CHECK-NOT: tensor<1x8x11x11xf32>
// CHECK-COUNT-4: linalg.matmul
// CHECK-NOT: linalg.conv_2d
// The phases are gathered channels last (each phase's NHWC output into every other pixel).
// CHECK: tensor.insert_slice %{{.*}} into %{{.*}}[0, 1, 1, 0] [1, 5, 5, 4] [1, 2, 2, 1] : tensor<1x5x5x4xf32> into tensor<1x10x10x4xf32>
func.func @conv_transpose(%x: tensor<1x8x5x5xf32>, %w: tensor<4x8x2x2xf32>, %b: tensor<1x4x10x10xf32>) -> tensor<1x4x10x10xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x8x11x11xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<1x8x11x11xf32>) -> tensor<1x8x11x11xf32>
  %up = tensor.insert_slice %x into %z[0, 0, 1, 1] [1, 8, 5, 5] [1, 1, 2, 2] : tensor<1x8x5x5xf32> into tensor<1x8x11x11xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%up, %w : tensor<1x8x11x11xf32>, tensor<4x8x2x2xf32>) outs(%b : tensor<1x4x10x10xf32>) -> tensor<1x4x10x10xf32>
  return %y : tensor<1x4x10x10xf32>
}

// -----

// The same over a filter of dynamic shape: left as it is (it crashed the phase split once).
// CHECK-LABEL: func.func @conv_transpose_dynamic_filter
// CHECK: linalg.conv_2d_nchw_fchw
// RAISE-LABEL: func.func @conv_transpose_dynamic_filter
func.func @conv_transpose_dynamic_filter(%x: tensor<1x8x5x5xf32>, %w: tensor<?x8x2x2xf32>, %b: tensor<1x?x10x10xf32>) -> tensor<1x?x10x10xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x8x11x11xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<1x8x11x11xf32>) -> tensor<1x8x11x11xf32>
  %up = tensor.insert_slice %x into %z[0, 0, 1, 1] [1, 8, 5, 5] [1, 1, 2, 2] : tensor<1x8x5x5xf32> into tensor<1x8x11x11xf32>
  %y = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%up, %w : tensor<1x8x11x11xf32>, tensor<?x8x2x2xf32>) outs(%b : tensor<1x?x10x10xf32>) -> tensor<1x?x10x10xf32>
  return %y : tensor<1x?x10x10xf32>
}
