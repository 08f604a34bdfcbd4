// RUN: not qc-opt %s 2>&1 | FileCheck %s --check-prefix=REFUSED
// RUN: qc-opt -allow-unregistered-dialect -mlir-print-op-generic %s | FileCheck %s --check-prefix=GENERIC
// RUN: qc-opt -allow-unregistered-dialect %s > %t.qc && torch-mlir-opt -allow-unregistered-dialect %s > %t.ref && diff %t.qc %t.ref
// RUN: not qc-opt -allow-unregistered-dialect=false %s 2>&1 | FileCheck %s --check-prefix=REFUSED

// REFUSED: unregistered.mlir:[[# @LINE + 6]]:17: error: operation being parsed with an unregistered dialect
// REFUSED-NEXT: %0 = "foo.bar"(%x) : (i32) -> i32
// REFUSED-NEXT: ^
// GENERIC: "func.func"() <{function_type = (i32) -> i32, sym_name = "f"}>
// GENERIC: "foo.bar"(%arg0) : (i32) -> i32
func.func @f(%x: i32) -> i32 {
  %0 = "foo.bar"(%x) : (i32) -> i32
  return %0 : i32
}
