// qc-opt reads mlir-opt's command lines: one dash or two, -o, -split-input-file, pass flags
// beside -pass-pipeline (they run after it), and prints what torch-mlir-opt (the same MLIR) prints.
// RUN: qc-opt -split-input-file -canonicalize %s | FileCheck %s
// RUN: qc-opt --split-input-file --canonicalize -o %t.out %s && FileCheck %s < %t.out
// RUN: qc-opt -split-input-file -canonicalize %s > %t.qc && torch-mlir-opt -split-input-file -canonicalize %s > %t.ref && diff %t.qc %t.ref
// RUN: qc-opt -split-input-file -pass-pipeline='builtin.module(func.func(cse))' -canonicalize %s | FileCheck %s --check-prefix=CSE
// RUN: qc-opt -split-input-file -mlir-print-debuginfo -canonicalize %s | FileCheck %s --check-prefix=LOC

// CHECK-LABEL: func.func @add_zero
//  CHECK-NEXT:   return %arg0 : i32
// LOC: loc("{{.*}}mlir-opt-flags.mlir":[[# @LINE + 1]]:
func.func @add_zero(%a: i32) -> i32 {
  %c0 = arith.constant 0 : i32
  %0 = arith.addi %a, %c0 : i32
  return %0 : i32
}

// -----

// CHECK: // -----
// CHECK-LABEL: func.func @twice
// CSE-LABEL: func.func @twice
//       CSE:   %[[M:.*]] = arith.muli %arg0, %arg0 : i32
//  CSE-NEXT:   %[[S:.*]] = arith.addi %[[M]], %[[M]] : i32
//  CSE-NEXT:   return %[[S]] : i32
func.func @twice(%a: i32) -> i32 {
  %0 = arith.muli %a, %a : i32
  %1 = arith.muli %a, %a : i32
  %2 = arith.addi %0, %1 : i32
  return %2 : i32
}
