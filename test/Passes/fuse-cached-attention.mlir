// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-fuse-cached-attention)' -mlir-print-local-scope | FileCheck %s
// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-fuse-cached-attention{gpu=true})' -mlir-print-local-scope | FileCheck %s --check-prefix=GPU

// A decode step's attention in two layers over an f32 cache (2 KV heads, head 8, capacity 32; 2 queries per KV
// head, 1 new token), as torch-mlir lowers models/llama2c's step: each layer becomes a call of one shared kernel
// (tasks: the KV heads) on the operands' buffers, with the result and a scratch of scores allocated; no
// product, concatenation or softmax is left.
// CHECK-LABEL: func.func @decode(
// CHECK-NOT: linalg.batch_matmul
// CHECK-NOT: tensor.concat
// CHECK: %[[Q:.*]] = bufferization.to_buffer %arg0 read_only : tensor<2x2x8xf32> to memref<2x2x8xf32, strided<[?, ?, 1], offset: ?>>
// CHECK: %[[POS:.*]] = bufferization.to_buffer %arg1 read_only
// CHECK: %[[OUT:.*]] = memref.alloc() : memref<2x2x8xf32>
// CHECK: %[[SCRATCH:.*]] = memref.alloc() : memref<2x2x32xf32>
// CHECK: call @qc_attn_0_par(%[[Q]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[POS]], %[[OUT]], %[[SCRATCH]])
// CHECK: %[[O1:.*]] = bufferization.to_tensor %[[OUT]] restrict
// CHECK: bufferization.to_buffer %[[O1]] read_only
// CHECK: call @qc_attn_0_par(
// CHECK-NOT: linalg.batch_matmul
// CHECK: return
// The kernel reads the cache only below valid = clamp(pos, 0, 32): the keys in vectors along the context (full
// ones, then the rest under a lane mask), each key row prefetched into the L2 ahead (its first blocks before the
// loop), then the values row by row.
// For a GPU target (gpu=true) the calls are of a declaration that qc-gpu-attention makes a kernel after
// bufferization, the scores' scale on the call:
// GPU-LABEL: func.func @decode(
// GPU: call @qc_gpu_attn_0(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) {qc.scale = 0.353553{{[0-9]*}} : f32}
// GPU: call @qc_gpu_attn_0(
// GPU-NOT: linalg.batch_matmul
// GPU: func.func private @qc_gpu_attn_0({{.*}}) attributes {qc.gpu_attention}
// GPU-NOT: qc_attn_0_par
// CHECK-LABEL: func.func @qc_attn_0(
// CHECK: %[[P:.*]] = memref.load %arg5[%c0]
// CHECK: %[[LO:.*]] = arith.maxsi %[[P]], %c0_i64
// CHECK: %[[HI:.*]] = arith.minsi %[[LO]], %c32_i64
// CHECK: %[[VALID:.*]] = arith.index_cast %[[HI]] : i64 to index
// CHECK: %[[REM:.*]] = arith.remui %[[VALID]], %c16
// CHECK: %[[FULL:.*]] = arith.subi %[[VALID]], %[[REM]]
// CHECK: %[[TAIL:.*]] = vector.create_mask %[[REM]] : vector<16xi1>
// CHECK: scf.for %[[H:.*]] = %arg8 to %arg9 step %c1
// CHECK: scf.for %[[D0:.*]] = %c0 to %c8 step %c1
// CHECK: memref.prefetch %arg1[%[[H]], %[[D0]], %c0], read, locality<2>
// CHECK: memref.prefetch %arg1[%[[H]], %[[D0]], %c48], read, locality<2>
// CHECK: scf.for %[[J:.*]] = %c0 to %[[FULL]] step %c16
// CHECK: scf.for %[[D:.*]] = %c0 to %c8 step %c1
// CHECK: %[[AHEAD:.*]] = arith.addi %[[J]], %c64
// CHECK: memref.prefetch %arg1[%[[H]], %[[D]], %[[AHEAD]]], read, locality<2>
// CHECK: vector.load %arg1[%[[H]], %[[D]], %[[J]]] : {{.*}}, vector<16xf32>
// CHECK: vector.fma
// CHECK: arith.mulf %{{.*}}, %cst : vector<16xf32>
// CHECK: arith.maximumf
// CHECK: vector.maskedload %arg1[%[[H]], %{{.*}}, %[[FULL]]], %[[TAIL]]
// CHECK: vector.reduction <maximumf>
// CHECK: math.exp %{{.*}} : vector<16xf32>
// CHECK: vector.reduction <add>
// CHECK: scf.for %[[JV:.*]] = %c0 to %[[VALID]] step %c1
// CHECK: vector.maskedload %arg2[%[[H]], %[[JV]], %c0]
// CHECK: arith.divf %{{.*}} : vector<16xf32>
// CHECK: vector.maskedstore %arg6[%[[H]], %c0, %c0]
// CHECK: func.func private @qc_attn_0_par({{.*}}) attributes {llvm.emit_c_interface, qc.kernel = "qc_attn_0", qc.tasks = 2 : i64}
// CHECK-NOT: @qc_attn_1

