// RUN: qc-opt %s --split-input-file --qc-assign-schemes='scheme=w4a16-g32 overrides=pl.*=w8a16' | FileCheck %s
// RUN: qc-opt %s --split-input-file --qc-assign-schemes='scheme=w8a8' | FileCheck %s --check-prefix=A8
// RUN: qc-opt %s --split-input-file --qc-assign-schemes='scheme=w4a16-g128' | FileCheck %s --check-prefix=UNFIT
// RUN: not qc-opt %s --split-input-file --qc-assign-schemes='overrides=nothing=w8a16' 2>&1 | FileCheck %s --check-prefix=NOMATCH
// RUN: not qc-opt %s --split-input-file --qc-assign-schemes='overrides=outlier=w4a16-g128' 2>&1 | FileCheck %s --check-prefix=NOFIT

// The override names plain; the rest, the embedding table included, get the default.
// CHECK: %[[WO:.*]] = "qc.weight"() {name = @outlier}
// CHECK-NEXT: "qc.linear"(%{{.*}}, %[[WO]]) {{.*}}#qc.scheme<"w4a16-g32", "sym">
// CHECK: %[[WP:.*]] = "qc.weight"() {name = @plain}
// CHECK-NEXT: "qc.linear"(%{{.*}}, %[[WP]]) {{.*}}#qc.scheme<"w8a16", "sym">
// CHECK: linalg.generic {{.*}}qc.scheme = #qc.scheme<"w4a16-g32", "sym">

// A table has no activations: an int8-activation default gives it the same weights, f32 activations.
// A8-COUNT-2: "qc.linear"{{.*}}#qc.scheme<"w8a8", "sym">
// A8: linalg.generic {{.*}}qc.scheme = #qc.scheme<"w8a16", "sym">

// A default whose groups do not divide K = 64 leaves every layer unassigned (the report says why).
// UNFIT-NOT: qc.scheme

// NOMATCH: error: qc-assign-schemes: scheme override 'nothing' matches no layer; layers: outlier, plain, embed
// NOFIT: error: qc-assign-schemes: layer 'outlier' cannot take w4a16-g128: K=64 is not a multiple of the group size 128 of w4a16-g128

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
