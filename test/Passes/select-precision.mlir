// RUN: python %S/Inputs/select_inputs.py %t
// RUN: qc-opt %s --weights %t.safetensors --stats %t.npz --qc-select-precision='budget-bits=6.5 candidates=f32,w8a16,w4a16-g32' | FileCheck %s --check-prefix=BITS
// RUN: qc-opt %s --weights %t.safetensors --stats %t.npz --qc-select-precision='budget-bits=6 candidates=f32,w8a16,w4a16-g32 pins=outlier=w4a16-g32' | FileCheck %s --check-prefix=PIN
// RUN: qc-opt %s --weights %t.safetensors --stats %t.npz --qc-select-precision='budget-latency-ms=2.5 other-ms=0.3 latency-table=%t.latency.json' | FileCheck %s --check-prefix=LATENCY
// RUN: qc-opt %s --weights %t.safetensors --stats %t.measured.npz --qc-select-precision='budget-bits=6.5 candidates=f32,w8a16,w4a16-g32' | FileCheck %s --check-prefix=MEASURED
// RUN: qc-opt %s --weights %t.safetensors --stats %t.npz --qc-select-precision='budget-bits=6.5 candidates=f32,w8a16,w4a16-g32 couple=input' | FileCheck %s --check-prefix=COUPLED
// RUN: not qc-opt %s --weights %t.safetensors --stats %t.npz --qc-select-precision='budget-bits=4 candidates=f32,w8a16,w4a16-g32' 2>&1 | FileCheck %s --check-prefix=INFEASIBLE
// RUN: not qc-opt %s --weights %t.safetensors --stats %t.npz --qc-select-precision='budget-latency-ms=1 latency-table=%t.latency.json' 2>&1 | FileCheck %s --check-prefix=SLOW
// RUN: not qc-opt %s --weights %t.safetensors --stats %t.npz --qc-select-precision='budget-bits=6 sensitivity=measured' 2>&1 | FileCheck %s --check-prefix=UNMEASURED
// RUN: not qc-opt %s --weights %t.safetensors --stats %t.npz --qc-select-precision='budget-latency-ms=2.8 other-ms=0.3 quantized-latency-scale=1.3 latency-table=%t.latency.json' 2>&1 | FileCheck %s --check-prefix=SCALED

// 6.5 bits a weight over 10240 weights is 8320 bytes; every layer at int4 g32 takes 6400, and one
// upgrade to int8 fits: the proxy (Hessian-weighted error) gives it to the heavy-tailed layer.
// BITS: %[[WO:.*]] = "qc.weight"() {name = @outlier}
// BITS-NEXT: "qc.linear"(%{{.*}}, %[[WO]]) {{.*}}#qc.scheme<"w8a16", "sym">
// BITS: %[[WP:.*]] = "qc.weight"() {name = @plain}
// BITS-NEXT: "qc.linear"(%{{.*}}, %[[WP]]) {{.*}}#qc.scheme<"w4a16-g32", "sym">
// BITS: linalg.generic {{.*}}qc.scheme = #qc.scheme<"w4a16-g32", "sym">

// With outlier pinned to int4, the 7680 bytes of 6 bits leave room for the table only.
// PIN: %[[WO:.*]] = "qc.weight"() {name = @outlier}
// PIN-NEXT: "qc.linear"(%{{.*}}, %[[WO]]) {{.*}}#qc.scheme<"w4a16-g32", "sym">
// PIN: %[[WP:.*]] = "qc.weight"() {name = @plain}
// PIN-NEXT: "qc.linear"(%{{.*}}, %[[WP]]) {{.*}}#qc.scheme<"w4a16-g32", "sym">
// PIN: linalg.generic {{.*}}qc.scheme = #qc.scheme<"w8a16", "sym">

