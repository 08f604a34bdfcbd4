/* CUDA support of GPU models (qc-compile --target cuda): the mgpu* functions their host code calls
   (the ABI of MLIR's gpu-to-llvm lowering) and what their glue needs (device buffers, the weights
   uploaded once), over the CUDA driver API.  The driver is loaded with dlopen when a GPU model is
   first loaded, so a machine without one never needs CUDA: it gets an error saying so.

   Every buffer is CUDA managed memory: kernels read and write it on the device, and the glue copies
   a run's inputs in and outputs out with plain memcpy, but for those that are managed memory already
   (qc_model_alloc's: a decoder's KV cache and step outputs): the kernels read and write those in place.  Errors are kept (the first one since the last
   qc_cuda_take_error) instead of aborting, because the mgpu* functions return nothing: the glue asks
   after each run. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qc_support.h"

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext, *CUmodule, *CUfunction, *CUstream;
typedef unsigned long long CUdeviceptr;
typedef struct { int type; int id; } CUmemLocation; /* type 1: CU_MEM_LOCATION_TYPE_DEVICE */
typedef struct { /* CUDA_MEMCPY2D, in cuda.h's order */
  size_t srcXInBytes, srcY;
  int srcMemoryType;
  const void *srcHost;
  CUdeviceptr srcDevice;
  void *srcArray;
  size_t srcPitch;
  size_t dstXInBytes, dstY;
  int dstMemoryType;
  void *dstHost;
  CUdeviceptr dstDevice;
  void *dstArray;
  size_t dstPitch;
  size_t WidthInBytes, Height;
} CUDA_MEMCPY2D;
#define CU_MEMORYTYPE_UNIFIED 4
#define CU_MEM_ATTACH_GLOBAL 1
#define CU_POINTER_ATTRIBUTE_IS_MANAGED 8
#define CU_JIT_ERROR_LOG_BUFFER 5
#define CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES 6

static struct {
  CUresult (*Init)(unsigned);
  CUresult (*DeviceGet)(CUdevice *, int);
  CUresult (*DeviceGetCount)(int *);
  CUresult (*DeviceGetName)(char *, int, CUdevice);
  CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*CtxSetCurrent)(CUcontext);
  CUresult (*ModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *, void **);
  CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*ModuleUnload)(CUmodule);
  CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                           CUstream, void **, void **);
  CUresult (*StreamCreate)(CUstream *, unsigned);
  CUresult (*StreamSynchronize)(CUstream);
  CUresult (*MemAllocManaged)(CUdeviceptr *, size_t, unsigned);
  CUresult (*MemFree)(CUdeviceptr);
  CUresult (*PointerGetAttribute)(void *, int, CUdeviceptr);
  CUresult (*Memcpy2DAsync)(const CUDA_MEMCPY2D *, CUstream);
  CUresult (*MemPrefetchAsync)(CUdeviceptr, size_t, CUmemLocation, unsigned, CUstream); /* optional (CUDA >= 12.2) */
  CUresult (*GetErrorString)(CUresult, const char **);
} cu;

static pthread_once_t cu_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cu_lock = PTHREAD_MUTEX_INITIALIZER;
static char cu_init_error[512];  /* why the driver could not be used, or "" */
static char cu_error[512];       /* the first failure since the last qc_cuda_take_error, or "" */
static CUdevice cu_device;
static int cu_ordinal = -1;  /* the device asked for (qc_cuda_use_device), else QC_CUDA_DEVICE or 0 */
static int cu_started;       /* init_driver ran: the device is fixed */
static CUcontext cu_context;
static CUstream cu_stream;

static void keep(const char *message) {
  pthread_mutex_lock(&cu_lock);
  if (!cu_error[0]) snprintf(cu_error, sizeof cu_error, "%s", message);
  pthread_mutex_unlock(&cu_lock);
}

static void fail(const char *what, CUresult r) {
  const char *text = NULL;
  char message[sizeof cu_error];
  if (cu.GetErrorString) cu.GetErrorString(r, &text);
  snprintf(message, sizeof message, "CUDA: %s failed: %s (%d)", what, text ? text : "?", r);
  keep(message);
}

