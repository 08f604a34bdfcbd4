// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-parallelize{min-work=1024})' | FileCheck %s

// exp(x - max) in place, max broadcast along the rows: the op moves into a kernel that runs
// tasks [t0, t1) of the outer dim on static one-row slices; %x, read and written, is passed
// once; the two buffers are distinct, so both arguments are noalias.  The trampoline
// declaration tells the C glue which kernel to run and how many tasks there are.
// CHECK-LABEL: func.func @softmax_exp
// CHECK-SAME: (%[[X:.*]]: memref<8x16x128xf32>, %[[M:.*]]: memref<8x16xf32>)
// CHECK-NEXT: call @qc_ppar_0(%[[X]], %[[M]]) : (memref<8x16x128xf32>, memref<8x16xf32>) -> ()
// CHECK-NEXT: return
// CHECK: func.func @qc_pk_0(%[[A:.*]]: memref<8x16x128xf32> {llvm.noalias}, %[[B:.*]]: memref<8x16xf32> {llvm.noalias}, %[[T0:.*]]: index, %[[T1:.*]]: index)
// CHECK: scf.for %[[T:.*]] = %[[T0]] to %[[T1]]
// CHECK: %[[SA:.*]] = memref.subview %[[A]][%[[T]], 0, 0] [1, 16, 128] [1, 1, 1] : memref<8x16x128xf32> to memref<1x16x128xf32, strided<[2048, 128, 1], offset: ?>>
// CHECK: %[[SB:.*]] = memref.subview %[[B]][%[[T]], 0] [1, 16] [1, 1]
// CHECK: linalg.generic {{.*}} ins(%[[SA]], %[[SB]] : {{.*}}) outs(%[[SA]] : {{.*}})
// CHECK: math.exp
// CHECK: func.func private @qc_ppar_0(memref<8x16x128xf32>, memref<8x16xf32>) attributes {llvm.emit_c_interface, qc.kernel = "qc_pk_0", qc.tasks = 8 : i64}
func.func @softmax_exp(%x: memref<8x16x128xf32>, %m: memref<8x16xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>,
                                   affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %m : memref<8x16x128xf32>, memref<8x16xf32>) outs(%x : memref<8x16x128xf32>) {
  ^bb0(%in: f32, %max: f32, %out: f32):
    %0 = arith.subf %in, %max : f32
    %1 = math.exp %0 : f32
    linalg.yield %1 : f32
  }
  return
}

// -----

// A row reduction whose outer dim is a broadcast (a weight vector): the split dim is the
// first one every output indexes and that has enough tasks; the captured constant is
// cloned into the kernel.
// CHECK-LABEL: func.func @scaled_row_sum
// CHECK: call @qc_ppar_0
// CHECK: func.func @qc_pk_0(%{{.*}}, %[[W:[^:]*]]: memref<256xf32> {llvm.noalias}
// CHECK: scf.for
// CHECK: %[[SX:.*]] = memref.subview {{.*}} [1, 256] [1, 1] : memref<64x256xf32> to memref<1x256xf32
// CHECK: %[[SS:.*]] = memref.subview {{.*}} [1] [1] : memref<64xf32> to memref<1xf32
// CHECK: %[[C:.*]] = arith.constant 2.000000e+00 : f32
// CHECK: linalg.generic {{.*}} ins(%[[SX]], %[[W]] : {{.*}}) outs(%[[SS]] :
// CHECK: arith.mulf %{{.*}}, %[[C]]
// CHECK: qc.tasks = 64 : i64
func.func @scaled_row_sum(%x: memref<64x256xf32>, %w: memref<256xf32>, %s: memref<64xf32>) {
  %c2 = arith.constant 2.0 : f32
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>,
                                   affine_map<(d0, d1) -> (d0)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x, %w : memref<64x256xf32>, memref<256xf32>) outs(%s : memref<64xf32>) {
  ^bb0(%in: f32, %wi: f32, %acc: f32):
    %0 = arith.mulf %in, %wi : f32
    %1 = arith.mulf %0, %c2 : f32
    %2 = arith.addf %1, %acc : f32
    linalg.yield %2 : f32
  }
  return
}

// -----

// Two views of one buffer might overlap: split, but without noalias.
// CHECK-LABEL: func.func @views_of_one_buffer
// CHECK: call @qc_ppar_0
// CHECK: func.func @qc_pk_0(%{{.*}}: memref<8x256xf32, strided<[512, 1]>>, %{{.*}}: memref<8x256xf32, strided<[512, 1], offset: 256>>, %{{.*}}: index, %{{.*}}: index)
func.func @views_of_one_buffer(%x: memref<8x512xf32>) {
  %a = memref.subview %x[0, 0] [8, 256] [1, 1] : memref<8x512xf32> to memref<8x256xf32, strided<[512, 1]>>
  %b = memref.subview %x[0, 256] [8, 256] [1, 1] : memref<8x512xf32> to memref<8x256xf32, strided<[512, 1], offset: 256>>
  %c = memref.cast %a : memref<8x256xf32, strided<[512, 1]>> to memref<8x256xf32, strided<[512, 1]>>
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c : memref<8x256xf32, strided<[512, 1]>>) outs(%b : memref<8x256xf32, strided<[512, 1], offset: 256>>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  return
}

