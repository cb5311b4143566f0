// Run-time loading of Open MPI. See include/pretext_mpi.h for why MPI is not linked.
#define _GNU_SOURCE
#include "pretext_mpi.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Open MPI's handles are pointers to opaque objects; Pretext only passes them through.
typedef void *mpi_handle;

// MPI constants, as Open MPI defines them in mpi.h (fixed by its ABI).
#define PRETEXT_MPI_SUCCESS 0
#define PRETEXT_MPI_THREAD_FUNNELED 1
#define PRETEXT_MPI_MAX_LIBRARY_VERSION_STRING 256
#define PRETEXT_MPI_IN_PLACE ((void *)1)

typedef int (*init_thread_fn)(int *, char ***, int, int *);
typedef int (*initialized_fn)(int *);
typedef int (*finalize_fn)(void);
typedef int (*comm_int_fn)(mpi_handle, int *);
typedef int (*abort_fn)(mpi_handle, int);
typedef int (*allreduce_fn)(const void *, void *, int, mpi_handle, mpi_handle, mpi_handle);
typedef int (*allgather_fn)(const void *, int, mpi_handle, void *, int, mpi_handle, mpi_handle);
typedef int (*bcast_fn)(void *, int, mpi_handle, int, mpi_handle);
typedef int (*version_fn)(char *, int *);

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_status = -1;
static char load_message[768];
static char library_path[512];
static char library_version[PRETEXT_MPI_MAX_LIBRARY_VERSION_STRING + 1];

static init_thread_fn p_init_thread;
static initialized_fn p_initialized, p_finalized;
static finalize_fn p_finalize;
static comm_int_fn p_comm_rank, p_comm_size;
static abort_fn p_abort;
static allreduce_fn p_allreduce;
static allgather_fn p_allgather;
static bcast_fn p_bcast;
static version_fn p_get_library_version;
static mpi_handle comm_world, type_float, type_double, type_byte, op_sum;

static void *resolve(void *handle, const char *name, const char **missing) {
  void *p = dlsym(handle, name);
  if (!p && !*missing) *missing = name;
  return p;
}

static void load_library(void) {
  // libmpi.so.40 is the runtime of Open MPI 3-5 (Debian: libopenmpi3); libmpi.so comes
  // with the development package and may point to another implementation.
  const char *candidates[] = {"libmpi.so.40", "libmpi.so",
                                     "/usr/lib/x86_64-linux-gnu/libmpi.so.40",
                                     "/usr/lib/aarch64-linux-gnu/libmpi.so.40",
                                     "/usr/lib64/openmpi/lib/libmpi.so.40"};
  // PRETEXT_MPI_LIBRARY names the library to use instead (an Open MPI installed
  // elsewhere, e.g. /opt/openmpi/lib/libmpi.so.40).
  const char *chosen = getenv("PRETEXT_MPI_LIBRARY");
  size_t count = sizeof candidates / sizeof candidates[0];
  if (chosen && chosen[0]) {
    candidates[0] = chosen;
    count = 1;
  }
  void *handle = NULL;
  const char *last_error = "";
  for (size_t i = 0; i < count && !handle; i++) {
    // RTLD_GLOBAL: Open MPI's own plugins (opened later by libmpi) resolve symbols of
    // libmpi and libopen-pal through the global namespace.
    handle = dlopen(candidates[i], RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
      const char *e = dlerror();
      if (e) last_error = e;
    }
  }
  if (!handle) {
    snprintf(load_message, sizeof load_message,
             "Open MPI could not be loaded (%s); install it with "
             "`apt-get install openmpi-bin libopenmpi-dev` (Debian/Ubuntu)",
             last_error);
    return;
  }
  const char *missing = NULL;
  p_init_thread = (init_thread_fn)resolve(handle, "MPI_Init_thread", &missing);
  p_initialized = (initialized_fn)resolve(handle, "MPI_Initialized", &missing);
  p_finalized = (initialized_fn)resolve(handle, "MPI_Finalized", &missing);
  p_finalize = (finalize_fn)resolve(handle, "MPI_Finalize", &missing);
  p_comm_rank = (comm_int_fn)resolve(handle, "MPI_Comm_rank", &missing);
  p_comm_size = (comm_int_fn)resolve(handle, "MPI_Comm_size", &missing);
  p_abort = (abort_fn)resolve(handle, "MPI_Abort", &missing);
  p_allreduce = (allreduce_fn)resolve(handle, "MPI_Allreduce", &missing);
  p_allgather = (allgather_fn)resolve(handle, "MPI_Allgather", &missing);
  p_bcast = (bcast_fn)resolve(handle, "MPI_Bcast", &missing);
  p_get_library_version = (version_fn)resolve(handle, "MPI_Get_library_version", &missing);
  comm_world = resolve(handle, "ompi_mpi_comm_world", &missing);
  type_float = resolve(handle, "ompi_mpi_float", &missing);
  type_double = resolve(handle, "ompi_mpi_double", &missing);
  type_byte = resolve(handle, "ompi_mpi_byte", &missing);
  op_sum = resolve(handle, "ompi_mpi_op_sum", &missing);
  Dl_info info;
  if (p_init_thread && dladdr((void *)p_init_thread, &info) && info.dli_fname)
    snprintf(library_path, sizeof library_path, "%s", info.dli_fname);
  if (missing) {
    snprintf(load_message, sizeof load_message,
             "%s is not Open MPI (%s is missing); Pretext needs Open MPI 3 or later "
             "(`apt-get install openmpi-bin libopenmpi-dev`)",
             library_path[0] ? library_path : "the MPI library", missing);
    return;
  }
  int length = 0;
  if (p_get_library_version(library_version, &length) != PRETEXT_MPI_SUCCESS) length = 0;
  library_version[length < 0 ? 0 : (length > PRETEXT_MPI_MAX_LIBRARY_VERSION_STRING
                                         ? PRETEXT_MPI_MAX_LIBRARY_VERSION_STRING
                                         : length)] = 0;
  load_status = 0;
}