#define CHECK(what, call) \
  do {                     \
    CUresult r_ = (call);  \
    if (r_) fail(what, r_); \
  } while (0)

static void init_driver(void) {
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (!lib) {
    snprintf(cu_init_error, sizeof cu_init_error,
             "this model runs on an NVIDIA GPU, and the CUDA driver (libcuda.so.1) cannot be loaded: %s", dlerror());
    return;
  }
  struct { void **slot; const char *name; } symbols[] = {
      {(void **)&cu.Init, "cuInit"}, {(void **)&cu.DeviceGet, "cuDeviceGet"},
      {(void **)&cu.DeviceGetCount, "cuDeviceGetCount"}, {(void **)&cu.DeviceGetName, "cuDeviceGetName"},
      {(void **)&cu.DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"}, {(void **)&cu.CtxSetCurrent, "cuCtxSetCurrent"},
      {(void **)&cu.ModuleLoadDataEx, "cuModuleLoadDataEx"}, {(void **)&cu.ModuleGetFunction, "cuModuleGetFunction"},
      {(void **)&cu.ModuleUnload, "cuModuleUnload"}, {(void **)&cu.LaunchKernel, "cuLaunchKernel"},
      {(void **)&cu.StreamCreate, "cuStreamCreate"}, {(void **)&cu.StreamSynchronize, "cuStreamSynchronize"},
      {(void **)&cu.MemAllocManaged, "cuMemAllocManaged"}, {(void **)&cu.MemFree, "cuMemFree_v2"},
      {(void **)&cu.PointerGetAttribute, "cuPointerGetAttribute"}, {(void **)&cu.Memcpy2DAsync, "cuMemcpy2DAsync_v2"},
      {(void **)&cu.GetErrorString, "cuGetErrorString"}};
  for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; ++i) {
    *symbols[i].slot = dlsym(lib, symbols[i].name);
    if (!*symbols[i].slot) {
      snprintf(cu_init_error, sizeof cu_init_error, "the CUDA driver lacks %s (too old?)", symbols[i].name);
      return;
    }
  }
  cu.MemPrefetchAsync = dlsym(lib, "cuMemPrefetchAsync_v2");
  int count = 0;
  int want = cu_ordinal;
  CUresult r = cu.Init(0);
  if (!r) r = cu.DeviceGetCount(&count);
  if (r || count <= want) {
    snprintf(cu_init_error, sizeof cu_init_error, "no CUDA device %d (%d found; cuInit/cuDeviceGetCount: %d)", want,
             count, r);
    return;
  }
  if ((r = cu.DeviceGet(&cu_device, want)) || (r = cu.DevicePrimaryCtxRetain(&cu_context, cu_device)) ||
      (r = cu.CtxSetCurrent(cu_context)) || (r = cu.StreamCreate(&cu_stream, 0))) {
    snprintf(cu_init_error, sizeof cu_init_error, "cannot open CUDA device %d: error %d", want, r);
    return;
  }
}

int qc_cuda_use_device(int ordinal) {
  pthread_mutex_lock(&cu_lock);
  int busy = cu_started && ordinal != cu_ordinal;
  if (!cu_started) cu_ordinal = ordinal;
  int in_use = cu_ordinal;
  pthread_mutex_unlock(&cu_lock);
  if (busy) {
    qc_set_error("CUDA device %d asked for, but this process runs its GPU models on device %d", ordinal, in_use);
    return -1;
  }
  return 0;
}

static void start_driver(void) {
  pthread_mutex_lock(&cu_lock);
  cu_started = 1;
  if (cu_ordinal < 0) {
    const char *env = getenv("QC_CUDA_DEVICE");
    cu_ordinal = env ? atoi(env) : 0;
  }
  pthread_mutex_unlock(&cu_lock);
  init_driver();
}

int qc_cuda_init(void) {
  pthread_once(&cu_once, start_driver);
  if (cu_init_error[0]) {
    qc_set_error("%s", cu_init_error);
    return -1;
  }
  cu.CtxSetCurrent(cu_context); /* each calling thread */
  return 0;
}

