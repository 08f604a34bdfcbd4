// RUN: qc-opt %s --pass-pipeline='builtin.module(qc-gpu-attention)' | FileCheck %s

// A call of qc-fuse-cached-attention{gpu}'s declaration (4 KV heads, 2 queries each, head 64, a 32-entry
// f32 cache, 1 new token) becomes a launch of a block per (head, query), 32 x 8 threads, with two workgroup
// buffers (the warps' maxima and sums; 4 x 64 partial sums of the values). Positions run to clamp(pos, 0,
// 32) only, 256 apart from the thread's id; the scores are scaled by the call's qc.scale; the block's max
// and sum go through xor shuffles and a barrier; the first 64 threads divide the summed values by the sum.
// CHECK-LABEL: func.func @step
// CHECK-NOT: func.call
// CHECK: gpu.launch blocks(%[[H:[^,]*]], %[[R:[^,]*]], %{{[^)]*}}) in (%{{[^=]*}} = %c4{{[_0-9]*}}, %{{[^=]*}} = %c2{{[_0-9]*}}, %{{[^=]*}} = %c1{{[_0-9]*}})
// CHECK-SAME: threads(%[[LANE:[^,]*]], %[[WARP:[^,]*]], %{{[^)]*}}) in (%{{[^=]*}} = %c32{{[_0-9]*}}, %{{[^=]*}} = %c8{{[_0-9]*}}, %{{[^=]*}} = %c1{{[_0-9]*}})
// CHECK-SAME: workgroup(%[[RED:[^ ]*]] : memref<16xf32, #gpu.address_space<workgroup>>, %[[PART:[^ ]*]] : memref<4x64xf32, #gpu.address_space<workgroup>>)
// CHECK: %[[POS:.*]] = memref.load %arg5[%c0{{.*}}] : memref<1xi64
// CHECK: arith.maxsi %[[POS]]
// CHECK: %[[L:.*]] = arith.index_cast
// CHECK: scf.for %[[J:.*]] = %[[T:[^ ]*]] to %[[L]] step %c256
// CHECK: scf.for
// CHECK: memref.load %arg1[%[[H]], %{{.*}}, %[[J]]]
// CHECK: math.fma
// CHECK: arith.mulf %{{.*}}, %cst{{.*}} : f32
// CHECK: memref.store %{{.*}}, %arg7[%[[H]], %[[R]], %[[J]]]
// CHECK: arith.maximumf
// CHECK-COUNT-5: gpu.shuffle xor
// CHECK: gpu.barrier
// CHECK: scf.for %{{.*}} = %[[T]] to %[[L]] step %c256
// CHECK: math.exp
// CHECK-COUNT-5: gpu.shuffle xor
// CHECK: gpu.barrier
// CHECK: scf.for %{{.*}} = %{{.*}} to %[[L]] step %c4
// CHECK: memref.load %arg2[%[[H]], %{{.*}}, %{{.*}}]
// CHECK: memref.store %{{.*}}, %[[PART]]
// CHECK: gpu.barrier
// CHECK: arith.cmpi ult, %[[T]], %c64
// CHECK: arith.divf
// CHECK: memref.store %{{.*}}, %arg6[%[[H]], %[[R]], %{{.*}}]
// CHECK: gpu.terminator
// CHECK-NOT: qc_gpu_attn_0
func.func private @qc_gpu_attn_0(memref<4x2x64xf32>, memref<4x64x32xf32>, memref<4x32x64xf32>, memref<4x2x1xf32>,
                                 memref<4x1x64xf32>, memref<1xi64>, memref<4x2x64xf32>, memref<4x2x32xf32>)
    attributes {qc.gpu_attention}
func.func @step(%q: memref<4x2x64xf32>, %k: memref<4x64x32xf32>, %v: memref<4x32x64xf32>, %new: memref<4x2x1xf32>,
                %vn: memref<4x1x64xf32>, %pos: memref<1xi64>, %out: memref<4x2x64xf32>, %s: memref<4x2x32xf32>) {
  func.call @qc_gpu_attn_0(%q, %k, %v, %new, %vn, %pos, %out, %s) {qc.scale = 0.125 : f32}
      : (memref<4x2x64xf32>, memref<4x64x32xf32>, memref<4x32x64xf32>, memref<4x2x1xf32>, memref<4x1x64xf32>,
         memref<1xi64>, memref<4x2x64xf32>, memref<4x2x32xf32>) -> ()
  return
}
