// Pretext's view of MPI, for data-parallel training across processes.
//
// MPI is opened at run time (dlopen), like OpenBLAS (see ../CBLAS), so that Pretext
// builds and runs without any MPI installed and only needs one when it is launched by
// `mpirun`. The loader targets Open MPI's ABI (libmpi.so.40: Open MPI 3, 4 and 5), whose
// handles are the addresses of exported objects: MPI_COMM_WORLD is &ompi_mpi_comm_world,
// MPI_FLOAT is &ompi_mpi_float, MPI_SUM is &ompi_mpi_op_sum; they are found with dlsym.
//
// Only the thread that called pretext_mpi_init may call the collectives
// (MPI_THREAD_FUNNELED): Pretext's training loop is single-threaded and its kernels'
// worker threads never communicate. A failed collective prints a message and aborts
// every process (MPI_Abort): a data-parallel run cannot go on with one process missing.
#ifndef PRETEXT_MPI_H
#define PRETEXT_MPI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// Opens the MPI library if not yet open (PRETEXT_MPI_LIBRARY, when set, names the
// library file to use). Returns 0 on success; on failure fills `message` (what failed,
// what to install). Thread-safe, idempotent.
int pretext_mpi_load(char *message, size_t message_size);

// The library opened (a path), and MPI_Get_library_version's text (valid before
// MPI_Init). Empty before a successful load.
const char *pretext_mpi_library_path(void);
const char *pretext_mpi_library_version(void);

// MPI_Init_thread (MPI_THREAD_FUNNELED) on MPI_COMM_WORLD, then its rank and size.
// Returns 0 on success; on failure fills `message`. Call once, from the main thread.
int pretext_mpi_init(int *rank, int *size, char *message, size_t message_size);

// MPI_Finalize (when initialized and not yet finalized).
void pretext_mpi_finalize(void);

// MPI_Abort on MPI_COMM_WORLD: ends every process of the job with `code`.
void pretext_mpi_abort(int code);

// In-place element-wise sums over all processes (MPI_Allreduce, MPI_IN_PLACE, MPI_SUM):
// every process ends with the same sums. Counts above INT_MAX are sent in pieces.
void pretext_mpi_allreduce_sum_float(float *values, size_t count);
void pretext_mpi_allreduce_sum_double(double *values, size_t count);

// MPI_Allgather of `bytes` bytes from every process into `receive`
// (size × bytes, in rank order).
void pretext_mpi_allgather_bytes(const void *send, size_t bytes, void *receive);

// MPI_Bcast of `bytes` bytes from process `root` to every process.
void pretext_mpi_broadcast_bytes(void *buffer, size_t bytes, int root);

#ifdef __cplusplus
}
#endif
#endif
