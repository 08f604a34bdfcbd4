/* Makes this process and its children see an AVX2-only x86 CPU (AVX2 + FMA; no AVX-512, VNNI, AVX-VNNI or
   AMX), so that ONNX Runtime, PyTorch, LLVM's host detection and gcc -march=native pick the kernels they pick
   on such a host (AMD Zen 2/3 EPYCs) while running on one that has more.  LD_PRELOADed by bench/avx2_only.sh.

   How: Linux's CPUID faulting (arch_prctl(ARCH_SET_CPUID, 0); lscpu flag cpuid_fault, emulated by KVM for
   guests) turns every CPUID instruction of this process into a SIGSEGV.  The handler below runs the real CPUID
   with faulting briefly off, clears the feature bits an AVX2-only CPU lacks, writes the result into the
   faulting context's registers and steps over the instruction.  Faulting is per thread, kept by the threads a
   thread creates and dropped at execve: the constructor sets it again in each exec'd program (LD_PRELOAD is
   inherited).  Other SIGSEGV handlers (Python's faulthandler, LLVM's) are installed behind this one through the
   interposed sigaction and signal below and get every fault that is not a CPUID.  The code still runs on the real CPU: an
   instruction the mask hides still executes if a program uses it without asking CPUID (none of the above do). */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static sigaction_fn real_sigaction;
static struct sigaction chained; /* the SIGSEGV handler the program installed, run for faults not ours */

static long set_cpuid(int enabled) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

static void hide(uint32_t leaf, uint32_t subleaf, uint32_t r[4]) {
  if (leaf == 7 && subleaf == 0) {
    /* ebx: avx512f dq ifma pf er cd bw vl */
    r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
    /* ecx: avx512_vbmi, avx512_vbmi2, avx512_vnni, avx512_bitalg, avx512_vpopcntdq */
    r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
    /* edx: avx512_4vnniw 4fmaps vp2intersect, amx_bf16, avx512_fp16, amx_tile, amx_int8 */
    r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
  } else if (leaf == 7 && subleaf == 1) {
    /* eax: avx_vnni, avx512_bf16, amx_fp16, avx_ifma; edx: avx_vnni_int8, avx_ne_convert, amx_complex, avx10 */
    r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
    r[3] &= ~((1u << 4) | (1u << 5) | (1u << 8) | (1u << 19));
  } else if (leaf == 0x24 || leaf == 0x1d || leaf == 0x1e) {
    r[0] = r[1] = r[2] = r[3] = 0; /* AVX10 and AMX tile descriptions */
  }
}

static void on_segv(int sig, siginfo_t *info, void *context) {
  ucontext_t *uc = context;
  greg_t *g = uc->uc_mcontext.gregs;
  const unsigned char *ip = (const unsigned char *)g[REG_RIP];
  if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
    uint32_t leaf = (uint32_t)g[REG_RAX], subleaf = (uint32_t)g[REG_RCX], r[4];
    set_cpuid(1);
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(subleaf));
    set_cpuid(0);
    hide(leaf, subleaf, r);
    g[REG_RAX] = r[0];
    g[REG_RBX] = r[1];
    g[REG_RCX] = r[2];
    g[REG_RDX] = r[3];
    g[REG_RIP] += 2;
    return;
  }
  if (chained.sa_flags & SA_SIGINFO) {
    chained.sa_sigaction(sig, info, context);
  } else if (chained.sa_handler != SIG_DFL && chained.sa_handler != SIG_IGN) {
    chained.sa_handler(sig);
  } else { /* default action: die of the fault, as without this library */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    real_sigaction(SIGSEGV, &dfl, NULL);
  }
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (sig != SIGSEGV || !real_sigaction) return real_sigaction ? real_sigaction(sig, act, old)
                                                              : ((sigaction_fn)dlsym(RTLD_NEXT, "sigaction"))(sig, act, old);
  if (old) *old = chained;
  if (act) chained = *act;
  return 0;
}

/* glibc's signal() reaches its sigaction internally, past the one above (gcc's cc1 uses it) */
sighandler_t signal(int sig, sighandler_t handler) {
  struct sigaction act = {.sa_handler = handler, .sa_flags = SA_RESTART}, old;
  sigemptyset(&act.sa_mask);
  return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

sighandler_t bsd_signal(int sig, sighandler_t handler) { return signal(sig, handler); }

__attribute__((constructor)) static void start(void) {
  real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  struct sigaction ours = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_NODEFER};
  sigemptyset(&ours.sa_mask);
  if (real_sigaction(SIGSEGV, &ours, NULL) != 0 || set_cpuid(0) != 0) {
    perror("cpuid_avx2: CPUID faulting is not available here (arch_prctl ARCH_SET_CPUID)");
    exit(1);
  }
}
