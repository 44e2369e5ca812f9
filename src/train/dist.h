/* Data-parallel communication (issue 5) behind a tiny interface, so the
 * trainer reads the same with and without MPI.
 *
 * Built with MPI (make mpi: -DVITAMIN_MPI, mpicc) and started by mpirun /
 * srun, dist_init joins MPI_COMM_WORLD; otherwise — or in the build without
 * MPI — it is one process of world size 1 and every collective is a copy or a
 * no-op. Only the calling (main) thread talks to MPI (MPI_THREAD_FUNNELED);
 * OpenMP threads compute inside each rank.
 *
 * Failures: MPI's default error handler aborts the whole job, and Open MPI's
 * mpirun kills every rank as soon as one dies, so a lost rank stops the run
 * within seconds instead of hanging in a collective. */
#ifndef VT_TRAIN_DIST_H
#define VT_TRAIN_DIST_H

#include <stddef.h>

#include "vitamin.h"

typedef struct {
    int rank, world;
    int mpi;          /* 1 if MPI was initialised by dist_init */
    double comm_seconds; /* wall time spent inside collectives (for the benchmark) */
} dist_ctx;

/* Joins the MPI job if this process was launched as one (OMPI_COMM_WORLD_SIZE,
 * PMI_SIZE or PMIX_RANK in the environment) and the build has MPI; else
 * rank 0 of 1. Launching under mpirun with a build without MPI is an error. */
vt_status dist_init(dist_ctx *d, vt_error *err);
void dist_finalize(dist_ctx *d);

/* Collectives over all ranks (no-ops / copies for world 1). */
void dist_allreduce_sum(dist_ctx *d, float *buf, size_t n);
void dist_allreduce_sum_double(dist_ctx *d, double *buf, size_t n);
/* global[r·n .. r·n + n) = local of rank r. */
void dist_allgather(dist_ctx *d, const float *local, float *global, size_t n);
/* local = Σ_ranks global[rank·n .. rank·n + n) for this rank. */
void dist_reduce_scatter(dist_ctx *d, const float *global, float *local, size_t n);
/* Variable-size pieces: rank r owns [offsets[r], offsets[r+1]) of buf (in place). */
void dist_allgatherv_inplace(dist_ctx *d, float *buf, const size_t *offsets);
/* Rank r's slice [offsets[r], offsets[r+1]) of Σ_ranks buf, written into buf's slice (reduce-scatter). */
void dist_reduce_scatterv_inplace(dist_ctx *d, float *buf, const size_t *offsets);
/* Gathers the pieces into buf on rank 0 only (other ranks' buf beyond their piece is untouched). */
void dist_gatherv_to_root(dist_ctx *d, float *buf, const size_t *offsets);
void dist_broadcast(dist_ctx *d, void *buf, size_t bytes);
void dist_barrier(dist_ctx *d);
/* Ends every rank of the job with exit code `code` (MPI_Abort); plain exit for one process. */
void dist_abort(dist_ctx *d, int code) __attribute__((noreturn));

/* A non-blocking sum all-reduce in place (gradient buckets overlapped with the
 * rest of the backward pass). dist_wait completes it. */
typedef struct {
    void *request; /* MPI_Request when active */
    int active;
} dist_pending;
void dist_allreduce_sum_start(dist_ctx *d, float *buf, size_t n, dist_pending *p);
void dist_wait(dist_ctx *d, dist_pending *p);

#endif
