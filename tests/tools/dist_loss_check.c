/* Loss-math driver for tests/test_mpi.py: under mpirun -np R, each rank takes
 * its n rows of global image/text features [R·n, e], runs dist_clip_loss, and
 * rank 0 writes OUT/d_image.npy, OUT/d_text.npy ([R·n, e], each rank's feature
 * gradient before DDP averaging), OUT/loss.npy [1 + R] (mean loss, then
 * d logit_scale per rank).
 * usage: dist_loss_check IMAGE.npy TEXT.npy LOGIT_SCALE LOCAL_LOSS GATHER_WITH_GRAD OUT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/serial/npy.h"
#include "train/dist_loss.h"

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: dist_loss_check IMAGE.npy TEXT.npy LOGIT_SCALE LOCAL_LOSS GATHER_WITH_GRAD OUT\n");
        return 2;
    }
    vt_error err;
    dist_ctx d;
    if (dist_init(&d, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    float *img, *txt;
    int64_t rows, e, rows2, e2;
    if (npy_read_f32(argv[1], &img, &rows, &e, &err) || npy_read_f32(argv[2], &txt, &rows2, &e2, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    int n = (int)(rows / d.world);
    size_t local = (size_t)n * (size_t)e, global = (size_t)rows * (size_t)e;
    dist_loss_options o = {atoi(argv[4]), atoi(argv[5])};
    float *di = calloc(global, sizeof(float)), *dt = calloc(global, sizeof(float));
    float *gi = calloc(global, sizeof(float)), *gt = calloc(global, sizeof(float));
    float *dgi = calloc(global, sizeof(float)), *dgt = calloc(global, sizeof(float));
    float dscale = 0;
    double loss = dist_clip_loss(&d, &o, img + (size_t)d.rank * local, txt + (size_t)d.rank * local, n, (int)e,
                                 (float)atof(argv[3]), di + (size_t)d.rank * local, dt + (size_t)d.rank * local,
                                 &dscale, gi, gt, dgi, dgt);
    size_t *offsets = malloc(sizeof(size_t) * (size_t)(d.world + 1));
    for (int r = 0; r <= d.world; r++) offsets[r] = (size_t)r * local;
    dist_gatherv_to_root(&d, di, offsets);
    dist_gatherv_to_root(&d, dt, offsets);
    float *scales = calloc((size_t)d.world + 1, sizeof(float));
    float mine[1] = {dscale};
    float *all = calloc((size_t)d.world, sizeof(float));
    dist_allgather(&d, mine, all, 1);
    scales[0] = (float)loss;
    memcpy(scales + 1, all, sizeof(float) * (size_t)d.world);
    int rc = 0;
    if (d.rank == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/d_image.npy", argv[6]);
        rc |= npy_write_f32(path, rows, e, di, &err) != VT_OK;
        snprintf(path, sizeof path, "%s/d_text.npy", argv[6]);
        rc |= npy_write_f32(path, rows, e, dt, &err) != VT_OK;
        snprintf(path, sizeof path, "%s/loss.npy", argv[6]);
        rc |= npy_write_f32(path, 1, d.world + 1, scales, &err) != VT_OK;
    }
    dist_finalize(&d);
    return rc;
}