int pretext_mpi_load(char *message, size_t message_size) {
  pthread_once(&load_once, load_library);
  if (load_status != 0 && message && message_size)
    snprintf(message, message_size, "%s", load_message);
  return load_status;
}

const char *pretext_mpi_library_path(void) { return load_status == 0 ? library_path : ""; }
const char *pretext_mpi_library_version(void) { return load_status == 0 ? library_version : ""; }

int pretext_mpi_init(int *rank, int *size, char *message, size_t message_size) {
  if (pretext_mpi_load(message, message_size) != 0) return -1;
  int already = 0;
  p_initialized(&already);
  if (!already) {
    int provided = 0;
    if (p_init_thread(NULL, NULL, PRETEXT_MPI_THREAD_FUNNELED, &provided) != PRETEXT_MPI_SUCCESS) {
      snprintf(message, message_size, "MPI_Init_thread failed (see Open MPI's message above)");
      return -1;
    }
    if (provided < PRETEXT_MPI_THREAD_FUNNELED) {
      snprintf(message, message_size,
               "this MPI library gives thread level %d; Pretext needs MPI_THREAD_FUNNELED (1)",
               provided);
      return -1;
    }
  }
  if (p_comm_rank(comm_world, rank) != PRETEXT_MPI_SUCCESS ||
      p_comm_size(comm_world, size) != PRETEXT_MPI_SUCCESS) {
    snprintf(message, message_size, "MPI_Comm_rank/MPI_Comm_size failed on MPI_COMM_WORLD");
    return -1;
  }
  return 0;
}

void pretext_mpi_finalize(void) {
  if (load_status != 0) return;
  int initialized = 0, finalized = 0;
  p_initialized(&initialized);
  p_finalized(&finalized);
  if (initialized && !finalized) p_finalize();
}

void pretext_mpi_abort(int code) {
  if (load_status == 0) p_abort(comm_world, code);
  exit(code);
}

// Open MPI's default error handler aborts the job on a failed collective; this is the
// guard for a library configured otherwise.
static void check(int status, const char *what) {
  if (status == PRETEXT_MPI_SUCCESS) return;
  fprintf(stderr, "pretext: %s failed (MPI error %d); stopping every process\n", what, status);
  pretext_mpi_abort(1);
}

void pretext_mpi_allreduce_sum_float(float *values, size_t count) {
  for (size_t done = 0; done < count;) {
    int n = count - done > INT_MAX ? INT_MAX : (int)(count - done);
    check(p_allreduce(PRETEXT_MPI_IN_PLACE, values + done, n, type_float, op_sum, comm_world),
          "MPI_Allreduce");
    done += (size_t)n;
  }
}

void pretext_mpi_allreduce_sum_double(double *values, size_t count) {
  for (size_t done = 0; done < count;) {
    int n = count - done > INT_MAX ? INT_MAX : (int)(count - done);
    check(p_allreduce(PRETEXT_MPI_IN_PLACE, values + done, n, type_double, op_sum, comm_world),
          "MPI_Allreduce");
    done += (size_t)n;
  }
}

void pretext_mpi_allgather_bytes(const void *send, size_t bytes, void *receive) {
  if (bytes > INT_MAX) {
    fprintf(stderr, "pretext: MPI_Allgather of %zu bytes per process is more than MPI can send "
                    "at once\n", bytes);
    pretext_mpi_abort(1);
  }
  check(p_allgather(send, (int)bytes, type_byte, receive, (int)bytes, type_byte, comm_world),
        "MPI_Allgather");
}

void pretext_mpi_broadcast_bytes(void *buffer, size_t bytes, int root) {
  for (size_t done = 0; done < bytes;) {
    int n = bytes - done > INT_MAX ? INT_MAX : (int)(bytes - done);
    check(p_bcast((char *)buffer + done, n, type_byte, root, comm_world), "MPI_Bcast");
    done += (size_t)n;
  }
}
