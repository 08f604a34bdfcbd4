// -verify-diagnostics in mlir-opt's forms: @+N, @-N, @above, @below, on the same line, notes, empty
// text, -re with {{regex}}; verifier, parser and pass errors. torch-mlir-opt agrees on this file.
// RUN: qc-opt -split-input-file %s -verify-diagnostics
// RUN: qc-opt -split-input-file -canonicalize %s -verify-diagnostics
// RUN: torch-mlir-opt -split-input-file %s -verify-diagnostics
// A wrong expectation: what was emitted and what was not, each located, exit 1.
// RUN: not qc-opt -split-input-file %S/Inputs/wrong-expectation.mlir -verify-diagnostics 2>&1 | FileCheck %s --check-prefix=WRONG

// WRONG: wrong-expectation.mlir:4:8: error: unexpected error: 'arith.index_cast' op failed to verify
// WRONG-NEXT: %0 = arith.index_cast %a : tensor<index> to tensor<2xi64>
// WRONG-NEXT: ^
// WRONG: wrong-expectation.mlir:3:6: error: expected error "no such message" was not produced
// WRONG: wrong-expectation.mlir:10:30: error: expected note "not this note" was not produced

func.func @cast_shape(%a : tensor<index>) -> tensor<2xi64> {
  // expected-error @+1 {{'arith.index_cast' op failed to verify that input and output have the same tensor dimensions}}
  %0 = arith.index_cast %a : tensor<index> to tensor<2xi64>
  return %0 : tensor<2xi64>
}

// -----

func.func @bitcast_widths(%a : f16) -> f32 {
  %res = arith.bitcast %a : f16 to f32
  // expected-error@-1 {{are cast incompatible}}
  return %res : f32
}

// -----

func.func @parse_error(f32) {
^bb0(%a : f32):
  %sf = arith.addf %a, %a, %a : f32  // expected-error {{expected ':'}}
}

// -----

func.func @prior_use(i32, i64) {
^bb0(%a : i32, %b : i64): // expected-note {{prior use here}}
  %r = arith.cmpi eq, %a, %b : i32 // expected-error {{use of value '%b' expects different type than prior uses}}
}

// -----

func.func @no_predicate(%a : f32, %b : f32) {
  %r = arith.cmpf %a, %b : f32 // expected-error {{}}
}

// -----

func.func @regex(%a : f32) {
  // expected-error-re@below {{op operand #0 must be {{.*}}integer-like, but got 'f32'}}
  %0 = arith.extsi %a : f32 to i64
  return
}
