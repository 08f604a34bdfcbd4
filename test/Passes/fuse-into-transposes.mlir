// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-fuse-into-transposes)' | FileCheck %s
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-fuse-into-transposes, func.func(linalg-fuse-elementwise-ops))' | FileCheck %s --check-prefix=FUSED
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-fuse-into-transposes, func.func(linalg-fuse-elementwise-ops), canonicalize, cse)' | FileCheck %s --check-prefix=CLEAN

// A relu read by an NCHW -> NHWC transpose and by another op: the transpose gets its own copy.
// CHECK-LABEL: func.func @two_users
// CHECK: %[[COPY:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<1x4x4x8xf32>)
// CHECK: arith.maximumf
// CHECK: %[[RELU:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<1x4x4x8xf32>)
// CHECK: arith.maximumf
// CHECK: %[[T:.*]] = linalg.generic {{.*}} ins(%[[COPY]] : tensor<1x8x4x4xf32>)
// CHECK: return %[[T]], %[[RELU]]
// Fused: the transpose computes the relu from the NHWC input straight (identity maps), in one pass.
// FUSED-LABEL: func.func @two_users
// FUSED: %[[RELU:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<1x4x4x8xf32>) outs(%{{.*}} : tensor<1x8x4x4xf32>)
// FUSED: %[[T:.*]] = linalg.generic {indexing_maps = [#[[ID:map[0-9]*]], #[[ID]]], {{.*}} ins(%arg0 : tensor<1x4x4x8xf32>) outs(%{{.*}} : tensor<1x4x4x8xf32>)
// FUSED-NEXT: ^bb0
// FUSED-NEXT: arith.maximumf
// FUSED: return %[[T]], %[[RELU]]
#nhwc_to_nchw = affine_map<(n, c, h, w) -> (n, h, w, c)>
#nchw_to_nhwc = affine_map<(n, h, w, c) -> (n, c, h, w)>
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @two_users(%conv: tensor<1x4x4x8xf32>) -> (tensor<1x4x4x8xf32>, tensor<1x8x4x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x8x4x4xf32>
  %relu = linalg.generic {indexing_maps = [#nhwc_to_nchw, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%conv : tensor<1x4x4x8xf32>) outs(%e : tensor<1x8x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x8x4x4xf32>
  %e2 = tensor.empty() : tensor<1x4x4x8xf32>
  %t = linalg.generic {indexing_maps = [#nchw_to_nhwc, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%relu : tensor<1x8x4x4xf32>) outs(%e2 : tensor<1x4x4x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x4x4x8xf32>
  return %t, %relu : tensor<1x4x4x8xf32>, tensor<1x8x4x4xf32>
}

// -----

// One user: nothing to copy (linalg-fuse-elementwise-ops fuses it as it is).
// CHECK-LABEL: func.func @one_user
// CHECK-COUNT-2: linalg.generic
// CHECK-NOT: linalg.generic
#nhwc_to_nchw1 = affine_map<(n, c, h, w) -> (n, h, w, c)>
#nchw_to_nhwc1 = affine_map<(n, h, w, c) -> (n, c, h, w)>
#id1 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @one_user(%conv: tensor<1x4x4x8xf32>) -> tensor<1x4x4x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x8x4x4xf32>
  %relu = linalg.generic {indexing_maps = [#nhwc_to_nchw1, #id1], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%conv : tensor<1x4x4x8xf32>) outs(%e : tensor<1x8x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x8x4x4xf32>
  %e2 = tensor.empty() : tensor<1x4x4x8xf32>
  %t = linalg.generic {indexing_maps = [#nchw_to_nhwc1, #id1], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%relu : tensor<1x8x4x4xf32>) outs(%e2 : tensor<1x4x4x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x4x4x8xf32>
  return %t : tensor<1x4x4x8xf32>
}

// -----

// A reduction is not copied: it is not elementwise, the fusion would not take it.
// CHECK-LABEL: func.func @reduction_producer
// CHECK-COUNT-2: linalg.generic
// CHECK-NOT: linalg.generic
#in3 = affine_map<(d0, d1) -> (d0, d1)>
#sum3 = affine_map<(d0, d1) -> (d0)>
#t3 = affine_map<(d0, d1) -> (d1, d0)>
#id3 = affine_map<(d0, d1) -> (d0, d1)>
func.func @reduction_producer(%x: tensor<4x8x2xf32>, %acc: tensor<4x8xf32>) -> (tensor<8x4xf32>, tensor<4x8xf32>) {
  %r = linalg.generic {indexing_maps = [affine_map<(a, b, k) -> (a, b, k)>, affine_map<(a, b, k) -> (a, b)>],
                       iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : tensor<4x8x2xf32>) outs(%acc : tensor<4x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %s = arith.addf %in, %out : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  %e = tensor.empty() : tensor<8x4xf32>
  %t = linalg.generic {indexing_maps = [#t3, #id3], iterator_types = ["parallel", "parallel"]}
      ins(%r : tensor<4x8xf32>) outs(%e : tensor<8x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<8x4xf32>
  return %t, %r : tensor<8x4xf32>, tensor<4x8xf32>
}

// -----

// A transpose of a channel concat becomes one transpose per part, each into its channel slice of
// the NHWC result; the relu part also read elsewhere gets its own copy.
// CHECK-LABEL: func.func @concat
// CHECK-NOT: tensor.concat
// CHECK: %[[COPY:.*]] = linalg.generic {{.*}} ins(%arg1 : tensor<1x4x4x8xf32>)
// CHECK: arith.maximumf
// CHECK: %[[S0:.*]] = tensor.extract_slice %[[O:.*]][0, 0, 0, 0] [1, 4, 4, 2] [1, 1, 1, 1] : tensor<1x4x4x10xf32> to tensor<1x4x4x2xf32>
// CHECK: %[[T0:.*]] = linalg.generic {{.*}} ins(%arg0 : tensor<1x2x4x4xf32>) outs(%[[S0]] : tensor<1x4x4x2xf32>)
// CHECK: %[[I0:.*]] = tensor.insert_slice %[[T0]] into %[[O]][0, 0, 0, 0] [1, 4, 4, 2] [1, 1, 1, 1]
// CHECK: %[[S1:.*]] = tensor.extract_slice %[[I0]][0, 0, 0, 2] [1, 4, 4, 8] [1, 1, 1, 1] : tensor<1x4x4x10xf32> to tensor<1x4x4x8xf32>
// CHECK: %[[T1:.*]] = linalg.generic {{.*}} ins(%[[COPY]] : tensor<1x8x4x4xf32>) outs(%[[S1]] : tensor<1x4x4x8xf32>)
// CHECK: %[[I1:.*]] = tensor.insert_slice %[[T1]] into %[[I0]][0, 0, 0, 2] [1, 4, 4, 8] [1, 1, 1, 1]
// CHECK: return %[[I1]], %{{.*}}
#nhwc_to_nchw4 = affine_map<(n, c, h, w) -> (n, h, w, c)>
#nchw_to_nhwc4 = affine_map<(n, h, w, c) -> (n, c, h, w)>
#id4 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @concat(%a: tensor<1x2x4x4xf32>, %conv: tensor<1x4x4x8xf32>) -> (tensor<1x4x4x10xf32>, tensor<1x8x4x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x8x4x4xf32>
  %relu = linalg.generic {indexing_maps = [#nhwc_to_nchw4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%conv : tensor<1x4x4x8xf32>) outs(%e : tensor<1x8x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x8x4x4xf32>
  %c = tensor.concat dim(1) %a, %relu : (tensor<1x2x4x4xf32>, tensor<1x8x4x4xf32>) -> tensor<1x10x4x4xf32>
  %o = tensor.empty() : tensor<1x4x4x10xf32>
  %t = linalg.generic {indexing_maps = [#nchw_to_nhwc4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%c : tensor<1x10x4x4xf32>) outs(%o : tensor<1x4x4x10xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x4x4x10xf32>
  return %t, %relu : tensor<1x4x4x10xf32>, tensor<1x8x4x4xf32>
}

// -----

// A layout move (a conv's NHWC output moved to NCHW with its relu) read by two generics, as a
// squeeze-excite block reads it (a sum over the pixels, and the product with the channel weights,
// moved back to NHWC): each gets its own copy of the move, so that fusion folds one into each and
// neither reads an NCHW tensor.
// CHECK-LABEL: func.func @shared_move
// CHECK-COUNT-2: linalg.generic {{.*}} ins(%arg0 : tensor<1x4x4x8xf32>) outs(%{{.*}} : tensor<1x8x4x4xf32>)
// FUSED-LABEL: func.func @shared_move
// FUSED-NOT: tensor<1x8x4x4xf32>
// FUSED: linalg.generic {{.*}} ins(%arg0 : tensor<1x4x4x8xf32>) outs(%{{.*}} : tensor<1x8xf32>)
// FUSED: arith.maximumf
// FUSED: linalg.generic {{.*}} ins(%arg0, %arg1 : tensor<1x4x4x8xf32>, tensor<1x8xf32>) outs(%{{.*}} : tensor<1x4x4x8xf32>)
// FUSED: arith.maximumf
// FUSED: arith.mulf
#nhwc_to_nchw2 = affine_map<(n, c, h, w) -> (n, h, w, c)>
#id4 = affine_map<(n, c, h, w) -> (n, c, h, w)>
#sum_in = affine_map<(n, c, h, w) -> (n, c, h, w)>
#sum_out = affine_map<(n, c, h, w) -> (n, c)>
#back = affine_map<(n, h, w, c) -> (n, c, h, w)>
#scale = affine_map<(n, h, w, c) -> (n, c)>
#id4b = affine_map<(n, h, w, c) -> (n, h, w, c)>
func.func @shared_move(%nhwc: tensor<1x4x4x8xf32>, %s: tensor<1x8xf32>, %zeros: tensor<1x8xf32>) -> (tensor<1x8xf32>, tensor<1x4x4x8xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x8x4x4xf32>
  %moved = linalg.generic {indexing_maps = [#nhwc_to_nchw2, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%nhwc : tensor<1x4x4x8xf32>) outs(%e : tensor<1x8x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %r = arith.maximumf %in, %zero : f32
    linalg.yield %r : f32
  } -> tensor<1x8x4x4xf32>
  %sum = linalg.generic {indexing_maps = [#sum_in, #sum_out], iterator_types = ["parallel", "parallel", "reduction", "reduction"]}
      ins(%moved : tensor<1x8x4x4xf32>) outs(%zeros : tensor<1x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %a = arith.addf %out, %in : f32
    linalg.yield %a : f32
  } -> tensor<1x8xf32>
  %e2 = tensor.empty() : tensor<1x4x4x8xf32>
  %scaled = linalg.generic {indexing_maps = [#back, #scale, #id4b], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%moved, %s : tensor<1x8x4x4xf32>, tensor<1x8xf32>) outs(%e2 : tensor<1x4x4x8xf32>) {
  ^bb0(%in: f32, %w: f32, %out: f32):
    %m = arith.mulf %in, %w : f32
    linalg.yield %m : f32
  } -> tensor<1x4x4x8xf32>
  return %sum, %scaled : tensor<1x8xf32>, tensor<1x4x4x8xf32>
}

// -----

// A nearest Resize as torch-mlir lowers it (a generic that gathers by computed indices) between two
// layout moves: the gather reads the NCHW copy's NHWC source at permuted indices, the resize runs on
// loops (n, h, w, c) and writes NHWC, and fusion folds the moves away: one NHWC gather is left.
// CHECK-LABEL: func.func @resize
// CHECK: linalg.index 3 : index
// CHECK: tensor.extract %arg0[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : tensor<1x4x4x3xf32>
// CHECK: -> tensor<1x8x8x3xf32>
// CHECK: ins(%{{.*}} : tensor<1x8x8x3xf32>) outs(%{{.*}} : tensor<1x3x8x8xf32>)
// CLEAN-LABEL: func.func @resize
// CLEAN-NOT: tensor<1x3x
// CLEAN: %[[H:.*]] = linalg.index 1 : index
// CLEAN: %[[W:.*]] = linalg.index 2 : index
// CLEAN: %[[C:.*]] = linalg.index 3 : index
// CLEAN: %[[H2:.*]] = arith.divui %[[H]]
// CLEAN: %[[W2:.*]] = arith.divui %[[W]]
// CLEAN: tensor.extract %arg0[%{{.*}}, %[[H2]], %[[W2]], %[[C]]] : tensor<1x4x4x3xf32>
// CLEAN: return %{{.*}} : tensor<1x8x8x3xf32>
func.func @resize(%nhwc: tensor<1x4x4x3xf32>) -> tensor<1x8x8x3xf32> {
  %c0 = arith.constant 0 : index
  %c2 = arith.constant 2 : index
  %e = tensor.empty() : tensor<1x3x4x4xf32>
  %nchw = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, h, w, c)>, affine_map<(n, c, h, w) -> (n, c, h, w)>],
                          iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%nhwc : tensor<1x4x4x3xf32>) outs(%e : tensor<1x3x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x3x4x4xf32>
  %e2 = tensor.empty() : tensor<1x3x8x8xf32>
  %up = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>],
                        iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      outs(%e2 : tensor<1x3x8x8xf32>) {
  ^bb0(%out: f32):
    %c = linalg.index 1 : index
    %h = linalg.index 2 : index
    %w = linalg.index 3 : index
    %h2 = arith.divui %h, %c2 : index
    %w2 = arith.divui %w, %c2 : index
    %v = tensor.extract %nchw[%c0, %c, %h2, %w2] : tensor<1x3x4x4xf32>
    linalg.yield %v : f32
  } -> tensor<1x3x8x8xf32>
  %e3 = tensor.empty() : tensor<1x8x8x3xf32>
  %back = linalg.generic {indexing_maps = [affine_map<(n, h, w, c) -> (n, c, h, w)>, affine_map<(n, h, w, c) -> (n, h, w, c)>],
                          iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%up : tensor<1x3x8x8xf32>) outs(%e3 : tensor<1x8x8x3xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x8x8x3xf32>
  return %back : tensor<1x8x8x3xf32>
}
