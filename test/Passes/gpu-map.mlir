// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(func.func(convert-linalg-to-parallel-loops), qc-gpu-map{block-size=128})' | FileCheck %s
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(func.func(convert-linalg-to-parallel-loops), qc-gpu-map{block-size=128}, func.func(gpu-launch-sink-index-computations), gpu-kernel-outlining)' | FileCheck %s --check-prefix=OUTLINED

// A matrix-vector product's loops (64 x 96, the 96 reduced): the one parallel dim becomes a launch of
// one block of 64 threads (fewer than block-size), each thread guarded by id < 64 and running the
// reduction loop itself.
// CHECK-LABEL: func.func @gemv
// CHECK: gpu.launch blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}, %{{.*}} = %c1{{.*}}) threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in (%{{.*}} = %c64{{.*}},
// CHECK: %[[B:.*]] = arith.muli %[[BX]], %{{.*}} : index
// CHECK: %[[ID:.*]] = arith.addi %[[B]], %[[TX]] : index
// CHECK: %[[IN:.*]] = arith.cmpi ult, %[[ID]], %{{.*}} : index
// CHECK: scf.if %[[IN]]
// CHECK: scf.for
// CHECK: memref.load %arg0[%[[ID]], %{{.*}}] : memref<64x96xf32>
// CHECK: gpu.terminator
// CHECK-NOT: scf.parallel
// OUTLINED-LABEL: func.func @gemv
// OUTLINED: gpu.launch_func  @gemv_kernel::@gemv_kernel blocks in (%{{.*}}, %{{.*}}, %{{.*}}) threads in (%{{.*}}, %{{.*}}, %{{.*}})  args(%arg0 : memref<64x96xf32>, %arg1 : memref<96xf32>, %arg2 : memref<64xf32>)
// OUTLINED: gpu.module @gemv_kernel
// OUTLINED: gpu.func @gemv_kernel({{.*}}) kernel
func.func @gemv(%a: memref<64x96xf32>, %b: memref<96xf32>, %c: memref<64xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>, affine_map<(i, j) -> (i)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%a, %b : memref<64x96xf32>, memref<96xf32>) outs(%c : memref<64xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %m = arith.mulf %x, %y : f32
    %s = arith.addf %o, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A 3-D elementwise op over 2 x 5 x 40 = 400 iterations: 4 blocks of 128 threads (the last partly
// idle), and each thread's id split back into the three indices (mod 40, then mod 5 of id / 40, then
// id / 200).
// CHECK-LABEL: func.func @elementwise
// CHECK: gpu.launch blocks({{.*}}) in (%{{.*}} = %c4{{.*}}, {{.*}}) threads({{.*}}) in (%{{.*}} = %c128{{.*}},
// CHECK: arith.cmpi ult, %{{.*}}, %c400
// CHECK: %[[W:.*]] = arith.remui %[[ID:.*]], %c40
// CHECK: %[[R:.*]] = arith.divui %[[ID]], %c40
// CHECK: %[[H:.*]] = arith.remui %[[R]], %c5
// CHECK: %[[N:.*]] = arith.divui %[[R]], %c5
// CHECK: memref.load %arg0[%[[N]], %[[H]], %[[W]]] : memref<2x5x40xf32>
// CHECK: math.tanh
func.func @elementwise(%a: memref<2x5x40xf32>, %b: memref<2x5x40xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, j, k)>, affine_map<(i, j, k) -> (i, j, k)>],
                  iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%a : memref<2x5x40xf32>) outs(%b : memref<2x5x40xf32>) {
  ^bb0(%x: f32, %o: f32):
    %t = math.tanh %x : f32
    linalg.yield %t : f32
  }
  return
}
