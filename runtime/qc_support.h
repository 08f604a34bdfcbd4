/* What generated code and a model's glue call: weight mapping, the thread pool, buffers, .npy I/O.
   (Programs use qc/runtime.h.) */
#ifndef QC_SUPPORT_H
#define QC_SUPPORT_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Last error of this thread, or "" (never NULL). */
const char *qc_last_error(void);
void qc_set_error(const char *fmt, ...);

/* Load a weight blob read-only (read into huge pages; QC_MMAP_WEIGHTS=1: mapped from the file);
   checks its magic and size. NULL on error. */
const uint8_t *qc_map_weights(const char *path, size_t expected_size);
void qc_unmap_weights(const uint8_t *base, size_t size);

/* Ask the OS for the AMX tile state (once per process is enough); 0, or -1 with the error set. */
int qc_require_amx(void);

/* Run fn(ctx, begin, end) over [0, n) split across the pool (QC_NUM_THREADS, default: cores;
   workers pinned one per CPU unless QC_PIN_THREADS=0): per_thread contiguous chunks per thread,
   taken in turn by whichever thread is free (1: one range each).
   A call made while the pool runs another call's work (another thread's run, or a task) runs
   serially on its own thread. */
typedef void (*qc_task_fn)(void *ctx, int64_t begin, int64_t end);
void qc_parallel_for(qc_task_fn fn, void *ctx, int64_t n, int per_thread);
int qc_num_threads(void);
/* The most threads this thread's qc_parallel_for calls use (0: all); returns the previous limit. */
int qc_thread_limit(int threads);

/* Buffers of generated code (MLIR's generic allocation functions); freed blocks are reused by size. */
void *_mlir_memref_to_llvm_alloc(uint64_t size);
void *_mlir_memref_to_llvm_aligned_alloc(uint64_t alignment, uint64_t size);
void _mlir_memref_to_llvm_free(void *ptr);

/* GPU models (qc_cuda.c; the CUDA driver is loaded with dlopen on first use).  qc_cuda_init: 0, or -1
   with the error set (no driver, no device).  qc_cuda_upload: managed memory holding a copy of `host`
   (NULL: zeros), moved to the device; NULL on error.  qc_cuda_alloc: zeroed managed memory
   (qc_model_alloc's).  qc_cuda_is_managed: whether a pointer is into managed memory, which a run
   reads or writes in place.  qc_cuda_copy_rows: qc_model_copy_rows on the device.  qc_cuda_finish: waits for the device; -1 with the run's first failure as the error. */
int qc_cuda_init(void);
int qc_cuda_use_device(int ordinal); /* before the first qc_cuda_init, or the device it opened */
void *qc_cuda_upload(const void *host, size_t bytes);
void qc_cuda_free(void *p);
void *qc_cuda_alloc(size_t bytes);
int qc_cuda_is_managed(const void *p);
int qc_cuda_copy_rows(void *dst, size_t dst_pitch, const void *src, size_t src_pitch, size_t width, size_t rows);
int qc_cuda_finish(void);
const char *qc_cuda_device_name(void);

/* .npy: dtype is a numpy descr like "<f4"; shape has up to 8 dims. Caller frees *data. */
int qc_npy_load(const char *path, char descr[8], int64_t shape[8], int *ndim, void **data, size_t *nbytes);
int qc_npy_save(const char *path, const char *descr, const int64_t *shape, int ndim, const void *data, size_t nbytes);

#ifdef __cplusplus
}
#endif
#endif
