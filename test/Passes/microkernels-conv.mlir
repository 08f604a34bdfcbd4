// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-microkernels{vector-width=16})' | FileCheck %s

// qc-winograd's input transform, bufferized, with the zero fill of V before it: the fill is erased
// (the kernel writes all of V) and the generic becomes a call of a kernel over (batch, tile row)
// tasks that loads each 4x4 tile as vectors of 16 channels (the 20 channels: one vector, then 4
// lanes under a mask), transforms it with adds and subtracts (B^T has only 0 and +-1) and stores
// the 16 results.
// CHECK-LABEL: func.func @input
// CHECK-NOT: linalg.fill
// CHECK: call @qc_wpar_0(%arg0, %arg1) : (memref<1x6x6x20xf32>, memref<4x4x1x2x2x20xf32>) -> ()
// CHECK-NOT: linalg.generic
// CHECK: func.func @qc_wk_0(%{{.*}}: memref<1x6x6x20xf32>, %{{.*}}: memref<4x4x1x2x2x20xf32>, %{{.*}}: index, %{{.*}}: index)
// CHECK: scf.for
// CHECK: scf.for
// CHECK: scf.for
// CHECK-COUNT-16: vector.load
// CHECK-NOT: vector.fma
// CHECK-COUNT-16: vector.store
// CHECK: vector.create_mask %{{.*}} : vector<16xi1>
// CHECK-COUNT-16: vector.maskedload
// CHECK: func.func private @qc_wpar_0(memref<1x6x6x20xf32>, memref<4x4x1x2x2x20xf32>) attributes {llvm.emit_c_interface, qc.kernel = "qc_wk_0", qc.tasks = 2 : i64}
func.func @input(%s: memref<1x6x6x20xf32>, %v: memref<4x4x1x2x2x20xf32>) {
  %z = arith.constant 0.0 : f32
  %bt = memref.get_global @bt : memref<4x4x4x4xf32>
  linalg.fill ins(%z : f32) outs(%v : memref<4x4x1x2x2x20xf32>)
  linalg.generic {indexing_maps = [affine_map<(x, y, n, i, j, c, p, q) -> (n, i * 2 + p, j * 2 + q, c)>,
                                   affine_map<(x, y, n, i, j, c, p, q) -> (x, y, p, q)>,
                                   affine_map<(x, y, n, i, j, c, p, q) -> (x, y, n, i, j, c)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction"],
                  library_call = "qc_winograd_input"}
      ins(%s, %bt : memref<1x6x6x20xf32>, memref<4x4x4x4xf32>) outs(%v : memref<4x4x1x2x2x20xf32>) {
  ^bb0(%in: f32, %c: f32, %out: f32):
    %m = arith.mulf %c, %in : f32
    %a = arith.addf %out, %m : f32
    linalg.yield %a : f32
  }
  return
}
memref.global "private" constant @bt : memref<4x4x4x4xf32> = dense<0.0>

// -----

// The output transform of F(4x4, 3x3) (A^T has coefficients 2, 4 and 8: FMAs) started from a bias
// broadcast into Y: the broadcast is erased and the kernel adds the bias vector itself.
// CHECK-LABEL: func.func @output
// CHECK-NOT: linalg.generic
// CHECK: call @qc_wpar_0(%arg0, %arg1, %arg2) : (memref<6x6x1x2x2x32xf32>, memref<1x2x4x2x4x32xf32>, memref<32xf32>) -> ()
// CHECK: func.func @qc_wk_0(%{{.*}}: memref<6x6x1x2x2x32xf32>, %{{.*}}: memref<1x2x4x2x4x32xf32>, %[[B:.*]]: memref<32xf32>, %{{.*}}: index, %{{.*}}: index)
// CHECK-COUNT-36: vector.load %{{.*}} : memref<6x6x1x2x2x32xf32>, vector<16xf32>
// CHECK: vector.fma
// CHECK: vector.load %[[B]]
// CHECK-COUNT-16: vector.store
// CHECK: func.func private @qc_wpar_0({{.*}}) attributes {llvm.emit_c_interface, qc.kernel = "qc_wk_0", qc.tasks = 2 : i64}
func.func @output(%m: memref<6x6x1x2x2x32xf32>, %y: memref<1x2x4x2x4x32xf32>, %b: memref<32xf32>) {
  %at = memref.get_global @at : memref<4x4x6x6xf32>
  linalg.generic {indexing_maps = [affine_map<(n, i, r, j, s, f) -> (f)>, affine_map<(n, i, r, j, s, f) -> (n, i, r, j, s, f)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%b : memref<32xf32>) outs(%y : memref<1x2x4x2x4x32xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [affine_map<(n, i, r, j, s, f, x, y) -> (x, y, n, i, j, f)>,
                                   affine_map<(n, i, r, j, s, f, x, y) -> (r, s, x, y)>,
                                   affine_map<(n, i, r, j, s, f, x, y) -> (n, i, r, j, s, f)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction"],
                  library_call = "qc_winograd_output"}
      ins(%m, %at : memref<6x6x1x2x2x32xf32>, memref<4x4x6x6xf32>) outs(%y : memref<1x2x4x2x4x32xf32>) {
  ^bb0(%in: f32, %c: f32, %out: f32):
    %p = arith.mulf %c, %in : f32
    %a = arith.addf %out, %p : f32
    linalg.yield %a : f32
  }
  return
}
memref.global "private" constant @at : memref<4x4x6x6xf32> = dense<0.0>

// -----

// qc-conv-to-matmul's channels-last depthwise conv (3x3, stride 2, 20 channels): a kernel over output
// rows that keeps 4 pixels' accumulators in registers over the 9 taps (one filter vector per tap and
// vector of channels), the 20 channels as one vector and 4 masked lanes, the 5 pixels of a row as a
// block of 4 and one of 1.
// CHECK-LABEL: func.func @depthwise
// CHECK: call @qc_wpar_0(%arg0, %arg1, %arg2) : (memref<1x11x11x20xf32>, memref<3x3x20xf32>, memref<1x5x5x20xf32>) -> ()
// CHECK: func.func @qc_wk_0(
// CHECK: scf.for
// CHECK: scf.for
// CHECK-COUNT-4: vector.load %{{.*}} : memref<1x5x5x20xf32>, vector<16xf32>
// CHECK: vector.load %{{.*}} : memref<3x3x20xf32>, vector<16xf32>
// CHECK-COUNT-4: vector.fma
// CHECK-COUNT-4: vector.store
// CHECK: vector.maskedload
// CHECK: func.func private @qc_wpar_0({{.*}}) attributes {llvm.emit_c_interface, qc.kernel = "qc_wk_0", qc.tasks = 5 : i64}
func.func @depthwise(%x: memref<1x11x11x20xf32>, %w: memref<3x3x20xf32>, %y: memref<1x5x5x20xf32>) {
  linalg.generic {indexing_maps = [affine_map<(n, oh, ow, kh, kw, c) -> (n, oh * 2 + kh, ow * 2 + kw, c)>,
                                   affine_map<(n, oh, ow, kh, kw, c) -> (kh, kw, c)>,
                                   affine_map<(n, oh, ow, kh, kw, c) -> (n, oh, ow, c)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]}
      ins(%x, %w : memref<1x11x11x20xf32>, memref<3x3x20xf32>) outs(%y : memref<1x5x5x20xf32>) {
  ^bb0(%in: f32, %f: f32, %out: f32):
    %m = arith.mulf %in, %f : f32
    %a = arith.addf %out, %m : f32
    linalg.yield %a : f32
  }
  return
}
