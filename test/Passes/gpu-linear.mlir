// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-gpu-linear{warps=4})' | FileCheck %s

// An int4 (groups of 32) f32-activation contraction on dot panels of 32 columns: one block per panel
// and its 3 rows, 32 lanes (a column each) x 2 warps (K = 64: two chunks of 32, one a warp); per cell one
// 4-byte load a lane (a 128-byte line a warp), its 8 nibbles unpacked once and FMAs into each row's sum,
// the group's scale and offset applied once per chunk; the warps' sums meet in workgroup memory after a
// barrier and warp 0 adds them into C.
// CHECK-LABEL: func.func @int4_cells
// CHECK-NOT: linalg.generic
// CHECK: gpu.launch blocks(%[[P:[^,]*]], %{{[^,]*}}, %{{[^)]*}}) in (%{{[^=]*}} = %c2{{[_0-9]*}}, %{{[^=]*}} = %c1{{[_0-9]*}}, %{{[^=]*}} = %c1{{[_0-9]*}})
// CHECK-SAME: threads(%[[LANE:[^,]*]], %[[WARP:[^,]*]], %{{[^)]*}}) in (%{{[^=]*}} = %c32{{[_0-9]*}}, %{{[^=]*}} = %c2{{[_0-9]*}}, %{{[^=]*}} = %c1{{[_0-9]*}})
// CHECK-SAME: workgroup(%[[PART:.*]] : memref<6x32xf32, #gpu.address_space<workgroup>>)
// CHECK: scf.for %{{.*}} = %[[WARP]] to %c2{{[_0-9]*}} step %c2{{.*}} -> (f32, f32, f32)
// CHECK: memref.load %{{.*}}[%[[P]], %{{.*}}, %[[LANE]]] : memref<2x2x32xf32>
// CHECK: scf.for {{.*}} -> (f32, f32, f32, f32, f32, f32)
// CHECK: vector.load %{{.*}}[%[[P]], %{{.*}}, %{{.*}}] {alignment = 4 : i64} : memref<2x8x128xi8>, vector<4xi8>
// CHECK: vector.bitcast %{{.*}} : vector<4xi8> to vector<1xi32>
// CHECK-COUNT-3: vector.load %{{.*}} {alignment = 4 : i64} : memref<3x64xf32>, vector<8xf32>
// CHECK-COUNT-24: math.fma
// CHECK-COUNT-3: memref.store %{{.*}}, %[[PART]]
// CHECK: gpu.barrier
// CHECK: scf.if
// CHECK-COUNT-6: memref.load %[[PART]]
// CHECK: memref.store %{{.*}}, %{{.*}}[%{{.*}}, %[[P]], %[[LANE]]] : memref<3x2x32xf32>
// CHECK: gpu.terminator
#x = affine_map<(d0, d1, d2, d3) -> (d0, d3)>
#w = affine_map<(d0, d1, d2, d3) -> (d1, d3 floordiv 8, d2 * 4 + d3 mod 4)>
#s = affine_map<(d0, d1, d2, d3) -> (d1, d3 floordiv 32, d2)>
#c = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
func.func @int4_cells(%x: memref<3x64xf32>, %w: memref<2x8x128xi8>, %s: memref<2x2x32xf32>, %o: memref<2x2x32xf32>,
                      %acc: memref<3x2x32xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #s, #s, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_cell_panel"}
      ins(%x, %w, %s, %o : memref<3x64xf32>, memref<2x8x128xi8>, memref<2x2x32xf32>, memref<2x2x32xf32>)
      outs(%acc : memref<3x2x32xf32>) attrs = {qc.layout = #qc.layout<40 : i64, 64 : i64, 32 : i64, 4 : i64, 32 : i64, 1 : i64, 0 : i64>} {
  ^bb0(%in: f32, %in_0: i8, %in_1: f32, %in_2: f32, %out: f32):
    %3 = linalg.index 3 : index
    %c8 = arith.constant 8 : index
    %4 = arith.remui %3, %c8 : index
    %c4 = arith.constant 4 : index
    %5 = arith.cmpi uge, %4, %c4 : index
    %c4_i8 = arith.constant 4 : i8
    %c0_i8 = arith.constant 0 : i8
    %6 = arith.select %5, %c4_i8, %c0_i8 : i8
    %7 = arith.shrui %in_0, %6 : i8
    %c15_i8 = arith.constant 15 : i8
    %8 = arith.andi %7, %c15_i8 : i8
    %9 = arith.extui %8 : i8 to i32
    %10 = arith.uitofp %9 : i32 to f32
    %11 = arith.mulf %10, %in_1 : f32
    %12 = arith.addf %11, %in_2 : f32
    %13 = arith.mulf %in, %12 : f32
    %14 = arith.addf %out, %13 : f32
    linalg.yield %14 : f32
  }
  return
}

// -----