// int4 kernels take 10 ms here: within 2.5 ms (0.3 for the rest) both linears must run int8, the
// int8 scheme with the least error (asymmetric); the table (no kernel) keeps the most accurate, f32.
// LATENCY: %[[WO:.*]] = "qc.weight"() {name = @outlier}
// LATENCY-NEXT: "qc.linear"(%{{.*}}, %[[WO]]) {{.*}}#qc.scheme<"w8a{{8|16}}", "asym">
// LATENCY: %[[WP:.*]] = "qc.weight"() {name = @plain}
// LATENCY-NEXT: "qc.linear"(%{{.*}}, %[[WP]]) {{.*}}#qc.scheme<"w8a{{8|16}}", "asym">
// LATENCY: linalg.generic {{.*}}qc.scheme = #qc.scheme<"f32", "sym">

// Measured sensitivities (in the statistics) rank plain first: it gets the upgrade.
// MEASURED: %[[WO:.*]] = "qc.weight"() {name = @outlier}
// MEASURED-NEXT: "qc.linear"(%{{.*}}, %[[WO]]) {{.*}}#qc.scheme<"w4a16-g32", "sym">
// MEASURED: %[[WP:.*]] = "qc.weight"() {name = @plain}
// MEASURED-NEXT: "qc.linear"(%{{.*}}, %[[WP]]) {{.*}}#qc.scheme<"w8a16", "sym">

// Coupled, the two linears reading %x take one scheme: int8 for both does not fit, so both take
// int4 and the table gets the upgrade.
// COUPLED: %[[WO:.*]] = "qc.weight"() {name = @outlier}
// COUPLED-NEXT: "qc.linear"(%{{.*}}, %[[WO]]) {{.*}}#qc.scheme<"w4a16-g32", "sym">
// COUPLED: %[[WP:.*]] = "qc.weight"() {name = @plain}
// COUPLED-NEXT: "qc.linear"(%{{.*}}, %[[WP]]) {{.*}}#qc.scheme<"w4a16-g32", "sym">
// COUPLED: linalg.generic {{.*}}qc.scheme = #qc.scheme<"w8a16", "sym">

// INFEASIBLE: error: qc-select-precision: the weight budget cannot be met: the smallest feasible is budget-bits=5 (budget-mb=0.0064), every layer at its smallest candidate
// SLOW: error: qc-select-precision: the latency budget cannot be met: the smallest feasible is budget-latency-ms=2 (the fastest kernels, 2.000 ms, and 0.000 ms for the rest)
// Every scheme but f32 costs 1.3x its table entry (what the driver's latency check sets after a
// build that ran slower than predicted): two int8 kernels, 2.6 ms, no longer fit in 2.5.
// SCALED: error: qc-select-precision: the latency budget cannot be met: the smallest feasible is budget-latency-ms=2.9 (the fastest kernels, 2.600 ms, and 0.300 ms for the rest)
// UNMEASURED: error: qc-select-precision: sensitivity=measured: the statistics lack measured sensitivities

#map = affine_map<(d0, d1) -> (d0)>
#map1 = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%x: tensor<4x64xf32>, %ids: tensor<4xi64>) -> (tensor<4x64xf32>, tensor<4x64xf32>, tensor<4x64xf32>) {
  %wo = "qc.weight"() {name = @outlier} : () -> tensor<64x64xf32>
  %yo = "qc.linear"(%x, %wo) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<4x64xf32>, tensor<64x64xf32>) -> tensor<4x64xf32>
  %wp = "qc.weight"() {name = @plain} : () -> tensor<64x64xf32>
  %yp = "qc.linear"(%x, %wp) {operandSegmentSizes = array<i32: 1, 1, 0>} : (tensor<4x64xf32>, tensor<64x64xf32>) -> tensor<4x64xf32>
  %table = "qc.weight"() {name = @embed} : () -> tensor<32x64xf32>
  %empty = tensor.empty() : tensor<4x64xf32>
  %e = linalg.generic {indexing_maps = [#map, #map1], iterator_types = ["parallel", "parallel"]} ins(%ids : tensor<4xi64>) outs(%empty : tensor<4x64xf32>) {
  ^bb0(%id: i64, %out: f32):
    %row = arith.index_cast %id : i64 to index
    %col = linalg.index 1 : index
    %v = tensor.extract %table[%row, %col] : tensor<32x64xf32>
    linalg.yield %v : f32
  } -> tensor<4x64xf32>
  return %yo, %yp, %e : tensor<4x64xf32>, tensor<4x64xf32>, tensor<4x64xf32>
}
