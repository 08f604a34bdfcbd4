/* Streaming-read bandwidth: `threads` threads each read their slice of a buffer (what a
 * memory-bound GEMV does with its weights).  The ceiling is the best of several read kernels
 * (scalar, the widest vectors, 4 or 8 accumulators, with and without software prefetch) on huge
 * and on 4 KiB pages, best of `reps` passes each: a single loop can miss what the memory system
 * delivers (a 4-accumulator scalar loop read 14.9 GB/s on a 2-core EPYC where an AVX2 loop read
 * 21.8 GB/s), and a ceiling that a kernel beats is no ceiling. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct {
  const uint64_t *p;
  size_t n;
  uint64_t sum;
  double until;
  int kernel;
  volatile int *go, *done; /* timed_read: start together, count finished slices */
} slice_t;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define PREFETCH_AHEAD 2048 /* bytes */

static uint64_t read_scalar(const uint64_t *p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    a += p[i]; b += p[i + 1]; c += p[i + 2]; d += p[i + 3];
  }
  return a + b + c + d;
}

/* `acc` accumulators of `W`-word vectors (GCC vector extensions: 256-bit loads with AVX2, 512-bit
   with AVX-512) over the slice, optionally prefetching PREFETCH_AHEAD bytes ahead, once per line. */
#define READ_VECTOR(W)                                                                        \
  typedef uint64_t v##W##_t __attribute__((vector_size(8 * W)));                             \
  static uint64_t read_v##W(const uint64_t *p, size_t n, int acc, int prefetch) {             \
    v##W##_t s[8] = {0};                                                                      \
    size_t step = (size_t)acc * W, i = 0;                                                     \
    for (; i + step <= n; i += step) {                                                        \
      if (prefetch)                                                                           \
        for (size_t b = 0; b < step * 8; b += 64)                                             \
          __builtin_prefetch((const char *)(p + i) + b + PREFETCH_AHEAD, 0, 3);               \
      for (int j = 0; j < acc; ++j) s[j] += *(const v##W##_t *)(p + i + (size_t)j * W);       \
    }                                                                                         \
    uint64_t total = 0;                                                                       \
    for (int j = 0; j < 8; ++j)                                                               \
      for (int l = 0; l < W; ++l) total += s[j][l];                                           \
    for (; i < n; ++i) total += p[i];                                                         \
    return total;                                                                             \
  }
READ_VECTOR(4)
READ_VECTOR(8)

/* Kernel k > 0: vector width (256 or 512 bits), accumulators (4 or 8), prefetch or not.  Built without
   AVX-512 (-march=native on an AVX2 host), a 64-byte vector is two 256-bit loads: named so. */
#ifdef __AVX512F__
#define WIDE "512-bit"
#else
#define WIDE "64-byte (2 x 256-bit)"
#endif
#define KERNELS 9
static const char *const kernel_names[KERNELS] = {
    "scalar x4", "256-bit x4", "256-bit x8", "256-bit x4 + prefetch", "256-bit x8 + prefetch",
    WIDE " x4", WIDE " x8", WIDE " x4 + prefetch", WIDE " x8 + prefetch"};

static uint64_t read_with(int kernel, const uint64_t *p, size_t n) {
  if (kernel == 0) return read_scalar(p, n);
  int v = (kernel - 1) / 4, acc = (kernel - 1) % 2 ? 8 : 4, prefetch = (kernel - 1) % 4 >= 2;
  return v ? read_v8(p, n, acc, prefetch) : read_v4(p, n, acc, prefetch);
}

/* Reads the slice with its kernel, then busy-waits until `until` (a now() time; 0: no wait). */
static void *read_slice(void *arg) {
  slice_t *s = arg;
  s->sum = read_with(s->kernel, s->p, s->n);
  while (now() < s->until) {
  }
  return NULL;
}

