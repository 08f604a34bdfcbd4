/* A stand-in libcuda.so.1 for testing a GPU model's host side on a machine without a GPU: managed
   memory is malloc, launches run nothing, or, when MOCK_CUDA_KERNELS names the kernels built for the
   host (test/python/gpu_emulator.py), run each kernel on the CPU.  It checks what it can: every kernel
   asked for is an .entry of the PTX it was given, every launch names a loaded kernel with a non-empty
   grid and block and pointer-sized arguments, none of its pointers into a library's static data; and it
   counts.  MOCK_CUDA_DEVICES=0 makes it a driver with no device.  At exit it prints "mock-cuda:
   <modules> modules, <launches> launches, <syncs> syncs (stream synchronizations), <copies> copies (2-D
   ones between managed blocks), <allocs> allocations,
   <n> managed (pointer queries that found managed memory), <errors> errors, <ordinal> device" (the one
   opened, -1 for none) to stderr. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
enum { OK = 0, ERR_INVALID = 1, ERR_NO_DEVICE = 100, ERR_NOT_FOUND = 500 };

static const char *ptx_text;
static int modules, launches, syncs, copies, allocs, in_place, errors, device = -1;
static int kernel_tag;  /* functions are &kernel_tag + offset of the name in the PTX */

__attribute__((destructor)) static void report(void) {
  fprintf(stderr, "mock-cuda: %d modules, %d launches, %d syncs, %d copies, %d allocations, %d managed, %d errors, "
          "%d device\n", modules, launches, syncs, copies, allocs, in_place, errors, device);
}

static CUresult bad(void) { ++errors; return ERR_INVALID; }

CUresult cuInit(unsigned flags) { (void)flags; return OK; }
CUresult cuDeviceGetCount(int *n) {
  const char *env = getenv("MOCK_CUDA_DEVICES");
  *n = env ? atoi(env) : 1;
  return OK;
}
CUresult cuDeviceGet(int *d, int i) { *d = device = i; return OK; }
CUresult cuDeviceGetName(char *name, int len, int d) { snprintf(name, len, "mock GPU %d", d); return OK; }
CUresult cuDevicePrimaryCtxRetain(void **ctx, int d) { (void)d; *ctx = &kernel_tag; return OK; }
CUresult cuCtxSetCurrent(void *ctx) { (void)ctx; return OK; }
CUresult cuStreamCreate(void **s, unsigned f) { (void)f; *s = &kernel_tag; return OK; }
CUresult cuStreamSynchronize(void *s) { return s == &kernel_tag ? (++syncs, OK) : bad(); }
CUresult cuGetErrorString(CUresult r, const char **text) { *text = r == ERR_NOT_FOUND ? "not found" : "mock error"; return OK; }

CUresult cuModuleLoadDataEx(void **module, const void *image, unsigned n, int *options, void **values) {
  (void)n; (void)options; (void)values;
  if (!image || !strstr(image, ".entry")) return bad();
  ptx_text = image;
  ++modules;
  *module = (void *)image;
  return OK;
}
CUresult cuModuleUnload(void *module) { (void)module; return OK; }

CUresult cuModuleGetFunction(void **function, void *module, const char *name) {
  char entry[512];
  snprintf(entry, sizeof entry, ".entry %s(", name);
  const char *at = module ? strstr(module, entry) : NULL;
  if (!at) { ++errors; return ERR_NOT_FOUND; }
  *function = (char *)&kernel_tag + (at - (const char *)module);
  return OK;
}

/* Whether a pointer argument of the kernel whose PTX .entry starts at `entry` points into a loaded
   library's image (a memref.global of the host code): a GPU cannot read the host's static data. */
static int reads_host_static_data(const char *entry, void **params) {
  const char *end = strchr(entry, ')');
  int i = 0;
  for (const char *p = strstr(entry, ".param "); p && p < end; p = strstr(p + 1, ".param "), ++i) {
    Dl_info info;
    void *value = *(void **)params[i];
    if (!strncmp(p, ".param .u64 .ptr", 16) && dladdr(value, &info) && info.dli_fname) {
      fprintf(stderr, "mock-cuda: pointer argument %d of %.*s is into %s's static data, which a GPU cannot read\n", i,
              (int)strcspn(entry, "("), entry, info.dli_fname);
      return 1;
    }
  }
  return 0;
}

CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned smem, void *stream, void **params, void **extra) {
  (void)smem; (void)extra;
  if (!f || !ptx_text || !gx || !gy || !gz || !bx || !by || !bz || bx * by * bz > 1024 || stream != &kernel_tag ||
      !params || !params[0])
    return bad();
  const char *entry = ptx_text + ((char *)f - (char *)&kernel_tag) + strlen(".entry ");
  if (reads_host_static_data(entry, params)) return bad();
  ++launches;
  const char *emulated = getenv("MOCK_CUDA_KERNELS");
  if (!emulated) return OK;
  static int (*launch)(const char *, const unsigned *, const unsigned *, void **);
  if (!launch) {
    void *lib = dlopen(emulated, RTLD_NOW | RTLD_GLOBAL);
    launch = lib ? (int (*)(const char *, const unsigned *, const unsigned *, void **))dlsym(lib, "qc_emu_launch")
                 : NULL;
    if (!launch) {
      fprintf(stderr, "mock-cuda: cannot load the emulated kernels: %s\n", dlerror());
      return bad();
    }
  }
  char name[256];
  snprintf(name, sizeof name, "%.*s", (int)strcspn(entry, "("), entry);
  unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  return launch(name, grid, block, params) ? bad() : OK;
}

/* The managed blocks (a list: models allocate a few dozen) */
typedef struct block { char *p; size_t bytes; struct block *next; } block;
static block *blocks;

CUresult cuMemAllocManaged(unsigned long long *p, size_t bytes, unsigned flags) {
  (void)flags;
  block *b = calloc(1, sizeof *b);
  if (!b || !(b->p = calloc(1, bytes))) return bad();
  b->bytes = bytes, b->next = blocks, blocks = b;
  ++allocs;
  *p = (unsigned long long)(size_t)b->p;
  return OK;
}
CUresult cuMemFree_v2(unsigned long long p) {
  for (block **b = &blocks; *b; b = &(*b)->next)
    if ((*b)->p == (char *)(size_t)p) {
      block *gone = *b;
      *b = gone->next;
      free(gone->p);
      free(gone);
      return OK;
    }
  return bad();
}
typedef struct {
  size_t srcXInBytes, srcY;
  int srcMemoryType;
  const void *srcHost;
  unsigned long long srcDevice;
  void *srcArray;
  size_t srcPitch;
  size_t dstXInBytes, dstY;
  int dstMemoryType;
  void *dstHost;
  unsigned long long dstDevice;
  void *dstArray;
  size_t dstPitch;
  size_t WidthInBytes, Height;
} CUDA_MEMCPY2D;

static int managed(unsigned long long p, size_t bytes) {
  for (block *b = blocks; b; b = b->next)
    if ((char *)(size_t)p >= b->p && (char *)(size_t)p + bytes <= b->p + b->bytes) return 1;
  return 0;
}

/* Between managed blocks only (CU_MEMORYTYPE_UNIFIED, the rows inside one block each side), on the stream. */
CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *c, void *stream) {
  size_t span_src = (c->Height - 1) * c->srcPitch + c->WidthInBytes, span_dst = (c->Height - 1) * c->dstPitch + c->WidthInBytes;
  if (stream != &kernel_tag || c->srcMemoryType != 4 || c->dstMemoryType != 4 || c->srcXInBytes || c->srcY ||
      c->dstXInBytes || c->dstY || !c->Height || c->WidthInBytes > c->srcPitch || c->WidthInBytes > c->dstPitch ||
      !managed(c->srcDevice, span_src) || !managed(c->dstDevice, span_dst))
    return bad();
  for (size_t r = 0; r < c->Height; ++r)
    memcpy((char *)(size_t)c->dstDevice + r * c->dstPitch, (const char *)(size_t)c->srcDevice + r * c->srcPitch,
           c->WidthInBytes);
  ++copies;
  return OK;
}

CUresult cuPointerGetAttribute(void *value, int attribute, unsigned long long p) {
  if (attribute != 8) return bad(); /* CU_POINTER_ATTRIBUTE_IS_MANAGED: the only one asked */
  for (block *b = blocks; b; b = b->next)
    if ((char *)(size_t)p >= b->p && (char *)(size_t)p < b->p + b->bytes) {
      ++in_place;
      return *(unsigned *)value = 1, OK;
    }
  return ERR_INVALID; /* as the driver answers for memory it does not know (not a mistake) */
}
