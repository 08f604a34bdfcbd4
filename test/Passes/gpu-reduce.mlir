// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-gpu-reduce)' | FileCheck %s

// A norm's sum of squares over rows of 96: 2 x 37 = 74 rows, a warp each, 8 a block: 10 blocks, the
// last one partly idle (the guard is the warp's row, so whole warps skip it). Lane l reads elements l,
// l + 32, l + 64 of its row (a warp: 32 consecutive floats), starting from -0.0 (addf's identity);
// five xor shuffles give every lane the total, and lane 0 adds it into the output as the body did.
// CHECK-LABEL: func.func @sum_of_squares
// CHECK-NOT: linalg.generic
// CHECK: gpu.launch blocks(%[[B:[^,]*]], %{{[^,]*}}, %{{[^)]*}}) in (%{{[^=]*}} = %c10{{[_0-9]*}}, %{{[^=]*}} = %c1{{[_0-9]*}}, %{{[^=]*}} = %c1{{[_0-9]*}})
// CHECK-SAME: threads(%[[LANE:[^,]*]], %[[WARP:[^,]*]], %{{[^)]*}}) in (%{{[^=]*}} = %c32{{[_0-9]*}}, %{{[^=]*}} = %c8{{[_0-9]*}}, %{{[^=]*}} = %c1{{[_0-9]*}})
// CHECK-DAG: %[[ID:.*]] = arith.constant -0.000000e+00 : f32
// CHECK: %[[FIRST:.*]] = arith.muli %[[B]], %c8
// CHECK: %[[ROW:.*]] = arith.addi %[[FIRST]], %[[WARP]] : index
// CHECK: %[[IN:.*]] = arith.cmpi ult, %[[ROW]], %c74 : index
// CHECK: scf.if %[[IN]] {
// CHECK: %[[J:.*]] = arith.remui %[[ROW]], %c37
// CHECK: %[[I:.*]] = arith.divui %[[ROW]], %c37
// CHECK: %[[PART:.*]] = scf.for %[[K:.*]] = %[[LANE]] to %c96 step %c32{{.*}} iter_args(%[[ACC:.*]] = %[[ID]]) -> (f32) {
// CHECK: %[[X:.*]] = memref.load %arg0[%[[I]], %[[J]], %[[K]]] : memref<2x37x96xf32>
// CHECK: %[[SQ:.*]] = arith.mulf %[[X]], %[[X]] : f32
// CHECK: %[[NEXT:.*]] = arith.addf %[[SQ]], %[[ACC]] : f32
// CHECK: scf.yield %[[NEXT]]
// CHECK: gpu.shuffle xor %[[PART]], %c16_i32, %c32_i32 : f32
// CHECK-COUNT-4: gpu.shuffle xor
// CHECK: %[[LEAD:.*]] = arith.cmpi eq, %[[LANE]], %c0
// CHECK: scf.if %[[LEAD]] {
// CHECK: %[[OLD:.*]] = memref.load %arg1[%[[I]], %[[J]], %c0] : memref<2x37x1xf32>
// CHECK: %[[SUM:.*]] = arith.addf %{{.*}}, %[[OLD]] : f32
// CHECK: memref.store %[[SUM]], %arg1[%[[I]], %[[J]], %c0] : memref<2x37x1xf32>
// CHECK: gpu.terminator
func.func @sum_of_squares(%x: memref<2x37x96xf32>, %s: memref<2x37x1xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : memref<2x37x96xf32>) outs(%s : memref<2x37x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sq = arith.mulf %in, %in : f32
    %a = arith.addf %sq, %out : f32
    linalg.yield %a : f32
  }
  return
}

// -----

// Softmax's row maximum, the output the combiner's second operand: lanes start from -inf and the
// output stays the second operand at the store. 16 rows fill two blocks: no guard.
// CHECK-LABEL: func.func @row_max
// CHECK: gpu.launch blocks({{.*}}) in (%{{[^=]*}} = %c2{{[_0-9]*}},
// CHECK-DAG: %[[ID:.*]] = arith.constant 0xFF800000 : f32
// CHECK-NOT: scf.if
// CHECK: scf.for %{{.*}} = %{{.*}} to %c128 step %c32{{.*}} iter_args(%[[ACC:.*]] = %[[ID]])
// CHECK: arith.maximumf %{{.*}}, %[[ACC]] : f32
// CHECK-COUNT-5: gpu.shuffle xor
// CHECK: scf.if
// CHECK: %[[OLD:.*]] = memref.load %arg1
// CHECK: arith.maximumf %[[OLD]], %{{.*}} : f32
func.func @row_max(%x: memref<16x128xf32>, %m: memref<16xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<16x128xf32>) outs(%m : memref<16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %a = arith.maximumf %out, %in : f32
    linalg.yield %a : f32
  }
  return
}

// -----

// A variance: the row's mean is an input that does not read the reduced dim (loaded at the row),
// the row an input that does; linalg.index of the reduced dim is the lane's element index.
// CHECK-LABEL: func.func @variance
// CHECK: scf.for %[[K:.*]] = %{{.*}} to %c64 step %c32
// CHECK-DAG: memref.load %arg0[%[[ROW:.*]], %[[K]]] : memref<8x64xf32>
// CHECK-DAG: memref.load %arg1[%[[ROW]]] : memref<8xf32>
// CHECK: arith.index_cast %[[K]] : index to i64
// CHECK-COUNT-5: gpu.shuffle xor
func.func @variance(%x: memref<8x64xf32>, %mean: memref<8xf32>, %v: memref<8xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>,
                                   affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x, %mean : memref<8x64xf32>, memref<8xf32>) outs(%v : memref<8xf32>) {
  ^bb0(%in: f32, %m: f32, %out: f32):
    %k = linalg.index 1 : index
    %ki = arith.index_cast %k : index to i64
    %kf = arith.sitofp %ki : i64 to f32
    %d = arith.subf %in, %m : f32
    %w = arith.mulf %d, %kf : f32
    %sq = arith.mulf %w, %d : f32
    %a = arith.addf %out, %sq : f32
    linalg.yield %a : f32
  }
  return
}

// -----

// Declined: the reduced dim is the outer dim of the input (a column sum: a warp's lanes would read 32
// different rows), rows shorter than a warp, and a body that does not end in a combiner of the output.
// CHECK-LABEL: func.func @declined
// CHECK-NOT: gpu.launch
// CHECK-COUNT-3: linalg.generic
// CHECK-NOT: gpu.launch
func.func @declined(%x: memref<64x96xf32>, %c: memref<96xf32>, %y: memref<64x16xf32>, %r: memref<64xf32>, %q: memref<64xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d1, d0)>, affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x96xf32>) outs(%c : memref<96xf32>) {
  ^bb0(%in: f32, %out: f32):
    %a = arith.addf %in, %out : f32
    linalg.yield %a : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%y : memref<64x16xf32>) outs(%r : memref<64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %a = arith.addf %in, %out : f32
    linalg.yield %a : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x96xf32>) outs(%q : memref<64xf32>) {
  ^bb0(%in: f32, %out: f32):
    %a = arith.subf %out, %in : f32
    linalg.yield %a : f32
  }
  return
}
