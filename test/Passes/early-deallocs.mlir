// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-early-deallocs)' | FileCheck %s

// Each buffer is freed right after its last use, a view's use included, so the next one of its
// size can take its block.
// CHECK-LABEL: func.func @chain
// CHECK: %[[A:.*]] = memref.alloc
// CHECK-NEXT: call @produce(%[[A]])
// CHECK-NEXT: %[[V:.*]] = memref.expand_shape %[[A]]
// CHECK-NEXT: call @consume(%[[V]])
// CHECK-NEXT: memref.dealloc %[[A]]
// CHECK-NEXT: %[[B:.*]] = memref.alloc
// CHECK-NEXT: call @produce(%[[B]])
// CHECK-NEXT: memref.copy %[[B]], %arg0
// CHECK-NEXT: memref.dealloc %[[B]]
// CHECK-NEXT: return
func.func @chain(%out: memref<64xf32>) {
  %a = memref.alloc() : memref<64xf32>
  call @produce(%a) : (memref<64xf32>) -> ()
  %v = memref.expand_shape %a [[0, 1]] output_shape [2, 32] : memref<64xf32> into memref<2x32xf32>
  call @consume(%v) : (memref<2x32xf32>) -> ()
  %b = memref.alloc() : memref<64xf32>
  call @produce(%b) : (memref<64xf32>) -> ()
  memref.copy %b, %out : memref<64xf32> to memref<64xf32>
  memref.dealloc %a : memref<64xf32>
  memref.dealloc %b : memref<64xf32>
  return
}
func.func private @produce(memref<64xf32>)
func.func private @consume(memref<2x32xf32>)

// -----

// A use inside a loop counts at the loop.
// CHECK-LABEL: func.func @loop
// CHECK: %[[A:.*]] = memref.alloc
// CHECK: scf.for
// CHECK: call @produce(%[[A]])
// CHECK: }
// CHECK-NEXT: memref.dealloc %[[A]]
// CHECK-NEXT: call @other
func.func @loop(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %a = memref.alloc() : memref<64xf32>
  scf.for %i = %c0 to %n step %c1 {
    func.call @produce(%a) : (memref<64xf32>) -> ()
  }
  call @other() : () -> ()
  memref.dealloc %a : memref<64xf32>
  return
}
func.func private @produce(memref<64xf32>)
func.func private @other()

// -----

// Kept at the end: the buffer's address leaves as an integer, whose uses say nothing of the
// buffer's; and a buffer a loop carries may be yielded.
// CHECK-LABEL: func.func @escapes
// CHECK: call @other
// CHECK-NEXT: memref.dealloc
// CHECK-NEXT: memref.dealloc
// CHECK-NEXT: return
func.func @escapes(%n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %a = memref.alloc() : memref<64xf32>
  %p = memref.extract_aligned_pointer_as_index %a : memref<64xf32> -> index
  call @take(%p) : (index) -> ()
  %b = memref.alloc() : memref<64xf32>
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%x = %b) -> (memref<64xf32>) {
    scf.yield %x : memref<64xf32>
  }
  call @read(%r) : (memref<64xf32>) -> ()
  call @other() : () -> ()
  memref.dealloc %a : memref<64xf32>
  memref.dealloc %b : memref<64xf32>
  return
}
func.func private @take(index)
func.func private @read(memref<64xf32>)
func.func private @other()