const char *qc_cuda_device_name(void) {
  static char name[256];
  if (qc_cuda_init() || cu.DeviceGetName(name, sizeof name, cu_device)) return "";
  return name;
}

/* The first failure since the last call (copied into the thread's error), or NULL. */
const char *qc_cuda_take_error(void) {
  pthread_mutex_lock(&cu_lock);
  int failed = cu_error[0] != 0;
  if (failed) qc_set_error("%s", cu_error);
  cu_error[0] = 0;
  pthread_mutex_unlock(&cu_lock);
  return failed ? qc_last_error() : NULL;
}

/* Managed memory of `bytes` holding a copy of `host` (NULL: zeros), moved to the device: the weights,
   uploaded once at load, and the buffers of a run's inputs and outputs. */
void *qc_cuda_upload(const void *host, size_t bytes) {
  CUdeviceptr p = 0;
  if (qc_cuda_init()) return NULL;
  CUresult r = cu.MemAllocManaged(&p, bytes ? bytes : 1, CU_MEM_ATTACH_GLOBAL);
  if (r) {
    fail("cuMemAllocManaged", r);
    qc_cuda_take_error();
    return NULL;
  }
  if (host) memcpy((void *)(uintptr_t)p, host, bytes);
  else memset((void *)(uintptr_t)p, 0, bytes); /* (before the move: managed memory is not cleared) */
  if (bytes && cu.MemPrefetchAsync) /* (a hint: its failure changes nothing) */
    cu.MemPrefetchAsync(p, bytes, (CUmemLocation){1, cu_device}, 0, cu_stream);
  return (void *)(uintptr_t)p;
}

void qc_cuda_free(void *p) {
  if (p && !qc_cuda_init()) cu.MemFree((CUdeviceptr)(uintptr_t)p);
}

/* Zeroed managed memory for the caller's tensors (qc_model_alloc), which a run reads and writes in place. */
void *qc_cuda_alloc(size_t bytes) { return qc_cuda_upload(NULL, bytes); }

/* qc_model_copy_rows of a GPU model: queued on the stream after the kernels before it. */
int qc_cuda_copy_rows(void *dst, size_t dst_pitch, const void *src, size_t src_pitch, size_t width, size_t rows) {
  if (qc_cuda_init()) return -1;
  if (!width || !rows) return 0;
  CUDA_MEMCPY2D copy = {.srcMemoryType = CU_MEMORYTYPE_UNIFIED, .srcDevice = (CUdeviceptr)(uintptr_t)src,
                        .srcPitch = src_pitch, .dstMemoryType = CU_MEMORYTYPE_UNIFIED,
                        .dstDevice = (CUdeviceptr)(uintptr_t)dst, .dstPitch = dst_pitch, .WidthInBytes = width,
                        .Height = rows};
  CHECK("cuMemcpy2DAsync", cu.Memcpy2DAsync(&copy, cu_stream));
  return qc_cuda_take_error() ? -1 : 0;
}

/* Whether p points into CUDA managed memory (the kernels can read it where it is). */
int qc_cuda_is_managed(const void *p) {
  unsigned managed = 0;
  return p && !qc_cuda_init() &&
         !cu.PointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, (CUdeviceptr)(uintptr_t)p) && managed;
}

/* Waits for the device; 0, or -1 with the first failure of the run as the error. */
int qc_cuda_finish(void) {
  if (qc_cuda_init()) return -1;
  CHECK("cuStreamSynchronize", cu.StreamSynchronize(cu_stream));
  return qc_cuda_take_error() ? -1 : 0;
}

/* ---- the mgpu* ABI of gpu-to-llvm -------------------------------------------------------------- */

/* A module handle: the PTX is compiled by the driver (JIT) on the first launch, not when the library
   loads (gpu-to-llvm loads modules from a global constructor: a CPU-only machine must get past it). */
typedef struct { const void *ptx; CUmodule module; } qc_cuda_module;

void *mgpuModuleLoadJIT(void *data, int opt_level, size_t size) {
  (void)opt_level;
  (void)size;
  qc_cuda_module *m = calloc(1, sizeof *m);
  if (m) m->ptx = data;
  return m;
}

