// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-strided-copies)' | FileCheck %s
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-strided-copies{contiguous=true})' | FileCheck %s --check-prefix=GPU

// A copy into the interior of a padded buffer (strided destination) becomes an elementwise
// generic: loops that vectorize along the contiguous channels and that qc-parallelize can split.
// CHECK-LABEL: func.func @into_padding
// CHECK-NOT: memref.copy
// CHECK: linalg.generic {{.*}} iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%arg0 : memref<1x4x4x8xf32>) outs(%{{.*}} : memref<1x4x4x8xf32, strided<[288, 48, 8, 1], offset: 56>>)
// CHECK-NEXT: ^bb0(%[[IN:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: linalg.yield %[[IN]] : f32
func.func @into_padding(%x: memref<1x4x4x8xf32>, %padded: memref<1x6x6x8xf32>) {
  %interior = memref.subview %padded[0, 1, 1, 0] [1, 4, 4, 8] [1, 1, 1, 1]
      : memref<1x6x6x8xf32> to memref<1x4x4x8xf32, strided<[288, 48, 8, 1], offset: 56>>
  memref.copy %x, %interior : memref<1x4x4x8xf32> to memref<1x4x4x8xf32, strided<[288, 48, 8, 1], offset: 56>>
  return
}

// -----

// Contiguous copies stay: they lower to one memcpy.
// CHECK-LABEL: func.func @contiguous
// A GPU model's copies run as kernels: contiguous ones become generics too.
// GPU-LABEL: func.func @contiguous
// GPU-NOT: memref.copy
// GPU: linalg.generic
// CHECK: memref.copy %arg0, %arg1
func.func @contiguous(%a: memref<4x8xf32>, %b: memref<4x8xf32>) {
  memref.copy %a, %b : memref<4x8xf32> to memref<4x8xf32>
  return
}
