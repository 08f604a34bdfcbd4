// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-pool-channels-last)' | FileCheck %s
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-pool-channels-last, func.func(linalg-fuse-elementwise-ops), canonicalize)' | FileCheck %s --check-prefix=FUSED

// A padded max pool (ResNet's stem: 3x3, stride 2): the -inf padding is redone channels last, the
// pool is one generic with the window reduced and the channels innermost, started from a -inf fill
// in the channels-last shape, and its result moves back to NCHW.
// CHECK-DAG: #[[X:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1 * 2 + d3, d2 * 2 + d4, d5)>
// CHECK-DAG: #[[K:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d3, d4)>
// CHECK-DAG: #[[Y:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d5)>
// CHECK-DAG: #[[BACK:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d2, d3, d1)>
// CHECK-LABEL: func.func @max_pool
// CHECK: %[[NINF:.*]] = arith.constant 0xFF800000 : f32
// CHECK: %[[INIT:.*]] = linalg.fill ins(%[[NINF]] : f32) outs(%{{.*}} : tensor<1x4x4x8xf32>)
// Only the border is filled: a row above and below (inside the columns), then a column each side.
// CHECK: bufferization.alloc_tensor() : tensor<1x11x11x8xf32>
// CHECK: linalg.fill ins(%[[NINF]] : f32) outs(%{{.*}} : tensor<1x1x9x8xf32>)
// CHECK: linalg.fill ins(%[[NINF]] : f32) outs(%{{.*}} : tensor<1x1x9x8xf32>)
// CHECK: linalg.fill ins(%[[NINF]] : f32) outs(%{{.*}} : tensor<1x11x1x8xf32>)
// CHECK: %[[PADDED:.*]] = tensor.insert_slice %{{.*}} into %{{.*}}[0, 0, 10, 0] [1, 11, 1, 8]
// CHECK: %[[IN:.*]] = tensor.extract_slice %[[PADDED]][0, 1, 1, 0] [1, 9, 9, 8] [1, 1, 1, 1]
// CHECK: %[[T:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<1x8x9x9xf32>) outs(%[[IN]] : tensor<1x9x9x8xf32>)
// CHECK: %[[XT:.*]] = tensor.insert_slice %[[T]] into %[[PADDED]][0, 1, 1, 0]
// CHECK: %[[P:.*]] = linalg.generic {indexing_maps = [#[[X]], #[[K]], #[[Y]]], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]}
// CHECK-SAME: ins(%[[XT]], %{{.*}} : tensor<1x11x11x8xf32>, tensor<3x3xf32>) outs(%[[INIT]] : tensor<1x4x4x8xf32>)
// CHECK: arith.maximumf %{{.*}}, %{{.*}} : f32
// CHECK: linalg.generic {indexing_maps = [#[[BACK]], {{.*}}} ins(%[[P]] : tensor<1x4x4x8xf32>) outs(%{{.*}} : tensor<1x8x4x4xf32>)
// CHECK-NOT: linalg.pooling_nchw_max
// CHECK-NOT: tensor.pad
func.func @max_pool(%x: tensor<1x8x9x9xf32>) -> tensor<1x8x4x4xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %ninf : f32
  } : tensor<1x8x9x9xf32> to tensor<1x8x11x11xf32>
  %e = tensor.empty() : tensor<1x8x4x4xf32>
  %init = linalg.fill ins(%ninf : f32) outs(%e : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  %w = tensor.empty() : tensor<3x3xf32>
  %y = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%p, %w : tensor<1x8x11x11xf32>, tensor<3x3xf32>) outs(%init : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  return %y : tensor<1x8x4x4xf32>
}

// -----

// A global average pool after a channels-last producer (a convolution's output moved back to NCHW):
// the sum runs channels last and fusion cancels the two moves, so the pool reads the producer's
// layout directly; the division stays elementwise on the 1x1 result.
// FUSED-DAG: #[[SUM:.*]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1 + d3, d2 + d4, d5)>
// FUSED-LABEL: func.func @global_average
// FUSED: linalg.generic {indexing_maps = [#[[SUM]], {{.*}}], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]}
// FUSED-SAME: ins(%arg0, %{{.*}} : tensor<1x7x7x16xf32>, tensor<7x7xf32>)
// FUSED: arith.addf
// FUSED-NOT: linalg.pooling_nchw_sum
func.func @global_average(%nhwc: tensor<1x7x7x16xf32>) -> tensor<1x16x1x1xf32> {
  %zero = arith.constant 0.0 : f32
  %e0 = tensor.empty() : tensor<1x16x7x7xf32>
  %x = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, h, w, c)>, affine_map<(n, c, h, w) -> (n, c, h, w)>],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%nhwc : tensor<1x7x7x16xf32>) outs(%e0 : tensor<1x16x7x7xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x16x7x7xf32>
  %e = tensor.empty() : tensor<1x16x1x1xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x16x1x1xf32>) -> tensor<1x16x1x1xf32>
  %w = tensor.empty() : tensor<7x7xf32>
  %y = linalg.pooling_nchw_sum {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<1x16x7x7xf32>, tensor<7x7xf32>) outs(%init : tensor<1x16x1x1xf32>) -> tensor<1x16x1x1xf32>
  return %y : tensor<1x16x1x1xf32>
}

// -----

// 1-D (NCW) pooling with an init that is not a fill: the init is moved channels last as well.
// CHECK-DAG: #[[X1:.*]] = affine_map<(d0, d1, d2, d3) -> (d0, d1 * 2 + d2, d3)>
// CHECK-LABEL: func.func @ncw_sum
// CHECK: %[[I:.*]] = linalg.generic {{.*}} ins(%arg1 : tensor<2x3x4xf32>) outs(%{{.*}} : tensor<2x4x3xf32>)
// CHECK: linalg.generic {indexing_maps = [#[[X1]], {{.*}}], iterator_types = ["parallel", "parallel", "reduction", "parallel"]}
// CHECK-SAME: outs(%[[I]] : tensor<2x4x3xf32>)
// CHECK: arith.addf
// CHECK: -> tensor<2x3x4xf32>
func.func @ncw_sum(%x: tensor<2x3x9xf32>, %init: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  %w = tensor.empty() : tensor<3xf32>
  %y = linalg.pooling_ncw_sum {dilations = dense<1> : vector<1xi64>, strides = dense<2> : vector<1xi64>}
      ins(%x, %w : tensor<2x3x9xf32>, tensor<3xf32>) outs(%init : tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  return %y : tensor<2x3x4xf32>
}

// -----

// An integer pool is not rewritten.
// CHECK-LABEL: func.func @int_pool
// CHECK: linalg.pooling_nchw_max
func.func @int_pool(%x: tensor<1x2x4x4xi32>, %init: tensor<1x2x2x2xi32>) -> tensor<1x2x2x2xi32> {
  %w = tensor.empty() : tensor<2x2xi32>
  %y = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%x, %w : tensor<1x2x4x4xi32>, tensor<2x2xi32>) outs(%init : tensor<1x2x2x2xi32>) -> tensor<1x2x2x2xi32>
  return %y : tensor<1x2x2x2xi32>
}
