/* qc runtime support: see qc_support.h. */
#define _GNU_SOURCE
#include "qc_support.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static __thread char qc_error[1024];

const char *qc_last_error(void) { return qc_error; }

void qc_set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(qc_error, sizeof qc_error, fmt, ap);
  va_end(ap);
}

/* ---- weights ------------------------------------------------------------ */

/* Weights live in one 2 MiB-aligned region.  By default the file is read into anonymous memory
   advised for transparent huge pages: a decode step streams every weight once per token, and with
   the page cache's 4 KiB pages that stream takes a TLB miss every 4 KiB (int4 decode of a LLaMA-7B
   layer: 5.0 -> 3.9 ms on a 2-core host).  QC_MMAP_WEIGHTS=1 maps the file instead: no copy, pages
   shared between processes, loaded lazily. */
#define QC_HUGE_PAGE ((size_t)2 << 20)

static size_t weights_span(size_t size) { return (size + QC_HUGE_PAGE - 1) & ~(QC_HUGE_PAGE - 1); }

static uint8_t *reserve_aligned(size_t span, int prot) {
  uint8_t *raw = mmap(NULL, span + QC_HUGE_PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  uint8_t *base = (uint8_t *)(((uintptr_t)raw + QC_HUGE_PAGE - 1) & ~(uintptr_t)(QC_HUGE_PAGE - 1));
  if (base > raw) munmap(raw, (size_t)(base - raw));
  munmap(base + span, (size_t)(raw + QC_HUGE_PAGE - base));
  return base;
}

static int read_all(int fd, uint8_t *dst, size_t size) {
  for (size_t done = 0; done < size;) {
    ssize_t got = pread(fd, dst + done, size - done, (off_t)done);
    if (got < 0 && errno == EINTR) continue;
    if (got == 0) errno = EIO; /* the file shrank since fstat */
    if (got <= 0) return -1;
    done += (size_t)got;
  }
  return 0;
}

const uint8_t *qc_map_weights(const char *path, size_t expected_size) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    qc_set_error("cannot open weight file '%s': %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (size_t)st.st_size != expected_size) {
    qc_set_error("weight file '%s' has %lld bytes, expected %zu (stale or foreign file?)", path,
                 (long long)st.st_size, expected_size);
    close(fd);
    return NULL;
  }
  const char *mode = getenv("QC_MMAP_WEIGHTS");
  int mapped = mode && *mode && strcmp(mode, "0") != 0;
  size_t span = weights_span(expected_size);
  uint8_t *base = reserve_aligned(span, mapped ? PROT_NONE : PROT_READ | PROT_WRITE);
  int failed = !base;
  if (!failed && mapped) {
    failed = mmap(base, expected_size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED;
  } else if (!failed) {
    madvise(base, span, MADV_HUGEPAGE);  /* a hint: without THP the copy is only as fast as the mapping */
    failed = read_all(fd, base, expected_size) || mprotect(base, span, PROT_READ);
  }
  int err = errno;
  close(fd);
  if (failed) {
    qc_set_error("cannot %s weight file '%s': %s", mapped ? "map" : "read", path, strerror(err));
    if (base) munmap(base, span);
    return NULL;
  }
  if (memcmp(base, "QCWB0001", 8) != 0) {
    qc_set_error("'%s' is not a qc weight file", path);
    munmap(base, span);
    return NULL;
  }
  return base;
}

void qc_unmap_weights(const uint8_t *base, size_t size) {
  if (base) munmap((void *)base, weights_span(size));
}

/* ---- AMX ------------------------------------------------------------------ */

/* Linux hands out the AMX tile state only to processes that ask (arch_prctl, kernel >= 5.16). */
int qc_require_amx(void) {
#if defined(__x86_64__) && defined(SYS_arch_prctl)
  const int req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
  if (syscall(SYS_arch_prctl, req_xcomp_perm, xfeature_xtiledata) == 0) return 0;
  qc_set_error("the model's kernels use AMX tiles, which this system does not grant (arch_prctl: %s); "
               "compile it with --target-features=-amx-tile or for another --target-cpu", strerror(errno));
#else
  qc_set_error("the model's kernels use AMX tiles: x86-64 Linux only");
#endif
  return -1;
}

/* ---- thread pool ---------------------------------------------------------- */

typedef struct {
  pthread_mutex_t lock;
  pthread_cond_t wake, done;
  qc_task_fn fn;
  void *ctx;
  int64_t n, chunks, next_chunk, finished;
  int64_t generation;
  int nthreads;
  int pinned;             /* workers pinned: worker_cpu[i] is worker i's CPU, spare_cpu the caller's */
  int spare_cpu, worker_cpu[CPU_SETSIZE];
  pthread_t workers[CPU_SETSIZE];
} qc_pool;

static qc_pool pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* Waiting threads spin this many rounds before sleeping: generated code calls
   the pool many times per run, and a futex wake-up costs more than a short kernel. */
#define QC_SPIN_ROUNDS 4000

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* Spins until *p != old; returns 0 if it still equals old after the spin. */
static int spin_while_equal(const int64_t *p, int64_t old) {
  for (int i = 0; i < QC_SPIN_ROUNDS; i++) {
    if (__atomic_load_n(p, __ATOMIC_ACQUIRE) != old) return 1;
    cpu_relax();
  }
  return 0;
}

static void run_chunks(void) {
  for (;;) {
    pthread_mutex_lock(&pool.lock);
    int64_t c = pool.next_chunk < pool.chunks ? pool.next_chunk++ : -1;
    qc_task_fn fn = pool.fn;
    void *ctx = pool.ctx;
    int64_t n = pool.n, chunks = pool.chunks;
    pthread_mutex_unlock(&pool.lock);
    if (c < 0) return;
    fn(ctx, c * n / chunks, (c + 1) * n / chunks);
    pthread_mutex_lock(&pool.lock);
    if (__atomic_add_fetch(&pool.finished, 1, __ATOMIC_RELEASE) == pool.chunks) pthread_cond_signal(&pool.done);
    pthread_mutex_unlock(&pool.lock);
  }
}

static void *worker(void *arg) {
  (void)arg;
  int64_t seen = 0;
  for (;;) {
    spin_while_equal(&pool.generation, seen);
    pthread_mutex_lock(&pool.lock);
    while (pool.generation == seen) pthread_cond_wait(&pool.wake, &pool.lock);
    seen = pool.generation;
    pthread_mutex_unlock(&pool.lock);
    run_chunks();
  }
  return NULL;
}

/* Workers are pinned one per CPU the process may use, and a CPU is left for the caller: unpinned,
   a sleeping worker woken by the caller was often queued on the caller's own core, and the two
   took turns on it (int4 decode of a LLaMA-7B layer: 6.3-7.0 ms instead of 3.5, median, when the
   caller had slept before the call).  The caller's CPU is the OS's choice: whenever it is found
   on a worker's CPU, that worker moves to the spare one (avoid_caller_cpu).  Not pinned when
   there are more threads than CPUs, or with QC_PIN_THREADS=0. */
static void pin(int worker, int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  pthread_setaffinity_np(pool.workers[worker], sizeof one, &one);
  pool.worker_cpu[worker] = cpu;
}

static void pin_workers(void) {
  const char *env = getenv("QC_PIN_THREADS");
  cpu_set_t allowed;
  if ((env && strcmp(env, "0") == 0) || sched_getaffinity(0, sizeof allowed, &allowed) != 0 ||
      pool.nthreads > CPU_COUNT(&allowed))
    return;
  int cpus[CPU_SETSIZE], count = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET(cpu, &allowed)) cpus[count++] = cpu;
  int caller = sched_getcpu();
  int first = caller >= 0 && caller < CPU_SETSIZE && CPU_ISSET(caller, &allowed) ? caller : cpus[0];
  pool.spare_cpu = first;
  for (int i = 1, next = 0; i < pool.nthreads; i++, next++) {
    if (cpus[next] == first) next++;
    pin(i, cpus[next]);
  }
  pool.pinned = 1;
}

