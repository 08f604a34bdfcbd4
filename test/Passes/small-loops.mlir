// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(convert-scf-to-cf, finalize-memref-to-llvm, convert-arith-to-llvm, convert-index-to-llvm, convert-func-to-llvm, convert-cf-to-llvm, reconcile-unrealized-casts, qc-small-loops)' -mlir-print-local-scope | FileCheck %s

// An outlined elementwise kernel over [4, 16] channels-last values with a per-channel operand: the inner loop
// (16 iterations) keeps its loop for LLVM's loop vectorizer; the outer one (it holds the inner) is left alone.
// CHECK-LABEL: llvm.func @qc_pk_0
// CHECK: ^bb3(%[[J:.*]]: i64):
// CHECK: llvm.icmp "slt" %[[J]]
// CHECK: llvm.br ^bb3(%{{.*}} : i64) {loop_annotation = #llvm.loop_annotation<unroll = <disable = true>>}
// CHECK: llvm.br ^bb1(%{{.*}} : i64){{$}}
func.func @qc_pk_0(%a: memref<4x16xf32>, %b: memref<16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c16 = arith.constant 16 : index
  scf.for %i = %c0 to %c4 step %c1 {
    scf.for %j = %c0 to %c16 step %c1 {
      %x = memref.load %a[%i, %j] : memref<4x16xf32>
      %y = memref.load %b[%j] : memref<16xf32>
      %z = arith.mulf %x, %y : f32
      memref.store %z, %a[%i, %j] : memref<4x16xf32>
    }
  }
  return
}

// -----

// Three iterations (an image's channels) stay to LLVM's unrolling, and so do 128 (not unrolled whole anyway)
// and the loops of functions that are not qc-parallelize's kernels.
// CHECK-LABEL: llvm.func @qc_pk_1
// CHECK-NOT: loop_annotation
// CHECK-LABEL: llvm.func @qc_pk_2
// CHECK-NOT: loop_annotation
// CHECK-LABEL: llvm.func @qc_main
// CHECK-NOT: loop_annotation
func.func @qc_pk_1(%a: memref<8x3xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c8 = arith.constant 8 : index
  scf.for %i = %c0 to %c8 step %c1 {
    scf.for %j = %c0 to %c3 step %c1 {
      %x = memref.load %a[%i, %j] : memref<8x3xf32>
      %z = arith.addf %x, %x : f32
      memref.store %z, %a[%i, %j] : memref<8x3xf32>
    }
  }
  return
}
func.func @qc_pk_2(%a: memref<128xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  scf.for %j = %c0 to %c128 step %c1 {
    %x = memref.load %a[%j] : memref<128xf32>
    %z = arith.addf %x, %x : f32
    memref.store %z, %a[%j] : memref<128xf32>
  }
  return
}
func.func @qc_main(%a: memref<16xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  scf.for %j = %c0 to %c16 step %c1 {
    %x = memref.load %a[%j] : memref<16xf32>
    %z = arith.addf %x, %x : f32
    memref.store %z, %a[%j] : memref<16xf32>
  }
  return
}
