/* dist.h with Open MPI (VITAMIN_MPI) or as a single process. */
#include "train/dist.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

#ifdef VITAMIN_MPI
#include <limits.h>
#include <mpi.h>
#endif

static int launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

__attribute__((unused)) static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

vt_status dist_init(dist_ctx *d, vt_error *err) {
    memset(d, 0, sizeof *d);
    d->world = 1;
#ifdef VITAMIN_MPI
    if (launched_by_mpi()) {
        int provided = 0, initialised = 0;
        MPI_Initialized(&initialised);
        if (!initialised && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return vt_fail(err, VT_ERR_IO, "MPI_Init_thread failed");
        d->mpi = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
        MPI_Comm_size(MPI_COMM_WORLD, &d->world);
    }
#else
    if (launched_by_mpi() && getenv("OMPI_COMM_WORLD_SIZE") && strcmp(getenv("OMPI_COMM_WORLD_SIZE"), "1"))
        return vt_fail(err, VT_ERR_UNSUPPORTED, "started by mpirun, but this vitamin was built without MPI: "
                       "build it with `make mpi` (needs libopenmpi-dev) and run build/mpi/vitamin");
#endif
    return VT_OK;
}

void dist_finalize(dist_ctx *d) {
#ifdef VITAMIN_MPI
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = 0;
}

#ifdef VITAMIN_MPI
/* MPI counts are int: large buffers go in pieces. */
enum { PIECE = 1 << 28 };
#endif

void dist_allreduce_sum(dist_ctx *d, float *buf, size_t n) {
    if (d->world == 1) return;
#ifdef VITAMIN_MPI
    double t0 = now();
    for (size_t i = 0; i < n; i += PIECE)
        MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)(n - i < PIECE ? n - i : PIECE), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    d->comm_seconds += now() - t0;
#endif
}

void dist_allreduce_sum_double(dist_ctx *d, double *buf, size_t n) {
    if (d->world == 1) return;
#ifdef VITAMIN_MPI
    double t0 = now();
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    d->comm_seconds += now() - t0;
#endif
}

void dist_allgather(dist_ctx *d, const float *local, float *global, size_t n) {
    if (d->world == 1) {
        if (global != local) memmove(global, local, n * sizeof(float));
        return;
    }
#ifdef VITAMIN_MPI
    double t0 = now();
    MPI_Allgather(local, (int)n, MPI_FLOAT, global, (int)n, MPI_FLOAT, MPI_COMM_WORLD);
    d->comm_seconds += now() - t0;
#endif
}

void dist_reduce_scatter(dist_ctx *d, const float *global, float *local, size_t n) {
    if (d->world == 1) {
        if (global != local) memmove(local, global, n * sizeof(float));
        return;
    }
#ifdef VITAMIN_MPI
    double t0 = now();
    MPI_Reduce_scatter_block(global, local, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    d->comm_seconds += now() - t0;
#endif
}

#ifdef VITAMIN_MPI
static void counts_displs(const dist_ctx *d, const size_t *offsets, int *counts, int *displs) {
    for (int r = 0; r < d->world; r++) {
        counts[r] = (int)(offsets[r + 1] - offsets[r]);
        displs[r] = (int)offsets[r];
    }
}
#endif

void dist_allgatherv_inplace(dist_ctx *d, float *buf, const size_t *offsets) {
    if (d->world == 1) return;
#ifdef VITAMIN_MPI
    double t0 = now();
    int *counts = malloc(sizeof(int) * (size_t)d->world), *displs = malloc(sizeof(int) * (size_t)d->world);
    counts_displs(d, offsets, counts, displs);
    MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, MPI_COMM_WORLD);
    free(counts);
    free(displs);
    d->comm_seconds += now() - t0;
#endif
}

void dist_reduce_scatterv_inplace(dist_ctx *d, float *buf, const size_t *offsets) {
    if (d->world == 1) return;
#ifdef VITAMIN_MPI
    double t0 = now();
    int *counts = malloc(sizeof(int) * (size_t)d->world);
    for (int r = 0; r < d->world; r++) counts[r] = (int)(offsets[r + 1] - offsets[r]);
    size_t mine = offsets[d->rank + 1] - offsets[d->rank];
    float *piece = malloc(sizeof(float) * (mine ? mine : 1));
    MPI_Reduce_scatter(buf, piece, counts, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    memcpy(buf + offsets[d->rank], piece, mine * sizeof(float));
    free(piece);
    free(counts);
    d->comm_seconds += now() - t0;
#endif
}

void dist_gatherv_to_root(dist_ctx *d, float *buf, const size_t *offsets) {
    if (d->world == 1) return;
#ifdef VITAMIN_MPI
    double t0 = now();
    int *counts = malloc(sizeof(int) * (size_t)d->world), *displs = malloc(sizeof(int) * (size_t)d->world);
    counts_displs(d, offsets, counts, displs);
    if (d->rank == 0)
        MPI_Gatherv(MPI_IN_PLACE, 0, MPI_FLOAT, buf, counts, displs, MPI_FLOAT, 0, MPI_COMM_WORLD);
    else
        MPI_Gatherv(buf + offsets[d->rank], counts[d->rank], MPI_FLOAT, NULL, NULL, NULL, MPI_FLOAT, 0,
                    MPI_COMM_WORLD);
    free(counts);
    free(displs);
    d->comm_seconds += now() - t0;
#endif
}

void dist_broadcast(dist_ctx *d, void *buf, size_t bytes) {
    if (d->world == 1) return;
#ifdef VITAMIN_MPI
    for (size_t i = 0; i < bytes; i += PIECE)
        MPI_Bcast((char *)buf + i, (int)(bytes - i < PIECE ? bytes - i : PIECE), MPI_BYTE, 0, MPI_COMM_WORLD);
#endif
}

void dist_barrier(dist_ctx *d) {
    if (d->world == 1) return;
#ifdef VITAMIN_MPI
    MPI_Barrier(MPI_COMM_WORLD);
#endif
}

void dist_abort(dist_ctx *d, int code) {
#ifdef VITAMIN_MPI
    if (d->mpi && d->world > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

void dist_allreduce_sum_start(dist_ctx *d, float *buf, size_t n, dist_pending *p) {
    p->active = 0;
    p->request = NULL;
    if (d->world == 1) return;
#ifdef VITAMIN_MPI
    if (n > (size_t)INT_MAX) {
        dist_allreduce_sum(d, buf, n); /* too big for one request: blocking pieces */
        return;
    }
    double t0 = now();
    MPI_Request *req = malloc(sizeof *req);
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, req);
    p->request = req;
    p->active = 1;
    d->comm_seconds += now() - t0;
#endif
}

void dist_wait(dist_ctx *d, dist_pending *p) {
    if (!p->active) return;
#ifdef VITAMIN_MPI
    double t0 = now();
    MPI_Wait((MPI_Request *)p->request, MPI_STATUS_IGNORE);
    free(p->request);
    d->comm_seconds += now() - t0;
#endif
    p->active = 0;
    p->request = NULL;
}
