/* Streaming-read bandwidth: `threads` threads each sum their slice of a buffer
 * (what a memory-bound GEMV does with its weights); best of `reps` passes.  The buffer is
 * advised for transparent huge pages, as qc's weights are: on this project's 2-core host
 * 4 KiB pages read 34 GB/s and 2 MiB pages 36 GB/s. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct { const uint64_t *p; size_t n; uint64_t sum; double until; } slice_t;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Sums the slice, then busy-waits until `until` (a now() time; 0: no wait). */
static void *read_slice(void *arg) {
  slice_t *s = arg;
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= s->n; i += 4) {
    a += s->p[i]; b += s->p[i + 1]; c += s->p[i + 2]; d += s->p[i + 3];
  }
  s->sum = a + b + c + d;
  while (now() < s->until) {
  }
  return NULL;
}

static uint64_t *huge_buffer(size_t bytes) {
  size_t huge = (size_t)2 << 20, size = (bytes + huge - 1) / huge * huge;
  uint64_t *buf = aligned_alloc(huge, size);
  if (!buf) return NULL;
  madvise(buf, size, MADV_HUGEPAGE);
  memset(buf, 1, bytes);
  return buf;
}

/* `threads` threads (the caller one of them) read `words` words of buf, each a contiguous slice,
   then busy-wait until `until` (0: no wait). */
static void read_parallel(const uint64_t *buf, size_t words, int threads, double until) {
  pthread_t tid[64];
  slice_t sl[64];
  if (threads > 64) threads = 64;
  for (int t = 0; t < threads; ++t) {
    sl[t].p = buf + words / threads * t;
    sl[t].n = words / threads;
    sl[t].until = until;
    if (t) pthread_create(&tid[t], NULL, read_slice, &sl[t]);
  }
  read_slice(&sl[0]);
  for (int t = 1; t < threads; ++t) pthread_join(tid[t], NULL);
}

/* Bytes per second; 0 if the buffer cannot be allocated. */
double read_bandwidth(size_t bytes, int threads, int reps) {
  size_t words = bytes / 8;
  uint64_t *buf = huge_buffer(words * 8);
  if (!buf) return 0;
  if (threads > 64) threads = 64;
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    read_parallel(buf, words, threads, 0);
    double bw = (double)(words / threads * threads * 8) / (now() - t0);
    if (bw > best) best = bw;
  }
  free(buf);
  return best;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median seconds of `iters` calls of a qc model through its C API (qc_model_run), each after
   `threads` threads have read `flush_bytes`: no weight is left in the caches and no core is idle
   when the call starts.  Times what a C caller gets, without the Python wrapper, whose own code
   and data the flush evicts too.  -1 if the buffer cannot be allocated, -2 if a call fails. */
double cold_run_median(int (*run)(void *, const void *const *, void *const *), void *model,
                       const void *const *inputs, void *const *outputs, int iters, size_t flush_bytes,
                       int threads) {
  uint64_t *buf = huge_buffer(flush_bytes);
  double *times = malloc(sizeof(double) * (iters > 0 ? iters : 1));
  if (!buf || !times) return -1;
  double median = 0;
  for (int i = 0; i < iters; ++i) {
    read_parallel(buf, flush_bytes / 8, threads, 0);
    double t0 = now();
    if (run(model, inputs, outputs) != 0) { median = -2; break; }
    times[i] = now() - t0;
  }
  if (median == 0 && iters > 0) {
    qsort(times, iters, sizeof(double), by_value);
    median = times[iters / 2];
  }
  free(times);
  free(buf);
  return median;
}

/* What the Python-timed benchmarks run before each call: `threads` threads read `bytes` of buf
   (evicting the caches), then all keep busy for `seconds`, so that other engines' spinning
   workers have stopped and no core has clocked down when the call starts (as in cold_run_median,
   and as in a model whose previous layer just ran). */
void flush_and_settle(const void *buf, size_t bytes, int threads, double seconds) {
  read_parallel(buf, bytes / 8, threads, 0);
  read_parallel(buf, 0, threads, now() + seconds);
}