// int8 activations, int8 weights per channel (K = 8: two cells), symmetric, 5 rows: blocks of 4 rows, the
// last block's rows past the end reading row 4 again and not stored; dp4a per cell and row (unsigned weight
// bytes u = q + 128 times signed activation bytes), the offset -128 x scale computed, not read; the group
// sums meet the offset at the group's first chunk; warp 0 scales each row by its sx.
// CHECK-LABEL: func.func @int8_dot
// CHECK: gpu.launch blocks({{.*}}) in (%{{[^=]*}} = %c1{{[_0-9]*}}, %{{[^=]*}} = %c2{{[_0-9]*}}, %{{[^=]*}} = %c1{{[_0-9]*}})
// CHECK-SAME: workgroup(%{{.*}} : memref<4x32xf32, #gpu.address_space<workgroup>>)
// CHECK: arith.constant -1.280000e+02 : f32
// CHECK-COUNT-3: arith.minui %{{.*}}, %c4
// CHECK: scf.for
// CHECK-COUNT-4: nvvm.dot.accumulate.4way %{{.*}} <unsigned>, %{{.*}} <signed>, %{{.*}} : vector<4xi8>, vector<4xi8>
// CHECK: arith.select
// CHECK: gpu.barrier
// CHECK: memref.load %{{.*}} : memref<5xf32>
// CHECK: memref.store %{{.*}} : memref<5x1x32xf32>
// CHECK: scf.if
// CHECK: memref.store %{{.*}} : memref<5x1x32xf32>
#xd = affine_map<(d0, p, n, k) -> (d0, k)>
#rd = affine_map<(d0, p, n, k) -> (d0)>
#gd = affine_map<(d0, p, n, k) -> (d0, k floordiv 8)>
#wd = affine_map<(d0, p, n, k) -> (p, k floordiv 4, n * 4 + k mod 4)>
#sd = affine_map<(d0, p, n, k) -> (p, k floordiv 8, n)>
#cd = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @int8_dot(%xq: memref<5x8xi8>, %sx: memref<5xf32>, %sum: memref<5x1xi32>, %w: memref<1x2x128xi8>,
                    %s: memref<1x1x32xf32>, %c: memref<5x1x32xf32>) {
  linalg.generic {indexing_maps = [#xd, #rd, #gd, #wd, #sd, #sd, #cd], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_dot_panel_sym", qc.layout = #qc.layout<32 : i64, 8 : i64, 32 : i64, 8 : i64, 8 : i64, 1 : i64, 1 : i64>}
      ins(%xq, %sx, %sum, %w, %s, %s : memref<5x8xi8>, memref<5xf32>, memref<5x1xi32>, memref<1x2x128xi8>, memref<1x1x32xf32>, memref<1x1x32xf32>)
      outs(%c : memref<5x1x32xf32>) {
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

// Quantized panels of 16 columns (a CPU layout): left to the generic path, one thread per output.
// CHECK-LABEL: func.func @narrow_panels
// CHECK-NOT: gpu.launch
// CHECK: linalg.generic
#xn = affine_map<(d0, d1, d2, d3) -> (d0, d3)>
#wn = affine_map<(d0, d1, d2, d3) -> (d1, d3 floordiv 8, d2 * 4 + d3 mod 4)>
#sn = affine_map<(d0, d1, d2, d3) -> (d1, d3 floordiv 32, d2)>
#cn = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
func.func @narrow_panels(%x: memref<1x64xf32>, %w: memref<1x8x64xi8>, %s: memref<1x2x16xf32>, %acc: memref<1x1x16xf32>) {
  linalg.generic {indexing_maps = [#xn, #wn, #sn, #sn, #cn], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_qgemm_cell_panel_sym"}
      ins(%x, %w, %s, %s : memref<1x64xf32>, memref<1x8x64xi8>, memref<1x2x16xf32>, memref<1x2x16xf32>)
      outs(%acc : memref<1x1x16xf32>) attrs = {qc.layout = #qc.layout<16 : i64, 64 : i64, 16 : i64, 4 : i64, 32 : i64, 1 : i64, 1 : i64>} {
  ^bb0(%in: f32, %in_0: i8, %in_1: f32, %in_2: f32, %out: f32):
    %9 = arith.extui %in_0 : i8 to i32
    %10 = arith.uitofp %9 : i32 to f32
    %13 = arith.mulf %in, %10 : f32
    %14 = arith.addf %out, %13 : f32
    linalg.yield %14 : f32
  }
  return
}

// -----

// f32 weights in [P, K, 32] panels (qc-lower-linear's, on a GPU target): the same blocks (4 rows); K = 256
// in two chunks of 128, one a warp; per loop step 8 k, each one coalesced 128-byte load of the panel's row
// k and one FMA per lane and row.
// CHECK-LABEL: func.func @f32_panels
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[LANE:[^,]*]], %[[WARP:[^,]*]], %{{[^)]*}}) in (%{{[^=]*}} = %c32{{[_0-9]*}}, %{{[^=]*}} = %c2{{[_0-9]*}}, %{{[^=]*}} = %c1{{[_0-9]*}})
// CHECK: scf.for %{{.*}} = %[[WARP]] to %c2{{[_0-9]*}} step %c2
// CHECK: scf.for %{{.*}} step %c8{{.*}} -> (f32, f32, f32, f32)
// CHECK: memref.load %{{.*}}[%{{.*}}, %{{.*}}, %[[LANE]]] : memref<3x256x32xf32>
// CHECK-COUNT-4: math.fma
// CHECK: gpu.barrier
#xf = affine_map<(d0, p, n, k) -> (d0, k)>
#wf = affine_map<(d0, p, n, k) -> (p, k, n)>
#cf = affine_map<(d0, p, n, k) -> (d0, p, n)>
func.func @f32_panels(%x: memref<4x256xf32>, %w: memref<3x256x32xf32>, %c: memref<4x3x32xf32>) {
  linalg.generic {indexing_maps = [#xf, #wf, #cf], iterator_types = ["parallel", "parallel", "parallel", "reduction"],
                  library_call = "qc_panel_matmul"}
      ins(%x, %w : memref<4x256xf32>, memref<3x256x32xf32>) outs(%c : memref<4x3x32xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %m = arith.mulf %a, %b : f32
    %r = arith.addf %acc, %m : f32
    linalg.yield %r : f32
  }
  return
}
