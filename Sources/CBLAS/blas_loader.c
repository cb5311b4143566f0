// Run-time loading of OpenBLAS with a core type chosen from the CPU's features.
// See include/pretext_blas.h for why this is not a link-time dependency.
#define _GNU_SOURCE
#include "pretext_blas.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define PRETEXT_X86 1
#endif

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                         const float *, int, float, float *, int);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*get_string_fn)(void);

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_status = -1;
static char load_message[512];
static char library_path[256];
static char requested_core[32];
static int core_from_user;
static sgemm_fn p_sgemm;
static set_threads_fn p_set_threads;
static get_threads_fn p_get_threads;
static get_string_fn p_get_config;
static get_string_fn p_get_corename;

#ifdef PRETEXT_X86
static unsigned long long read_xcr0(void) {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((unsigned long long)edx << 32) | eax;
}
#endif

pretext_cpu_features pretext_cpu_detect(void) {
  pretext_cpu_features f;
  memset(&f, 0, sizeof f);
#ifdef PRETEXT_X86
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  int osxsave = (c >> 27) & 1;
  unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
  // The OS must save the registers too: YMM state (bits 1-2), ZMM state (bits 5-7).
  int ymm_ok = (xcr0 & 0x6) == 0x6;
  int zmm_ok = ymm_ok && (xcr0 & 0xe0) == 0xe0;
  f.sse42 = (c >> 20) & 1;
  f.avx = ymm_ok && ((c >> 28) & 1);
  f.fma = ymm_ok && ((c >> 12) & 1);
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = ymm_ok && ((b >> 5) & 1);
    f.avx512f = zmm_ok && ((b >> 16) & 1);
    f.avx512dq = zmm_ok && ((b >> 17) & 1);
    f.avx512bw = zmm_ok && ((b >> 30) & 1);
    f.avx512vl = zmm_ok && ((b >> 31) & 1);
    f.avx512_vnni = zmm_ok && ((c >> 11) & 1);
    f.amx = (d >> 24) & 1;
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
    f.avx_vnni = ymm_ok && ((a >> 4) & 1);
    f.avx512_bf16 = zmm_ok && ((a >> 5) & 1);
  }
#endif
  return f;
}

const char *pretext_cpu_brand(void) {
  static char brand[49];
#ifdef PRETEXT_X86
  unsigned int regs[12];
  if (brand[0] == 0 && __get_cpuid(0x80000000, &regs[0], &regs[1], &regs[2], &regs[3]) &&
      regs[0] >= 0x80000004) {
    for (unsigned int i = 0; i < 3; i++)
      __get_cpuid(0x80000002 + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                  &regs[4 * i + 3]);
    memcpy(brand, regs, 48);
    brand[48] = 0;
  }
#endif
  return brand;
}

// The fastest OpenBLAS 0.3.x core type this CPU can run. SkylakeX kernels need
// AVX-512 F/BW/DQ/VL (present on Intel since Skylake-SP and AMD since Zen 4); Haswell
// kernels need AVX2 + FMA (every x86-64 CPU since 2013-2015). "" leaves it to OpenBLAS.
static const char *best_core_type(void) {
  pretext_cpu_features f = pretext_cpu_detect();
  if (f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl) return "SkylakeX";
  if (f.avx2 && f.fma) return "Haswell";
  if (f.avx) return "Sandybridge";
  return "";
}

static void load_library(void) {
  const char *user = getenv("OPENBLAS_CORETYPE");
  if (user && user[0]) {
    core_from_user = 1;
  } else {
    const char *core = best_core_type();
    snprintf(requested_core, sizeof requested_core, "%s", core);
    // Before dlopen: OpenBLAS reads this in its constructor.
    if (core[0]) setenv("OPENBLAS_CORETYPE", core, 1);
  }
  static const char *candidates[] = {
      "libopenblas.so.0", "libopenblasp.so.0", "libopenblas.so",
      "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
      "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
      "libopenblas.dylib", "/opt/homebrew/opt/openblas/lib/libopenblas.dylib"};
  void *handle = NULL;
  const char *last_error = "";
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && !handle; i++) {
    handle = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
    if (handle) {
      snprintf(library_path, sizeof library_path, "%s", candidates[i]);
    } else {
      const char *e = dlerror();
      if (e) last_error = e;
    }
  }
  if (!handle) {
    snprintf(load_message, sizeof load_message,
             "OpenBLAS could not be loaded (%s); install it with "
             "`apt-get install libopenblas-dev` (Debian/Ubuntu)",
             last_error);
    return;
  }
  p_sgemm = (sgemm_fn)dlsym(handle, "cblas_sgemm");
  p_set_threads = (set_threads_fn)dlsym(handle, "openblas_set_num_threads");
  p_get_threads = (get_threads_fn)dlsym(handle, "openblas_get_num_threads");
  p_get_config = (get_string_fn)dlsym(handle, "openblas_get_config");
  p_get_corename = (get_string_fn)dlsym(handle, "openblas_get_corename");
  if (!p_sgemm || !p_set_threads || !p_get_threads) {
    snprintf(load_message, sizeof load_message,
             "%s is not OpenBLAS (cblas_sgemm or openblas_set_num_threads missing)",
             library_path);
    return;
  }
  Dl_info info;
  if (dladdr((void *)p_sgemm, &info) && info.dli_fname)
    snprintf(library_path, sizeof library_path, "%s", info.dli_fname);
  load_status = 0;
}

int pretext_blas_load(char *message, size_t message_size) {
  pthread_once(&load_once, load_library);
  if (load_status != 0 && message && message_size)
    snprintf(message, message_size, "%s", load_message);
  return load_status;
}

static void require_loaded(void) {
  if (pretext_blas_load(NULL, 0) != 0) {
    fprintf(stderr, "pretext: %s\n", load_message);
    abort();
  }
}

void pretext_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb, float beta,
                   float *c, int ldc) {
  if (!p_sgemm) require_loaded();
  p_sgemm(PRETEXT_ROW_MAJOR, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void pretext_blas_set_threads(int threads) {
  require_loaded();
  p_set_threads(threads);
}

int pretext_blas_threads(void) {
  require_loaded();
  return p_get_threads();
}

const char *pretext_blas_library_path(void) { return library_path; }
const char *pretext_blas_config(void) {
  return (load_status == 0 && p_get_config) ? p_get_config() : "";
}
const char *pretext_blas_core_name(void) {
  return (load_status == 0 && p_get_corename) ? p_get_corename() : "";
}
const char *pretext_blas_requested_core(void) { return requested_core; }
const char *pretext_blas_best_core(void) { return best_core_type(); }
int pretext_blas_core_from_user(void) { return core_from_user; }
