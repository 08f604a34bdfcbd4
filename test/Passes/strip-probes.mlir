// RUN: qc-opt %s --qc-strip-probes | FileCheck %s

// The probe goes; its reader takes the probed value itself.
// CHECK-LABEL: func.func @probed
// CHECK-NOT: qc.observe
// CHECK: %[[Y:.*]] = arith.addf %arg0, %arg0 : tensor<4x64xf32>
// CHECK: return %[[Y]]
func.func @probed(%x: tensor<4x64xf32>) -> tensor<4x64xf32> {
  %o = "qc.observe"(%x) {id = "fc"} : (tensor<4x64xf32>) -> tensor<4x64xf32>
  %y = arith.addf %o, %o : tensor<4x64xf32>
  return %y : tensor<4x64xf32>
}
