// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-fold-widening)' | FileCheck %s

// A batch_matmul reads its f16 B as stored: the widening goes, the product takes the half tensor.
// CHECK-LABEL: func.func @folded
// CHECK-NOT: arith.extf
// CHECK: linalg.batch_matmul ins(%arg0, %arg1 : tensor<4x8x64xf32>, tensor<4x64x256xf16>) outs(%{{.*}} : tensor<4x8x256xf32>)
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @folded(%q: tensor<4x8x64xf32>, %k: tensor<4x64x256xf16>, %acc: tensor<4x8x256xf32>) -> tensor<4x8x256xf32> {
  %e = tensor.empty() : tensor<4x64x256xf32>
  %w = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%k : tensor<4x64x256xf16>) outs(%e : tensor<4x64x256xf32>) {
  ^bb0(%x: f16, %y: f32):
    %z = arith.extf %x : f16 to f32
    linalg.yield %z : f32
  } -> tensor<4x64x256xf32>
  %s = linalg.batch_matmul ins(%q, %w : tensor<4x8x64xf32>, tensor<4x64x256xf32>) outs(%acc : tensor<4x8x256xf32>) -> tensor<4x8x256xf32>
  return %s : tensor<4x8x256xf32>
}

// -----

// Through the collapse of a stacked cache's leading 1, rebuilt on the f16 slice.
// CHECK-LABEL: func.func @through_a_collapse
// CHECK: %[[C:.*]] = tensor.collapse_shape %arg1 {{\[\[}}0, 1], [2]] : tensor<1x64x32xf16> into tensor<64x32xf16>
// CHECK-NOT: arith.extf
// CHECK: linalg.matmul ins(%arg0, %[[C]] : tensor<8x64xf32>, tensor<64x32xf16>)
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @through_a_collapse(%a: tensor<8x64xf32>, %v: tensor<1x64x32xf16>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  %e = tensor.empty() : tensor<1x64x32xf32>
  %w = linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%v : tensor<1x64x32xf16>) outs(%e : tensor<1x64x32xf32>) {
  ^bb0(%x: f16, %y: f32):
    %z = arith.extf %x : f16 to f32
    linalg.yield %z : f32
  } -> tensor<1x64x32xf32>
  %c = tensor.collapse_shape %w [[0, 1], [2]] : tensor<1x64x32xf32> into tensor<64x32xf32>
  %s = linalg.matmul ins(%a, %c : tensor<8x64xf32>, tensor<64x32xf32>) outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %s : tensor<8x32xf32>
}

// -----

// A widening something else reads stays for it; the product still reads the half tensor.
// CHECK-LABEL: func.func @widening_kept_for_another_use
// CHECK: %[[W:.*]] = linalg.generic
// CHECK: linalg.matmul ins(%arg0, %arg1 : tensor<8x64xf32>, tensor<64x32xf16>)
// CHECK: return %{{.*}}, %[[W]]
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @widening_kept_for_another_use(%a: tensor<8x64xf32>, %b: tensor<64x32xf16>, %acc: tensor<8x32xf32>) -> (tensor<8x32xf32>, tensor<64x32xf32>) {
  %e = tensor.empty() : tensor<64x32xf32>
  %w = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%b : tensor<64x32xf16>) outs(%e : tensor<64x32xf32>) {
  ^bb0(%x: f16, %y: f32):
    %z = arith.extf %x : f16 to f32
    linalg.yield %z : f32
  } -> tensor<64x32xf32>
  %s = linalg.matmul ins(%a, %w : tensor<8x64xf32>, tensor<64x32xf32>) outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %s, %w : tensor<8x32xf32>, tensor<64x32xf32>
}

// -----

// Declined: a widening that is not elementwise (here transposing) is a copy the product needs.
// CHECK-LABEL: func.func @transposing_widening_declined
// CHECK: linalg.generic
// CHECK: arith.extf
// CHECK: linalg.matmul ins(%arg0, %{{.*}} : tensor<8x64xf32>, tensor<64x32xf32>)
#t = affine_map<(d0, d1) -> (d1, d0)>
#i = affine_map<(d0, d1) -> (d0, d1)>
func.func @transposing_widening_declined(%a: tensor<8x64xf32>, %b: tensor<32x64xf16>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  %e = tensor.empty() : tensor<64x32xf32>
  %w = linalg.generic {indexing_maps = [#t, #i], iterator_types = ["parallel", "parallel"]}
      ins(%b : tensor<32x64xf16>) outs(%e : tensor<64x32xf32>) {
  ^bb0(%x: f16, %y: f32):
    %z = arith.extf %x : f16 to f32
    linalg.yield %z : f32
  } -> tensor<64x32xf32>
  %s = linalg.matmul ins(%a, %w : tensor<8x64xf32>, tensor<64x32xf32>) outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %s : tensor<8x32xf32>
}

// -----

// int8 codes (an int8 KV cache) widened by sitofp: the product reads the codes.
// CHECK-LABEL: func.func @int8_codes
// CHECK-NOT: arith.sitofp
// CHECK: linalg.batch_matmul ins(%arg0, %arg1 : tensor<4x8x256xf32>, tensor<4x256x16xi8>)
#id4 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @int8_codes(%p: tensor<4x8x256xf32>, %v: tensor<4x256x16xi8>, %acc: tensor<4x8x16xf32>) -> tensor<4x8x16xf32> {
  %e = tensor.empty() : tensor<4x256x16xf32>
  %w = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%v : tensor<4x256x16xi8>) outs(%e : tensor<4x256x16xf32>) {
  ^bb0(%x: i8, %y: f32):
    %z = arith.sitofp %x : i8 to f32
    linalg.yield %z : f32
  } -> tensor<4x256x16xf32>
  %s = linalg.batch_matmul ins(%p, %w : tensor<4x8x256xf32>, tensor<4x256x16xf32>) outs(%acc : tensor<4x8x16xf32>) -> tensor<4x8x16xf32>
  return %s : tensor<4x8x16xf32>
}
