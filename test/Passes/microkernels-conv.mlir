// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-microkernels{vector-width=16})' | FileCheck %s

// qc-winograd's input transform, bufferized, with the zero fill of V before it: the fill is erased
// (the kernel writes all of V) and the generic becomes a call of a kernel over (batch, tile row)
// tasks that loads each 4x4 tile as vectors of 16 channels (the 20 channels: one vector, then 4
// lanes under a mask), transforms it with adds and subtracts (B^T has only 0 and +-1) and stores
// the 16 results.
// CHECK-LABEL: func.func @input
// CHECK-NOT: linalg.fill
// CHECK: call @qc_wpar_0(%arg0, %arg1) : (memref<1x6x6x20xf32>, memref<4x4x1x2x2x20xf32>) -> ()
// CHECK-NOT: linalg.generic
// CHECK: func.func @qc_wk_0(%{{.*}}: memref<1x6x6x20xf32>, %{{.*}}: memref<4x4x1x2x2x20xf32>, %{{.*}}: index, %{{.*}}: index)
// CHECK: scf.for
// CHECK: scf.for
// CHECK: scf.for
// CHECK-COUNT-16: vector.load
// CHECK-NOT: vector.fma
// CHECK-COUNT-16: vector.store
// CHECK: vector.create_mask %{{.*}} : vector<16xi1>
// CHECK-COUNT-16: vector.maskedload
// CHECK: func.func private @qc_wpar_0(memref<1x6x6x20xf32>, memref<4x4x1x2x2x20xf32>) attributes {llvm.emit_c_interface, qc.kernel = "qc_wk_0", qc.tasks = 2 : i64}
func.func @input(%s: memref<1x6x6x20xf32>, %v: memref<4x4x1x2x2x20xf32>) {
  %z = arith.constant 0.0 : f32
  %bt = memref.get_global @bt : memref<4x4x4x4xf32>
  linalg.fill ins(%z : f32) outs(%v : memref<4x4x1x2x2x20xf32>)
  linalg.generic {indexing_maps = [affine_map<(x, y, n, i, j, c, p, q) -> (n, i * 2 + p, j * 2 + q, c)>,
                                   affine_map<(x, y, n, i, j, c, p, q) -> (x, y, p, q)>,
                                   affine_map<(x, y, n, i, j, c, p, q) -> (x, y, n, i, j, c)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction"],
                  library_call = "qc_winograd_input"}
      ins(%s, %bt : memref<1x6x6x20xf32>, memref<4x4x4x4xf32>) outs(%v : memref<4x4x1x2x2x20xf32>) {
  ^bb0(%in: f32, %c: f32, %out: f32):
    %m = arith.mulf %c, %in : f32
    %a = arith.addf %out, %m : f32
    linalg.yield %a : f32
  }
  return
}
memref.global "private" constant @bt : memref<4x4x4x4xf32> = dense<0.0>

// -----

// The output transform of F(4x4, 3x3) (A^T has coefficients 2, 4 and 8: FMAs) started from a bias
// broadcast into Y: the broadcast is erased and the kernel adds the bias vector itself.
// CHECK-LABEL: func.func @output
// CHECK-NOT: linalg.generic
// CHECK: call @qc_wpar_0(%arg0, %arg1, %arg2) : (memref<6x6x1x2x2x32xf32>, memref<1x2x4x2x4x32xf32>, memref<32xf32>) -> ()
// CHECK: func.func @qc_wk_0(%{{.*}}: memref<6x6x1x2x2x32xf32>, %{{.*}}: memref<1x2x4x2x4x32xf32>, %[[B:.*]]: memref<32xf32>, %{{.*}}: index, %{{.*}}: index)
// CHECK-COUNT-36: vector.load %{{.*}} : memref<6x6x1x2x2x32xf32>, vector<16xf32>
// CHECK: vector.fma
// CHECK: vector.load %[[B]]
// CHECK-COUNT-16: vector.store
// CHECK: func.func private @qc_wpar_0({{.*}}) attributes {llvm.emit_c_interface, qc.kernel = "qc_wk_0", qc.tasks = 2 : i64}
func.func @output(%m: memref<6x6x1x2x2x32xf32>, %y: memref<1x2x4x2x4x32xf32>, %b: memref<32xf32>) {
  %at = memref.get_global @at : memref<4x4x6x6xf32>
  linalg.generic {indexing_maps = [affine_map<(n, i, r, j, s, f) -> (f)>, affine_map<(n, i, r, j, s, f) -> (n, i, r, j, s, f)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%b : memref<32xf32>) outs(%y : memref<1x2x4x2x4x32xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  }
  linalg.generic {indexing_maps = [affine_map<(n, i, r, j, s, f, x, y) -> (x, y, n, i, j, f)>,
                                   affine_map<(n, i, r, j, s, f, x, y) -> (r, s, x, y)>,
                                   affine_map<(n, i, r, j, s, f, x, y) -> (n, i, r, j, s, f)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction"],
                  library_call = "qc_winograd_output"}
      ins(%m, %at : memref<6x6x1x2x2x32xf32>, memref<4x4x6x6xf32>) outs(%y : memref<1x2x4x2x4x32xf32>) {
  ^bb0(%in: f32, %c: f32, %out: f32):
    %p = arith.mulf %c, %in : f32
    %a = arith.addf %out, %p : f32
    linalg.yield %a : f32
  }
  return
}
memref.global "private" constant @at : memref<4x4x6x6xf32> = dense<0.0>

// -----

// qc-conv-to-matmul's channels-last depthwise conv (3x3, stride 2, 20 channels): a kernel over output
// rows that keeps 4 pixels' accumulators in registers over the 9 taps (one filter vector per tap and
// vector of channels), the 20 channels as one vector and 4 masked lanes, the 5 pixels of a row as a
// block of 4 and one of 1.
// CHECK-LABEL: func.func @depthwise
// CHECK: call @qc_wpar_0(%arg0, %arg1, %arg2) : (memref<1x11x11x20xf32>, memref<3x3x20xf32>, memref<1x5x5x20xf32>) -> ()
// CHECK: func.func @qc_wk_0(
// CHECK: scf.for
// CHECK: scf.for
// CHECK-COUNT-4: vector.load %{{.*}} : memref<1x5x5x20xf32>, vector<16xf32>
// CHECK: vector.load %{{.*}} : memref<3x3x20xf32>, vector<16xf32>
// CHECK-COUNT-4: vector.fma
// CHECK-COUNT-4: vector.store
// CHECK: vector.maskedload
// CHECK: func.func private @qc_wpar_0({{.*}}) attributes {llvm.emit_c_interface, qc.kernel = "qc_wk_0", qc.tasks = 5 : i64}
func.func @depthwise(%x: memref<1x11x11x20xf32>, %w: memref<3x3x20xf32>, %y: memref<1x5x5x20xf32>) {
  linalg.generic {indexing_maps = [affine_map<(n, oh, ow, kh, kw, c) -> (n, oh * 2 + kh, ow * 2 + kw, c)>,
                                   affine_map<(n, oh, ow, kh, kw, c) -> (kh, kw, c)>,
                                   affine_map<(n, oh, ow, kh, kw, c) -> (n, oh, ow, c)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]}
      ins(%x, %w : memref<1x11x11x20xf32>, memref<3x3x20xf32>) outs(%y : memref<1x5x5x20xf32>) {
  ^bb0(%in: f32, %f: f32, %out: f32):
    %m = arith.mulf %in, %f : f32
    %a = arith.addf %out, %m : f32
    linalg.yield %a : f32
  }
  return
}

// -----

// A depthwise conv (3x3, stride 1, pad 1) of a buffer that only zero fills of its border and a ReLU
// into its interior wrote, started from a bias broadcast and followed by a ReLU in place: the ReLU
// before moves into the copy's producer elsewhere (here: it stays, and the copy is not a plain
// copy, so the padded buffer is kept), while the bias start and the ReLU after fold into the kernel.
// CHECK-LABEL: func.func @depthwise_relu_copy
// CHECK: linalg.fill
// CHECK: linalg.generic
// CHECK: arith.select
// CHECK: call @qc_wpar_0(%{{.*}}, %arg1, %arg3, %arg2) : (memref<1x8x8x16xf32>, memref<3x3x16xf32>, memref<1x6x6x16xf32>, memref<16xf32>) -> ()
// CHECK-NOT: linalg.generic
// CHECK: func.func @qc_wk_0(
// CHECK: vector.load %{{.*}} : memref<16xf32>, vector<16xf32>
// CHECK: vector.fma
// CHECK: arith.cmpf ugt, %{{.*}}, %{{.*}} : vector<16xf32>
// CHECK: arith.select %{{.*}}, %{{.*}}, %{{.*}} : vector<16xi1>, vector<16xf32>
// CHECK: vector.store
func.func @depthwise_relu_copy(%s: memref<1x6x6x16xf32>, %w: memref<3x3x16xf32>, %b: memref<16xf32>, %y: memref<1x6x6x16xf32>) {
  %z = arith.constant 0.0 : f32
  %x = memref.alloc() : memref<1x8x8x16xf32>
  linalg.fill ins(%z : f32) outs(%x : memref<1x8x8x16xf32>)
  %in = memref.subview %x[0, 1, 1, 0] [1, 6, 6, 16] [1, 1, 1, 1] : memref<1x8x8x16xf32> to memref<1x6x6x16xf32, strided<[1024, 128, 16, 1], offset: 144>>
  linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s : memref<1x6x6x16xf32>) outs(%in : memref<1x6x6x16xf32, strided<[1024, 128, 16, 1], offset: 144>>) {
  ^bb0(%v: f32, %o: f32):
    %p = arith.cmpf ugt, %v, %z : f32
    %r = arith.select %p, %v, %z : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%b : memref<16xf32>) outs(%y : memref<1x6x6x16xf32>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  linalg.generic {indexing_maps = [affine_map<(n, oh, ow, kh, kw, c) -> (n, oh + kh, ow + kw, c)>,
                                   affine_map<(n, oh, ow, kh, kw, c) -> (kh, kw, c)>,
                                   affine_map<(n, oh, ow, kh, kw, c) -> (n, oh, ow, c)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]}
      ins(%x, %w : memref<1x8x8x16xf32>, memref<3x3x16xf32>) outs(%y : memref<1x6x6x16xf32>) {
  ^bb0(%v: f32, %f: f32, %o: f32):
    %m = arith.mulf %v, %f : f32
    %a = arith.addf %o, %m : f32
    linalg.yield %a : f32
  }
  memref.dealloc %x : memref<1x8x8x16xf32>
  linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%y : memref<1x6x6x16xf32>) outs(%y : memref<1x6x6x16xf32>) {
  ^bb0(%v: f32, %o: f32):
    %p = arith.cmpf ugt, %v, %z : f32
    %r = arith.select %p, %v, %z : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// The same conv when a plain copy wrote the padded buffer's interior (a 5x5 window, stride 2, pads
// of 2 on a 7x6 image): the fills, the copy and the buffer are erased and the kernel reads the
// image in place.  Per task (an output row oh) the filter rows read are a loop from
// max(ceil((2 - 2 oh) / 1), 0) to min(floor((6 + 2 - 2 oh) / 1) + 1, 5); of the 3 pixels of a row
// the border ones are blocks of their own with the taps inside the image (ow = 0: kw >= 2, three;
// ow = 2: kw <= 3, four), the interior one (ow = 1) has all five.
// CHECK-LABEL: func.func @depthwise_pad
// CHECK-NOT: memref.alloc
// CHECK-NOT: linalg.fill
// CHECK: call @qc_wpar_0(%arg0, %arg1, %arg2) : (memref<1x7x6x16xf32>, memref<5x5x16xf32>, memref<1x4x3x16xf32>) -> ()
// CHECK-NOT: linalg.generic
// CHECK: func.func @qc_wk_0(
// CHECK: arith.ceildivsi
// CHECK: arith.maxsi
// CHECK: arith.floordivsi
// CHECK: arith.minsi
// CHECK-COUNT-3: vector.fma
// CHECK-NOT: vector.fma
// CHECK: vector.store
// CHECK-COUNT-4: vector.fma
// CHECK-NOT: vector.fma
// CHECK: vector.store
// CHECK-COUNT-5: vector.fma
// CHECK-NOT: vector.fma
// CHECK: vector.store
func.func @depthwise_pad(%s: memref<1x7x6x16xf32>, %w: memref<5x5x16xf32>, %y: memref<1x4x3x16xf32>) {
  %z = arith.constant 0.0 : f32
  %x = memref.alloc() : memref<1x11x10x16xf32>
  %top = memref.subview %x[0, 0, 0, 0] [1, 2, 10, 16] [1, 1, 1, 1] : memref<1x11x10x16xf32> to memref<1x2x10x16xf32, strided<[1760, 160, 16, 1]>>
  linalg.fill ins(%z : f32) outs(%top : memref<1x2x10x16xf32, strided<[1760, 160, 16, 1]>>)
  %bottom = memref.subview %x[0, 9, 0, 0] [1, 2, 10, 16] [1, 1, 1, 1] : memref<1x11x10x16xf32> to memref<1x2x10x16xf32, strided<[1760, 160, 16, 1], offset: 1440>>
  linalg.fill ins(%z : f32) outs(%bottom : memref<1x2x10x16xf32, strided<[1760, 160, 16, 1], offset: 1440>>)
  %left = memref.subview %x[0, 2, 0, 0] [1, 7, 2, 16] [1, 1, 1, 1] : memref<1x11x10x16xf32> to memref<1x7x2x16xf32, strided<[1760, 160, 16, 1], offset: 320>>
  linalg.fill ins(%z : f32) outs(%left : memref<1x7x2x16xf32, strided<[1760, 160, 16, 1], offset: 320>>)
  %right = memref.subview %x[0, 2, 8, 0] [1, 7, 2, 16] [1, 1, 1, 1] : memref<1x11x10x16xf32> to memref<1x7x2x16xf32, strided<[1760, 160, 16, 1], offset: 448>>
  linalg.fill ins(%z : f32) outs(%right : memref<1x7x2x16xf32, strided<[1760, 160, 16, 1], offset: 448>>)
  %in = memref.subview %x[0, 2, 2, 0] [1, 7, 6, 16] [1, 1, 1, 1] : memref<1x11x10x16xf32> to memref<1x7x6x16xf32, strided<[1760, 160, 16, 1], offset: 352>>
  linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s : memref<1x7x6x16xf32>) outs(%in : memref<1x7x6x16xf32, strided<[1760, 160, 16, 1], offset: 352>>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  linalg.generic {indexing_maps = [affine_map<(n, oh, ow, kh, kw, c) -> (n, oh * 2 + kh, ow * 2 + kw, c)>,
                                   affine_map<(n, oh, ow, kh, kw, c) -> (kh, kw, c)>,
                                   affine_map<(n, oh, ow, kh, kw, c) -> (n, oh, ow, c)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]}
      ins(%x, %w : memref<1x11x10x16xf32>, memref<5x5x16xf32>) outs(%y : memref<1x4x3x16xf32>) {
  ^bb0(%v: f32, %f: f32, %o: f32):
    %m = arith.mulf %v, %f : f32
    %a = arith.addf %o, %m : f32
    linalg.yield %a : f32
  }
  memref.dealloc %x : memref<1x11x10x16xf32>
  return
}

// -----

// The padded buffer is read again after the conv: it is kept (and so are its fills and copy).
// CHECK-LABEL: func.func @depthwise_pad_read_later
// CHECK: memref.alloc
// CHECK: linalg.generic
// CHECK: call @qc_wpar_0(%{{.*}}, %arg1, %arg2) : (memref<1x5x5x16xf32>, memref<3x3x16xf32>, memref<1x3x3x16xf32>) -> ()
// CHECK: memref.copy
func.func @depthwise_pad_read_later(%s: memref<1x3x3x16xf32>, %w: memref<3x3x16xf32>, %y: memref<1x3x3x16xf32>, %keep: memref<1x5x5x16xf32>) {
  %z = arith.constant 0.0 : f32
  %x = memref.alloc() : memref<1x5x5x16xf32>
  linalg.fill ins(%z : f32) outs(%x : memref<1x5x5x16xf32>)
  %in = memref.subview %x[0, 1, 1, 0] [1, 3, 3, 16] [1, 1, 1, 1] : memref<1x5x5x16xf32> to memref<1x3x3x16xf32, strided<[400, 80, 16, 1], offset: 96>>
  linalg.generic {indexing_maps = [affine_map<(a, b, c, d) -> (a, b, c, d)>, affine_map<(a, b, c, d) -> (a, b, c, d)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s : memref<1x3x3x16xf32>) outs(%in : memref<1x3x3x16xf32, strided<[400, 80, 16, 1], offset: 96>>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  linalg.generic {indexing_maps = [affine_map<(n, oh, ow, kh, kw, c) -> (n, oh + kh, ow + kw, c)>,
                                   affine_map<(n, oh, ow, kh, kw, c) -> (kh, kw, c)>,
                                   affine_map<(n, oh, ow, kh, kw, c) -> (n, oh, ow, c)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction", "parallel"]}
      ins(%x, %w : memref<1x5x5x16xf32>, memref<3x3x16xf32>) outs(%y : memref<1x3x3x16xf32>) {
  ^bb0(%v: f32, %f: f32, %o: f32):
    %m = arith.mulf %v, %f : f32
    %a = arith.addf %o, %m : f32
    linalg.yield %a : f32
  }
  memref.copy %x, %keep : memref<1x5x5x16xf32> to memref<1x5x5x16xf32>
  memref.dealloc %x : memref<1x5x5x16xf32>
  return
}
