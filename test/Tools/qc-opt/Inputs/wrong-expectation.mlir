func.func @cast_shape(%a : tensor<index>) -> tensor<2xi64> {
  // One expectation that does not match, one diagnostic that is not expected.
  // expected-error @below {{no such message}}
  %0 = arith.index_cast %a : tensor<index> to tensor<2xi64>
  return %0 : tensor<2xi64>
}
// -----
func.func @prior_use(i32, i64) {
  // the note is "prior use here"
^bb0(%a : i32, %b : i64): // expected-note {{not this note}}
  %r = arith.cmpi eq, %a, %b : i32 // expected-error {{use of value '%b' expects different type than prior uses}}
}