// -----

// Too little work for the pool: serial, but outlined all the same, the kernel called directly over
// all its tasks (no trampoline); two ops of one kind, as in two layers, share it.
// CHECK-LABEL: func.func @serial
// CHECK-DAG: %[[C0:.*]] = arith.constant 0 : index
// CHECK-DAG: %[[C4:.*]] = arith.constant 4 : index
// CHECK: call @qc_pk_0(%arg0, %[[C0]], %[[C4]]) : (memref<4x64xf32>, index, index) -> ()
// CHECK: call @qc_pk_0(%arg1, %{{.*}}, %{{.*}}) : (memref<4x64xf32>, index, index) -> ()
// CHECK-NOT: linalg.generic
// CHECK: func.func @qc_pk_0
// CHECK: scf.for
// CHECK: linalg.generic
// CHECK-NOT: func.func @qc_pk_1
// CHECK-NOT: qc_ppar
func.func @serial(%small: memref<4x64xf32>, %other: memref<4x64xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      outs(%small : memref<4x64xf32>) {
  ^bb0(%out: f32):
    %0 = arith.addf %out, %out : f32
    linalg.yield %0 : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      outs(%other : memref<4x64xf32>) {
  ^bb0(%out: f32):
    %0 = arith.addf %out, %out : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// A gather (a resize reads its source like this): the body reads its row index and loads from a
// buffer outside the op.  The buffer is passed to the kernel whole; in each task's one-row slice,
// linalg.index 0 counts from 0, so the task is added to it.
// CHECK-LABEL: func.func @gather
// CHECK: call @qc_ppar_0(%arg1, %arg0)
// CHECK: func.func @qc_pk_0(%[[OUT:.*]]: memref<64x64xf32> {llvm.noalias}, %[[SRC:.*]]: memref<32x64xf32> {llvm.noalias}, %{{.*}}: index, %{{.*}}: index)
// CHECK: scf.for %[[T:.*]] = %{{.*}} to %{{.*}}
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : memref<1x64xf32, {{.*}}>)
// CHECK: %[[I:.*]] = linalg.index 0 : index
// CHECK-NEXT: %[[ROW:.*]] = arith.addi %[[I]], %[[T]] : index
// CHECK: %[[HALF:.*]] = arith.divui %[[ROW]], %c2
// CHECK: memref.load %[[SRC]][%[[HALF]], %{{.*}}] : memref<32x64xf32>
func.func @gather(%src: memref<32x64xf32>, %big: memref<64x64xf32>) {
  %c2 = arith.constant 2 : index
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      outs(%big : memref<64x64xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %h = arith.divui %i, %c2 : index
    %v = memref.load %src[%h, %j] : memref<32x64xf32>
    linalg.yield %v : f32
  }
  return
}

// -----

// im2col: the output rows oh are split although x reads them through the window oh * 2 + kh; each
// task reads x from row t * 2 on, as many rows as the last task's window needs (17 - 7 * 2 = 3).
// CHECK-LABEL: func.func @im2col
// CHECK: func.func @qc_pk_0(%[[X:.*]]: memref<1x17x17x8xf32> {llvm.noalias}, %[[C:.*]]: memref<1x8x8x3x3x8xf32> {llvm.noalias}, %[[T0:.*]]: index, %[[T1:.*]]: index)
// CHECK: scf.for %[[T:.*]] = %[[T0]] to %[[T1]]
// CHECK: %[[ROW:.*]] = arith.muli %[[T]], %c2
// CHECK: memref.subview %[[X]][0, %[[ROW]], 0, 0] [1, 3, 17, 8] [1, 1, 1, 1]
// CHECK: memref.subview %[[C]][0, %[[T]], 0, 0, 0, 0] [1, 1, 8, 3, 3, 8] [1, 1, 1, 1, 1, 1]
// CHECK: qc.tasks = 8 : i64
func.func @im2col(%x: memref<1x17x17x8xf32>, %col: memref<1x8x8x3x3x8xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1 * 2 + d3, d2 * 2 + d4, d5)>,
                                   affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d4, d5)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x17x17x8xf32>) outs(%col : memref<1x8x8x3x3x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  return
}

// -----

