// Each pass flag is anchored as mlir-opt's implicit nesting anchors it: op-agnostic and module
// passes (-inline, -symbol-dce, -canonicalize) on the module, a pass restricted to an op
// (-convert-gpu-to-nvvm: gpu.module) nested under that op.  torch-mlir-opt has no gpu dialect:
// the gpu case is compared with FileCheck only.
// RUN: qc-opt -inline -symbol-dce %s | FileCheck %s
// RUN: qc-opt -inline -symbol-dce %s > %t.qc && torch-mlir-opt -inline -symbol-dce %s > %t.ref && diff %t.qc %t.ref
// RUN: qc-opt -convert-gpu-to-nvvm -canonicalize %S/Inputs/gpu-kernel.mlir | FileCheck %s --check-prefix=NVVM

// CHECK-NOT: func.func private @square
// CHECK-LABEL: func.func @caller
//  CHECK-NEXT:   arith.mulf %arg0, %arg0
//  CHECK-NEXT:   return
// NVVM: llvm.func @ids
// NVVM: nvvm.read.ptx.sreg.tid.x
func.func private @square(%x: f32) -> f32 {
  %0 = arith.mulf %x, %x : f32
  return %0 : f32
}

func.func @caller(%x: f32) -> f32 {
  %0 = func.call @square(%x) : (f32) -> f32
  return %0 : f32
}
