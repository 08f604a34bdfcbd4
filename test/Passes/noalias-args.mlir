// RUN: qc-opt %s --pass-pipeline='builtin.module(finalize-memref-to-llvm, convert-func-to-llvm, reconcile-unrealized-casts, qc-noalias-args)' | FileCheck %s

// The C wrapper's descriptor pointers carry the attribute after conversion; the pass puts it on the
// aligned data pointer (the second of each memref's two) of the kernel: %a and %c, not %b.
// CHECK-LABEL: llvm.func @kernel
// CHECK-SAME: (%arg0: !llvm.ptr, %arg1: !llvm.ptr {llvm.noalias}, %arg2: i64, %arg3: i64, %arg4: i64, %arg5: i64, %arg6: i64,
// CHECK-SAME: %arg7: !llvm.ptr, %arg8: !llvm.ptr, %arg9: i64, %arg10: i64, %arg11: i64,
// CHECK-SAME: %arg12: !llvm.ptr, %arg13: !llvm.ptr {llvm.noalias}, %arg14: i64, %arg15: i64, %arg16: i64, %arg17: i64)
// CHECK: llvm.func @_mlir_ciface_kernel(%arg0: !llvm.ptr {llvm.noalias}, %arg1: !llvm.ptr, %arg2: !llvm.ptr {llvm.noalias}, %arg3: i64)
func.func @kernel(%a: memref<4x8xf32> {llvm.noalias}, %b: memref<8xf32>, %c: memref<8xf32> {llvm.noalias}, %t: index)
    attributes {llvm.emit_c_interface} {
  return
}
