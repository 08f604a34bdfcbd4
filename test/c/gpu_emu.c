/* Runs a GPU model's kernels on the CPU, for the tests on machines without a GPU: the kernels' own
   LLVM IR (qc-compile --emit nvvm, the IR that becomes the PTX) compiled for the host
   (test/python/gpu_emulator.py) and linked with this file, which supplies what NVPTX provides: the
   special registers (thread and block ids and counts), __syncthreads, warp shuffles, dp4a, and the
   libdevice math functions.  test/c/mock_libcuda.c calls qc_emu_launch for each kernel launch.

   A block's threads run one after another.  A kernel that synchronizes (its <name>__emu_sync is 1)
   runs each thread as a fiber that yields at every barrier and shuffle; the block's threads
   (a shuffle: the warp's) all reach it before any goes on, as on the GPU.  A barrier that not every
   live thread reaches is reported, not hung on. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WARP = 32, STACK = 256 * 1024 };
enum { READY, AT_BLOCK, AT_WARP, DONE };

typedef void (*kernel_fn)(void **);
typedef struct {
  void *sp;  /* the fiber's stack pointer while it waits (qc_emu_switch_to) */
  int state;
} fiber;

/* qc_emu_switch_to(&from, to): saves the callee-saved registers on this stack, its stack pointer in from, and
   resumes the context whose stack pointer is to.  swapcontext does the same plus a signal-mask system
   call per switch, which took a third of an emulated decoder's time.  (x86-64 System V; the kernels
   leave MXCSR and the x87 control word as they are.) */
#ifndef __x86_64__
#error "gpu_emu.c switches fibers with x86-64 code (qc_emu_switch_to)"
#endif
__attribute__((visibility("hidden"))) void qc_emu_switch_to(void **from, void *to);
__asm__(".text\n.globl qc_emu_switch_to\n.hidden qc_emu_switch_to\n.type qc_emu_switch_to, @function\n"
        "qc_emu_switch_to:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n  ret\n"
        ".size qc_emu_switch_to, .-qc_emu_switch_to\n");

static unsigned tid[3], ctaid[3], ntid[3], nctaid[3];
static fiber *fibers;
static int current, threads;
static void *scheduler;
static float lanes[1024];  /* the values a warp's lanes offer to a shuffle, by thread */

#define SREG(name, array, d) \
  uint32_t qc_emu_##name##_##d(void) { return array[#d[0] - 'x']; }
SREG(tid, tid, x) SREG(tid, tid, y) SREG(tid, tid, z)
SREG(ctaid, ctaid, x) SREG(ctaid, ctaid, y) SREG(ctaid, ctaid, z)
SREG(ntid, ntid, x) SREG(ntid, ntid, y) SREG(ntid, ntid, z)
SREG(nctaid, nctaid, x) SREG(nctaid, nctaid, y) SREG(nctaid, nctaid, z)

static void set_ids(int t) {
  tid[0] = t % ntid[0];
  tid[1] = t / ntid[0] % ntid[1];
  tid[2] = t / (ntid[0] * ntid[1]);
}

static void yield(int state) {
  if (!fibers) {
    fprintf(stderr, "gpu-emu: a kernel synchronized but was not marked so\n");
    abort();
  }
  fibers[current].state = state;
  qc_emu_switch_to(&fibers[current].sp, scheduler);
}

void qc_emu_barrier(void) { yield(AT_BLOCK); }
void qc_emu_barrier_n(int32_t id) { (void)id; yield(AT_BLOCK); }

static float shuffle(float v, int source) {
  lanes[current] = v;
  yield(AT_WARP);  /* every lane has offered its value */
  float got = lanes[source];
  yield(AT_WARP);  /* every lane has read before any offers again */
  return got;
}

/* llvm.nvvm.shfl.sync.<mode>.f32(mask, value, lane, clamp): the lanes outside the mask are not
   modelled (every kernel here shuffles with the whole warp). */
float qc_emu_shfl_bfly_f32(uint32_t mask, float v, uint32_t b, uint32_t clamp) {
  (void)mask; (void)clamp;
  int lane = current % WARP;
  return shuffle(v, current - lane + (lane ^ (int)b));
}
float qc_emu_shfl_down_f32(uint32_t mask, float v, uint32_t b, uint32_t clamp) {
  (void)mask;
  int lane = current % WARP, last = (int)(clamp & 31);
  return shuffle(v, current - lane + (lane + (int)b <= last ? lane + (int)b : lane));
}
float qc_emu_shfl_idx_f32(uint32_t mask, float v, uint32_t b, uint32_t clamp) {
  (void)mask; (void)clamp;
  return shuffle(v, current - current % WARP + (int)(b & 31));
}

/* llvm.nvvm.idp4a.<a>.<b>(a, b, c): c + the dot product of a's and b's 4 bytes (dp4a) */
int32_t qc_emu_dp4a_u_s(int32_t a, int32_t b, int32_t c) {
  for (int j = 0; j < 4; ++j) c += (int32_t)(uint8_t)(a >> 8 * j) * (int32_t)(int8_t)(b >> 8 * j);
  return c;
}
int32_t qc_emu_dp4a_s_s(int32_t a, int32_t b, int32_t c) {
  for (int j = 0; j < 4; ++j) c += (int32_t)(int8_t)(a >> 8 * j) * (int32_t)(int8_t)(b >> 8 * j);
  return c;
}