static void avoid_caller_cpu(void) {
  int caller = sched_getcpu();
  if (!pool.pinned || caller == pool.spare_cpu) return;
  for (int i = 1; i < pool.nthreads; i++) {
    if (pool.worker_cpu[i] != caller) continue;
    pin(i, pool.spare_cpu);
    pool.spare_cpu = caller;
    return;
  }
}

static void pool_init(void) {
  const char *env = getenv("QC_NUM_THREADS");
  long n = env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
  pool.nthreads = n < 1 ? 1 : (int)n;
  if (pool.nthreads > CPU_SETSIZE) pool.nthreads = CPU_SETSIZE;
  for (int i = 1; i < pool.nthreads; i++) {
    pthread_create(&pool.workers[i], NULL, worker, NULL);
    pthread_detach(pool.workers[i]);
  }
  pin_workers();
}

int qc_num_threads(void) {
  pthread_once(&pool_once, pool_init);
  return pool.nthreads;
}

static __thread int thread_limit;

int qc_thread_limit(int threads) {
  int previous = thread_limit;
  thread_limit = threads;
  return previous;
}

void qc_parallel_for(qc_task_fn fn, void *ctx, int64_t n, int per_thread) {
  static pthread_mutex_t serial = PTHREAD_MUTEX_INITIALIZER;
  int threads = qc_num_threads();
  if (thread_limit > 0 && thread_limit < threads) threads = thread_limit;
  /* One parallel region at a time; a caller that finds the pool busy (another thread's run, or
     this one's: a task that splits again) does its work itself rather than wait. */
  if (threads == 1 || n <= 1 || pthread_mutex_trylock(&serial) != 0) {
    fn(ctx, 0, n);
    return;
  }
  avoid_caller_cpu();
  pthread_mutex_lock(&pool.lock);
  pool.fn = fn;
  pool.ctx = ctx;
  pool.n = n;
  int64_t chunks = (int64_t)threads * (per_thread < 1 ? 1 : per_thread);
  pool.chunks = n < chunks ? n : chunks; /* workers beyond the limit find no chunk */
  pool.next_chunk = 0;
  pool.finished = 0;
  __atomic_add_fetch(&pool.generation, 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&pool.wake);
  pthread_mutex_unlock(&pool.lock);
  run_chunks();
  for (int i = 0; i < QC_SPIN_ROUNDS && __atomic_load_n(&pool.finished, __ATOMIC_ACQUIRE) < pool.chunks; i++)
    cpu_relax();
  pthread_mutex_lock(&pool.lock);
  while (pool.finished < pool.chunks) pthread_cond_wait(&pool.done, &pool.lock);
  pthread_mutex_unlock(&pool.lock);
  pthread_mutex_unlock(&serial);
}