func.func @decode(%q: tensor<2x2x8xf32>, %pos: tensor<1xi64>, %kc: tensor<2x2x8x32xf32>, %vc: tensor<2x2x32x8xf32>, %new: tensor<2x2x1xf32>, %vn: tensor<2x1x8xf32>) -> tensor<2x2x8xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %ninf_t = arith.constant dense<0xFF800000> : tensor<f32>
  %scale = arith.constant 0.35355339059327373 : f64
  %c0_i64 = arith.constant 0 : i64
  %e_c = tensor.empty() : tensor<32xi64>
  %iota = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} outs(%e_c : tensor<32xi64>) {
  ^bb0(%out: i64):
    %i = linalg.index 0 : index
    %ii = arith.index_cast %i : index to i64
    linalg.yield %ii : i64
  } -> tensor<32xi64>
  %e_m = tensor.empty() : tensor<32xi1>
  %mask0 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%iota, %pos : tensor<32xi64>, tensor<1xi64>) outs(%e_m : tensor<32xi1>) {
  ^bb0(%a: i64, %b: i64, %out: i1):
    %lt = arith.cmpi slt, %a, %b : i64
    linalg.yield %lt : i1
  } -> tensor<32xi1>
  %mask = tensor.expand_shape %mask0 [[0, 1, 2]] output_shape [1, 1, 32] : tensor<32xi1> into tensor<1x1x32xi1>
  %e_s = tensor.empty() : tensor<2x2x32xf32>
  %z_s = linalg.fill ins(%zero : f32) outs(%e_s : tensor<2x2x32xf32>) -> tensor<2x2x32xf32>
  %e_o = tensor.empty() : tensor<2x2x8xf32>
  %z_o = linalg.fill ins(%zero : f32) outs(%e_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %e_r = tensor.empty() : tensor<2x2xf32>
  %ninf_r = linalg.fill ins(%ninf : f32) outs(%e_r : tensor<2x2xf32>) -> tensor<2x2xf32>
  %e_1 = tensor.empty() : tensor<2x2x1xf32>
  %z_1 = linalg.fill ins(%zero : f32) outs(%e_1 : tensor<2x2x1xf32>) -> tensor<2x2x1xf32>
  %e_x = tensor.empty() : tensor<2x2x33xf32>
  %l0_ks = tensor.extract_slice %kc[0, 0, 0, 0] [1, 2, 8, 32] [1, 1, 1, 1] : tensor<2x2x8x32xf32> to tensor<2x8x32xf32>
  %l0_vs = tensor.extract_slice %vc[0, 0, 0, 0] [1, 2, 32, 8] [1, 1, 1, 1] : tensor<2x2x32x8xf32> to tensor<2x32x8xf32>
  %l0_s = linalg.batch_matmul ins(%q, %l0_ks : tensor<2x2x8xf32>, tensor<2x8x32xf32>) outs(%z_s : tensor<2x2x32xf32>) -> tensor<2x2x32xf32>
  %l0_ss = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_s : tensor<2x2x32xf32>) outs(%e_s : tensor<2x2x32xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sc = arith.truncf %scale : f64 to f32
    %m = arith.mulf %in, %sc : f32
    linalg.yield %m : f32
  } -> tensor<2x2x32xf32>
  %l0_old = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (0, 0, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> ()>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%mask, %l0_ss, %ninf_t : tensor<1x1x32xi1>, tensor<2x2x32xf32>, tensor<f32>) outs(%e_s : tensor<2x2x32xf32>) {
  ^bb0(%mk: i1, %x: f32, %f: f32, %out: f32):
    %y = arith.select %mk, %x, %f : f32
    linalg.yield %y : f32
  } -> tensor<2x2x32xf32>
  %l0_all = tensor.concat dim(2) %l0_old, %new : (tensor<2x2x32xf32>, tensor<2x2x1xf32>) -> tensor<2x2x33xf32>
  %l0_top = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l0_all : tensor<2x2x33xf32>) outs(%ninf_r : tensor<2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x2xf32>
  %l0_top3 = tensor.expand_shape %l0_top [[0], [1, 2]] output_shape [2, 2, 1] : tensor<2x2xf32> into tensor<2x2x1xf32>
  %l0_sub = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_all, %l0_top3 : tensor<2x2x33xf32>, tensor<2x2x1xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %mx: f32, %out: f32):
    %m = arith.subf %in, %mx : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_exp = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_sub : tensor<2x2x33xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = math.exp %in : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_sum = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l0_exp : tensor<2x2x33xf32>) outs(%z_1 : tensor<2x2x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.addf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x2x1xf32>
  %l0_p = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_exp, %l0_sum : tensor<2x2x33xf32>, tensor<2x2x1xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %z: f32, %out: f32):
    %m = arith.divf %in, %z : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_pold = tensor.extract_slice %l0_p[0, 0, 0] [2, 2, 32] [1, 1, 1] : tensor<2x2x33xf32> to tensor<2x2x32xf32>
  %l0_pnew = tensor.extract_slice %l0_p[0, 0, 32] [2, 2, 1] [1, 1, 1] : tensor<2x2x33xf32> to tensor<2x2x1xf32>
  %l0_oold = linalg.batch_matmul ins(%l0_pold, %l0_vs : tensor<2x2x32xf32>, tensor<2x32x8xf32>) outs(%z_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %l0_onew = linalg.batch_matmul ins(%l0_pnew, %vn : tensor<2x2x1xf32>, tensor<2x1x8xf32>) outs(%z_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %l0_o = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_oold, %l0_onew : tensor<2x2x8xf32>, tensor<2x2x8xf32>) outs(%e_o : tensor<2x2x8xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %m = arith.addf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<2x2x8xf32>
  %l1_ks = tensor.extract_slice %kc[1, 0, 0, 0] [1, 2, 8, 32] [1, 1, 1, 1] : tensor<2x2x8x32xf32> to tensor<2x8x32xf32>
  %l1_vs = tensor.extract_slice %vc[1, 0, 0, 0] [1, 2, 32, 8] [1, 1, 1, 1] : tensor<2x2x32x8xf32> to tensor<2x32x8xf32>
  %l1_s = linalg.batch_matmul ins(%l0_o, %l1_ks : tensor<2x2x8xf32>, tensor<2x8x32xf32>) outs(%z_s : tensor<2x2x32xf32>) -> tensor<2x2x32xf32>
  %l1_ss = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l1_s : tensor<2x2x32xf32>) outs(%e_s : tensor<2x2x32xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sc = arith.truncf %scale : f64 to f32
    %m = arith.mulf %in, %sc : f32
    linalg.yield %m : f32
  } -> tensor<2x2x32xf32>
  %l1_old = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (0, 0, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> ()>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%mask, %l1_ss, %ninf_t : tensor<1x1x32xi1>, tensor<2x2x32xf32>, tensor<f32>) outs(%e_s : tensor<2x2x32xf32>) {
  ^bb0(%mk: i1, %x: f32, %f: f32, %out: f32):
    %y = arith.select %mk, %x, %f : f32
    linalg.yield %y : f32
  } -> tensor<2x2x32xf32>
  %l1_all = tensor.concat dim(2) %l1_old, %new : (tensor<2x2x32xf32>, tensor<2x2x1xf32>) -> tensor<2x2x33xf32>
  %l1_top = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l1_all : tensor<2x2x33xf32>) outs(%ninf_r : tensor<2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x2xf32>
  %l1_top3 = tensor.expand_shape %l1_top [[0], [1, 2]] output_shape [2, 2, 1] : tensor<2x2xf32> into tensor<2x2x1xf32>
  %l1_sub = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l1_all, %l1_top3 : tensor<2x2x33xf32>, tensor<2x2x1xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %mx: f32, %out: f32):
    %m = arith.subf %in, %mx : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l1_exp = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l1_sub : tensor<2x2x33xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = math.exp %in : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l1_sum = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l1_exp : tensor<2x2x33xf32>) outs(%z_1 : tensor<2x2x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.addf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x2x1xf32>
  %l1_p = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l1_exp, %l1_sum : tensor<2x2x33xf32>, tensor<2x2x1xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %z: f32, %out: f32):
    %m = arith.divf %in, %z : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l1_pold = tensor.extract_slice %l1_p[0, 0, 0] [2, 2, 32] [1, 1, 1] : tensor<2x2x33xf32> to tensor<2x2x32xf32>
  %l1_pnew = tensor.extract_slice %l1_p[0, 0, 32] [2, 2, 1] [1, 1, 1] : tensor<2x2x33xf32> to tensor<2x2x1xf32>
  %l1_oold = linalg.batch_matmul ins(%l1_pold, %l1_vs : tensor<2x2x32xf32>, tensor<2x32x8xf32>) outs(%z_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %l1_onew = linalg.batch_matmul ins(%l1_pnew, %vn : tensor<2x2x1xf32>, tensor<2x1x8xf32>) outs(%z_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %l1_o = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l1_oold, %l1_onew : tensor<2x2x8xf32>, tensor<2x2x8xf32>) outs(%e_o : tensor<2x2x8xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %m = arith.addf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<2x2x8xf32>
  return %l1_o : tensor<2x2x8xf32>
}

// -----

// An f16 cache: the kernel takes the cache's halves and widens them as it loads them.
// CHECK-LABEL: func.func @decode_f16(
// CHECK: call @qc_attn_0_par(%{{.*}}, %{{.*}}, %{{.*}}, {{.*}}) : (memref<2x2x8xf32, strided<[?, ?, 1], offset: ?>>, memref<2x8x32xf16, strided<[?, ?, 1], offset: ?>>, memref<2x32x8xf16, strided<[?, ?, 1], offset: ?>>
// CHECK-LABEL: func.func @qc_attn_0(
// CHECK: %[[K:.*]] = vector.load %arg1[{{.*}}] : memref<2x8x32xf16, {{.*}}>, vector<16xf16>
// CHECK: arith.extf %[[K]] : vector<16xf16> to vector<16xf32>
// CHECK: %[[V:.*]] = vector.maskedload %arg2[{{.*}}], {{.*}} : memref<2x32x8xf16, {{.*}}>, vector<16xi1>, vector<16xf16> into vector<16xf16>
// CHECK: arith.extf %[[V]] : vector<16xf16> to vector<16xf32>
func.func @decode_f16(%q: tensor<2x2x8xf32>, %pos: tensor<1xi64>, %kc: tensor<1x2x8x32xf16>, %vc: tensor<1x2x32x8xf16>, %new: tensor<2x2x1xf32>, %vn: tensor<2x1x8xf32>) -> tensor<2x2x8xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %ninf_t = arith.constant dense<0xFF800000> : tensor<f32>
  %scale = arith.constant 0.35355339059327373 : f64
  %c0_i64 = arith.constant 0 : i64
  %e_c = tensor.empty() : tensor<32xi64>
  %iota = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} outs(%e_c : tensor<32xi64>) {
  ^bb0(%out: i64):
    %i = linalg.index 0 : index
    %ii = arith.index_cast %i : index to i64
    linalg.yield %ii : i64
  } -> tensor<32xi64>
  %e_m = tensor.empty() : tensor<32xi1>
  %mask0 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%iota, %pos : tensor<32xi64>, tensor<1xi64>) outs(%e_m : tensor<32xi1>) {
  ^bb0(%a: i64, %b: i64, %out: i1):
    %lt = arith.cmpi slt, %a, %b : i64
    linalg.yield %lt : i1
  } -> tensor<32xi1>
  %mask = tensor.expand_shape %mask0 [[0, 1, 2]] output_shape [1, 1, 32] : tensor<32xi1> into tensor<1x1x32xi1>
  %e_s = tensor.empty() : tensor<2x2x32xf32>
  %z_s = linalg.fill ins(%zero : f32) outs(%e_s : tensor<2x2x32xf32>) -> tensor<2x2x32xf32>
  %e_o = tensor.empty() : tensor<2x2x8xf32>
  %z_o = linalg.fill ins(%zero : f32) outs(%e_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %e_r = tensor.empty() : tensor<2x2xf32>
  %ninf_r = linalg.fill ins(%ninf : f32) outs(%e_r : tensor<2x2xf32>) -> tensor<2x2xf32>
  %e_1 = tensor.empty() : tensor<2x2x1xf32>
  %z_1 = linalg.fill ins(%zero : f32) outs(%e_1 : tensor<2x2x1xf32>) -> tensor<2x2x1xf32>
  %e_x = tensor.empty() : tensor<2x2x33xf32>
  %l0_ks = tensor.extract_slice %kc[0, 0, 0, 0] [1, 2, 8, 32] [1, 1, 1, 1] : tensor<1x2x8x32xf16> to tensor<2x8x32xf16>
  %l0_vs = tensor.extract_slice %vc[0, 0, 0, 0] [1, 2, 32, 8] [1, 1, 1, 1] : tensor<1x2x32x8xf16> to tensor<2x32x8xf16>
  %l0_ks_e = tensor.empty() : tensor<2x8x32xf32>
  %l0_ks_w = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_ks : tensor<2x8x32xf16>) outs(%l0_ks_e : tensor<2x8x32xf32>) {
  ^bb0(%in: f16, %out: f32):
    %w = arith.extf %in : f16 to f32
    linalg.yield %w : f32
  } -> tensor<2x8x32xf32>
  %l0_vs_e = tensor.empty() : tensor<2x32x8xf32>
  %l0_vs_w = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_vs : tensor<2x32x8xf16>) outs(%l0_vs_e : tensor<2x32x8xf32>) {
  ^bb0(%in: f16, %out: f32):
    %w = arith.extf %in : f16 to f32
    linalg.yield %w : f32
  } -> tensor<2x32x8xf32>
  %l0_s = linalg.batch_matmul ins(%q, %l0_ks_w : tensor<2x2x8xf32>, tensor<2x8x32xf32>) outs(%z_s : tensor<2x2x32xf32>) -> tensor<2x2x32xf32>
  %l0_ss = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_s : tensor<2x2x32xf32>) outs(%e_s : tensor<2x2x32xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sc = arith.truncf %scale : f64 to f32
    %m = arith.mulf %in, %sc : f32
    linalg.yield %m : f32
  } -> tensor<2x2x32xf32>
  %l0_old = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (0, 0, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> ()>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%mask, %l0_ss, %ninf_t : tensor<1x1x32xi1>, tensor<2x2x32xf32>, tensor<f32>) outs(%e_s : tensor<2x2x32xf32>) {
  ^bb0(%mk: i1, %x: f32, %f: f32, %out: f32):
    %y = arith.select %mk, %x, %f : f32
    linalg.yield %y : f32
  } -> tensor<2x2x32xf32>
  %l0_all = tensor.concat dim(2) %l0_old, %new : (tensor<2x2x32xf32>, tensor<2x2x1xf32>) -> tensor<2x2x33xf32>
  %l0_top = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l0_all : tensor<2x2x33xf32>) outs(%ninf_r : tensor<2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x2xf32>
  %l0_top3 = tensor.expand_shape %l0_top [[0], [1, 2]] output_shape [2, 2, 1] : tensor<2x2xf32> into tensor<2x2x1xf32>
  %l0_sub = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_all, %l0_top3 : tensor<2x2x33xf32>, tensor<2x2x1xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %mx: f32, %out: f32):
    %m = arith.subf %in, %mx : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_exp = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_sub : tensor<2x2x33xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = math.exp %in : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_sum = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l0_exp : tensor<2x2x33xf32>) outs(%z_1 : tensor<2x2x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.addf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x2x1xf32>
  %l0_p = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_exp, %l0_sum : tensor<2x2x33xf32>, tensor<2x2x1xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %z: f32, %out: f32):
    %m = arith.divf %in, %z : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_pold = tensor.extract_slice %l0_p[0, 0, 0] [2, 2, 32] [1, 1, 1] : tensor<2x2x33xf32> to tensor<2x2x32xf32>
  %l0_pnew = tensor.extract_slice %l0_p[0, 0, 32] [2, 2, 1] [1, 1, 1] : tensor<2x2x33xf32> to tensor<2x2x1xf32>
  %l0_oold = linalg.batch_matmul ins(%l0_pold, %l0_vs_w : tensor<2x2x32xf32>, tensor<2x32x8xf32>) outs(%z_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %l0_onew = linalg.batch_matmul ins(%l0_pnew, %vn : tensor<2x2x1xf32>, tensor<2x1x8xf32>) outs(%z_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %l0_o = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_oold, %l0_onew : tensor<2x2x8xf32>, tensor<2x2x8xf32>) outs(%e_o : tensor<2x2x8xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %m = arith.addf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<2x2x8xf32>
  return %l0_o : tensor<2x2x8xf32>
}

// -----

// An int8 cache: codes, with a scale per position for the keys' scores and the values' weights (and for this
// step's values); the kernel takes the codes and the scales and applies them as it reads.
// CHECK-LABEL: func.func @decode_i8(
// CHECK-NOT: linalg.batch_matmul
// CHECK: call @qc_attn_0_par(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[KS:.*]], %[[VS:.*]], %[[VNS:.*]], %{{.*}}, %{{.*}}) : (memref<2x2x8xf32, strided<[?, ?, 1], offset: ?>>, memref<2x8x32xi8, strided<[?, ?, 1], offset: ?>>, memref<2x32x8xi8, strided<[?, ?, 1], offset: ?>>
// CHECK-LABEL: func.func @qc_attn_0(
// CHECK: %[[K:.*]] = vector.load %arg1[{{.*}}] : memref<2x8x32xi8, {{.*}}>, vector<16xi8>
// CHECK: arith.sitofp %[[K]] : vector<16xi8> to vector<16xf32>
// CHECK: %[[KSV:.*]] = vector.load %arg6[%{{.*}}, %c0, %{{.*}}] : memref<2x1x32xf32, {{.*}}>, vector<16xf32>
// CHECK: %[[S:.*]] = arith.mulf %{{.*}}, %cst{{.*}} : vector<16xf32>
// CHECK: arith.mulf %[[S]], %[[KSV]] : vector<16xf32>
// CHECK: %[[VSJ:.*]] = memref.load %arg7[%{{.*}}, %c0, %{{.*}}] : memref<2x1x32xf32
// CHECK: arith.mulf %{{.*}}, %[[VSJ]] : f32
// CHECK: arith.sitofp %{{.*}} : vector<16xi8> to vector<16xf32>
// CHECK: memref.load %arg8[%{{.*}}, %c0, %{{.*}}] : memref<2x1x1xf32
func.func @decode_i8(%q: tensor<2x2x8xf32>, %pos: tensor<1xi64>, %kc: tensor<1x2x8x32xi8>, %vc: tensor<1x2x32x8xi8>, %new: tensor<2x2x1xf32>, %vn: tensor<2x1x8xf32>, %ks: tensor<2x1x32xf32>, %vs: tensor<2x1x32xf32>, %vns: tensor<2x1x1xf32>) -> tensor<2x2x8xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %ninf_t = arith.constant dense<0xFF800000> : tensor<f32>
  %scale = arith.constant 0.35355339059327373 : f64
  %c0_i64 = arith.constant 0 : i64
  %e_c = tensor.empty() : tensor<32xi64>
  %iota = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} outs(%e_c : tensor<32xi64>) {
  ^bb0(%out: i64):
    %i = linalg.index 0 : index
    %ii = arith.index_cast %i : index to i64
    linalg.yield %ii : i64
  } -> tensor<32xi64>
  %e_m = tensor.empty() : tensor<32xi1>
  %mask0 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%iota, %pos : tensor<32xi64>, tensor<1xi64>) outs(%e_m : tensor<32xi1>) {
  ^bb0(%a: i64, %b: i64, %out: i1):
    %lt = arith.cmpi slt, %a, %b : i64
    linalg.yield %lt : i1
  } -> tensor<32xi1>
  %mask = tensor.expand_shape %mask0 [[0, 1, 2]] output_shape [1, 1, 32] : tensor<32xi1> into tensor<1x1x32xi1>
  %e_s = tensor.empty() : tensor<2x2x32xf32>
  %z_s = linalg.fill ins(%zero : f32) outs(%e_s : tensor<2x2x32xf32>) -> tensor<2x2x32xf32>
  %e_o = tensor.empty() : tensor<2x2x8xf32>
  %z_o = linalg.fill ins(%zero : f32) outs(%e_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %e_r = tensor.empty() : tensor<2x2xf32>
  %ninf_r = linalg.fill ins(%ninf : f32) outs(%e_r : tensor<2x2xf32>) -> tensor<2x2xf32>
  %e_1 = tensor.empty() : tensor<2x2x1xf32>
  %z_1 = linalg.fill ins(%zero : f32) outs(%e_1 : tensor<2x2x1xf32>) -> tensor<2x2x1xf32>
  %e_x = tensor.empty() : tensor<2x2x33xf32>
  %l0_ks = tensor.extract_slice %kc[0, 0, 0, 0] [1, 2, 8, 32] [1, 1, 1, 1] : tensor<1x2x8x32xi8> to tensor<2x8x32xi8>
  %l0_vs = tensor.extract_slice %vc[0, 0, 0, 0] [1, 2, 32, 8] [1, 1, 1, 1] : tensor<1x2x32x8xi8> to tensor<2x32x8xi8>
  %l0_ks_e = tensor.empty() : tensor<2x8x32xf32>
  %l0_ks_w = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_ks : tensor<2x8x32xi8>) outs(%l0_ks_e : tensor<2x8x32xf32>) {
  ^bb0(%in: i8, %out: f32):
    %w = arith.sitofp %in : i8 to f32
    linalg.yield %w : f32
  } -> tensor<2x8x32xf32>
  %l0_vs_e = tensor.empty() : tensor<2x32x8xf32>
  %l0_vs_w = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_vs : tensor<2x32x8xi8>) outs(%l0_vs_e : tensor<2x32x8xf32>) {
  ^bb0(%in: i8, %out: f32):
    %w = arith.sitofp %in : i8 to f32
    linalg.yield %w : f32
  } -> tensor<2x32x8xf32>
  %l0_s = linalg.batch_matmul ins(%q, %l0_ks_w : tensor<2x2x8xf32>, tensor<2x8x32xf32>) outs(%z_s : tensor<2x2x32xf32>) -> tensor<2x2x32xf32>
  %l0_ss = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_s : tensor<2x2x32xf32>) outs(%e_s : tensor<2x2x32xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sc = arith.truncf %scale : f64 to f32
    %m = arith.mulf %in, %sc : f32
    linalg.yield %m : f32
  } -> tensor<2x2x32xf32>
  %e_s_32 = tensor.empty() : tensor<2x2x32xf32>
  %l0_ssk = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, 0, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_ss, %ks : tensor<2x2x32xf32>, tensor<2x1x32xf32>) outs(%e_s_32 : tensor<2x2x32xf32>) {
  ^bb0(%x: f32, %y: f32, %out: f32):
    %m = arith.mulf %x, %y : f32
    linalg.yield %m : f32
  } -> tensor<2x2x32xf32>
  %l0_old = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (0, 0, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> ()>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%mask, %l0_ssk, %ninf_t : tensor<1x1x32xi1>, tensor<2x2x32xf32>, tensor<f32>) outs(%e_s : tensor<2x2x32xf32>) {
  ^bb0(%mk: i1, %x: f32, %f: f32, %out: f32):
    %y = arith.select %mk, %x, %f : f32
    linalg.yield %y : f32
  } -> tensor<2x2x32xf32>
  %l0_all = tensor.concat dim(2) %l0_old, %new : (tensor<2x2x32xf32>, tensor<2x2x1xf32>) -> tensor<2x2x33xf32>
  %l0_top = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l0_all : tensor<2x2x33xf32>) outs(%ninf_r : tensor<2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x2xf32>
  %l0_top3 = tensor.expand_shape %l0_top [[0], [1, 2]] output_shape [2, 2, 1] : tensor<2x2xf32> into tensor<2x2x1xf32>
  %l0_sub = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_all, %l0_top3 : tensor<2x2x33xf32>, tensor<2x2x1xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %mx: f32, %out: f32):
    %m = arith.subf %in, %mx : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_exp = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_sub : tensor<2x2x33xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = math.exp %in : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_sum = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l0_exp : tensor<2x2x33xf32>) outs(%z_1 : tensor<2x2x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.addf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x2x1xf32>
  %l0_p = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_exp, %l0_sum : tensor<2x2x33xf32>, tensor<2x2x1xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %z: f32, %out: f32):
    %m = arith.divf %in, %z : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_pold = tensor.extract_slice %l0_p[0, 0, 0] [2, 2, 32] [1, 1, 1] : tensor<2x2x33xf32> to tensor<2x2x32xf32>
  %l0_pnew = tensor.extract_slice %l0_p[0, 0, 32] [2, 2, 1] [1, 1, 1] : tensor<2x2x33xf32> to tensor<2x2x1xf32>
  %e_s_1 = tensor.empty() : tensor<2x2x1xf32>
  %l0_poldv = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, 0, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_pold, %vs : tensor<2x2x32xf32>, tensor<2x1x32xf32>) outs(%e_s_32 : tensor<2x2x32xf32>) {
  ^bb0(%x: f32, %y: f32, %out: f32):
    %m = arith.mulf %x, %y : f32
    linalg.yield %m : f32
  } -> tensor<2x2x32xf32>
  %l0_pnewv = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, 0, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_pnew, %vns : tensor<2x2x1xf32>, tensor<2x1x1xf32>) outs(%e_s_1 : tensor<2x2x1xf32>) {
  ^bb0(%x: f32, %y: f32, %out: f32):
    %m = arith.mulf %x, %y : f32
    linalg.yield %m : f32
  } -> tensor<2x2x1xf32>
  %l0_oold = linalg.batch_matmul ins(%l0_poldv, %l0_vs_w : tensor<2x2x32xf32>, tensor<2x32x8xf32>) outs(%z_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %l0_onew = linalg.batch_matmul ins(%l0_pnewv, %vn : tensor<2x2x1xf32>, tensor<2x1x8xf32>) outs(%z_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %l0_o = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_oold, %l0_onew : tensor<2x2x8xf32>, tensor<2x2x8xf32>) outs(%e_o : tensor<2x2x8xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %m = arith.addf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<2x2x8xf32>
  return %l0_o : tensor<2x2x8xf32>
}

// -----

// A prefill chunk (10 tokens, 20 queries per KV head: more than max-rows) is a matmul's work: left alone.
// CHECK-LABEL: func.func @prefill(
// CHECK-NOT: call @qc_attn
// CHECK: linalg.batch_matmul
// CHECK: tensor.concat
// CHECK-NOT: func.func @qc_attn
func.func @prefill(%q: tensor<2x20x8xf32>, %pos: tensor<1xi64>, %kc: tensor<1x2x8x32xf32>, %vc: tensor<1x2x32x8xf32>, %new: tensor<2x20x10xf32>, %vn: tensor<2x10x8xf32>) -> tensor<2x20x8xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %ninf_t = arith.constant dense<0xFF800000> : tensor<f32>
  %scale = arith.constant 0.35355339059327373 : f64
  %c0_i64 = arith.constant 0 : i64
  %e_c = tensor.empty() : tensor<32xi64>
  %iota = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} outs(%e_c : tensor<32xi64>) {
  ^bb0(%out: i64):
    %i = linalg.index 0 : index
    %ii = arith.index_cast %i : index to i64
    linalg.yield %ii : i64
  } -> tensor<32xi64>
  %e_m = tensor.empty() : tensor<32xi1>
  %mask0 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%iota, %pos : tensor<32xi64>, tensor<1xi64>) outs(%e_m : tensor<32xi1>) {
  ^bb0(%a: i64, %b: i64, %out: i1):
    %lt = arith.cmpi slt, %a, %b : i64
    linalg.yield %lt : i1
  } -> tensor<32xi1>
  %mask = tensor.expand_shape %mask0 [[0, 1, 2]] output_shape [1, 1, 32] : tensor<32xi1> into tensor<1x1x32xi1>
  %e_s = tensor.empty() : tensor<2x20x32xf32>
  %z_s = linalg.fill ins(%zero : f32) outs(%e_s : tensor<2x20x32xf32>) -> tensor<2x20x32xf32>
  %e_o = tensor.empty() : tensor<2x20x8xf32>
  %z_o = linalg.fill ins(%zero : f32) outs(%e_o : tensor<2x20x8xf32>) -> tensor<2x20x8xf32>
  %e_r = tensor.empty() : tensor<2x20xf32>
  %ninf_r = linalg.fill ins(%ninf : f32) outs(%e_r : tensor<2x20xf32>) -> tensor<2x20xf32>
  %e_1 = tensor.empty() : tensor<2x20x1xf32>
  %z_1 = linalg.fill ins(%zero : f32) outs(%e_1 : tensor<2x20x1xf32>) -> tensor<2x20x1xf32>
  %e_x = tensor.empty() : tensor<2x20x42xf32>
  %l0_ks = tensor.extract_slice %kc[0, 0, 0, 0] [1, 2, 8, 32] [1, 1, 1, 1] : tensor<1x2x8x32xf32> to tensor<2x8x32xf32>
  %l0_vs = tensor.extract_slice %vc[0, 0, 0, 0] [1, 2, 32, 8] [1, 1, 1, 1] : tensor<1x2x32x8xf32> to tensor<2x32x8xf32>
  %l0_s = linalg.batch_matmul ins(%q, %l0_ks : tensor<2x20x8xf32>, tensor<2x8x32xf32>) outs(%z_s : tensor<2x20x32xf32>) -> tensor<2x20x32xf32>
  %l0_ss = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_s : tensor<2x20x32xf32>) outs(%e_s : tensor<2x20x32xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sc = arith.truncf %scale : f64 to f32
    %m = arith.mulf %in, %sc : f32
    linalg.yield %m : f32
  } -> tensor<2x20x32xf32>
  %l0_old = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (0, 0, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> ()>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%mask, %l0_ss, %ninf_t : tensor<1x1x32xi1>, tensor<2x20x32xf32>, tensor<f32>) outs(%e_s : tensor<2x20x32xf32>) {
  ^bb0(%mk: i1, %x: f32, %f: f32, %out: f32):
    %y = arith.select %mk, %x, %f : f32
    linalg.yield %y : f32
  } -> tensor<2x20x32xf32>
  %l0_all = tensor.concat dim(2) %l0_old, %new : (tensor<2x20x32xf32>, tensor<2x20x10xf32>) -> tensor<2x20x42xf32>
  %l0_top = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l0_all : tensor<2x20x42xf32>) outs(%ninf_r : tensor<2x20xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x20xf32>
  %l0_top3 = tensor.expand_shape %l0_top [[0], [1, 2]] output_shape [2, 20, 1] : tensor<2x20xf32> into tensor<2x20x1xf32>
  %l0_sub = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_all, %l0_top3 : tensor<2x20x42xf32>, tensor<2x20x1xf32>) outs(%e_x : tensor<2x20x42xf32>) {
  ^bb0(%in: f32, %mx: f32, %out: f32):
    %m = arith.subf %in, %mx : f32
    linalg.yield %m : f32
  } -> tensor<2x20x42xf32>
  %l0_exp = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_sub : tensor<2x20x42xf32>) outs(%e_x : tensor<2x20x42xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = math.exp %in : f32
    linalg.yield %m : f32
  } -> tensor<2x20x42xf32>
  %l0_sum = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l0_exp : tensor<2x20x42xf32>) outs(%z_1 : tensor<2x20x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.addf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x20x1xf32>
  %l0_p = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_exp, %l0_sum : tensor<2x20x42xf32>, tensor<2x20x1xf32>) outs(%e_x : tensor<2x20x42xf32>) {
  ^bb0(%in: f32, %z: f32, %out: f32):
    %m = arith.divf %in, %z : f32
    linalg.yield %m : f32
  } -> tensor<2x20x42xf32>
  %l0_pold = tensor.extract_slice %l0_p[0, 0, 0] [2, 20, 32] [1, 1, 1] : tensor<2x20x42xf32> to tensor<2x20x32xf32>
  %l0_pnew = tensor.extract_slice %l0_p[0, 0, 32] [2, 20, 10] [1, 1, 1] : tensor<2x20x42xf32> to tensor<2x20x10xf32>
  %l0_oold = linalg.batch_matmul ins(%l0_pold, %l0_vs : tensor<2x20x32xf32>, tensor<2x32x8xf32>) outs(%z_o : tensor<2x20x8xf32>) -> tensor<2x20x8xf32>
  %l0_onew = linalg.batch_matmul ins(%l0_pnew, %vn : tensor<2x20x10xf32>, tensor<2x10x8xf32>) outs(%z_o : tensor<2x20x8xf32>) -> tensor<2x20x8xf32>
  %l0_o = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_oold, %l0_onew : tensor<2x20x8xf32>, tensor<2x20x8xf32>) outs(%e_o : tensor<2x20x8xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %m = arith.addf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<2x20x8xf32>
  return %l0_o : tensor<2x20x8xf32>
}

