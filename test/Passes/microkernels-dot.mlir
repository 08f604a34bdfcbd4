// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-microkernels{vector-width=16 rows=8 int8-dot=vnni})' | FileCheck %s --check-prefix=VNNI
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-microkernels{vector-width=8 rows=6 int8-dot=avx2})' | FileCheck %s --check-prefix=AVX2
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-microkernels{vector-width=16 rows=8 int8-dot=amx})' | FileCheck %s --check-prefix=AMX
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-microkernels{vector-width=16 rows=8 int8-dot=avx512bw})' | FileCheck %s --check-prefix=BW
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-microkernels{vector-width=16 rows=8 int8-dot=vnni prefetch-min-reuse=4})' | FileCheck %s --check-prefix=LIGHT

// An int8-activation, int8-weight dot-product contraction from qc-lower-qgemm
// (5 rows, K = 8 in two 4-byte cells, per-channel: one group).  With VNNI, per cell one
// 64-byte panel load per half-panel, one broadcast of 4 activation bytes per row
// and one vpdpbusd per row and half; rows 8 / 2 = 4 per tile, then a tail of 1.
// At the group's end: i32 -> f32, times the scale, plus offset x group sum; the row
// scale and C at the end.
// VNNI-LABEL: func.func @int8
// VNNI: call @qc_par_0(%arg0, %arg1, %arg2, %arg3, %arg4, %arg5, %arg6)
// VNNI: func.func @qc_mk_0(
// VNNI: scf.for %{{.*}} = %c0{{[_0-9]*}} to %c4{{[_0-9]*}} step %c4
// VNNI: scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// VNNI: scf.for {{.*}} -> (vector<16xi32>, vector<16xi32>, vector<16xi32>, vector<16xi32>, vector<16xi32>, vector<16xi32>, vector<16xi32>, vector<16xi32>)
// VNNI: memref.prefetch
// VNNI-COUNT-2: vector.load %{{.*}} : memref<1x2x128xi8>, vector<64xi8>
// VNNI: vector.load %{{.*}} : memref<5x8xi8>, vector<4xi8>
// VNNI: vector.broadcast %{{.*}} : i32 to vector<16xi32>
// VNNI-COUNT-2: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// VNNI: arith.sitofp %{{.*}} : vector<16xi32> to vector<16xf32>
// VNNI-COUNT-2: vector.fma
// VNNI: vector.store
// VNNI: func.func private @qc_par_0({{.*}}) attributes {llvm.emit_c_interface, qc.kernel = "qc_mk_0", qc.tasks = 1 : i64}
// AVX2-LABEL: func.func @int8
// AVX-512 but no VNNI (avx512bw): int8 weights as |q| (u xor 128, negated where negative) times x negated
// where q < 0 (a compare and a blend: no 512-bit psignb), vpmaddubsw then vpmaddwd; at the
// group's end 128 x the group sum turns sum q x back into the VNNI path's sum u x.
// BW-LABEL: func.func @int8
// BW: func.func @qc_mk_0(
// BW: arith.xori %{{.*}}, %{{.*}} : vector<64xi8>
// BW: arith.cmpi slt, %{{.*}}, %{{.*}} : vector<64xi8>
// BW: arith.select %{{.*}}, %{{.*}}, %{{.*}} : vector<64xi1>, vector<64xi8>
// BW: vector.bitcast %{{.*}} : vector<16xi32> to vector<64xi8>
// BW-NEXT: arith.subi %{{.*}}, %{{.*}} : vector<64xi8>
// BW-NEXT: arith.select %{{.*}}, %{{.*}}, %{{.*}} : vector<64xi1>, vector<64xi8>
// BW-NEXT: llvm.call_intrinsic "llvm.x86.avx512.pmaddubs.w.512"({{.*}}) : (vector<64xi8>, vector<64xi8>) -> vector<32xi16>
// BW-NEXT: llvm.call_intrinsic "llvm.x86.avx512.pmaddw.d.512"({{.*}}) : (vector<32xi16>, vector<32xi16>) -> vector<16xi32>
// BW: %[[Y:.*]] = memref.load %{{.*}} : memref<5x1xi32>
// BW: %[[YU:.*]] = arith.shli %[[Y]], %{{.*}} : i32
// BW: %[[YV:.*]] = vector.broadcast %[[YU]] : i32 to vector<16xi32>
// BW: arith.addi %{{.*}}, %[[YV]] : vector<16xi32>
// BW: arith.sitofp
// AMX takes 32 rows at a time and K in steps of 64: 5 rows and K = 8 stay with VNNI.
// AMX-LABEL: func.func @int8
// AMX-NOT: tdpbsud
// AMX: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// AMX-NOT: qc.amx
// AVX2 has no 16-lane i32 vectors: the 32-wide panel falls back to generic i32 multiplies.
// AVX2-NOT: pmadd
// AVX2: arith.extui %{{.*}} : vector<64xi8> to vector<64xi32>
// AVX2: vector.shuffle
// With prefetch-min-reuse=4 (Zen 4's VNNI), a kernel doing at least 4 multiply-adds per weight
// byte (here 5 rows of int8 weights) still prefetches its weight stream.
// LIGHT-LABEL: func.func @int8(
// LIGHT: func.func @qc_mk_0(
// LIGHT: memref.prefetch
// LIGHT: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#r = affine_map<(d0, p, n, k) -> (d0)>
#g = affine_map<(d0, p, n, k) -> (d0, k floordiv 8)>
#w = affine_map<(d0, p, n, k) -> (p, k floordiv 4, n * 4 + k mod 4)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @int8(%xq: memref<5x8xi8>, %sx: memref<5xf32>, %sum: memref<5x1xi32>, %w: memref<1x2x128xi8>,
                %s: memref<1x1x32xf32>, %o: memref<1x1x32xf32>, %c: memref<5x1x32xf32>) {
  linalg.generic {indexing_maps = [#x, #r, #g, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel", qc.layout = #qc.layout<32 : i64, 8 : i64, 32 : i64, 8 : i64, 8 : i64, 1 : i64, 0 : i64>}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<5x8xi8>, memref<5xf32>, memref<5x1xi32>, memref<1x2x128xi8>, memref<1x1x32xf32>, memref<1x1x32xf32>)
      outs(%c : memref<5x1x32xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %kk = linalg.index 3 : index
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %c0 = arith.constant 0 : index
    %first = arith.cmpi eq, %kk, %c0 : index
    %sf = arith.sitofp %bsum : i32 to f32
    %corr = arith.mulf %of, %sf : f32
    %zero = arith.constant 0.0 : f32
    %cr = arith.select %first, %corr, %zero : f32
    %t2 = arith.addf %t, %cr : f32
    %t3 = arith.mulf %bsx, %t2 : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// Symmetric weights (qc_qgemm_dot_panel_sym): the group offset is -128 x scale, computed from
// the scale vector, and the offset array is never read.
// VNNI-LABEL: func.func @int8_symmetric
// VNNI: func.func @qc_mk_0(%{{.*}}, %[[O:[^:]*]]: memref<1x1x32xf32>, %{{[^:]*}}: memref<5x1x32xf32>
// VNNI: %[[NEG:.*]] = arith.constant dense<-1.280000e+02> : vector<16xf32>
// VNNI-NOT: vector.load %[[O]]
// VNNI: %[[S:.*]] = vector.load %{{.*}} : memref<1x1x32xf32>, vector<16xf32>
// VNNI-NEXT: arith.mulf %[[S]], %[[NEG]] : vector<16xf32>
// VNNI-NOT: vector.load %[[O]]
// VNNI: func.func private @qc_par_0
// AVX2-LABEL: func.func @int8_symmetric
// AMX-LABEL: func.func @int8_symmetric
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#r = affine_map<(d0, p, n, k) -> (d0)>
#g = affine_map<(d0, p, n, k) -> (d0, k floordiv 8)>
#w = affine_map<(d0, p, n, k) -> (p, k floordiv 4, n * 4 + k mod 4)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @int8_symmetric(%xq: memref<5x8xi8>, %sx: memref<5xf32>, %sum: memref<5x1xi32>, %w: memref<1x2x128xi8>,
                %s: memref<1x1x32xf32>, %o: memref<1x1x32xf32>, %c: memref<5x1x32xf32>) {
  linalg.generic {indexing_maps = [#x, #r, #g, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel_sym", qc.layout = #qc.layout<32 : i64, 8 : i64, 32 : i64, 8 : i64, 8 : i64, 1 : i64, 1 : i64>}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<5x8xi8>, memref<5xf32>, memref<5x1xi32>, memref<1x2x128xi8>, memref<1x1x32xf32>, memref<1x1x32xf32>)
      outs(%c : memref<5x1x32xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %kk = linalg.index 3 : index
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %c0 = arith.constant 0 : index
    %first = arith.cmpi eq, %kk, %c0 : index
    %sf = arith.sitofp %bsum : i32 to f32
    %corr = arith.mulf %of, %sf : f32
    %zero = arith.constant 0.0 : f32
    %cr = arith.select %first, %corr, %zero : f32
    %t2 = arith.addf %t, %cr : f32
    %t3 = arith.mulf %bsx, %t2 : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// int4 weights, one row (decode): one load per 8 k, low and high nibbles masked
// out; with few rows the low- and high-nibble products go to separate
// accumulators.
// VNNI-LABEL: func.func @int4
// VNNI: scf.for {{.*}} -> (vector<16xi32>, vector<16xi32>, vector<16xi32>, vector<16xi32>)
// VNNI: arith.andi
// VNNI: arith.shrui
// VNNI-COUNT-4: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// VNNI: arith.addi %{{.*}} : vector<16xi32>
// One row of int4 weights is 2 multiply-adds per weight byte: under prefetch-min-reuse=4 the
// kernel leaves its weight stream to the hardware prefetchers.
// LIGHT-LABEL: func.func @int4(
// LIGHT: func.func @qc_mk_0(
// LIGHT-NOT: memref.prefetch
// LIGHT: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// LIGHT-NOT: memref.prefetch
// LIGHT: func.func private @qc_par_0
// AVX2-LABEL: func.func @int4
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#r = affine_map<(d0, p, n, k) -> (d0)>
#g = affine_map<(d0, p, n, k) -> (d0, k floordiv 32)>
#w = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n * 4 + k mod 4)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 32, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @int4(%xq: memref<1x64xi8>, %sx: memref<1xf32>, %sum: memref<1x2xi32>, %w: memref<1x8x128xi8>,
                %s: memref<1x2x32xf32>, %o: memref<1x2x32xf32>, %c: memref<1x1x32xf32>) {
  linalg.generic {indexing_maps = [#x, #r, #g, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel", qc.layout = #qc.layout<32 : i64, 64 : i64, 32 : i64, 4 : i64, 32 : i64, 1 : i64, 0 : i64>}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<1x64xi8>, memref<1xf32>, memref<1x2xi32>, memref<1x8x128xi8>, memref<1x2x32xf32>, memref<1x2x32xf32>)
      outs(%c : memref<1x1x32xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %t3 = arith.mulf %bsx, %t : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// The same on a 16-wide panel (8 i32 lanes).  With AVX2, vpmaddubsw pairs (exact:
// nibbles < 16, a pair within 2 x 15 x 128 = 3840) summed as int16 over both nibbles of
// the group's 4 cells (8 pairs: at most 30720), then one vpmaddwd against ones per half;
// with VNNI the 256-bit vpdpbusd.
// VNNI-LABEL: func.func @int4_p16
// VNNI: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.256"
// AVX2-LABEL: func.func @int4_p16
// AVX2: scf.for %{{.*}} = %{{.*}} to %{{.*}} step %c4 iter_args(%{{.*}} = %[[Z:.*]], %{{.*}} = %[[Z]]) -> (vector<8xi32>, vector<8xi32>)
// AVX2-COUNT-4: memref.prefetch
// AVX2: vector.load %{{.*}} : memref<1x8x64xi8>, vector<32xi8>
// AVX2-NOT: pmadd.wd
// AVX2-COUNT-2: llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"({{.*}}) : (vector<32xi8>, vector<32xi8>) -> vector<16xi16>
// AVX2-NOT: pmadd.wd
// AVX2-COUNT-14: arith.addi %{{.*}}, %{{.*}} : vector<16xi16>
// AVX2-NOT: pmadd.ub.sw
// AVX2-COUNT-2: llvm.call_intrinsic "llvm.x86.avx2.pmadd.wd"({{.*}}) : (vector<16xi16>, vector<16xi16>) -> vector<8xi32>
// AVX2-NEXT: arith.addi %{{.*}}, %{{.*}} : vector<8xi32>
// AVX2-NEXT: scf.yield
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#r = affine_map<(d0, p, n, k) -> (d0)>
#g = affine_map<(d0, p, n, k) -> (d0, k floordiv 32)>
#w = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n * 4 + k mod 4)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 32, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @int4_p16(%xq: memref<1x64xi8>, %sx: memref<1xf32>, %sum: memref<1x2xi32>, %w: memref<1x8x64xi8>,
                    %s: memref<1x2x16xf32>, %o: memref<1x2x16xf32>, %c: memref<1x1x16xf32>) {
  linalg.generic {indexing_maps = [#x, #r, #g, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel", qc.layout = #qc.layout<16 : i64, 64 : i64, 16 : i64, 4 : i64, 32 : i64, 1 : i64, 0 : i64>}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<1x64xi8>, memref<1xf32>, memref<1x2xi32>, memref<1x8x64xi8>, memref<1x2x16xf32>, memref<1x2x16xf32>)
      outs(%c : memref<1x1x16xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %t3 = arith.mulf %bsx, %t : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// int8 weights on a 16-wide panel (8 i32 lanes).  With AVX2, llama.cpp's exact form:
// vpmaddubsw(|q|, psignb(x, q)) keeps every pair within int16 (at most 128 x 127 x 2), where
// vpmaddubsw(u, x) with u = q + 128 up to 255 would saturate.
// VNNI-LABEL: func.func @int8_p16
// VNNI: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.256"
// AVX2-LABEL: func.func @int8_p16
// AVX2: arith.xori %{{.*}}, %{{.*}} : vector<32xi8>
// AVX2: %[[ABS:.*]] = arith.select %{{.*}}, %{{.*}}, %{{.*}} : vector<32xi1>, vector<32xi8>
// AVX2: %[[SX:.*]] = llvm.call_intrinsic "llvm.x86.avx2.psign.b"({{.*}}) : (vector<32xi8>, vector<32xi8>) -> vector<32xi8>
// AVX2-NEXT: llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"(%[[ABS]], %[[SX]]) : (vector<32xi8>, vector<32xi8>) -> vector<16xi16>
// AVX2-NEXT: llvm.call_intrinsic "llvm.x86.avx2.pmadd.wd"({{.*}}) : (vector<16xi16>, vector<16xi16>) -> vector<8xi32>
// AVX2: arith.shli
// AVX2-NOT: arith.extui
// AVX2: func.func private @qc_par_0
// An AVX-512BW machine takes an 8-lane panel with AVX2's forms.
// BW-LABEL: func.func @int8_p16
// BW: llvm.call_intrinsic "llvm.x86.avx2.psign.b"
// BW-NEXT: llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#r = affine_map<(d0, p, n, k) -> (d0)>
#g = affine_map<(d0, p, n, k) -> (d0, k floordiv 8)>
#w = affine_map<(d0, p, n, k) -> (p, k floordiv 4, n * 4 + k mod 4)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @int8_p16(%xq: memref<2x8xi8>, %sx: memref<2xf32>, %sum: memref<2x1xi32>, %w: memref<1x2x64xi8>,
                    %s: memref<1x1x16xf32>, %o: memref<1x1x16xf32>, %c: memref<2x1x16xf32>) {
  linalg.generic {indexing_maps = [#x, #r, #g, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel_sym", qc.layout = #qc.layout<16 : i64, 8 : i64, 16 : i64, 8 : i64, 8 : i64, 1 : i64, 1 : i64>}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<2x8xi8>, memref<2xf32>, memref<2x1xi32>, memref<1x2x64xi8>, memref<1x1x16xf32>, memref<1x1x16xf32>)
      outs(%c : memref<2x1x16xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %t3 = arith.mulf %bsx, %t : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// int8 per-channel weights, 40 rows, K = 64: with AMX, rows 0-31 as one block of
// four 16x16 i32 tiles (two A tiles of xq rows, the panel's two halves as B tiles,
// tdpbsud per 64 k) stored to a 32x32 scratch for the float epilogue; rows 32-39
// by the VNNI tile (4 rows at a time).  The trampoline says it needs AMX.
// AMX-LABEL: func.func @amx_int8
// AMX: call @qc_par_0
// AMX: func.func @qc_mk_0(
// AMX: memref.alloca() {alignment = 64 : i64} : memref<32x32xi32>
// AMX: scf.for %{{.*}} = %c0{{[_0-9]*}} to %c32{{[_0-9]*}} step %c32
// AMX: llvm.call_intrinsic "llvm.x86.tilezero.internal"
// AMX: scf.for {{.*}} -> (!llvm.x86_amx, !llvm.x86_amx, !llvm.x86_amx, !llvm.x86_amx)
// AMX-COUNT-4: llvm.call_intrinsic "llvm.x86.tileloadd64.internal"
// AMX-COUNT-4: llvm.call_intrinsic "llvm.x86.tdpbsud.internal"
// AMX-COUNT-4: llvm.call_intrinsic "llvm.x86.tilestored64.internal"
// AMX: vector.load %{{.*}} : memref<32x32xi32>, vector<16xi32>
// AMX: arith.sitofp %{{.*}} : vector<16xi32> to vector<16xf32>
// AMX: scf.for %{{.*}} = %c32{{[_0-9]*}} to %c40{{[_0-9]*}} step %c4
// AMX: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// AMX: func.func private @qc_par_0({{.*}}) attributes {llvm.emit_c_interface, qc.amx, qc.kernel = "qc_mk_0", qc.tasks = 1 : i64}
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#r = affine_map<(d0, p, n, k) -> (d0)>
#g = affine_map<(d0, p, n, k) -> (d0, k floordiv 64)>
#w = affine_map<(d0, p, n, k) -> (p, k floordiv 4, n * 4 + k mod 4)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 64, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @amx_int8(%xq: memref<40x64xi8>, %sx: memref<40xf32>, %sum: memref<40x1xi32>, %w: memref<1x16x128xi8>,
                    %s: memref<1x1x32xf32>, %o: memref<1x1x32xf32>, %c: memref<40x1x32xf32>) {
  linalg.generic {indexing_maps = [#x, #r, #g, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel", qc.layout = #qc.layout<32 : i64, 64 : i64, 32 : i64, 8 : i64, 64 : i64, 1 : i64, 0 : i64>}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<40x64xi8>, memref<40xf32>, memref<40x1xi32>, memref<1x16x128xi8>, memref<1x1x32xf32>, memref<1x1x32xf32>)
      outs(%c : memref<40x1x32xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %t3 = arith.mulf %bsx, %t : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// A zero-filled C (no bias): the fill is erased and the epilogue stores
// sum x row scale into C without reading it.
// VNNI-LABEL: func.func @zero_filled
// VNNI-NOT: linalg.fill
// VNNI: func.func @qc_mk_0(%{{.*}}, %[[C:[^:]*]]: memref<5x1x32xf32>
// VNNI: %[[CV:.*]] = memref.cast %[[C]]
// VNNI-NOT: vector.load %[[CV]]
// VNNI: vector.store %{{.*}}, %[[CV]]
// VNNI-NOT: vector.load %[[CV]]
// VNNI: func.func private @qc_par_0
// AVX2-LABEL: func.func @zero_filled
// AMX-LABEL: func.func @zero_filled
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#r = affine_map<(d0, p, n, k) -> (d0)>
#g = affine_map<(d0, p, n, k) -> (d0, k floordiv 8)>
#w = affine_map<(d0, p, n, k) -> (p, k floordiv 4, n * 4 + k mod 4)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @zero_filled(%xq: memref<5x8xi8>, %sx: memref<5xf32>, %sum: memref<5x1xi32>, %w: memref<1x2x128xi8>,
                %s: memref<1x1x32xf32>, %o: memref<1x1x32xf32>, %c: memref<5x1x32xf32>) {
  %fzero = arith.constant 0.0 : f32
  linalg.fill ins(%fzero : f32) outs(%c : memref<5x1x32xf32>)
  linalg.generic {indexing_maps = [#x, #r, #g, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel_sym", qc.layout = #qc.layout<32 : i64, 8 : i64, 32 : i64, 8 : i64, 8 : i64, 1 : i64, 1 : i64>}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<5x8xi8>, memref<5xf32>, memref<5x1xi32>, memref<1x2x128xi8>, memref<1x1x32xf32>, memref<1x1x32xf32>)
      outs(%c : memref<5x1x32xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %kk = linalg.index 3 : index
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %c0 = arith.constant 0 : index
    %first = arith.cmpi eq, %kk, %c0 : index
    %sf = arith.sitofp %bsum : i32 to f32
    %corr = arith.mulf %of, %sf : f32
    %zero = arith.constant 0.0 : f32
    %cr = arith.select %first, %corr, %zero : f32
    %t2 = arith.addf %t, %cr : f32
    %t3 = arith.mulf %bsx, %t2 : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// A dot contraction whose C only holds its bias, copied into every row (qc-lower-qgemm's
// accumulator start): the copy is erased, the kernel takes the [P, NR] bias after C, and each row's
// epilogue adds the bias vector instead of reading C.
// VNNI-LABEL: func.func @int8_bias_start
// VNNI-NOT: linalg.generic
// VNNI: call @qc_par_0(%arg0, %arg1, %arg2, %arg3, %arg4, %arg5, %arg7, %arg6)
// VNNI: func.func @qc_mk_0({{.*}}, %[[C:[^:]*]]: memref<5x1x32xf32>, %[[B:[^:]*]]: memref<1x32xf32>, %{{[^:]*}}: index, %{{[^:]*}}: index)
// VNNI: %[[CV:.*]] = memref.cast %[[C]]
// VNNI-NOT: vector.load %[[CV]]
// VNNI: vector.load %[[B]]
// VNNI: vector.store {{.*}}, %[[CV]]
#xb = affine_map<(d0, p, n, k) -> (d0, k)>
#rb = affine_map<(d0, p, n, k) -> (d0)>
#gb = affine_map<(d0, p, n, k) -> (d0, k floordiv 8)>
#wb = affine_map<(d0, p, n, k) -> (p, k floordiv 4, n * 4 + k mod 4)>
#sb = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n)>
#cb = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @int8_bias_start(%xq: memref<5x8xi8>, %sx: memref<5xf32>, %sum: memref<5x1xi32>, %w: memref<1x2x128xi8>,
                           %s: memref<1x1x32xf32>, %o: memref<1x1x32xf32>, %bias: memref<1x32xf32>, %c: memref<5x1x32xf32>) {
  linalg.generic {indexing_maps = [affine_map<(m, p, n) -> (p, n)>, affine_map<(m, p, n) -> (m, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%bias : memref<1x32xf32>) outs(%c : memref<5x1x32xf32>) {
  ^bb0(%i: f32, %out: f32):
    linalg.yield %i : f32
  }
  linalg.generic {indexing_maps = [#xb, #rb, #gb, #wb, #sb, #sb, #cb], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel", qc.layout = #qc.layout<32 : i64, 8 : i64, 32 : i64, 8 : i64, 8 : i64, 1 : i64, 0 : i64>}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<5x8xi8>, memref<5xf32>, memref<5x1xi32>, memref<1x2x128xi8>, memref<1x1x32xf32>, memref<1x1x32xf32>)
      outs(%c : memref<5x1x32xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %kk = linalg.index 3 : index
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %c0 = arith.constant 0 : index
    %first = arith.cmpi eq, %kk, %c0 : index
    %sf = arith.sitofp %bsum : i32 to f32
    %corr = arith.mulf %of, %sf : f32
    %zero = arith.constant 0.0 : f32
    %cr = arith.select %first, %corr, %zero : f32
    %t2 = arith.addf %t, %cr : f32
    %t3 = arith.mulf %bsx, %t2 : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// The same with a bias padded into a buffer of its own (N = 10 of a 32-column panel), freed right after
// the broadcast, its last reader until then (qc-early-deallocs): the kernel reads it instead, so the
// free moves after the call (freed before it, the buffer was handed to the next allocation of its
// size, whose bytes the kernel then read as the bias).
// VNNI-LABEL: func.func @int8_padded_bias_start
// VNNI: %[[PAD:.*]] = memref.alloc() : memref<1x32xf32>
// VNNI-NOT: memref.dealloc
// VNNI: call @qc_par_0(%arg0, %arg1, %arg2, %arg3, %arg4, %arg5, %arg7, %[[PAD]])
// VNNI-NEXT: memref.dealloc %[[PAD]]
#xp = affine_map<(d0, p, n, k) -> (d0, k)>
#rp = affine_map<(d0, p, n, k) -> (d0)>
#gp = affine_map<(d0, p, n, k) -> (d0, k floordiv 8)>
#wp = affine_map<(d0, p, n, k) -> (p, k floordiv 4, n * 4 + k mod 4)>
#sp = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n)>
#cp = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @int8_padded_bias_start(%xq: memref<5x8xi8>, %sx: memref<5xf32>, %sum: memref<5x1xi32>, %w: memref<1x2x128xi8>,
                                  %s: memref<1x1x32xf32>, %o: memref<1x1x32xf32>, %bias: memref<10xf32>, %c: memref<5x1x32xf32>) {
  %pad = memref.alloc() : memref<1x32xf32>
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%pad : memref<1x32xf32>)
  %flat = memref.collapse_shape %pad [[0, 1]] : memref<1x32xf32> into memref<32xf32>
  %head = memref.subview %flat[0] [10] [1] : memref<32xf32> to memref<10xf32, strided<[1]>>
  memref.copy %bias, %head : memref<10xf32> to memref<10xf32, strided<[1]>>
  linalg.generic {indexing_maps = [affine_map<(m, p, n) -> (p, n)>, affine_map<(m, p, n) -> (m, p, n)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%pad : memref<1x32xf32>) outs(%c : memref<5x1x32xf32>) {
  ^bb0(%i: f32, %out: f32):
    linalg.yield %i : f32
  }
  memref.dealloc %pad : memref<1x32xf32>
  linalg.generic {indexing_maps = [#xp, #rp, #gp, #wp, #sp, #sp, #cp], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel", qc.layout = #qc.layout<10 : i64, 8 : i64, 32 : i64, 8 : i64, 8 : i64, 1 : i64, 0 : i64>}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<5x8xi8>, memref<5xf32>, memref<5x1xi32>, memref<1x2x128xi8>, memref<1x1x32xf32>, memref<1x1x32xf32>)
      outs(%c : memref<5x1x32xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %kk = linalg.index 3 : index
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %c0 = arith.constant 0 : index
    %first = arith.cmpi eq, %kk, %c0 : index
    %sf = arith.sitofp %bsum : i32 to f32
    %corr = arith.mulf %of, %sf : f32
    %z = arith.constant 0.0 : f32
    %cr = arith.select %first, %corr, %z : f32
    %t2 = arith.addf %t, %cr : f32
    %t3 = arith.mulf %bsx, %t2 : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// The dot contraction followed by a ReLU in place over its output: every flavour's row store
// (`store_row`) applies it to the f32 row vector and the generic is erased.
// VNNI-LABEL: func.func @int8_relu
// VNNI-NOT: linalg.generic
// VNNI: func.func @qc_mk_0(
// VNNI: arith.cmpf ugt, %{{.*}}, %{{.*}} : vector<16xf32>
// VNNI-NEXT: %[[Y:.*]] = arith.select %{{.*}}, %{{.*}}, %{{.*}} : vector<16xi1>, vector<16xf32>
// VNNI-NEXT: vector.store %[[Y]]
// AVX2-LABEL: func.func @int8_relu
// AVX2-NOT: linalg.generic
// AVX2: func.func @qc_mk_0(
// AVX2: arith.cmpf ugt, %{{.*}}, %{{.*}} : vector<16xf32>
// AVX2-NEXT: %[[Y:.*]] = arith.select
// AVX2-NEXT: vector.store %[[Y]]
// BW-LABEL: func.func @int8_relu
// BW-NOT: linalg.generic
// BW: func.func @qc_mk_0(
// BW: arith.cmpf ugt, %{{.*}}, %{{.*}} : vector<16xf32>
// BW-NEXT: %[[Y:.*]] = arith.select
// BW-NEXT: vector.store %[[Y]]
// AMX-LABEL: func.func @int8_relu
// AMX-NOT: linalg.generic
// AMX: arith.cmpf ugt, %{{.*}}, %{{.*}} : vector<16xf32>
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#r = affine_map<(d0, p, n, k) -> (d0)>
#g = affine_map<(d0, p, n, k) -> (d0, k floordiv 8)>
#w = affine_map<(d0, p, n, k) -> (p, k floordiv 4, n * 4 + k mod 4)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
#e = affine_map<(d0, p, n) -> (d0, p, n)>
func.func @int8_relu(%xq: memref<5x8xi8>, %sx: memref<5xf32>, %sum: memref<5x1xi32>, %w: memref<1x2x128xi8>,
                     %s: memref<1x1x32xf32>, %o: memref<1x1x32xf32>, %c: memref<5x1x32xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.generic {indexing_maps = [#x, #r, #g, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel", qc.layout = #qc.layout<32 : i64, 8 : i64, 32 : i64, 8 : i64, 8 : i64, 1 : i64, 0 : i64>}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<5x8xi8>, memref<5xf32>, memref<5x1xi32>, memref<1x2x128xi8>, memref<1x1x32xf32>, memref<1x1x32xf32>)
      outs(%c : memref<5x1x32xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %kk = linalg.index 3 : index
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %c0 = arith.constant 0 : index
    %first = arith.cmpi eq, %kk, %c0 : index
    %sf = arith.sitofp %bsum : i32 to f32
    %corr = arith.mulf %of, %sf : f32
    %cr = arith.select %first, %corr, %zero : f32
    %t2 = arith.addf %t, %cr : f32
    %t3 = arith.mulf %bsx, %t2 : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#e, #e], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%c : memref<5x1x32xf32>) outs(%c : memref<5x1x32xf32>) {
  ^bb0(%v: f32, %out: f32):
    %p = arith.cmpf ugt, %v, %zero : f32
    %y = arith.select %p, %v, %zero : f32
    linalg.yield %y : f32
  }
  return
}

// -----

// 7-bit activations (qc.act_max = 63, scheme w8a7; 16-wide panels: AVX2's 8 lanes): a pair of unsigned
// weight cells u times x is within 2 x 255 x 64 = 32640, so vpmaddubsw takes the cells as they are (as
// vpdpbusd does): no sign(x, q), no |q|, and no 128 x group sum added back.  The registers |q| and q
// held take a fourth row: the 5 rows are a block of 4 (8 accumulators) and one of 1.
// AVX2-LABEL: func.func @int8_narrow
// AVX2: scf.for {{.*}} -> (vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>)
// AVX2: scf.for {{.*}} -> (vector<8xi32>, vector<8xi32>) {
// AVX2-NOT: psign
// AVX2: %[[U:.*]] = vector.load %arg3{{.*}} : memref<1x2x64xi8>, vector<32xi8>
// AVX2-NOT: psign
// AVX2: llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"(%[[U]], %{{.*}})
// AVX2-NOT: psign
// AVX2-NOT: arith.shli
// AVX2: func.func private @qc_par_0
// VNNI-LABEL: func.func @int8_narrow
// AMX-LABEL: func.func @int8_narrow
// BW-LABEL: func.func @int8_narrow
// BW-NOT: psign
// BW: llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"
// BW-NOT: psign
// BW-NOT: arith.shli
// BW: func.func private @qc_par_0
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#r = affine_map<(d0, p, n, k) -> (d0)>
#g = affine_map<(d0, p, n, k) -> (d0, k floordiv 8)>
#w = affine_map<(d0, p, n, k) -> (p, k floordiv 4, n * 4 + k mod 4)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @int8_narrow(%xq: memref<5x8xi8>, %sx: memref<5xf32>, %sum: memref<5x1xi32>, %w: memref<1x2x64xi8>,
                       %s: memref<1x1x16xf32>, %o: memref<1x1x16xf32>, %c: memref<5x1x16xf32>) {
  linalg.generic {indexing_maps = [#x, #r, #g, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel", qc.layout = #qc.layout<16 : i64, 8 : i64, 16 : i64, 8 : i64, 8 : i64, 1 : i64, 0 : i64>, qc.act_max = 63 : i64}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<5x8xi8>, memref<5xf32>, memref<5x1xi32>, memref<1x2x64xi8>, memref<1x1x16xf32>, memref<1x1x16xf32>)
      outs(%c : memref<5x1x16xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %kk = linalg.index 3 : index
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %c0 = arith.constant 0 : index
    %first = arith.cmpi eq, %kk, %c0 : index
    %sf = arith.sitofp %bsum : i32 to f32
    %corr = arith.mulf %of, %sf : f32
    %zero = arith.constant 0.0 : f32
    %cr = arith.select %first, %corr, %zero : f32
    %t2 = arith.addf %t, %cr : f32
    %t3 = arith.mulf %bsx, %t2 : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// 7-bit weights (qc.weight_bits = 7, scheme w7a8: every q in [-64, 63]) against 8-bit activations: a pair
// of u = q + 128 (up to 191) times x could pass int16, so vpmaddubsw takes u - 64 = q + 64 (within [0, 127]:
// pairs within 2 x 127 x 128 = 32512), one subtraction per weight vector shared by the rows, and 64 x the
// group sum is added back (a shift by 6, the sign trick's being 7); no psignb, no |q|, so four rows a tile
// as w8a7 (8 accumulators).  VNNI takes u as it is.
// AVX2-LABEL: func.func @int8_seven_bit_weights
// AVX2-DAG: %[[SIX:.*]] = arith.constant 6 : i32
// AVX2-DAG: %[[K64:.*]] = arith.constant dense<64> : vector<32xi8>
// AVX2: scf.for {{.*}} -> (vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>, vector<8xi32>)
// AVX2-NOT: psign
// AVX2: %[[W:.*]] = vector.load %arg3{{.*}} : memref<1x2x64xi8>, vector<32xi8>
// AVX2: %[[U:.*]] = arith.subi %[[W]], %[[K64]] : vector<32xi8>
// AVX2-NOT: psign
// AVX2: llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"(%[[U]], %{{.*}})
// AVX2-NOT: psign
// AVX2: arith.shli %{{.*}}, %[[SIX]] : i32
// AVX2: func.func private @qc_par_0
// VNNI-LABEL: func.func @int8_seven_bit_weights
// VNNI-NOT: arith.subi %{{.*}} : vector<64xi8>
// VNNI: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.256"
// VNNI-NOT: arith.shli
// VNNI: func.func private @qc_par_0
// AMX-LABEL: func.func @int8_seven_bit_weights
// BW-LABEL: func.func @int8_seven_bit_weights
// BW-NOT: psign
// BW: arith.subi %{{.*}} : vector<32xi8>
// BW: llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"
// BW-NOT: psign
// BW: arith.shli
// BW: func.func private @qc_par_0
#x = affine_map<(d0, p, n, k) -> (d0, k)>
#r = affine_map<(d0, p, n, k) -> (d0)>
#g = affine_map<(d0, p, n, k) -> (d0, k floordiv 8)>
#w = affine_map<(d0, p, n, k) -> (p, k floordiv 4, n * 4 + k mod 4)>
#s = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n)>
#c = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @int8_seven_bit_weights(%xq: memref<5x8xi8>, %sx: memref<5xf32>, %sum: memref<5x1xi32>, %w: memref<1x2x64xi8>,
                       %s: memref<1x1x16xf32>, %o: memref<1x1x16xf32>, %c: memref<5x1x16xf32>) {
  linalg.generic {indexing_maps = [#x, #r, #g, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel", qc.layout = #qc.layout<16 : i64, 8 : i64, 16 : i64, 8 : i64, 8 : i64, 1 : i64, 0 : i64>, qc.weight_bits = 7 : i64}
      ins(%xq, %sx, %sum, %w, %s, %o : memref<5x8xi8>, memref<5xf32>, memref<5x1xi32>, memref<1x2x64xi8>, memref<1x1x16xf32>, memref<1x1x16xf32>)
      outs(%c : memref<5x1x16xf32>) {
  ^bb0(%a: i8, %bsx: f32, %bsum: i32, %b: i8, %sc: f32, %of: f32, %acc: f32):
    %kk = linalg.index 3 : index
    %ue = arith.extui %b : i8 to i32
    %ae = arith.extsi %a : i8 to i32
    %pr = arith.muli %ae, %ue : i32
    %pf = arith.sitofp %pr : i32 to f32
    %t = arith.mulf %pf, %sc : f32
    %c0 = arith.constant 0 : index
    %first = arith.cmpi eq, %kk, %c0 : index
    %sf = arith.sitofp %bsum : i32 to f32
    %corr = arith.mulf %of, %sf : f32
    %zero = arith.constant 0.0 : f32
    %cr = arith.select %first, %corr, %zero : f32
    %t2 = arith.addf %t, %cr : f32
    %t3 = arith.mulf %bsx, %t2 : f32
    %r = arith.addf %acc, %t3 : f32
    linalg.yield %r : f32
  }
  return
}
