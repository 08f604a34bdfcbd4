// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-collapse-elementwise)' | FileCheck %s

// A row of 112 pixels of 16 channels, as qc-parallelize slices it: the last two dims are contiguous in
// both operands (the unit dim before them too: its stride is their size) and become one loop of 1792 floats.
// CHECK-LABEL: func.func @row
// CHECK: %[[A:.*]] = memref.collapse_shape %arg0 {{\[\[}}0], [1, 2, 3]] : memref<1x1x112x16xf32, strided<[200704, 1792, 16, 1], offset: ?>> into memref<1x1792xf32, strided<[200704, 1], offset: ?>>
// CHECK: %[[B:.*]] = memref.collapse_shape %arg1 {{\[\[}}0], [1, 2, 3]]
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel"]} ins(%[[A]] : memref<1x1792xf32, {{.*}}>) outs(%[[B]] : memref<1x1792xf32, {{.*}}>)
// CHECK: arith.maximumf
func.func @row(%a: memref<1x1x112x16xf32, strided<[200704, 1792, 16, 1], offset: ?>>,
               %b: memref<1x1x112x16xf32, strided<[200704, 1792, 16, 1], offset: ?>>) {
  %zero = arith.constant 0.0 : f32
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%a : memref<1x1x112x16xf32, strided<[200704, 1792, 16, 1], offset: ?>>)
      outs(%b : memref<1x1x112x16xf32, strided<[200704, 1792, 16, 1], offset: ?>>) {
  ^bb0(%x: f32, %o: f32):
    %r = arith.maximumf %x, %zero : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// One operand holds its 24 channels in rows of 32 floats: only its last dim is contiguous, so nothing
// is collapsed; nor is an op that broadcasts an operand.
// CHECK-LABEL: func.func @not_contiguous
// CHECK-NOT: memref.collapse_shape
// CHECK: linalg.generic {{.*}} ins(%arg0 : memref<1x4x24xf32, strided<[128, 32, 1]>>)
// CHECK: linalg.generic {{.*}} ins(%arg2, %arg3 : memref<4x24xf32>, memref<24xf32>)
func.func @not_contiguous(%a: memref<1x4x24xf32, strided<[128, 32, 1]>>, %b: memref<1x4x24xf32>,
                          %c: memref<4x24xf32>, %s: memref<24xf32>, %d: memref<4x24xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a : memref<1x4x24xf32, strided<[128, 32, 1]>>) outs(%b : memref<1x4x24xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c, %s : memref<4x24xf32>, memref<24xf32>) outs(%d : memref<4x24xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %m = arith.mulf %x, %y : f32
    linalg.yield %m : f32
  }
  return
}
