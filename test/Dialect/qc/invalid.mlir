// RUN: qc-opt %s --split-input-file --verify-diagnostics

func.func @linear_k_mismatch(%x: tensor<4x6xf32>) -> tensor<4x3xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<3x5xf32>
  // expected-error @below {{'qc.linear' op input reduction dimension 6 does not match weight K=5}}
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<4x6xf32>, tensor<3x5xf32>) -> tensor<4x3xf32>
  return %y : tensor<4x3xf32>
}

// -----

func.func @linear_bias_shape(%x: tensor<4x5xf32>, %b: tensor<4xf32>) -> tensor<4x3xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<3x5xf32>
  // expected-error @below {{bias must have shape [3], got [4]}}
  %y = "qc.linear"(%x, %w, %b) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4x5xf32>, tensor<3x5xf32>, tensor<4xf32>) -> tensor<4x3xf32>
  return %y : tensor<4x3xf32>
}

// -----

func.func @linear_result_shape(%x: tensor<4x5xf32>) -> tensor<4x4xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<3x5xf32>
  // expected-error @below {{result shape [4, 4] does not match expected [4, 3]}}
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<4x5xf32>, tensor<3x5xf32>) -> tensor<4x4xf32>
  return %y : tensor<4x4xf32>
}

// -----

func.func @linear_bad_scheme(%x: tensor<4x5xf32>) -> tensor<4x3xf32> {
  %w = "qc.weight"() {name = @w} : () -> tensor<3x5xf32>
  // expected-error @below {{unknown scheme 'w3a16'}}
  %y = "qc.linear"(%x, %w) {operandSegmentSizes = array<i32: 1, 1, 0>, qc.scheme = #qc.scheme<"w3a16", "sym">} : (tensor<4x5xf32>, tensor<3x5xf32>) -> tensor<4x3xf32>
  return %y : tensor<4x3xf32>
}

// -----

func.func @quantize_bad_group(%x: tensor<8x96xf32>, %s: tensor<8x1xf32>, %z: tensor<8x1xi8>) -> tensor<8x96xi8> {
  // expected-error @below {{group_size 64 does not divide the reduction dimension 96}}
  %q = "qc.quantize"(%x, %s, %z) {bits = 4 : i64, axis = 0 : i64, group_size = 64 : i64} : (tensor<8x96xf32>, tensor<8x1xf32>, tensor<8x1xi8>) -> tensor<8x96xi8>
  return %q : tensor<8x96xi8>
}

// -----

func.func @quantize_bad_bits(%x: tensor<8x64xf32>, %s: tensor<8xf32>, %z: tensor<8xi8>) -> tensor<8x64xi8> {
  // expected-error @below {{bits must be one of [4, 8], got 3}}
  %q = "qc.quantize"(%x, %s, %z) {bits = 3 : i64, axis = 0 : i64, group_size = 0 : i64} : (tensor<8x64xf32>, tensor<8xf32>, tensor<8xi8>) -> tensor<8x64xi8>
  return %q : tensor<8x64xi8>
}

// -----

func.func @quantize_float_result(%x: tensor<8x64xf32>, %s: tensor<8xf32>, %z: tensor<8xi8>) -> tensor<8x64xf32> {
  // expected-error @below {{result must have an integer element type}}
  %q = "qc.quantize"(%x, %s, %z) {bits = 8 : i64, axis = 0 : i64, group_size = 0 : i64} : (tensor<8x64xf32>, tensor<8xf32>, tensor<8xi8>) -> tensor<8x64xf32>
  return %q : tensor<8x64xf32>
}

// -----

func.func @dequantize_scale_shape(%q: tensor<8x128xi8>, %s: tensor<8x4xf32>, %z: tensor<8x4xi8>) -> tensor<8x128xf32> {
  // expected-error @below {{scale shape [8, 4] does not match expected [8, 1]}}
  %x = "qc.dequantize"(%q, %s, %z) {bits = 4 : i64, axis = 0 : i64, group_size = 128 : i64} : (tensor<8x128xi8>, tensor<8x4xf32>, tensor<8x4xi8>) -> tensor<8x128xf32>
  return %x : tensor<8x128xf32>
}

// -----

func.func @qgemm_packed_width(%x: tensor<1x128xf32>, %p: tensor<16x128xi8>, %s: tensor<16x1xf32>, %z: tensor<16x1xf32>) -> tensor<1x16xf32> {
  // expected-error @below {{packed weight row of 128 bytes does not hold K=128 values of 4 bits}}
  %y = "qc.qgemm"(%x, %p, %s, %z) {bits = 4 : i64, group_size = 128 : i64, act_bits = 0 : i64, act_scale = 0.0 : f32, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<1x128xf32>, tensor<16x128xi8>, tensor<16x1xf32>, tensor<16x1xf32>) -> tensor<1x16xf32>
  return %y : tensor<1x16xf32>
}

// -----

func.func @observe_type(%x: tensor<4xf32>) -> tensor<4xf16> {
  // expected-error @below {{result type must equal input type}}
  %y = "qc.observe"(%x) {id = "x"} : (tensor<4xf32>) -> tensor<4xf16>
  return %y : tensor<4xf16>
}

// -----

// The custom form of a qc op: MLIR's parser fails without a word, qc names the op.
func.func @custom_form(%x: tensor<4x6xf32>, %w: tensor<3x6xf32>) -> tensor<4x3xf32> {
  // expected-error @below {{'qc.linear' has no custom assembly form; write it in the generic form}}
  %y = qc.linear %x, %w : tensor<4x6xf32>, tensor<3x6xf32> -> tensor<4x3xf32>
  return %y : tensor<4x3xf32>
}
