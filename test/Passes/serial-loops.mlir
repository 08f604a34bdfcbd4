// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-serial-loops)' | FileCheck %s

// The back edge of an entry function's loop (a branch to a block at or before its own) is kept
// from LLVM's loop vectorizer; the forward branches into and out of the loop are not marked.
// CHECK: #[[LV:.*]] = #llvm.loop_vectorize<width = 1 : i32>
// CHECK: #[[LA:.*]] = #llvm.loop_annotation<vectorize = #[[LV]]>
// CHECK-LABEL: llvm.func @qc_main(
// CHECK: llvm.br ^bb1(%{{.*}} : i64){{$}}
// CHECK: llvm.cond_br %{{.*}}, ^bb2, ^bb3{{$}}
// CHECK: llvm.br ^bb1(%{{.*}} : i64) {loop_annotation = #[[LA]]}
// CHECK: llvm.return
llvm.func @qc_main(%p: !llvm.ptr, %n: i64) {
  %c0 = llvm.mlir.constant(0 : i64) : i64
  %c1 = llvm.mlir.constant(1 : i64) : i64
  %f = llvm.mlir.constant(1.0 : f32) : f32
  llvm.br ^bb1(%c0 : i64)
^bb1(%i: i64):
  %more = llvm.icmp "slt" %i, %n : i64
  llvm.cond_br %more, ^bb2, ^bb3
^bb2:
  %a = llvm.getelementptr %p[%i] : (!llvm.ptr, i64) -> !llvm.ptr, f32
  llvm.store %f, %a : f32, !llvm.ptr
  %next = llvm.add %i, %c1 : i64
  llvm.br ^bb1(%next : i64)
^bb3:
  llvm.return
}

// -----

// A decoder's other entry point is an entry function too; kernels and tasks (their loops run the
// vector code or the pool's large ones) are left to LLVM.
// CHECK-LABEL: llvm.func @qc_main_decode(
// CHECK: loop_annotation
// CHECK-LABEL: llvm.func @qc_mk_0(
// CHECK-NOT: loop_annotation
llvm.func @qc_main_decode(%n: i64) {
  %c0 = llvm.mlir.constant(0 : i64) : i64
  llvm.br ^bb1(%c0 : i64)
^bb1(%i: i64):
  %more = llvm.icmp "slt" %i, %n : i64
  llvm.cond_br %more, ^bb1(%i : i64), ^bb2
^bb2:
  llvm.return
}
llvm.func @qc_mk_0(%n: i64) {
  %c0 = llvm.mlir.constant(0 : i64) : i64
  llvm.br ^bb1(%c0 : i64)
^bb1(%i: i64):
  %more = llvm.icmp "slt" %i, %n : i64
  llvm.cond_br %more, ^bb1(%i : i64), ^bb2
^bb2:
  llvm.return
}

// -----

// A function with a loop that an entry function calls (a task kernel run serially) stays out of
// line: inlined at each call, its loop would be vectorized in the entry function, which LLVM's loop
// vectorizer revisits whole per loop.  A callee without loops (a trampoline's descriptor packing)
// may be inlined, and what the callee's loop is annotated with is left to LLVM.
// CHECK-LABEL: llvm.func @qc_main(
// CHECK: llvm.call @qc_pk_0
// CHECK: llvm.call @qc_ppar_0
// CHECK-LABEL: llvm.func @qc_pk_0(
// CHECK-SAME: passthrough = ["noinline"]
// CHECK-NOT: loop_annotation
// CHECK-LABEL: llvm.func @qc_ppar_0(
// CHECK-NOT: passthrough
// CHECK: llvm.return
llvm.func @qc_main(%n: i64) {
  llvm.call @qc_pk_0(%n) : (i64) -> ()
  llvm.call @qc_ppar_0(%n) : (i64) -> ()
  llvm.return
}
llvm.func @qc_pk_0(%n: i64) {
  %c0 = llvm.mlir.constant(0 : i64) : i64
  %c1 = llvm.mlir.constant(1 : i64) : i64
  llvm.br ^bb1(%c0 : i64)
^bb1(%i: i64):
  %more = llvm.icmp "slt" %i, %n : i64
  llvm.cond_br %more, ^bb2, ^bb3
^bb2:
  %next = llvm.add %i, %c1 : i64
  llvm.br ^bb1(%next : i64)
^bb3:
  llvm.return
}
llvm.func @qc_ppar_0(%n: i64) {
  llvm.return
}
