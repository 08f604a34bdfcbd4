// RUN: qc-opt %s --split-input-file --qc-checks-to-errors | FileCheck %s

// A check becomes a call of @qc_check_failed with its id; the module lists the messages by id,
// each named after the node its location names.
// CHECK: module attributes {qc.checks = ["node 'expand': dims differ", "node 'reshape': sizes differ"]}
// CHECK-LABEL: func.func @main
//   CHECK-NOT:   cf.assert
//       CHECK:   %[[FAILED:.*]] = arith.xori %arg1, %true
//       CHECK:   scf.if %[[FAILED]] {
//       CHECK:     %[[ID:.*]] = arith.constant 0 : i32
//       CHECK:     func.call @qc_check_failed(%[[ID]]) : (i32) -> ()
//       CHECK:   scf.if
//       CHECK:     arith.constant 1 : i32
//       CHECK:   arith.addf
// CHECK: func.func private @qc_check_failed(i32)
func.func @main(%x: f32, %ok: i1, %ok2: i1) -> f32 {
  cf.assert %ok, "dims differ" loc("expand")
  cf.assert %ok2, "sizes differ" loc("reshape")
  %y = arith.addf %x, %x : f32
  return %y : f32
}

// -----

// Nothing to do: no declaration, no attribute.
// CHECK-LABEL: module {
//   CHECK-NOT: qc_check_failed
func.func @main(%x: f32) -> f32 {
  return %x : f32
}