void mgpuModuleUnload(void *handle) {
  qc_cuda_module *m = handle;
  if (m && m->module && cu.ModuleUnload) cu.ModuleUnload(m->module);
  free(m);
}

void *mgpuModuleGetFunction(void *handle, const char *name) {
  qc_cuda_module *m = handle;
  CUfunction f = NULL;
  if (!m || qc_cuda_init()) {
    keep(cu_init_error[0] ? cu_init_error : "CUDA: no kernel module");
    return NULL;
  }
  pthread_mutex_lock(&cu_lock);
  if (!m->module) {
    char log[4096] = "";
    int options[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *values[] = {log, (void *)(uintptr_t)sizeof log};
    CUresult r = cu.ModuleLoadDataEx(&m->module, m->ptx, 2, options, values);
    pthread_mutex_unlock(&cu_lock);
    if (r) {
      fail(log[0] ? log : "cuModuleLoadDataEx (loading the kernels' PTX)", r);
      return NULL;
    }
  } else {
    pthread_mutex_unlock(&cu_lock);
  }
  CHECK(name, cu.ModuleGetFunction(&f, m->module, name));
  return f;
}

void *mgpuStreamCreate(void) {
  return qc_cuda_init() ? NULL : cu_stream; /* one stream: each launch is followed by its synchronize */
}

void mgpuStreamDestroy(void *stream) { (void)stream; }

void mgpuStreamSynchronize(void *stream) {
  if (stream) CHECK("cuStreamSynchronize", cu.StreamSynchronize(stream));
}

void mgpuLaunchKernel(void *function, intptr_t gx, intptr_t gy, intptr_t gz, intptr_t bx, intptr_t by, intptr_t bz,
                      int32_t smem, void *stream, void **params, void **extra, size_t count) {
  (void)count;
  if (!function) return; /* its lookup failed and said why */
  CHECK("cuLaunchKernel", cu.LaunchKernel(function, gx, gy, gz, bx, by, bz, smem, stream, params, extra));
}

/* The host code's buffers: every block stays known with its size, and a freed one is handed out again
   for the same size (a run allocates what the run before did; a fresh managed block would be a
   cudaMalloc, then page faults on the device at first touch, every run). */
#define QC_CUDA_BLOCKS 512
typedef struct { uint64_t bytes; void *p; int in_use; } qc_cuda_block;
static qc_cuda_block cu_blocks[QC_CUDA_BLOCKS];
static int cu_block_count;

void *mgpuMemAlloc(uint64_t bytes, void *stream, int8_t host_shared) {
  (void)stream;
  (void)host_shared; /* always managed: the host may touch it */
  pthread_mutex_lock(&cu_lock);
  for (int i = 0; i < cu_block_count; ++i) {
    if (!cu_blocks[i].in_use && cu_blocks[i].bytes == bytes) {
      cu_blocks[i].in_use = 1;
      pthread_mutex_unlock(&cu_lock);
      return cu_blocks[i].p;
    }
  }
  pthread_mutex_unlock(&cu_lock);
  CUdeviceptr p = 0;
  if (qc_cuda_init()) return NULL;
  CHECK("cuMemAllocManaged", cu.MemAllocManaged(&p, bytes ? bytes : 1, CU_MEM_ATTACH_GLOBAL));
  void *block = (void *)(uintptr_t)p;
  pthread_mutex_lock(&cu_lock);
  if (block && cu_block_count < QC_CUDA_BLOCKS) cu_blocks[cu_block_count++] = (qc_cuda_block){bytes, block, 1};
  pthread_mutex_unlock(&cu_lock);
  return block;
}

void mgpuMemFree(void *p, void *stream) {
  (void)stream;
  if (!p) return;
  pthread_mutex_lock(&cu_lock);
  for (int i = 0; i < cu_block_count; ++i) {
    if (cu_blocks[i].p == p) {
      cu_blocks[i].in_use = 0;
      pthread_mutex_unlock(&cu_lock);
      return;
    }
  }
  pthread_mutex_unlock(&cu_lock);
  CHECK("cuMemFree", cu.MemFree((CUdeviceptr)(uintptr_t)p)); /* one the table had no room for */
}
