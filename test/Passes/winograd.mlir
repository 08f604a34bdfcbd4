// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-winograd{tile=2 min-channels=1 min-tiles=1}, canonicalize, cse)' | FileCheck %s
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-winograd{tile=4 min-channels=1 min-tiles=1}, canonicalize, cse)' | FileCheck %s --check-prefix=F4
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-winograd)' | FileCheck %s --check-prefix=DEFAULT

// A 3x3, stride-1 conv as qc-conv-to-matmul leaves it (columns read KW x C adjacent floats from the
// padded channels-last input) becomes F(2x2, 3x3): the input transform reads 4x4 tiles at stride 2,
// 16 products [16 tiles, C] x [C, F] with the transformed filter, and the output transform starts
// from the bias broadcast over [N, TH, 2, TW, 2, F], which is the [64, 4] result reshaped.
// CHECK-DAG: #[[TILE:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d2, d3 * 2 + d6, d4 * 2 + d7, d5)>
// CHECK-DAG: #[[BT:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d6, d7)>
// CHECK-DAG: #[[VMAP:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d0, d1, d2, d3, d4, d5)>
// CHECK-DAG: #[[M:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d6, d7, d0, d1, d3, d5)>
// CHECK-DAG: #[[AT:.*]] = affine_map<(d0, d1, d2, d3, d4, d5, d6, d7) -> (d2, d4, d6, d7)>
// CHECK-LABEL: func.func @conv
// CHECK-DAG: %[[CAT:.*]] = arith.constant dense<{{.*}}> : tensor<2x2x4x4xf32>
// CHECK-DAG: %[[CBT:.*]] = arith.constant dense<{{.*}}> : tensor<4x4x4x4xf32>
// The filter transform of a constant 0.5 filter, printed as hex: G g G^T starts with g[0, 0] = 0.5
// (0x3F000000) and its row 1 is 0.75 (0x3F400000).
// CHECK-DAG: %[[U:.*]] = arith.constant dense<"0x0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000003F0000403F{{.*}}> : tensor<16x2x4xf32>
// CHECK: %[[V:.*]] = linalg.generic {indexing_maps = [#[[TILE]], #[[BT]], #[[VMAP]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction"], library_call = "qc_winograd_input"}
// CHECK-SAME: ins(%arg0, %[[CBT]] : tensor<1x10x10x2xf32>, tensor<4x4x4x4xf32>) outs(%{{.*}} : tensor<4x4x1x4x4x2xf32>)
// CHECK: %[[V2:.*]] = tensor.collapse_shape %[[V]] {{\[\[}}0, 1], [2, 3, 4], [5]] : tensor<4x4x1x4x4x2xf32> into tensor<16x16x2xf32>
// CHECK: %[[P:.*]] = linalg.batch_matmul ins(%[[V2]], %[[U]] : tensor<16x16x2xf32>, tensor<16x2x4xf32>)
// CHECK: %[[P6:.*]] = tensor.expand_shape %[[P]] {{\[\[}}0, 1], [2, 3, 4], [5]] output_shape [4, 4, 1, 4, 4, 4]
// CHECK: %[[B:.*]] = linalg.generic {{.*}} ins(%arg1 : tensor<4xf32>) outs(%{{.*}} : tensor<1x4x2x4x2x4xf32>)
// CHECK: %[[Y:.*]] = linalg.generic {indexing_maps = [#[[M]], #[[AT]], #[[VMAP]]], {{.*}} library_call = "qc_winograd_output"}
// CHECK-SAME: ins(%[[P6]], %[[CAT]] : tensor<4x4x1x4x4x4xf32>, tensor<2x2x4x4xf32>) outs(%[[B]] : tensor<1x4x2x4x2x4xf32>)
// CHECK: %[[R:.*]] = tensor.collapse_shape %[[Y]] {{\[\[}}0, 1, 2, 3, 4], [5]] : tensor<1x4x2x4x2x4xf32> into tensor<64x4xf32>
// CHECK: return %[[R]]
// CHECK-NOT: qc.linear
// Two input channels are fewer than the default min-channels: the conv stays direct.
// DEFAULT-LABEL: func.func @conv
// DEFAULT: "qc.linear"
// DEFAULT-NOT: qc_winograd
func.func @conv(%xt: tensor<1x10x10x2xf32>, %b: tensor<4xf32>) -> tensor<64x4xf32> {
  %x = tensor.collapse_shape %xt [[0], [1], [2, 3]] : tensor<1x10x10x2xf32> into tensor<1x10x20xf32>
  %e = tensor.empty() : tensor<1x8x8x3x6xf32>
  %col = linalg.generic {indexing_maps = [affine_map<(n, oh, ow, kh, j) -> (n, oh + kh, ow * 2 + j)>,
                                          affine_map<(n, oh, ow, kh, j) -> (n, oh, ow, kh, j)>],
                         iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : tensor<1x10x20xf32>) outs(%e : tensor<1x8x8x3x6xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x8x8x3x6xf32>
  %a = tensor.collapse_shape %col [[0, 1, 2], [3, 4]] : tensor<1x8x8x3x6xf32> into tensor<64x18xf32>
  %w = arith.constant dense<0.5> : tensor<4x18xf32>
  %y = "qc.linear"(%a, %w, %b) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<64x18xf32>, tensor<4x18xf32>, tensor<4xf32>) -> tensor<64x4xf32>
  return %y : tensor<64x4xf32>
}

// -----

