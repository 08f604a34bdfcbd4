// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-expand-math)' | FileCheck %s

// exp: range reduction by ln2, Cephes polynomial, 2^n from the exponent bits,
// flushed to 0 below the normal range, +inf above the float range.
// CHECK-LABEL: func.func @exp
// CHECK-NOT: math.exp
// CHECK: arith.cmpf olt, %arg0
// CHECK: arith.cmpf ogt, %arg0
// CHECK: math.floor
// CHECK: math.fma
// CHECK: arith.fptosi {{.*}} : vector<8xf32> to vector<8xi32>
// CHECK: arith.shli
// CHECK: arith.bitcast {{.*}} : vector<8xi32> to vector<8xf32>
// CHECK: %[[Y:.*]] = arith.select
// CHECK: %[[R:.*]] = arith.select %{{.*}}, %{{.*}}, %[[Y]]
// CHECK: return %[[R]]
func.func @exp(%x: vector<8xf32>) -> vector<8xf32> {
  %y = math.exp %x : vector<8xf32>
  return %y : vector<8xf32>
}

// -----

// erf: a rational function on [-4, 4], no call left.
// CHECK-LABEL: func.func @erf
// CHECK-NOT: math.erf
// CHECK: arith.maximumf
// CHECK: arith.minimumf
// CHECK: %[[R:.*]] = arith.divf
// CHECK: return %[[R]]
func.func @erf(%x: f32) -> f32 {
  %y = math.erf %x : f32
  return %y : f32
}

// -----

// tanh through exp: (e - 1) / (e + 1).
// CHECK-LABEL: func.func @tanh
// CHECK-NOT: math.tanh
// CHECK: math.floor
// CHECK: %[[R:.*]] = arith.divf
// CHECK: return %[[R]]
func.func @tanh(%x: f32) -> f32 {
  %y = math.tanh %x : f32
  return %y : f32
}

// -----

// Only f32 is rewritten; f64 keeps its libm call.
// CHECK-LABEL: func.func @f64
// CHECK: math.exp %arg0 : f64
func.func @f64(%x: f64) -> f64 {
  %y = math.exp %x : f64
  return %y : f64
}