// -----

// A mask that is not j < pos (here j <= pos) is not the cache's first pos entries: left alone.
// CHECK-LABEL: func.func @not_a_prefix(
// CHECK-NOT: call @qc_attn
// CHECK: linalg.batch_matmul
// CHECK-NOT: func.func @qc_attn
func.func @not_a_prefix(%q: tensor<2x2x8xf32>, %pos: tensor<1xi64>, %kc: tensor<1x2x8x32xf32>, %vc: tensor<1x2x32x8xf32>, %new: tensor<2x2x1xf32>, %vn: tensor<2x1x8xf32>) -> tensor<2x2x8xf32> {
  %zero = arith.constant 0.000000e+00 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %ninf_t = arith.constant dense<0xFF800000> : tensor<f32>
  %scale = arith.constant 0.35355339059327373 : f64
  %c0_i64 = arith.constant 0 : i64
  %e_c = tensor.empty() : tensor<32xi64>
  %iota = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} outs(%e_c : tensor<32xi64>) {
  ^bb0(%out: i64):
    %i = linalg.index 0 : index
    %ii = arith.index_cast %i : index to i64
    linalg.yield %ii : i64
  } -> tensor<32xi64>
  %e_m = tensor.empty() : tensor<32xi1>
  %mask0 = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>, affine_map<(d0) -> (0)>, affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]} ins(%iota, %pos : tensor<32xi64>, tensor<1xi64>) outs(%e_m : tensor<32xi1>) {
  ^bb0(%a: i64, %b: i64, %out: i1):
    %lt = arith.cmpi sle, %a, %b : i64
    linalg.yield %lt : i1
  } -> tensor<32xi1>
  %mask = tensor.expand_shape %mask0 [[0, 1, 2]] output_shape [1, 1, 32] : tensor<32xi1> into tensor<1x1x32xi1>
  %e_s = tensor.empty() : tensor<2x2x32xf32>
  %z_s = linalg.fill ins(%zero : f32) outs(%e_s : tensor<2x2x32xf32>) -> tensor<2x2x32xf32>
  %e_o = tensor.empty() : tensor<2x2x8xf32>
  %z_o = linalg.fill ins(%zero : f32) outs(%e_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %e_r = tensor.empty() : tensor<2x2xf32>
  %ninf_r = linalg.fill ins(%ninf : f32) outs(%e_r : tensor<2x2xf32>) -> tensor<2x2xf32>
  %e_1 = tensor.empty() : tensor<2x2x1xf32>
  %z_1 = linalg.fill ins(%zero : f32) outs(%e_1 : tensor<2x2x1xf32>) -> tensor<2x2x1xf32>
  %e_x = tensor.empty() : tensor<2x2x33xf32>
  %l0_ks = tensor.extract_slice %kc[0, 0, 0, 0] [1, 2, 8, 32] [1, 1, 1, 1] : tensor<1x2x8x32xf32> to tensor<2x8x32xf32>
  %l0_vs = tensor.extract_slice %vc[0, 0, 0, 0] [1, 2, 32, 8] [1, 1, 1, 1] : tensor<1x2x32x8xf32> to tensor<2x32x8xf32>
  %l0_s = linalg.batch_matmul ins(%q, %l0_ks : tensor<2x2x8xf32>, tensor<2x8x32xf32>) outs(%z_s : tensor<2x2x32xf32>) -> tensor<2x2x32xf32>
  %l0_ss = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_s : tensor<2x2x32xf32>) outs(%e_s : tensor<2x2x32xf32>) {
  ^bb0(%in: f32, %out: f32):
    %sc = arith.truncf %scale : f64 to f32
    %m = arith.mulf %in, %sc : f32
    linalg.yield %m : f32
  } -> tensor<2x2x32xf32>
  %l0_old = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (0, 0, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> ()>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%mask, %l0_ss, %ninf_t : tensor<1x1x32xi1>, tensor<2x2x32xf32>, tensor<f32>) outs(%e_s : tensor<2x2x32xf32>) {
  ^bb0(%mk: i1, %x: f32, %f: f32, %out: f32):
    %y = arith.select %mk, %x, %f : f32
    linalg.yield %y : f32
  } -> tensor<2x2x32xf32>
  %l0_all = tensor.concat dim(2) %l0_old, %new : (tensor<2x2x32xf32>, tensor<2x2x1xf32>) -> tensor<2x2x33xf32>
  %l0_top = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l0_all : tensor<2x2x33xf32>) outs(%ninf_r : tensor<2x2xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x2xf32>
  %l0_top3 = tensor.expand_shape %l0_top [[0], [1, 2]] output_shape [2, 2, 1] : tensor<2x2xf32> into tensor<2x2x1xf32>
  %l0_sub = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_all, %l0_top3 : tensor<2x2x33xf32>, tensor<2x2x1xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %mx: f32, %out: f32):
    %m = arith.subf %in, %mx : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_exp = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_sub : tensor<2x2x33xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = math.exp %in : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_sum = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%l0_exp : tensor<2x2x33xf32>) outs(%z_1 : tensor<2x2x1xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.addf %in, %out : f32
    linalg.yield %m : f32
  } -> tensor<2x2x1xf32>
  %l0_p = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, 0)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_exp, %l0_sum : tensor<2x2x33xf32>, tensor<2x2x1xf32>) outs(%e_x : tensor<2x2x33xf32>) {
  ^bb0(%in: f32, %z: f32, %out: f32):
    %m = arith.divf %in, %z : f32
    linalg.yield %m : f32
  } -> tensor<2x2x33xf32>
  %l0_pold = tensor.extract_slice %l0_p[0, 0, 0] [2, 2, 32] [1, 1, 1] : tensor<2x2x33xf32> to tensor<2x2x32xf32>
  %l0_pnew = tensor.extract_slice %l0_p[0, 0, 32] [2, 2, 1] [1, 1, 1] : tensor<2x2x33xf32> to tensor<2x2x1xf32>
  %l0_oold = linalg.batch_matmul ins(%l0_pold, %l0_vs : tensor<2x2x32xf32>, tensor<2x32x8xf32>) outs(%z_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %l0_onew = linalg.batch_matmul ins(%l0_pnew, %vn : tensor<2x2x1xf32>, tensor<2x1x8xf32>) outs(%z_o : tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
  %l0_o = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel"]} ins(%l0_oold, %l0_onew : tensor<2x2x8xf32>, tensor<2x2x8xf32>) outs(%e_o : tensor<2x2x8xf32>) {
  ^bb0(%a: f32, %b: f32, %out: f32):
    %m = arith.addf %a, %b : f32
    linalg.yield %m : f32
  } -> tensor<2x2x8xf32>
  return %l0_o : tensor<2x2x8xf32>
}