// Odd output sizes (7x7) and the column copy with KH, KW and C apart: 4 tiles of 2 per side (tile=2)
// or 2 of 4 (tile=4) need a source of 10 rows and columns, so the 9x9 one is padded with zeros at its
// end, and the output tiles' 8x8 pixels are sliced to 7x7.  Without a bias the output starts from zero.
// CHECK-LABEL: func.func @odd
// CHECK: %[[S:.*]] = tensor.pad %arg0 low[0, 0, 0, 0] high[0, 1, 1, 0]
// CHECK: tensor<1x9x9x3xf32> to tensor<1x10x10x3xf32>
// CHECK: library_call = "qc_winograd_input"} ins(%[[S]], %{{.*}} : tensor<1x10x10x3xf32>, tensor<4x4x4x4xf32>) outs(%{{.*}} : tensor<4x4x1x4x4x3xf32>)
// CHECK: linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<16x16x3xf32>, tensor<16x3x5xf32>)
// CHECK: %[[Z:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<1x4x2x4x2x5xf32>)
// CHECK: library_call = "qc_winograd_output"} {{.*}} outs(%[[Z]] : tensor<1x4x2x4x2x5xf32>)
// CHECK: tensor.extract_slice %{{.*}}[0, 0, 0, 0] [1, 7, 7, 5] [1, 1, 1, 1] : tensor<1x8x8x5xf32> to tensor<1x7x7x5xf32>
// CHECK: tensor.collapse_shape %{{.*}} {{\[\[}}0, 1, 2], [3]] : tensor<1x7x7x5xf32> into tensor<49x5xf32>
// F4-LABEL: func.func @odd
// F4: library_call = "qc_winograd_input"} ins(%{{.*}}, %{{.*}} : tensor<1x10x10x3xf32>, tensor<6x6x6x6xf32>) outs(%{{.*}} : tensor<6x6x1x2x2x3xf32>)
// F4: linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<36x4x3xf32>, tensor<36x3x5xf32>)
// F4: library_call = "qc_winograd_output"} {{.*}} outs(%{{.*}} : tensor<1x2x4x2x4x5xf32>)
func.func @odd(%xt: tensor<1x9x9x3xf32>) -> tensor<49x5xf32> {
  %e = tensor.empty() : tensor<1x7x7x3x3x3xf32>
  %col = linalg.generic {indexing_maps = [affine_map<(n, oh, ow, kh, kw, c) -> (n, oh + kh, ow + kw, c)>,
                                          affine_map<(n, oh, ow, kh, kw, c) -> (n, oh, ow, kh, kw, c)>],
                         iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%xt : tensor<1x9x9x3xf32>) outs(%e : tensor<1x7x7x3x3x3xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x7x7x3x3x3xf32>
  %a = tensor.collapse_shape %col [[0, 1, 2], [3, 4, 5]] : tensor<1x7x7x3x3x3xf32> into tensor<49x27xf32>
  %w = arith.constant dense<0.25> : tensor<5x27xf32>
  %y = "qc.linear"(%a, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<49x27xf32>, tensor<5x27xf32>) -> tensor<49x5xf32>
  return %y : tensor<49x5xf32>
}

// -----

// A strided (2) window is not a Winograd F(m, 3) convolution: the linear stays.
// CHECK-LABEL: func.func @strided
// CHECK: "qc.linear"
// CHECK-NOT: qc_winograd
func.func @strided(%xt: tensor<1x9x9x2xf32>) -> tensor<16x4xf32> {
  %e = tensor.empty() : tensor<1x4x4x3x3x2xf32>
  %col = linalg.generic {indexing_maps = [affine_map<(n, oh, ow, kh, kw, c) -> (n, oh * 2 + kh, ow * 2 + kw, c)>,
                                          affine_map<(n, oh, ow, kh, kw, c) -> (n, oh, ow, kh, kw, c)>],
                         iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%xt : tensor<1x9x9x2xf32>) outs(%e : tensor<1x4x4x3x3x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x4x4x3x3x2xf32>
  %a = tensor.collapse_shape %col [[0, 1, 2], [3, 4, 5]] : tensor<1x4x4x3x3x2xf32> into tensor<16x18xf32>
  %w = arith.constant dense<0.5> : tensor<4x18xf32>
  %y = "qc.linear"(%a, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x18xf32>, tensor<4x18xf32>) -> tensor<16x4xf32>
  return %y : tensor<16x4xf32>
}

// -----

// A filter that is not an f32 constant (here a store entry this run has no data for) is left alone.
// CHECK-LABEL: func.func @unknown_filter
// CHECK: "qc.linear"
// CHECK-NOT: qc_winograd
func.func @unknown_filter(%xt: tensor<1x6x6x2xf32>) -> tensor<16x4xf32> {
  %e = tensor.empty() : tensor<1x4x4x3x3x2xf32>
  %col = linalg.generic {indexing_maps = [affine_map<(n, oh, ow, kh, kw, c) -> (n, oh + kh, ow + kw, c)>,
                                          affine_map<(n, oh, ow, kh, kw, c) -> (n, oh, ow, kh, kw, c)>],
                         iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%xt : tensor<1x6x6x2xf32>) outs(%e : tensor<1x4x4x3x3x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x4x4x3x3x2xf32>
  %a = tensor.collapse_shape %col [[0, 1, 2], [3, 4, 5]] : tensor<1x4x4x3x3x2xf32> into tensor<16x18xf32>
  %w = "qc.weight"() {name = @w} : () -> tensor<4x18xf32>
  %y = "qc.linear"(%a, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<16x18xf32>, tensor<4x18xf32>) -> tensor<16x4xf32>
  return %y : tensor<16x4xf32>
}
