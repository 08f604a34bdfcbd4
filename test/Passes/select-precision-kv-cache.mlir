// RUN: python %S/Inputs/select_inputs.py %t
// RUN: qc-opt %s --weights %t.safetensors --stats %t.measured.npz --qc-select-precision='budget-mb=0.03 candidates=f32,w8a16,w4a16-g32 kv-cache=float32=40000,float16=20000,int8=10000' | FileCheck %s --check-prefix=HALF
// RUN: qc-opt %s --weights %t.safetensors --stats %t.measured.npz --qc-select-precision='budget-mb=0.017 candidates=f32,w8a16,w4a16-g32 kv-cache=float32=40000,float16=20000,int8=10000' | FileCheck %s --check-prefix=INT8
// RUN: qc-opt %s --weights %t.safetensors --stats %t.measured.npz --qc-select-precision='budget-mb=1 candidates=f32,w8a16,w4a16-g32 kv-cache=float32=40000,float16=20000,int8=10000' | FileCheck %s --check-prefix=ROOM
// RUN: not qc-opt %s --weights %t.safetensors --stats %t.measured.npz --qc-select-precision='budget-mb=0.01 candidates=f32,w8a16,w4a16-g32 kv-cache=float32=40000,float16=20000,int8=10000' 2>&1 | FileCheck %s --check-prefix=INFEASIBLE
// RUN: not qc-opt %s --weights %t.safetensors --stats %t.measured.npz --qc-select-precision='budget-bits=6 kv-cache=float32=40000,int8=10000' 2>&1 | FileCheck %s --check-prefix=BITS
// RUN: not qc-opt %s --weights %t.safetensors --stats %t.npz --qc-select-precision='budget-mb=0.03 candidates=f32,w8a16 kv-cache=float32=40000,int8=10000' 2>&1 | FileCheck %s --check-prefix=PROXY
// RUN: not qc-opt %s --weights %t.safetensors --stats %t.measured.npz --qc-select-precision='budget-mb=0.03 kv-cache=float32=40000,int4=5000' 2>&1 | FileCheck %s --check-prefix=TYPE

// A decoder's KV cache is one more layer of the ILP (its bytes per type given by the driver, its
// measured sensitivities in the statistics: float16 1e-3, int8 1e-2), counted by budget-mb with the
// weights; the choice is the module's qc.kv_cache.

// In 30,000 bytes a half cache (20,000) leaves room for both linears at int8, which costs less error
// than an int8 cache with f32 and int4 linears.
// HALF: module attributes {qc.kv_cache = "float16"}
// HALF: "qc.linear"(%{{.*}}) {{.*}}#qc.scheme<"w8a16", "sym">
// HALF: "qc.linear"(%{{.*}}) {{.*}}#qc.scheme<"w8a16", "sym">

// 17,000 bytes: everything at its smallest, the cache int8.
// INT8: module attributes {qc.kv_cache = "int8"}
// INT8: "qc.linear"(%{{.*}}) {{.*}}#qc.scheme<"w4a16-g32", "sym">
// INT8: "qc.linear"(%{{.*}}) {{.*}}#qc.scheme<"w4a16-g32", "sym">

// With room for everything, nothing is lost: an f32 cache and f32 layers.
// ROOM: module attributes {qc.kv_cache = "float32"}
// ROOM: "qc.linear"(%{{.*}}) {{.*}}#qc.scheme<"f32", "sym">

// INFEASIBLE: error: qc-select-precision: the memory budget cannot be met: the smallest feasible is budget-mb=0.0164, every layer and the KV cache at its smallest candidate
// BITS: error: qc-select-precision: kv-cache: the cache is memory, not weights; give budget-mb (weights and cache), not budget-bits
// PROXY: error: qc-select-precision: kv-cache: the cache types' errors are measured; the layers' must be too (sensitivity=measured), a proxy is in other units
// TYPE: error: {{.*}}kv-cache takes TYPE=BYTES pairs (float32, float16, int8), got 'int4=5000'

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