/* timed_read's threads: wait for the start, read the slice, count it done. */
static void *timed_slice(void *arg) {
  slice_t *s = arg;
  while (!*s->go) {
  }
  s->sum = read_with(s->kernel, s->p, s->n);
  __atomic_add_fetch(s->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

/* Seconds for `threads` threads (the caller one of them) to read `words` words of buf with `kernel`,
   from the moment all have started until the last slice is read: thread creation and joining
   (tens of microseconds each on a VM) are outside the timed span, which a 100 MB read (3 ms) would
   otherwise lose a few percent to. */
static double timed_read(int kernel, const uint64_t *buf, size_t words, int threads) {
  pthread_t tid[64];
  slice_t sl[64];
  volatile int go = 0, done = 0;
  if (threads > 64) threads = 64;
  for (int t = 0; t < threads; ++t) {
    sl[t] = (slice_t){buf + words / threads * t, words / threads, 0, 0, kernel, &go, &done};
    if (t) pthread_create(&tid[t], NULL, timed_slice, &sl[t]);
  }
  double t0 = now();
  go = 1;
  sl[0].sum = read_with(kernel, sl[0].p, sl[0].n);
  __atomic_add_fetch(&done, 1, __ATOMIC_RELEASE);
  while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < threads) {
  }
  double seconds = now() - t0;
  for (int t = 1; t < threads; ++t) pthread_join(tid[t], NULL);
  return seconds;
}

#define HUGE_PAGE ((size_t)2 << 20)

static size_t page_span(size_t bytes) { return (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE; }

/* A mapping of its own, 2 MiB-aligned and advised before its first touch: memory from malloc can be
   heap pages faulted earlier on 4 KiB pages, which advice no longer changes (in a benchmark run the
   ceiling's buffer was so, read slower than the 2 MiB pages of qc's weights, and qc "beat" it). */
static uint64_t *page_buffer(size_t bytes, int huge_pages) {
  size_t size = page_span(bytes);
  uint8_t *raw = mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  uint8_t *buf = (uint8_t *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
  if (buf > raw) munmap(raw, (size_t)(buf - raw));
  munmap(buf + size, (size_t)(raw + HUGE_PAGE - buf));
  madvise(buf, size, huge_pages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  memset(buf, 1, bytes);
  return (uint64_t *)buf;
}

/* Releases a buffer of page_buffer / read_buffer of `bytes`. */
void free_buffer(void *buf, size_t bytes) { munmap(buf, page_span(bytes)); }

/* `threads` threads (the caller one of them) read `words` words of buf with `kernel`, each a
   contiguous slice, then busy-wait until `until` (0: no wait). */
static void read_parallel_with(int kernel, const uint64_t *buf, size_t words, int threads, double until) {
  pthread_t tid[64];
  slice_t sl[64];
  if (threads > 64) threads = 64;
  for (int t = 0; t < threads; ++t) {
    sl[t].p = buf + words / threads * t;
    sl[t].n = words / threads;
    sl[t].until = until;
    sl[t].kernel = kernel;
    if (t) pthread_create(&tid[t], NULL, read_slice, &sl[t]);
  }
  read_slice(&sl[0]);
  for (int t = 1; t < threads; ++t) pthread_join(tid[t], NULL);
}

static void read_parallel(const uint64_t *buf, size_t words, int threads, double until) {
  read_parallel_with(0, buf, words, threads, until);
}

int read_kernels(void) { return 2 * KERNELS; }

/* The name of read kernel `i` of read_kernels() (kernel, then the page size). */
const char *read_kernel_name(int i) {
  static char name[64];
  strcpy(name, kernel_names[i % KERNELS]);
  strcat(name, i < KERNELS ? ", 2 MiB pages" : ", 4 KiB pages");
  return name;
}

/* Bytes per second of each read kernel (best of `reps` passes) into `each` [read_kernels()];
   returns the best.  0 if a buffer cannot be allocated. */
double read_bandwidth(size_t bytes, int threads, int reps, double *each) {
  size_t words = bytes / 8 / 64 * 64;
  if (threads > 64) threads = 64;
  double best = 0;
  for (int huge = 1; huge >= 0; --huge) {
    uint64_t *buf = page_buffer(words * 8, huge);
    if (!buf) return 0;
    for (int k = 0; k < KERNELS; ++k) {
      double top = 0;
      for (int r = 0; r < reps; ++r) {
        double bw = (double)(words / threads * threads * 8) / timed_read(k, buf, words, threads);
        if (bw > top) top = bw;
      }
      each[(1 - huge) * KERNELS + k] = top;
      if (top > best) best = top;
    }
    free_buffer(buf, words * 8);
  }
  return best;
}

/* Seconds of one qc_model_run call (the C API), timed here: what a C caller gets, without the
   Python wrapper, whose own code and data a cache flush evicts too (0.1-0.3 ms a call here).  A
   runner of the benchmarks' interleaved timing.  -1 if the call fails. */
double timed_run(int (*run)(void *, const void *const *, void *const *), void *model, const void *const *inputs,
                 void *const *outputs) {
  double t0 = now();
  if (run(model, inputs, outputs) != 0) return -1;
  return now() - t0;
}

/* A buffer of `bytes` on 2 MiB pages for timed_read_seconds (NULL if it cannot be allocated);
   free_buffer() it. */
void *read_buffer(size_t bytes) { return page_buffer(bytes, 1); }

/* Seconds for `threads` threads to read the `bytes` of buf (read_buffer's: 2 MiB pages) with the read
   kernel of read_kernel_name(`kernel`) (either page size's index), thread creation outside the span:
   the read ceiling of a model with `bytes` of weights, timed between its calls (after the same cache
   flush) so that both see the same moments of this VM's bandwidth, which moves by tens of percent
   within minutes. */
double timed_read_seconds(const void *buf, size_t bytes, int threads, int kernel) {
  size_t words = bytes / 8 / 64 * 64;
  if (threads > 64) threads = 64;
  size_t read = words / threads * threads * 8;
  return timed_read(kernel % KERNELS, buf, words, threads) * (double)bytes / (double)read;
}

/* What the Python-timed benchmarks run before each call: `threads` threads read `bytes` of buf
   (evicting the caches), then all keep busy for `seconds`, so that other engines' spinning
   workers have stopped and no core has clocked down when the call starts (as in a model whose
   previous layer just ran). */
void flush_and_settle(const void *buf, size_t bytes, int threads, double seconds) {
  read_parallel(buf, bytes / 8, threads, 0);
  read_parallel(buf, 0, threads, now() + seconds);
}