// A model repeats its layers: ops that outline to the same kernel (same body, same operand types)
// share it and its trampoline; a different body gets its own kernel.
// CHECK-LABEL: func.func @repeated_layers
// CHECK-SAME: (%[[X:.*]]: memref<64x256xf32>, %[[Y:.*]]: memref<64x256xf32>)
// CHECK-NEXT: call @qc_ppar_0(%[[X]]) : (memref<64x256xf32>) -> ()
// CHECK-NEXT: call @qc_ppar_0(%[[Y]]) : (memref<64x256xf32>) -> ()
// CHECK-NEXT: call @qc_ppar_1(%[[X]]) : (memref<64x256xf32>) -> ()
// CHECK: func.func @qc_pk_0(
// CHECK: math.exp
// CHECK: func.func private @qc_ppar_0(memref<64x256xf32>) attributes {llvm.emit_c_interface, qc.kernel = "qc_pk_0", qc.tasks = 64 : i64}
// CHECK: func.func @qc_pk_1(
// CHECK: math.tanh
// CHECK: func.func private @qc_ppar_1(memref<64x256xf32>) attributes {llvm.emit_c_interface, qc.kernel = "qc_pk_1", qc.tasks = 64 : i64}
// CHECK-NOT: func.func @qc_pk_2
func.func @repeated_layers(%x: memref<64x256xf32>, %y: memref<64x256xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      outs(%x : memref<64x256xf32>) {
  ^bb0(%out: f32):
    %0 = math.exp %out : f32
    linalg.yield %0 : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      outs(%y : memref<64x256xf32>) {
  ^bb0(%out: f32):
    %0 = math.exp %out : f32
    linalg.yield %0 : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      outs(%x : memref<64x256xf32>) {
  ^bb0(%out: f32):
    %0 = math.tanh %out : f32
    linalg.yield %0 : f32
  }
  return
}

// -----

// A global average pool over channels last: the channels are the only parallel dim and the
// innermost.  A task takes 48 of them (240 = 5 x 48), not one: its inner loop then runs along
// contiguous floats; linalg.index of the channel dim counts from the block's first.
// CHECK-LABEL: func.func @pool_channels
// CHECK: call @qc_ppar_0(%arg0, %arg1)
// CHECK: func.func @qc_pk_0
// CHECK: scf.for %[[T:.*]] = %{{.*}} to %{{.*}} step
// CHECK: %[[START:.*]] = arith.muli %[[T]], %c48
// CHECK: memref.subview %{{.*}}[0, 0, %[[START]]] [14, 14, 48] [1, 1, 1] : memref<14x14x240xf32> to memref<14x14x48xf32, strided<[3360, 240, 1], offset: ?>>
// CHECK: memref.subview %{{.*}}[0, %{{.*}}] [1, 48] [1, 1] : memref<1x240xf32> to memref<1x48xf32, strided<[240, 1], offset: ?>>
// CHECK: %[[FIRST:.*]] = arith.muli %[[T]], %c48
// CHECK: linalg.index 2
// CHECK: arith.addi %{{.*}}, %[[FIRST]]
// CHECK: qc.tasks = 5
func.func @pool_channels(%x: memref<14x14x240xf32>, %y: memref<1x240xf32>) {
  linalg.generic {indexing_maps = [affine_map<(h, w, c) -> (h, w, c)>, affine_map<(h, w, c) -> (0, c)>],
                  iterator_types = ["reduction", "reduction", "parallel"]}
      ins(%x : memref<14x14x240xf32>) outs(%y : memref<1x240xf32>) {
  ^bb0(%in: f32, %out: f32):
    %c = linalg.index 2 : index
    %i = arith.index_cast %c : index to i32
    %f = arith.sitofp %i : i32 to f32
    %0 = arith.mulf %in, %f : f32
    %1 = arith.addf %out, %0 : f32
    linalg.yield %1 : f32
  }
  return
}

// -----

// With 16 channels, two blocks of 8 (qc-small-loops keeps their 8-iteration inner loop for LLVM's
// loop vectorizer; unrolled, it became gathers along the reduction).
// CHECK-LABEL: func.func @pool_few_channels
// CHECK: memref.subview %{{.*}}[0, 0, %{{.*}}] [56, 56, 8] [1, 1, 1]
// CHECK: qc.tasks = 2
func.func @pool_few_channels(%x: memref<56x56x16xf32>, %y: memref<1x16xf32>) {
  linalg.generic {indexing_maps = [affine_map<(h, w, c) -> (h, w, c)>, affine_map<(h, w, c) -> (0, c)>],
                  iterator_types = ["reduction", "reduction", "parallel"]}
      ins(%x : memref<56x56x16xf32>) outs(%y : memref<1x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %0 = arith.addf %out, %in : f32
    linalg.yield %0 : f32
  }
  return
}
