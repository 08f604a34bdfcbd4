// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-microkernels{vector-width=16 rows=4})' | FileCheck %s

// A panel matmul from qc-lower-linear: 14 rows = 3 blocks of 4 + a tail of 2,
// per k one panel vector of the weight and one broadcast element of x per row.
// CHECK-LABEL: func.func @panel
// CHECK: call @qc_par_0(%arg0, %arg1, %arg2) : (memref<2x7x8xf32>, memref<2x8x32xf32>, memref<2x7x2x32xf32>) -> ()
// CHECK-NOT: linalg.generic
// CHECK: func.func @qc_mk_0(%{{.*}}: memref<2x7x8xf32>, %{{.*}}: memref<2x8x32xf32>, %{{.*}}: memref<2x7x2x32xf32>, %[[T0:.*]]: index, %[[T1:.*]]: index) attributes {llvm.emit_c_interface}
// CHECK: %[[A:.*]] = memref.collapse_shape %{{.*}} {{\[\[}}0, 1], [2]] : memref<2x7x8xf32> into memref<14x8xf32>
// CHECK: %[[C:.*]] = memref.collapse_shape %{{.*}} {{\[\[}}0, 1], [2], [3]] : memref<2x7x2x32xf32> into memref<14x2x32xf32>
// CHECK: scf.for %[[T:.*]] = %[[T0]] to %[[T1]]
// CHECK: scf.for %[[I:.*]] = %{{.*}} to %c12 step %c4
// CHECK-COUNT-4: vector.load %[[C]]
// CHECK: scf.for {{.*}} -> (vector<32xf32>, vector<32xf32>, vector<32xf32>, vector<32xf32>)
// CHECK: vector.load %{{.*}} : memref<2x8x32xf32>, vector<32xf32>
// CHECK-COUNT-4: vector.fma
// CHECK: scf.yield
// CHECK-COUNT-4: vector.store {{.*}}, %[[C]]
// CHECK: scf.for {{.*}} -> (vector<32xf32>, vector<32xf32>)
// CHECK-COUNT-2: vector.fma
// CHECK: func.func private @qc_par_0(memref<2x7x8xf32>, memref<2x8x32xf32>, memref<2x7x2x32xf32>)
// CHECK-SAME: attributes {llvm.emit_c_interface, qc.kernel = "qc_mk_0", qc.tasks = 2 : i64}
func.func @panel(%a: memref<2x7x8xf32>, %w: memref<2x8x32xf32>, %c: memref<2x7x2x32xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, p, n, k) -> (d0, d1, k)>, affine_map<(d0, d1, p, n, k) -> (p, k, n)>,
                                   affine_map<(d0, d1, p, n, k) -> (d0, d1, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<2x7x8xf32>, memref<2x8x32xf32>) outs(%c : memref<2x7x2x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// f16 panels (scheme f16): one half vector per k, widened to f32 before the FMAs.
// CHECK-LABEL: func.func @half_panel
// CHECK: func.func @qc_mk_0(%{{.*}}: memref<4x8xf32>, %{{.*}}: memref<1x8x32xf16>
// CHECK: %[[H:.*]] = vector.load %{{.*}} : memref<1x8x32xf16>, vector<32xf16>
// CHECK: %[[B:.*]] = arith.extf %[[H]] : vector<32xf16> to vector<32xf32>
// CHECK-COUNT-4: vector.fma %{{.*}}, %[[B]]
func.func @half_panel(%a: memref<4x8xf32>, %w: memref<1x8x32xf16>, %c: memref<4x1x32xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, p, n, k) -> (d0, k)>, affine_map<(d0, p, n, k) -> (p, k, n)>,
                                   affine_map<(d0, p, n, k) -> (d0, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<4x8xf32>, memref<1x8x32xf16>) outs(%c : memref<4x1x32xf32>) {
  ^bb0(%i: f32, %h: f16, %o: f32):
    %j = arith.extf %h : f16 to f32
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A contraction of 2^24 multiply-adds or more (a LLaMA-7B projection at one token) goes to the pool in
// 8 chunks per thread; the small ones above have one range per thread (no attribute).
// CHECK-LABEL: func.func @large_panel
// CHECK: func.func private @qc_par_0({{.*}}) attributes {llvm.emit_c_interface, qc.chunks_per_thread = 8 : i64, qc.kernel = "qc_mk_0", qc.tasks = 128 : i64}
func.func @large_panel(%a: memref<1x4096xf32>, %w: memref<128x4096x32xf32>, %c: memref<1x128x32xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, p, n, k) -> (d0, k)>, affine_map<(d0, p, n, k) -> (p, k, n)>,
                                   affine_map<(d0, p, n, k) -> (d0, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<1x4096xf32>, memref<128x4096x32xf32>) outs(%c : memref<1x128x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// batch_matmul on activations: tasks are (batch, 16-column panel) pairs; B is read in place.
// CHECK-LABEL: func.func @batch
// CHECK: call @qc_par_0(%arg0, %arg1, %arg2)
// CHECK-NOT: linalg.batch_matmul
// CHECK: func.func @qc_mk_0
// CHECK: arith.divui
// CHECK: arith.remui
// CHECK: vector.load %{{.*}} : memref<3x4x16xf32>, vector<16xf32>
// CHECK: func.func private @qc_par_0({{.*}}) attributes {llvm.emit_c_interface, qc.kernel = "qc_mk_0", qc.tasks = 3 : i64}
func.func @batch(%q: memref<3x5x4xf32>, %k: memref<3x4x16xf32>, %s: memref<3x5x16xf32>) {
  linalg.batch_matmul ins(%q, %k : memref<3x5x4xf32>, memref<3x4x16xf32>) outs(%s : memref<3x5x16xf32>)
  return
}

// -----

// An f16 B (an f16 KV cache, after qc-fold-widening): loaded as half, widened in registers.
// CHECK-LABEL: func.func @batch_half_b
// CHECK: %[[K:.*]] = memref.cast %arg1
// CHECK: call @qc_par_0(%arg0, %[[K]], %arg2)
// CHECK-NOT: linalg.batch_matmul
// CHECK: func.func @qc_mk_0
// CHECK: %[[H:.*]] = vector.load %{{.*}} : memref<3x4x16xf16, strided<[128, 16, 1], offset: ?>>, vector<16xf16>
// CHECK: %[[B:.*]] = arith.extf %[[H]] : vector<16xf16> to vector<16xf32>
// CHECK: vector.fma %{{.*}}, %[[B]]
func.func @batch_half_b(%q: memref<3x5x4xf32>, %k: memref<3x4x16xf16, strided<[128, 16, 1]>>, %s: memref<3x5x16xf32>) {
  linalg.batch_matmul ins(%q, %k : memref<3x5x4xf32>, memref<3x4x16xf16, strided<[128, 16, 1]>>) outs(%s : memref<3x5x16xf32>)
  return
}

// -----

// int8 codes as B (an int8 KV cache): loaded as bytes, sitofp in registers.
// CHECK-LABEL: func.func @batch_int8_b
// CHECK: func.func @qc_mk_0
// CHECK: %[[H:.*]] = vector.load %{{.*}} : memref<3x4x16xi8>, vector<16xi8>
// CHECK: %[[B:.*]] = arith.sitofp %[[H]] : vector<16xi8> to vector<16xf32>
// CHECK: vector.fma %{{.*}}, %[[B]]
func.func @batch_int8_b(%q: memref<3x5x4xf32>, %k: memref<3x4x16xi8>, %s: memref<3x5x16xf32>) {
  linalg.batch_matmul ins(%q, %k : memref<3x5x4xf32>, memref<3x4x16xi8>) outs(%s : memref<3x5x16xf32>)
  return
}

// -----

// Kernels are shared by matmuls of one type.  A may have any strides (it is read
// element by element); views that differ only in their offset share one kernel, which
// reads the offset at run time; C with a non-unit inner stride stays with linalg.
// CHECK-LABEL: func.func @shared_and_left
// CHECK: call @qc_par_0(%arg0, %arg1, %arg2)
// CHECK: call @qc_par_0(%arg0, %arg1, %arg3)
// CHECK: %[[AT1:.*]] = memref.cast %{{.*}} : memref<2x4xf32, strided<[4, 1], offset: 4>> to memref<2x4xf32, strided<[4, 1], offset: ?>>
// CHECK: call @qc_par_1(%[[AT1]], %arg1, %arg4) : (memref<2x4xf32, strided<[4, 1], offset: ?>>, memref<4x32xf32>, memref<2x32xf32>)
// CHECK: %[[AT3:.*]] = memref.cast %{{.*}} : memref<2x4xf32, strided<[4, 1], offset: 12>> to memref<2x4xf32, strided<[4, 1], offset: ?>>
// CHECK: call @qc_par_1(%[[AT3]], %arg1, %arg4)
// CHECK: linalg.matmul ins(%arg0, %{{.*}} : memref<5x4xf32>, memref<4x16xf32, strided<[32, 1]>>) outs(%{{.*}} : memref<5x16xf32, strided<[64, 2]>>)
// CHECK-COUNT-2: func.func @qc_mk
// CHECK-NOT: func.func @qc_mk
func.func @shared_and_left(%x: memref<5x4xf32>, %y: memref<4x32xf32>, %z: memref<5x32xf32>, %z2: memref<5x32xf32>,
                           %o: memref<2x32xf32>, %wide: memref<5x64xf32>) {
  linalg.matmul ins(%x, %y : memref<5x4xf32>, memref<4x32xf32>) outs(%z : memref<5x32xf32>)
  linalg.matmul ins(%x, %y : memref<5x4xf32>, memref<4x32xf32>) outs(%z2 : memref<5x32xf32>)
  %sub = memref.subview %x[1, 0] [2, 4] [1, 1] : memref<5x4xf32> to memref<2x4xf32, strided<[4, 1], offset: 4>>
  linalg.matmul ins(%sub, %y : memref<2x4xf32, strided<[4, 1], offset: 4>>, memref<4x32xf32>) outs(%o : memref<2x32xf32>)
  %sub3 = memref.subview %x[3, 0] [2, 4] [1, 1] : memref<5x4xf32> to memref<2x4xf32, strided<[4, 1], offset: 12>>
  linalg.matmul ins(%sub3, %y : memref<2x4xf32, strided<[4, 1], offset: 12>>, memref<4x32xf32>) outs(%o : memref<2x32xf32>)
  %ys = memref.subview %y[0, 0] [4, 16] [1, 1] : memref<4x32xf32> to memref<4x16xf32, strided<[32, 1]>>
  %every2 = memref.subview %wide[0, 0] [5, 16] [1, 2] : memref<5x64xf32> to memref<5x16xf32, strided<[64, 2]>>
  linalg.matmul ins(%x, %ys : memref<5x4xf32>, memref<4x16xf32, strided<[32, 1]>>) outs(%every2 : memref<5x16xf32, strided<[64, 2]>>)
  return
}

// -----

// 40 columns = one 32-wide panel and a partial one: every access to B and C goes
// through a lane mask of the columns left (all lanes but in the last panel).
// CHECK-LABEL: func.func @ragged
// CHECK: call @qc_par_0
// CHECK: func.func @qc_mk_0
// CHECK: %[[LEFT:.*]] = arith.subi %c40, %{{.*}} : index
// CHECK: %[[MASK:.*]] = vector.create_mask %[[LEFT]] : vector<32xi1>
// CHECK: vector.maskedload %{{.*}}, %[[MASK]], %{{.*}} : memref<5x40xf32>, vector<32xi1>, vector<32xf32> into vector<32xf32>
// CHECK: vector.maskedload %{{.*}}, %[[MASK]], %{{.*}} : memref<4x40xf32>, vector<32xi1>, vector<32xf32> into vector<32xf32>
// CHECK: vector.maskedstore %{{.*}}, %[[MASK]], %{{.*}} : memref<5x40xf32>, vector<32xi1>, vector<32xf32>
// CHECK: func.func private @qc_par_0({{.*}}) attributes {llvm.emit_c_interface, qc.kernel = "qc_mk_0", qc.tasks = 2 : i64}
func.func @ragged(%x: memref<5x4xf32>, %y: memref<4x40xf32>, %z: memref<5x40xf32>) {
  linalg.matmul ins(%x, %y : memref<5x4xf32>, memref<4x40xf32>) outs(%z : memref<5x40xf32>)
  return
}

// -----

// An int4 qgemm panel contraction from qc-lower-qgemm, one row (decode): tasks are
// column panels; per k one 16-byte load of packed weights is prefetched ahead,
// widened to i32 and turned into two f32 vectors by a 16-float table lookup
// (vpermps: the low nibble as is, the high one after a shift), then accumulated
// with one FMA each; k is unrolled into 4 independent accumulator pairs (8
// vectors) that start at zero per group.  At the group's end the row's sum of x
// (vector loads of A) meets the offset: C += acc * scale + sum(x) * offset.
// CHECK-LABEL: func.func @qgemm_int4
// CHECK: call @qc_par_0(%arg0, %arg1, %arg2, %arg3, %arg4) : (memref<1x64xf32>, memref<2x64x16xi8>, memref<2x2x32xf32>, memref<2x2x32xf32>, memref<1x2x32xf32>) -> ()
// CHECK: func.func @qc_mk_0(
// CHECK: %[[TABLE:.*]] = arith.constant dense<[0.000000e+00, 1.000000e+00, {{.*}}, 1.500000e+01]> : vector<16xf32>
// CHECK: scf.for %[[P:.*]] = %{{.*}} to %{{.*}} step
// CHECK: scf.for %[[G:.*]] = %{{.*}} to %{{.*}} step
// CHECK: scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK: memref.prefetch %{{.*}}, read, locality<3>, data : memref<2x64x16xi8>
// CHECK: %[[B:.*]] = vector.load %{{.*}} : memref<2x64x16xi8>, vector<16xi8>
// CHECK: %[[E:.*]] = arith.extui %[[B]] : vector<16xi8> to vector<16xi32>
// CHECK: %[[HI:.*]] = arith.shrui %[[E]]
// CHECK: llvm.call_intrinsic "llvm.x86.avx512.permvar.sf.512"(%[[TABLE]], %[[E]])
// CHECK: llvm.call_intrinsic "llvm.x86.avx512.permvar.sf.512"(%[[TABLE]], %[[HI]])
// CHECK-COUNT-2: vector.fma
// CHECK: scf.yield
// CHECK: %[[S:.*]] = vector.load %{{.*}}[%[[P]], %[[G]], %{{.*}}] : memref<2x2x32xf32>, vector<16xf32>
// CHECK: %[[O:.*]] = vector.load %{{.*}}[%[[P]], %[[G]], %{{.*}}] : memref<2x2x32xf32>, vector<16xf32>
// CHECK: vector.load %{{.*}} : memref<1x64xf32>, vector<16xf32>
// CHECK: %[[SUM:.*]] = vector.reduction <add>
// CHECK: %[[XS:.*]] = vector.broadcast %[[SUM]] : f32 to vector<16xf32>
// CHECK: %[[C:.*]] = vector.load %{{.*}} : memref<1x2x32xf32>, vector<16xf32>
// CHECK: %[[Y:.*]] = vector.fma %{{.*}}, %[[S]], %[[C]]
// CHECK: %[[Z:.*]] = vector.fma %[[XS]], %[[O]], %[[Y]]
// CHECK: vector.store %[[Z]]
// CHECK: func.func private @qc_par_0({{.*}}) attributes {llvm.emit_c_interface, qc.kernel = "qc_mk_0", qc.tasks = 2 : i64}
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#w = affine_map<(d0, p, n, k) -> (p, k, n mod 16)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 32, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @qgemm_int4(%a: memref<1x64xf32>, %w: memref<2x64x16xi8>, %s: memref<2x2x32xf32>, %o: memref<2x2x32xf32>, %c: memref<1x2x32xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_panel", qc.layout = #qc.layout<64 : i64, 64 : i64, 32 : i64, 4 : i64, 32 : i64, 0 : i64, 0 : i64>}
      ins(%a, %w, %s, %o : memref<1x64xf32>, memref<2x64x16xi8>, memref<2x2x32xf32>, memref<2x2x32xf32>) outs(%c : memref<1x2x32xf32>) {
  ^bb0(%xa: f32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %f = arith.uitofp %b : i8 to f32
    %ws = arith.mulf %f, %sc : f32
    %wv = arith.addf %ws, %of : f32
    %m = arith.mulf %xa, %wv : f32
    %r = arith.addf %acc, %m : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Symmetric int4 (qc_qgemm_panel_sym): the offset is -8 x scale, so O is not read;
// the group's sum of x is folded into the accumulator before the scale.
// CHECK-LABEL: func.func @qgemm_int4_symmetric
// CHECK: func.func @qc_mk_0(
// CHECK: %[[SHIFT:.*]] = arith.constant dense<-8.000000e+00> : vector<16xf32>
// CHECK: scf.yield
// CHECK: %[[S:.*]] = vector.load %arg2
// CHECK-NOT: vector.load %arg3
// CHECK: %[[XS:.*]] = vector.broadcast
// CHECK: %[[T:.*]] = vector.fma %[[XS]], %[[SHIFT]], %{{.*}}
// CHECK: vector.fma %[[T]], %[[S]], %{{.*}}
// CHECK-NOT: vector.load %arg3
// CHECK: return
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#w = affine_map<(d0, p, n, k) -> (p, k, n mod 16)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 32, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @qgemm_int4_symmetric(%a: memref<1x64xf32>, %w: memref<2x64x16xi8>, %s: memref<2x2x32xf32>, %o: memref<2x2x32xf32>, %c: memref<1x2x32xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_panel_sym", qc.layout = #qc.layout<64 : i64, 64 : i64, 32 : i64, 4 : i64, 32 : i64, 0 : i64, 1 : i64>}
      ins(%a, %w, %s, %o : memref<1x64xf32>, memref<2x64x16xi8>, memref<2x2x32xf32>, memref<2x2x32xf32>) outs(%c : memref<1x2x32xf32>) {
  ^bb0(%xa: f32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %f = arith.uitofp %b : i8 to f32
    %ws = arith.mulf %f, %sc : f32
    %wv = arith.addf %ws, %of : f32
    %m = arith.mulf %xa, %wv : f32
    %r = arith.addf %acc, %m : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Symmetric int8 per channel: the offset is 0, so neither O nor the sum of x is
// needed: C += acc * scale.
// CHECK-LABEL: func.func @qgemm_int8_symmetric
// CHECK: func.func @qc_mk_0(
// CHECK: arith.sitofp %{{.*}} : vector<16xi8> to vector<16xf32>
// CHECK: scf.yield
// CHECK: %[[S:.*]] = vector.load %arg2
// CHECK-NOT: vector.reduction
// CHECK: %[[C:.*]] = vector.load %{{.*}} : memref<3x1x32xf32>, vector<16xf32>
// CHECK: vector.fma %{{.*}}, %[[S]], %[[C]]
// CHECK-NOT: vector.load %arg3
// CHECK: return
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#w = affine_map<(d0, p, n, k) -> (p, k, n)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @qgemm_int8_symmetric(%a: memref<3x8xf32>, %w: memref<1x8x32xi8>, %s: memref<1x1x32xf32>, %o: memref<1x1x32xf32>, %c: memref<3x1x32xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_panel_sym", qc.layout = #qc.layout<32 : i64, 8 : i64, 32 : i64, 8 : i64, 8 : i64, 0 : i64, 1 : i64>}
      ins(%a, %w, %s, %o : memref<3x8xf32>, memref<1x8x32xi8>, memref<1x1x32xf32>, memref<1x1x32xf32>) outs(%c : memref<3x1x32xf32>) {
  ^bb0(%xa: f32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %f = arith.sitofp %b : i8 to f32
    %ws = arith.mulf %f, %sc : f32
    %wv = arith.addf %ws, %of : f32
    %m = arith.mulf %xa, %wv : f32
    %r = arith.addf %acc, %m : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// A zero fill of C just before the matmul (a linear without bias) is the
// accumulator's start: the fill is erased and the kernel starts from zero
// vectors instead of loading C.
// CHECK-LABEL: func.func @zero_filled
// CHECK-NOT: linalg.fill
// CHECK: call @qc_par_0(%arg0, %arg1, %arg2)
// CHECK: func.func @qc_mk_0
// CHECK: %[[ZERO:.*]] = arith.constant dense<0.000000e+00> : vector<32xf32>
// CHECK-NOT: vector.load %{{.*}} : memref<5x32xf32>
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %[[ZERO]]
// CHECK: vector.store %{{.*}} : memref<5x32xf32>, vector<32xf32>
func.func @zero_filled(%x: memref<5x4xf32>, %y: memref<4x32xf32>, %z: memref<5x32xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%z : memref<5x32xf32>)
  linalg.matmul ins(%x, %y : memref<5x4xf32>, memref<4x32xf32>) outs(%z : memref<5x32xf32>)
  return
}

// -----

// The fill stays, and the kernel reads C, when anything in between touches a view
// of C (here a copy into a subview) or when the fill value is not zero.
// CHECK-LABEL: func.func @fill_seen
// CHECK: linalg.fill
// CHECK: memref.copy
// CHECK: call @qc_par_0(%arg0, %arg1, %arg2)
// CHECK: linalg.fill
// CHECK: call @qc_par_0(%arg0, %arg1, %arg3)
// CHECK: func.func @qc_mk_0
// CHECK: vector.load %{{.*}} : memref<5x32xf32>, vector<32xf32>
func.func @fill_seen(%x: memref<5x4xf32>, %y: memref<4x32xf32>, %z: memref<5x32xf32>, %z2: memref<5x32xf32>,
                     %row: memref<1x32xf32>) {
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  linalg.fill ins(%zero : f32) outs(%z : memref<5x32xf32>)
  %first = memref.subview %z[0, 0] [1, 32] [1, 1] : memref<5x32xf32> to memref<1x32xf32, strided<[32, 1]>>
  memref.copy %row, %first : memref<1x32xf32> to memref<1x32xf32, strided<[32, 1]>>
  linalg.matmul ins(%x, %y : memref<5x4xf32>, memref<4x32xf32>) outs(%z : memref<5x32xf32>)
  linalg.fill ins(%one : f32) outs(%z2 : memref<5x32xf32>)
  linalg.matmul ins(%x, %y : memref<5x4xf32>, memref<4x32xf32>) outs(%z2 : memref<5x32xf32>)
  return
}

// -----

// im2col columns (a 3x3 conv, stride 1, on a padded 1x6x6x4 input seen as [1, 6, 24]) are read in place:
// the copy into the column buffer and the buffer are erased; each row block starts at its pixel's
// offset in the source and the k loop runs over (kh, kw x c) = (3, 12) with strides (24, 1).
// CHECK-LABEL: func.func @columns_in_place
// CHECK-NOT: memref.alloc() {{.*}} : memref<1x4x4x3x12xf32>
// CHECK: call @qc_par_0(%arg0, %arg1, %arg2) : (memref<1x6x24xf32>, memref<1x36x32xf32>, memref<16x1x32xf32>) -> ()
// CHECK-NOT: linalg.generic
// CHECK: func.func @qc_mk_0(%{{.*}}: memref<1x6x24xf32>,
// CHECK: %[[S:.*]] = memref.collapse_shape %{{.*}} {{\[\[}}0, 1, 2]] : memref<1x6x24xf32> into memref<144xf32>
// CHECK: arith.divui %{{.*}}, %c4
// CHECK: arith.muli %{{.*}}, %c24
// CHECK: scf.for %{{.*}} = %c0 to %c3 step %c1 iter_args(
// CHECK: scf.for %{{.*}} = %c0 to %c12 step %c1 iter_args(
// CHECK: memref.load %[[S]][%{{.*}}] : memref<144xf32>
// CHECK: vector.fma
#col_src = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1 + d3, d2 * 4 + d4)>
#col_dst = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
#px = affine_map<(d0, p, n, k) -> (d0, k)>
#pw = affine_map<(d0, p, n, k) -> (p, k, n)>
#pc = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @columns_in_place(%x: memref<1x6x24xf32>, %w: memref<1x36x32xf32>, %c: memref<16x1x32xf32>) {
  %col = memref.alloc() {alignment = 64 : i64} : memref<1x4x4x3x12xf32>
  linalg.generic {indexing_maps = [#col_src, #col_dst], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x6x24xf32>) outs(%col : memref<1x4x4x3x12xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  %a = memref.collapse_shape %col [[0, 1, 2], [3, 4]] : memref<1x4x4x3x12xf32> into memref<16x36xf32>
  linalg.generic {indexing_maps = [#px, #pw, #pc], iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<16x36xf32>, memref<1x36x32xf32>) outs(%c : memref<16x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  memref.dealloc %col : memref<1x4x4x3x12xf32>
  return
}

// -----

// The source is freed right after the copy (qc-early-deallocs frees a buffer after its last use):
// the columns are still read in place, and the free moves after the kernel call.
// CHECK-LABEL: func.func @columns_source_freed
// CHECK-NOT: memref.alloc() {{.*}} : memref<1x4x4x3x12xf32>
// CHECK: %[[X:.*]] = memref.alloc() {{.*}} : memref<1x6x24xf32>
// CHECK: call @qc_par_0(%[[X]], %arg0, %arg1) : (memref<1x6x24xf32>, memref<1x36x32xf32>, memref<16x1x32xf32>) -> ()
// CHECK-NEXT: memref.dealloc %[[X]] : memref<1x6x24xf32>
#col_src3 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1 + d3, d2 * 4 + d4)>
#col_dst3 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
#px3 = affine_map<(d0, p, n, k) -> (d0, k)>
#pw3 = affine_map<(d0, p, n, k) -> (p, k, n)>
#pc3 = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @columns_source_freed(%w: memref<1x36x32xf32>, %c: memref<16x1x32xf32>) {
  %x = memref.alloc() {alignment = 64 : i64} : memref<1x6x24xf32>
  %one = arith.constant 1.0 : f32
  linalg.fill ins(%one : f32) outs(%x : memref<1x6x24xf32>)
  %col = memref.alloc() {alignment = 64 : i64} : memref<1x4x4x3x12xf32>
  linalg.generic {indexing_maps = [#col_src3, #col_dst3], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x6x24xf32>) outs(%col : memref<1x4x4x3x12xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  memref.dealloc %x : memref<1x6x24xf32>
  %a = memref.collapse_shape %col [[0, 1, 2], [3, 4]] : memref<1x4x4x3x12xf32> into memref<16x36xf32>
  linalg.generic {indexing_maps = [#px3, #pw3, #pc3], iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<16x36xf32>, memref<1x36x32xf32>) outs(%c : memref<16x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  memref.dealloc %col : memref<1x4x4x3x12xf32>
  return
}

// -----

// The source is written between the copy and the contraction: the columns stay.
// CHECK-LABEL: func.func @columns_source_written
// CHECK: memref.alloc() {{.*}} : memref<1x4x4x3x12xf32>
// CHECK: linalg.generic
// CHECK: linalg.fill
// CHECK: call @qc_par_0(%{{.*}}, %arg1, %arg2) : (memref<16x36xf32>, memref<1x36x32xf32>, memref<16x1x32xf32>) -> ()
#col_src2 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1 + d3, d2 * 4 + d4)>
#col_dst2 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
#px2 = affine_map<(d0, p, n, k) -> (d0, k)>
#pw2 = affine_map<(d0, p, n, k) -> (p, k, n)>
#pc2 = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @columns_source_written(%x: memref<1x6x24xf32>, %w: memref<1x36x32xf32>, %c: memref<16x1x32xf32>) {
  %col = memref.alloc() {alignment = 64 : i64} : memref<1x4x4x3x12xf32>
  linalg.generic {indexing_maps = [#col_src2, #col_dst2], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x6x24xf32>) outs(%col : memref<1x4x4x3x12xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%x : memref<1x6x24xf32>)
  %a = memref.collapse_shape %col [[0, 1, 2], [3, 4]] : memref<1x4x4x3x12xf32> into memref<16x36xf32>
  linalg.generic {indexing_maps = [#px2, #pw2, #pc2], iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<16x36xf32>, memref<1x36x32xf32>) outs(%c : memref<16x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  memref.dealloc %col : memref<1x4x4x3x12xf32>
  return
}

// -----

// One 32-column panel and 66 rows: the rows are split into 4 ranges of 16 (tasks = panel x range),
// so the thread pool has work for more than one thread; the last range also takes the 2-row tail.
// CHECK-LABEL: func.func @row_ranges
// CHECK: func.func @qc_mk_0(
// CHECK: scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step %c1 {
// CHECK: %[[CH:.*]] = arith.remui %[[T]], %c4 : index
// CHECK: %[[LO:.*]] = arith.muli %[[CH]], %c16 : index
// CHECK: %[[END:.*]] = arith.addi %[[LO]], %c16 : index
// CHECK: %[[HI:.*]] = arith.minui %[[END]], %c64 : index
// CHECK: scf.for %{{.*}} = %[[LO]] to %[[HI]] step %c4 {
// CHECK: %[[LAST:.*]] = arith.cmpi eq, %[[CH]], %c3 : index
// CHECK: scf.if %[[LAST]] {
// CHECK: scf.for {{.*}} -> (vector<32xf32>, vector<32xf32>) {
// CHECK: func.func private @qc_par_0({{.*}}) attributes {llvm.emit_c_interface, qc.kernel = "qc_mk_0", qc.tasks = 4 : i64}
#rx = affine_map<(d0, p, n, k) -> (d0, k)>
#rw = affine_map<(d0, p, n, k) -> (p, k, n)>
#rc = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @row_ranges(%a: memref<66x8xf32>, %w: memref<1x8x32xf32>, %c: memref<66x1x32xf32>) {
  linalg.generic {indexing_maps = [#rx, #rw, #rc], iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<66x8xf32>, memref<1x8x32xf32>) outs(%c : memref<66x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Kernels are generated per static shape: a panel matmul with dynamic rows stays with linalg
// (it was given a kernel with a negative row count).
// CHECK-LABEL: func.func @dynamic_rows
// CHECK: linalg.generic
// CHECK-NOT: call @qc_par
#dx = affine_map<(d0, p, n, k) -> (d0, k)>
#dw = affine_map<(d0, p, n, k) -> (p, k, n)>
#dc = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @dynamic_rows(%a: memref<?x8xf32>, %w: memref<1x8x32xf32>, %c: memref<?x1x32xf32>) {
  linalg.generic {indexing_maps = [#dx, #dw, #dc], iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<?x8xf32>, memref<1x8x32xf32>) outs(%c : memref<?x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Columns copied from a source of dynamic shape are not read in place (the window needs its
// strides); the kernel reads the column buffer.
// CHECK-LABEL: func.func @columns_dynamic_source
// CHECK: memref.alloc() {{.*}} : memref<1x4x4x3x12xf32>
// CHECK: call @qc_par_0(%{{.*}}, %arg1, %arg2) : (memref<16x36xf32>, memref<1x36x32xf32>, memref<16x1x32xf32>) -> ()
#dcol_src = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1 + d3, d2 * 4 + d4)>
#dcol_dst = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
#dpx = affine_map<(d0, p, n, k) -> (d0, k)>
#dpw = affine_map<(d0, p, n, k) -> (p, k, n)>
#dpc = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @columns_dynamic_source(%x: memref<?x6x24xf32>, %w: memref<1x36x32xf32>, %c: memref<16x1x32xf32>) {
  %col = memref.alloc() {alignment = 64 : i64} : memref<1x4x4x3x12xf32>
  linalg.generic {indexing_maps = [#dcol_src, #dcol_dst], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<?x6x24xf32>) outs(%col : memref<1x4x4x3x12xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  %a = memref.collapse_shape %col [[0, 1, 2], [3, 4]] : memref<1x4x4x3x12xf32> into memref<16x36xf32>
  linalg.generic {indexing_maps = [#dpx, #dpw, #dpc], iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<16x36xf32>, memref<1x36x32xf32>) outs(%c : memref<16x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  memref.dealloc %col : memref<1x4x4x3x12xf32>
  return
}

// -----

// A panel matmul whose C only holds its bias, copied into every row (qc-lower-linear's accumulator
// start): the copy is erased and the kernel takes the [P, NR] bias as an operand after C, each row
// block starting from its panel's bias vector instead of reading C.
// CHECK-LABEL: func.func @bias_start
// CHECK-NOT: linalg.generic
// CHECK: call @qc_par_0(%arg0, %arg1, %arg3, %arg2) : (memref<6x8xf32>, memref<1x8x32xf32>, memref<6x1x32xf32>, memref<1x32xf32>) -> ()
// CHECK: func.func @qc_mk_0(%{{.*}}: memref<6x8xf32>, %{{.*}}: memref<1x8x32xf32>, %[[C:.*]]: memref<6x1x32xf32>, %[[B:.*]]: memref<1x32xf32>, %{{.*}}: index, %{{.*}}: index)
// CHECK: %[[START:.*]] = vector.load %[[B]]
// CHECK-NOT: vector.load %[[C]]
// CHECK: scf.for {{.*}} iter_args(%{{.*}} = %[[START]], %{{.*}} = %[[START]]
func.func @bias_start(%a: memref<6x8xf32>, %w: memref<1x8x32xf32>, %b: memref<1x32xf32>, %c: memref<6x1x32xf32>) {
  linalg.generic {indexing_maps = [affine_map<(m, p, n) -> (p, n)>, affine_map<(m, p, n) -> (m, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%b : memref<1x32xf32>) outs(%c : memref<6x1x32xf32>) {
  ^bb0(%i: f32, %o: f32):
    linalg.yield %i : f32
  }
  linalg.generic {indexing_maps = [affine_map<(m, p, n, k) -> (m, k)>, affine_map<(m, p, n, k) -> (p, k, n)>,
                                   affine_map<(m, p, n, k) -> (m, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<6x8xf32>, memref<1x8x32xf32>) outs(%c : memref<6x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A hard-swish in place over all of a panel matmul's output: the kernel applies it to each
// accumulator vector as it stores it (its arith chain on vector<32xf32>, the constants splat) and
// the generic is erased.
// CHECK-LABEL: func.func @epilogue_in_place
// CHECK: call @qc_par_0(%arg0, %arg1, %arg2)
// CHECK-NOT: linalg.generic
// CHECK: func.func @qc_mk_0(
// CHECK: vector.fma
// CHECK: arith.addf %{{.*}}, %{{.*}} : vector<32xf32>
// CHECK: arith.cmpf ugt, %{{.*}}, %{{.*}} : vector<32xf32>
// CHECK: arith.select %{{.*}}, %{{.*}}, %{{.*}} : vector<32xi1>, vector<32xf32>
// CHECK: arith.divf %{{.*}}, %{{.*}} : vector<32xf32>
// CHECK: %[[Y:.*]] = arith.mulf %{{.*}}, %{{.*}} : vector<32xf32>
// CHECK: vector.store %[[Y]]
func.func @epilogue_in_place(%a: memref<4x8xf32>, %w: memref<1x8x32xf32>, %c: memref<4x1x32xf32>) {
  %zero = arith.constant 0.0 : f32
  %three = arith.constant 3.0 : f32
  %six = arith.constant 6.0 : f32
  linalg.generic {indexing_maps = [affine_map<(d0, p, n, k) -> (d0, k)>, affine_map<(d0, p, n, k) -> (p, k, n)>,
                                   affine_map<(d0, p, n, k) -> (d0, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<4x8xf32>, memref<1x8x32xf32>) outs(%c : memref<4x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, p, n) -> (d0, p, n)>, affine_map<(d0, p, n) -> (d0, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%c : memref<4x1x32xf32>) outs(%c : memref<4x1x32xf32>) {
  ^bb0(%v: f32, %o: f32):
    %0 = arith.addf %v, %three : f32
    %1 = arith.cmpf ugt, %0, %zero : f32
    %2 = arith.select %1, %0, %zero : f32
    %3 = arith.cmpf olt, %2, %six : f32
    %4 = arith.select %3, %2, %six : f32
    %5 = arith.divf %4, %six : f32
    %6 = arith.mulf %5, %v : f32
    linalg.yield %6 : f32
  }
  return
}

// -----

// A ReLU from a local output (24 of its 32 channels, as a conv's padded panels) into another buffer,
// the output then freed: the kernel applies the ReLU and the generic becomes a plain copy.
// CHECK-LABEL: func.func @epilogue_copy
// CHECK: call @qc_par_0(
// CHECK: linalg.generic
// CHECK-NEXT: ^bb0(%[[IN:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: linalg.yield %[[IN]] : f32
// CHECK: func.func @qc_mk_0(
// CHECK: arith.cmpf ugt, %{{.*}}, %{{.*}} : vector<32xf32>
// CHECK: arith.select
// CHECK: vector.store
func.func @epilogue_copy(%a: memref<4x8xf32>, %w: memref<1x8x32xf32>, %y: memref<4x24xf32>) {
  %zero = arith.constant 0.0 : f32
  %c = memref.alloc() : memref<4x1x32xf32>
  linalg.fill ins(%zero : f32) outs(%c : memref<4x1x32xf32>)
  linalg.generic {indexing_maps = [affine_map<(d0, p, n, k) -> (d0, k)>, affine_map<(d0, p, n, k) -> (p, k, n)>,
                                   affine_map<(d0, p, n, k) -> (d0, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<4x8xf32>, memref<1x8x32xf32>) outs(%c : memref<4x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  %flat = memref.collapse_shape %c [[0], [1, 2]] : memref<4x1x32xf32> into memref<4x32xf32>
  %used = memref.subview %flat[0, 0] [4, 24] [1, 1] : memref<4x32xf32> to memref<4x24xf32, strided<[32, 1]>>
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%used : memref<4x24xf32, strided<[32, 1]>>) outs(%y : memref<4x24xf32>) {
  ^bb0(%v: f32, %o: f32):
    %p = arith.cmpf ugt, %v, %zero : f32
    %r = arith.select %p, %v, %zero : f32
    linalg.yield %r : f32
  }
  memref.dealloc %c : memref<4x1x32xf32>
  return
}

// -----

// Declined: the output is the function's (its caller reads it after the ReLU's copy); the output
// is read by another op after the ReLU; the ReLU is in place over part of the output only.
// CHECK-LABEL: func.func @epilogue_declined
// CHECK-NOT: vector<32xi1>
// CHECK-COUNT-3: arith.select %{{.*}}, %{{.*}}, %{{.*}} : f32
// CHECK-NOT: vector<32xi1>
func.func @epilogue_declined(%a: memref<4x8xf32>, %w: memref<1x8x32xf32>, %c: memref<4x1x32xf32>, %y: memref<4x1x32xf32>,
                             %z: memref<4x1x32xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.generic {indexing_maps = [affine_map<(d0, p, n, k) -> (d0, k)>, affine_map<(d0, p, n, k) -> (p, k, n)>,
                                   affine_map<(d0, p, n, k) -> (d0, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<4x8xf32>, memref<1x8x32xf32>) outs(%c : memref<4x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, p, n) -> (d0, p, n)>, affine_map<(d0, p, n) -> (d0, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%c : memref<4x1x32xf32>) outs(%y : memref<4x1x32xf32>) {
  ^bb0(%v: f32, %o: f32):
    %p = arith.cmpf ugt, %v, %zero : f32
    %r = arith.select %p, %v, %zero : f32
    linalg.yield %r : f32
  }
  %t = memref.alloc() : memref<4x1x32xf32>
  linalg.generic {indexing_maps = [affine_map<(d0, p, n, k) -> (d0, k)>, affine_map<(d0, p, n, k) -> (p, k, n)>,
                                   affine_map<(d0, p, n, k) -> (d0, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<4x8xf32>, memref<1x8x32xf32>) outs(%t : memref<4x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, p, n) -> (d0, p, n)>, affine_map<(d0, p, n) -> (d0, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%t : memref<4x1x32xf32>) outs(%y : memref<4x1x32xf32>) {
  ^bb0(%v: f32, %o: f32):
    %p = arith.cmpf ugt, %v, %zero : f32
    %r = arith.select %p, %v, %zero : f32
    linalg.yield %r : f32
  }
  memref.copy %t, %z : memref<4x1x32xf32> to memref<4x1x32xf32>
  memref.dealloc %t : memref<4x1x32xf32>
  %u = memref.alloc() : memref<4x1x32xf32>
  linalg.generic {indexing_maps = [affine_map<(d0, p, n, k) -> (d0, k)>, affine_map<(d0, p, n, k) -> (p, k, n)>,
                                   affine_map<(d0, p, n, k) -> (d0, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"], library_call = "qc_panel_matmul"}
      ins(%a, %w : memref<4x8xf32>, memref<1x8x32xf32>) outs(%u : memref<4x1x32xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %m = arith.mulf %i, %j : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  %half = memref.subview %u[0, 0, 0] [2, 1, 32] [1, 1, 1] : memref<4x1x32xf32> to memref<2x1x32xf32, strided<[32, 32, 1]>>
  linalg.generic {indexing_maps = [affine_map<(d0, p, n) -> (d0, p, n)>, affine_map<(d0, p, n) -> (d0, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%half : memref<2x1x32xf32, strided<[32, 32, 1]>>) outs(%half : memref<2x1x32xf32, strided<[32, 32, 1]>>) {
  ^bb0(%v: f32, %o: f32):
    %p = arith.cmpf ugt, %v, %zero : f32
    %r = arith.select %p, %v, %zero : f32
    linalg.yield %r : f32
  }
  memref.copy %u, %z : memref<4x1x32xf32> to memref<4x1x32xf32>
  memref.dealloc %u : memref<4x1x32xf32>
  return
}

// -----

// Q K^T of a decode step over a [head size, context] key cache: B's rows are 4 KiB apart (each in its
// own page), so each k also prefetches the next panel's part of its row (the last panel its own).
// CHECK-LABEL: func.func @far_rows
// CHECK: func.func @qc_mk_0(
// CHECK: %[[N0:.*]] = arith.muli %{{.*}}, %c32 : index
// CHECK: %[[NEXT:.*]] = arith.addi %[[N0]], %c32 : index
// CHECK: %[[AHEAD:.*]] = arith.minui %[[NEXT]], %c992 : index
// CHECK: memref.prefetch %arg1[%{{.*}}, %{{.*}}, %[[AHEAD]]], read, locality<3>, data
// CHECK: %[[LINE:.*]] = arith.addi %[[AHEAD]], %c16 : index
// CHECK: memref.prefetch %arg1[%{{.*}}, %{{.*}}, %[[LINE]]], read, locality<3>, data
// CHECK: vector.load %arg1
// CHECK-LABEL: func.func @near_rows
// CHECK-NOT: memref.prefetch
func.func @far_rows(%q: memref<4x8x64xf32>, %k: memref<4x64x1024xf32>, %s: memref<4x8x1024xf32>) {
  linalg.batch_matmul ins(%q, %k : memref<4x8x64xf32>, memref<4x64x1024xf32>) outs(%s : memref<4x8x1024xf32>)
  return
}

// -----

func.func @near_rows(%q: memref<4x8x64xf32>, %k: memref<4x64x256xf32>, %s: memref<4x8x256xf32>) {
  linalg.batch_matmul ins(%q, %k : memref<4x8x64xf32>, memref<4x64x256xf32>) outs(%s : memref<4x8x256xf32>)
  return
}
