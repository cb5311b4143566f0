// A plain C program timing OpenBLAS's sgemm the way `pretext doctor` does (square,
// row-major, median of 7 runs after a warm-up), as the reference for Pretext's figure.
// Build and run: see benchmarks/sgemm_vs_c.sh.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1024;
  float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
        *c = malloc(sizeof(float) * n * n);
  for (long i = 0; i < (long)n * n; i++) {
    a[i] = (float)rand() / RAND_MAX * 2 - 1;
    b[i] = (float)rand() / RAND_MAX * 2 - 1;
  }
  double times[7];
  for (int r = 0; r < 8; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    if (r > 0) times[r - 1] = now() - t0;
  }
  qsort(times, 7, sizeof(double), cmp);
  printf("%.1f\n", 2.0 * n * n * n / times[3] / 1e9);
  return 0;
}