/* ---- .npy ------------------------------------------------------------------- */

int qc_npy_load(const char *path, char descr[8], int64_t shape[8], int *ndim, void **data, size_t *nbytes) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    qc_set_error("cannot open '%s': %s", path, strerror(errno));
    return -1;
  }
  unsigned char pre[10];
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    qc_set_error("'%s' is not a .npy file", path);
    fclose(f);
    return -1;
  }
  size_t hlen = pre[8] | (pre[9] << 8);
  if (pre[6] >= 2) {
    unsigned char more[2];
    if (fread(more, 1, 2, f) != 2) goto bad;
    hlen |= ((size_t)more[0] << 16) | ((size_t)more[1] << 24);
  }
  char *header = calloc(1, hlen + 1);
  if (fread(header, 1, hlen, f) != hlen) { free(header); goto bad; }
  char *d = strstr(header, "'descr': '"), *s = strstr(header, "'shape': (");
  if (!d || !s || strstr(header, "'fortran_order': True")) {
    qc_set_error("'%s': unsupported .npy header (need C order)", path);
    free(header);
    fclose(f);
    return -1;
  }
  d += 10;
  size_t i = 0;
  while (d[i] && d[i] != '\'' && i < 7) { descr[i] = d[i]; i++; }
  descr[i] = 0;
  s += 10;
  *ndim = 0;
  size_t count = 1;
  while (*s && *s != ')' && *ndim < 8) {
    while (*s == ' ' || *s == ',') s++;
    if (*s == ')') break;
    shape[*ndim] = strtoll(s, &s, 10);
    count *= (size_t)shape[(*ndim)++];
  }
  free(header);
  size_t item = (size_t)atoi(descr + 2);
  if (descr[1] == 'b' && descr[2] == '1') item = 1;
  *nbytes = count * item;
  *data = malloc(*nbytes ? *nbytes : 1);
  if (fread(*data, 1, *nbytes, f) != *nbytes) { free(*data); goto bad; }
  fclose(f);
  return 0;
bad:
  qc_set_error("'%s': truncated .npy file", path);
  fclose(f);
  return -1;
}

