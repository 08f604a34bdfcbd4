gpu.module @kernels {
  gpu.func @ids(%out: memref<32xindex>) kernel {
    %t = gpu.thread_id x
    memref.store %t, %out[%t] : memref<32xindex>
    gpu.return
  }
}
