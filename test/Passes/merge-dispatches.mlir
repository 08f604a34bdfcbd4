// RUN: qc-opt %s --split-input-file --pass-pipeline='builtin.module(qc-merge-dispatches)' | FileCheck %s

// Two pool calls that read %x and write their own buffers run as one merged trampoline; the serial
// call that copies the first one's result moves after it, the second one's buffer is allocated and
// filled before it (@half reads %x through a view: a read all the same).
// The merged trampoline runs both kernels' tasks (64 and 32) over one range, with the larger chunk count;
// the trampolines it replaces are gone.
// CHECK-LABEL: func.func @siblings
// CHECK-NEXT: %[[C0:.*]] = arith.constant 0
// CHECK-NEXT: %[[C64:.*]] = arith.constant 64
// CHECK-NEXT: %[[ZERO:.*]] = arith.constant 0.0
// CHECK-NEXT: %[[Q:.*]] = memref.alloc()
// CHECK-NEXT: %[[K:.*]] = memref.alloc()
// CHECK-NEXT: linalg.fill ins(%[[ZERO]] : f32) outs(%[[K]]
// CHECK-NEXT: call @qc_mpar_0(%arg0, %[[Q]], %arg0, %[[K]])
// CHECK-NEXT: call @copy(%[[Q]], %arg1, %[[C0]], %[[C64]])
// CHECK-NEXT: memref.dealloc %[[Q]]
// CHECK-NEXT: call @copy(%[[K]], %arg2, %[[C0]], %[[C64]])
// CHECK-NEXT: memref.dealloc %[[K]]
// CHECK-NEXT: return
// CHECK-NOT: @copy_par
// CHECK-NOT: @half_par
// CHECK: func.func private @qc_mpar_0(memref<64xf32>, memref<64xf32>, memref<64xf32>, memref<64xf32>)
// CHECK-SAME: qc.arity = [2, 2], qc.chunks_per_thread = 4 : i64, qc.kernel = ["copy", "half"], qc.tasks = [64, 32]
func.func @siblings(%x: memref<64xf32>, %o1: memref<64xf32>, %o2: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %q = memref.alloc() : memref<64xf32>
  call @copy_par(%x, %q) : (memref<64xf32>, memref<64xf32>) -> ()
  call @copy(%q, %o1, %c0, %c64) : (memref<64xf32>, memref<64xf32>, index, index) -> ()
  memref.dealloc %q : memref<64xf32>
  %k = memref.alloc() : memref<64xf32>
  linalg.fill ins(%zero : f32) outs(%k : memref<64xf32>)
  call @half_par(%x, %k) : (memref<64xf32>, memref<64xf32>) -> ()
  call @copy(%k, %o2, %c0, %c64) : (memref<64xf32>, memref<64xf32>, index, index) -> ()
  memref.dealloc %k : memref<64xf32>
  return
}
func.func @copy(%a: memref<64xf32>, %b: memref<64xf32>, %t0: index, %t1: index) attributes {llvm.emit_c_interface} {
  %c1 = arith.constant 1 : index
  scf.for %i = %t0 to %t1 step %c1 {
    %v = memref.load %a[%i] : memref<64xf32>
    memref.store %v, %b[%i] : memref<64xf32>
  }
  return
}
func.func @half(%a: memref<64xf32>, %b: memref<64xf32>, %t0: index, %t1: index) attributes {llvm.emit_c_interface} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %pairs = memref.reinterpret_cast %a to offset: [0], sizes: [32, 2], strides: [2, 1] : memref<64xf32> to memref<32x2xf32>
  scf.for %t = %t0 to %t1 step %c1 {
    %i = arith.muli %t, %c2 : index
    %v = vector.load %pairs[%t, %c0] : memref<32x2xf32>, vector<2xf32>
    vector.store %v, %b[%i] : memref<64xf32>, vector<2xf32>
  }
  return
}
func.func private @copy_par(memref<64xf32>, memref<64xf32>) attributes {llvm.emit_c_interface, qc.kernel = "copy", qc.tasks = 64 : i64}
func.func private @half_par(memref<64xf32>, memref<64xf32>) attributes {llvm.emit_c_interface, qc.chunks_per_thread = 4 : i64, qc.kernel = "half", qc.tasks = 32 : i64}