static kernel_fn running;
static void **running_params;

static void fiber_main(void) {
  running(running_params);
  fibers[current].state = DONE;
  qc_emu_switch_to(&fibers[current].sp, scheduler);  /* never resumed */
}

/* A new fiber's stack: what qc_emu_switch_to pops (six registers), then fiber_main as its return address, entered
   with the stack aligned as after a call. */
static void *fiber_stack(char *base, size_t size) {
  uintptr_t *top = (uintptr_t *)(((uintptr_t)base + size) & ~(uintptr_t)15);
  *--top = 0;                       /* fiber_main's return address: it never returns */
  *--top = (uintptr_t)fiber_main;
  for (int r = 0; r < 6; ++r) *--top = 0;
  return top;
}

/* Resumes the fibers waiting at a point every live thread of their group (block or warp) reached. */
static int release(void) {
  int released = 0;
  for (int w = 0; w < threads; w += WARP) {
    int end = w + WARP < threads ? w + WARP : threads, waiting = 0, live = 0;
    for (int t = w; t < end; ++t) {
      live += fibers[t].state != DONE;
      waiting += fibers[t].state == AT_WARP;
    }
    if (waiting && waiting == live)
      for (int t = w; t < end; ++t)
        if (fibers[t].state == AT_WARP) fibers[t].state = READY, ++released;
  }
  if (released) return released;
  int waiting = 0, live = 0;
  for (int t = 0; t < threads; ++t) {
    live += fibers[t].state != DONE;
    waiting += fibers[t].state == AT_BLOCK;
  }
  if (waiting && waiting == live)
    for (int t = 0; t < threads; ++t)
      if (fibers[t].state == AT_BLOCK) fibers[t].state = READY, ++released;
  return released;
}

static int run_fibers(const char *name) {
  static char *stacks;
  if (!stacks) stacks = malloc((size_t)1024 * STACK);
  static fiber all[1024];
  fibers = all;
  for (int t = 0; t < threads; ++t) {
    all[t].sp = fiber_stack(stacks + (size_t)t * STACK, STACK);
    all[t].state = READY;
  }
  for (;;) {
    int ran = 0;
    for (current = 0; current < threads; ++current) {
      if (all[current].state != READY) continue;
      set_ids(current);
      qc_emu_switch_to(&scheduler, all[current].sp);
      ++ran;
    }
    if (!ran && !release()) break;
  }
  fibers = NULL;
  for (int t = 0; t < threads; ++t)
    if (all[t].state != DONE) {
      fprintf(stderr, "gpu-emu: %s: thread %d waits at a barrier that not every thread of its block reaches\n",
              name, t);
      return 1;
    }
  return 0;
}

/* Runs kernel ``name`` over the grid; 0, or 1 after saying what went wrong. */
int qc_emu_launch(const char *name, const unsigned grid[3], const unsigned block[3], void **params) {
  char symbol[512];
  snprintf(symbol, sizeof symbol, "%s__emu", name);
  kernel_fn kernel = (kernel_fn)dlsym(RTLD_DEFAULT, symbol);
  snprintf(symbol, sizeof symbol, "%s__emu_sync", name);
  const int *sync = dlsym(RTLD_DEFAULT, symbol);
  if (!kernel || !sync) {
    fprintf(stderr, "gpu-emu: no host code for kernel %s\n", name);
    return 1;
  }
  memcpy(ntid, block, sizeof ntid);
  memcpy(nctaid, grid, sizeof nctaid);
  threads = (int)(block[0] * block[1] * block[2]);
  running = kernel;
  running_params = params;
  for (ctaid[2] = 0; ctaid[2] < grid[2]; ++ctaid[2])
    for (ctaid[1] = 0; ctaid[1] < grid[1]; ++ctaid[1])
      for (ctaid[0] = 0; ctaid[0] < grid[0]; ++ctaid[0]) {
        if (*sync) {
          if (run_fibers(name)) return 1;
          continue;
        }
        for (current = 0; current < threads; ++current) {
          set_ids(current);
          kernel(params);
        }
      }
  return 0;
}

/* libdevice, as the CUDA toolkit defines it (to within its documented ulps) */
float __nv_fmaf(float a, float b, float c) { return fmaf(a, b, c); }
float __nv_floorf(float a) { return floorf(a); }
float __nv_ceilf(float a) { return ceilf(a); }
float __nv_truncf(float a) { return truncf(a); }
float __nv_fabsf(float a) { return fabsf(a); }
float __nv_sqrtf(float a) { return sqrtf(a); }
float __nv_rsqrtf(float a) { return 1.0f / sqrtf(a); }
float __nv_rintf(float a) { return rintf(a); }
float __nv_roundf(float a) { return roundf(a); }
float __nv_fminf(float a, float b) { return fminf(a, b); }
float __nv_fmaxf(float a, float b) { return fmaxf(a, b); }
float __nv_copysignf(float a, float b) { return copysignf(a, b); }
float __nv_log2f(float a) { return log2f(a); }
float __nv_logf(float a) { return logf(a); }
float __nv_exp2f(float a) { return exp2f(a); }