int qc_npy_save(const char *path, const char *descr, const int64_t *shape, int ndim, const void *data, size_t nbytes) {
  char header[256], dims[160] = "";
  for (int i = 0; i < ndim; i++) {
    char one[24];
    snprintf(one, sizeof one, "%lld%s", (long long)shape[i], ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
    strcat(dims, one);
  }
  int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
  int total = ((10 + len + 1 + 63) / 64) * 64;
  while (10 + len < total - 1) header[len++] = ' ';
  header[len++] = '\n';
  FILE *f = fopen(path, "wb");
  if (!f) {
    qc_set_error("cannot write '%s': %s", path, strerror(errno));
    return -1;
  }
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
  fwrite(pre, 1, 10, f);
  fwrite(header, 1, (size_t)len, f);
  fwrite(data, 1, nbytes, f);
  return fclose(f) == 0 ? 0 : -1;
}

/* ---- MLIR runtime support ---------------------------------------------------- */

/* memref.copy of non-contiguous memrefs lowers to this call (MLIR's CRunnerUtils ABI). */
typedef struct {
  int64_t rank;
  void *descriptor; /* {T *alloc, *aligned; int64_t offset, sizes[rank], strides[rank]} */
} qc_unranked_memref;

static void copy_dim(char *dst, const char *src, int64_t elem, int64_t rank, const int64_t *sizes,
                     const int64_t *sstr, const int64_t *dstr) {
  if (rank == 0) {
    memcpy(dst, src, (size_t)elem);
    return;
  }
  for (int64_t i = 0; i < sizes[0]; i++)
    copy_dim(dst + i * dstr[0] * elem, src + i * sstr[0] * elem, elem, rank - 1, sizes + 1, sstr + 1, dstr + 1);
}

void memrefCopy(int64_t elem_size, qc_unranked_memref *src, qc_unranked_memref *dst) {
  int64_t rank = src->rank;
  char **s = (char **)src->descriptor, **d = (char **)dst->descriptor;
  const int64_t *sm = (const int64_t *)(s + 2), *dm = (const int64_t *)(d + 2);
  char *sp = s[1] + sm[0] * elem_size, *dp = d[1] + dm[0] * elem_size;
  copy_dim(dp, sp, elem_size, rank, sm + 1, sm + 1 + rank, dm + 1 + rank);
}

/* ---- buffers of generated code ---------------------------------------------
   finalize-memref-to-llvm{use-generic-functions} calls these instead of malloc/free.
   A model allocates the same buffer sizes on every run; freed blocks are kept per
   size and handed out again, so runs do not pay mmap + page faults for fresh
   large blocks. Blocks are 64-byte aligned; a header before each records its size. */

#define QC_ALIGN 64
#define QC_BUCKETS 256

typedef struct qc_block {
  size_t size, prefix;
  struct qc_block *next;
} qc_block;

static struct {
  pthread_mutex_t lock;
  size_t sizes[QC_BUCKETS];
  qc_block *free[QC_BUCKETS];
} cache = {PTHREAD_MUTEX_INITIALIZER, {0}, {0}};

static qc_block *header_of(void *ptr) { return (qc_block *)((char *)ptr - sizeof(qc_block)); }

void *_mlir_memref_to_llvm_aligned_alloc(uint64_t alignment, uint64_t size) {
  size_t prefix = alignment > QC_ALIGN ? alignment : QC_ALIGN;
  if (prefix == QC_ALIGN) {
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < QC_BUCKETS && cache.sizes[i]; i++) {
      if (cache.sizes[i] == size && cache.free[i]) {
        qc_block *b = cache.free[i];
        cache.free[i] = b->next;
        pthread_mutex_unlock(&cache.lock);
        return (char *)b + sizeof(qc_block);
      }
    }
    pthread_mutex_unlock(&cache.lock);
  }
  void *base = NULL;
  if (posix_memalign(&base, prefix, prefix + (size ? size : 1))) return NULL;
  char *ptr = (char *)base + prefix;
  qc_block *b = header_of(ptr);
  b->size = size;
  b->prefix = prefix;
  b->next = NULL;
  return ptr;
}

void *_mlir_memref_to_llvm_alloc(uint64_t size) { return _mlir_memref_to_llvm_aligned_alloc(QC_ALIGN, size); }

void _mlir_memref_to_llvm_free(void *ptr) {
  if (!ptr) return;
  qc_block *b = header_of(ptr);
  if (b->prefix == QC_ALIGN) {
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < QC_BUCKETS; i++) {
      if (cache.sizes[i] == 0) cache.sizes[i] = b->size;
      if (cache.sizes[i] == b->size) {
        b->next = cache.free[i];
        cache.free[i] = b;
        pthread_mutex_unlock(&cache.lock);
        return;
      }
    }
    pthread_mutex_unlock(&cache.lock);
  }
  free((char *)ptr - b->prefix);
}