// -----

// Calls that touch one buffer in a way that orders them stay apart: each call below reads what the one
// before it writes (also through a view), or writes what it reads; the kernel of @bump_par writes its
// argument (a kernel's argument is read-only only if the kernel just loads from it); an op whose effects
// are not known (a call to a declaration) is a barrier.
// CHECK-LABEL: func.func @ordered
// CHECK-NOT: qc_mpar
// CHECK: call @copy_par(%arg0, %[[A:.*]]) :
// CHECK-NEXT: call @copy_par(%[[A]], %arg1)
// CHECK-NEXT: call @copy_par(%arg2, %[[A]])
// CHECK-NEXT: %[[V:.*]] = memref.expand_shape %[[A]]
// CHECK-NEXT: call @copy2d_par(%[[V]], %arg3)
// CHECK-NEXT: call @copy_par(%arg0, %[[A]])
// CHECK-NEXT: call @bump_par(%arg0)
// CHECK-NEXT: call @opaque(%arg1)
// CHECK-NEXT: call @copy_par(%arg1, %arg2)
// CHECK-NOT: qc_mpar
func.func @ordered(%x: memref<64xf32>, %o1: memref<64xf32>, %o2: memref<64xf32>, %w: memref<2x32xf32>) {
  %a = memref.alloc() : memref<64xf32>
  call @copy_par(%x, %a) : (memref<64xf32>, memref<64xf32>) -> ()
  call @copy_par(%a, %o1) : (memref<64xf32>, memref<64xf32>) -> ()
  call @copy_par(%o2, %a) : (memref<64xf32>, memref<64xf32>) -> ()
  %v = memref.expand_shape %a [[0, 1]] output_shape [2, 32] : memref<64xf32> into memref<2x32xf32>
  call @copy2d_par(%v, %w) : (memref<2x32xf32>, memref<2x32xf32>) -> ()
  call @copy_par(%x, %a) : (memref<64xf32>, memref<64xf32>) -> ()
  call @bump_par(%x) : (memref<64xf32>) -> ()
  call @opaque(%o1) : (memref<64xf32>) -> ()
  call @copy_par(%o1, %o2) : (memref<64xf32>, memref<64xf32>) -> ()
  memref.dealloc %a : memref<64xf32>
  return
}
func.func @copy(%a: memref<64xf32>, %b: memref<64xf32>, %t0: index, %t1: index) attributes {llvm.emit_c_interface} {
  %c1 = arith.constant 1 : index
  scf.for %i = %t0 to %t1 step %c1 {
    %v = memref.load %a[%i] : memref<64xf32>
    memref.store %v, %b[%i] : memref<64xf32>
  }
  return
}
func.func @copy2d(%a: memref<2x32xf32>, %b: memref<2x32xf32>, %t0: index, %t1: index) attributes {llvm.emit_c_interface} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %t0 to %t1 step %c1 {
    %v = memref.load %a[%c0, %i] : memref<2x32xf32>
    memref.store %v, %b[%c0, %i] : memref<2x32xf32>
  }
  return
}
func.func @bump(%a: memref<64xf32>, %t0: index, %t1: index) attributes {llvm.emit_c_interface} {
  %c1 = arith.constant 1 : index
  %one = arith.constant 1.0 : f32
  scf.for %i = %t0 to %t1 step %c1 {
    %v = memref.load %a[%i] : memref<64xf32>
    %s = arith.addf %v, %one : f32
    memref.store %s, %a[%i] : memref<64xf32>
  }
  return
}
func.func private @opaque(memref<64xf32>)
func.func private @copy_par(memref<64xf32>, memref<64xf32>) attributes {llvm.emit_c_interface, qc.kernel = "copy", qc.tasks = 64 : i64}
func.func private @copy2d_par(memref<2x32xf32>, memref<2x32xf32>) attributes {llvm.emit_c_interface, qc.kernel = "copy2d", qc.tasks = 32 : i64}
func.func private @bump_par(memref<64xf32>) attributes {llvm.emit_c_interface, qc.kernel = "bump", qc.tasks = 64 : i64}
