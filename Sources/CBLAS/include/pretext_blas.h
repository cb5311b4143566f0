// Pretext's view of OpenBLAS.
//
// OpenBLAS is opened at run time (dlopen) rather than linked, because a DYNAMIC_ARCH
// build such as Debian's picks its kernels in a library constructor, from the
// OPENBLAS_CORETYPE environment variable or its own CPU detection. Debian's 0.3.21 does
// not know recent CPUs and falls back to slow generic kernels; linking would run that
// constructor before any of Pretext's code, so the only way to choose the core type
// in every process (the CLI, the tests, a host program) is to decide it before the
// library is opened. `pretext_blas_load` does that once, thread-safely.
#ifndef PRETEXT_BLAS_H
#define PRETEXT_BLAS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// CBLAS enum values (identical to cblas.h), declared here so no header is needed.
enum { PRETEXT_ROW_MAJOR = 101 };
enum { PRETEXT_NO_TRANS = 111, PRETEXT_TRANS = 112 };

// Opens OpenBLAS if not yet open. Returns 0 on success; on failure fills `message`.
// Safe to call many times and from many threads.
int pretext_blas_load(char *message, size_t message_size);

// Row-major sgemm: C = alpha * op(A) op(B) + beta * C. Loads OpenBLAS on first use and
// aborts with a message naming the missing package if it cannot be found.
void pretext_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb, float beta,
                   float *c, int ldc);

void pretext_blas_set_threads(int threads);
int pretext_blas_threads(void);

// What was loaded: the library path, OpenBLAS's configuration string, the core name in
// use, and the core type Pretext requested ("" when the user set OPENBLAS_CORETYPE, or
// when Pretext left the choice to OpenBLAS). Valid after a successful load.
const char *pretext_blas_library_path(void);
const char *pretext_blas_config(void);
const char *pretext_blas_core_name(void);
const char *pretext_blas_requested_core(void);
// The core type Pretext would choose for this CPU ("" when it would leave it to OpenBLAS).
const char *pretext_blas_best_core(void);
// 1 when the user set OPENBLAS_CORETYPE before Pretext loaded OpenBLAS.
int pretext_blas_core_from_user(void);

// CPU vector extensions, from cpuid and the OS-enabled register state (xgetbv).
typedef struct {
  int sse42, avx, avx2, fma, avx512f, avx512bw, avx512dq, avx512vl, avx512_bf16,
      avx512_vnni, avx_vnni, amx;
} pretext_cpu_features;
pretext_cpu_features pretext_cpu_detect(void);
// The CPU brand string ("AMD EPYC ..."), or "" where cpuid does not give one.
const char *pretext_cpu_brand(void);

#ifdef __cplusplus
}
#endif
#endif
