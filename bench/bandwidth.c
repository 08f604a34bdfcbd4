/* Streaming-read bandwidth: `threads` threads each sum their slice of a buffer
 * (what a memory-bound GEMV does with its weights); best of `reps` passes. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { const uint64_t *p; size_t n; uint64_t sum; } slice_t;

static void *read_slice(void *arg) {
  slice_t *s = arg;
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= s->n; i += 4) {
    a += s->p[i]; b += s->p[i + 1]; c += s->p[i + 2]; d += s->p[i + 3];
  }
  s->sum = a + b + c + d;
  return NULL;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Bytes per second; 0 if the buffer cannot be allocated. */
double read_bandwidth(size_t bytes, int threads, int reps) {
  size_t words = bytes / 8;
  uint64_t *buf = aligned_alloc(64, words * 8);
  if (!buf) return 0;
  memset(buf, 1, words * 8);
  pthread_t tid[64];
  slice_t sl[64];
  if (threads > 64) threads = 64;
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
    for (int t = 0; t < threads; ++t) {
      sl[t].p = buf + words / threads * t;
      sl[t].n = words / threads;
      pthread_create(&tid[t], NULL, read_slice, &sl[t]);
    }
    for (int t = 0; t < threads; ++t) pthread_join(tid[t], NULL);
    double bw = (double)(words / threads * threads * 8) / (now() - t0);
    if (bw > best) best = bw;
  }
  free(buf);
  return best;
}
