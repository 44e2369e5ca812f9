/* Blocked A·Bᵀ for evaluation: B is packed into GEMM panels one block at a
 * time (the model's own GEMM, so an ImageNet- or COCO-sized score matrix takes
 * seconds instead of the minutes naive dot products would). */
#include "eval/similarity.h"

#include <stdlib.h>

#include "core/error.h"
#include "kernels/kernels.h"
#include "kernels/gemm.h"

/* Block sizes: an image block of 2048 packed rows is 8 MiB at dim 1024, a
 * score block 256 x 2048 is 2 MiB. */
enum { B_BLOCK = 2048, A_BLOCK = 256 };

vt_status similarity_blocks(const float *a, size_t na, const float *b, size_t nb, int dim, similarity_visit visit,
                            void *user, vt_error *err) {
    if ((na && !a) || (nb && !b) || dim <= 0 || !visit)
        return vt_fail(err, VT_ERR_ARGUMENT, "similarity_blocks: bad arguments");
    if (!na || !nb) return VT_OK;
    vt_kernels kernels;
    vt_status st = vt_kernels_select(&kernels, err);
    if (st) return st;
    vt_isa isa = kernels.isa;
    size_t b_rows = nb < B_BLOCK ? nb : B_BLOCK, a_rows = na < A_BLOCK ? na : A_BLOCK;
    size_t packed_bytes = (gemm_packed_floats((int)b_rows, dim) * sizeof(float) + 63) & ~(size_t)63;
    float *packed = aligned_alloc(64, packed_bytes);
    float *scores = malloc(a_rows * b_rows * sizeof(float));
    if (!packed || !scores) st = vt_fail(err, VT_ERR_NOMEM, "out of memory for %zu x %zu similarity blocks", a_rows, b_rows);
    for (size_t b0 = 0; b0 < nb && !st; b0 += b_rows) {
        int bn = (int)(nb - b0 < b_rows ? nb - b0 : b_rows);
        gemm_pack(b + b0 * (size_t)dim, bn, dim, dim, 0, packed);
        gemm_packed_b pb = {bn, dim, (bn + GEMM_NR - 1) / GEMM_NR, packed, NULL, 0};
        for (size_t a0 = 0; a0 < na; a0 += a_rows) {
            int an = (int)(na - a0 < a_rows ? na - a0 : a_rows);
            gemm_run(isa, an, a + a0 * (size_t)dim, dim, &pb, scores, bn, NULL);
            visit(user, a0, (size_t)an, b0, (size_t)bn, scores);
        }
    }
    free(packed);
    free(scores);
    return st;
}
