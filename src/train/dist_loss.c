/* dist_loss.h. With R ranks of n samples each:
 *   all-gather both feature sets into [R·n, e];
 *   loss: every row (local_loss off; the same value on every rank) or this
 *   rank's rows r·n .. r·n+n-1 against all columns (local_loss on);
 *   gradient of the rank's loss w.r.t. every gathered row; with
 *   gather_with_grad the all-gather's backward sums those over ranks
 *   (reduce-scatter), else the rank keeps only its own rows' part (the
 *   gathered copies of other ranks are constants, as in open_clip). */
#include "train/dist_loss.h"

#include <string.h>

#include "train/ops.h"

double dist_clip_loss(dist_ctx *d, const dist_loss_options *o, const float *image, const float *text, int n, int e,
                      float logit_scale, float *d_image, float *d_text, float *d_logit_scale, float *global_image,
                      float *global_text, float *d_global_image, float *d_global_text) {
    int world = d ? d->world : 1, rank = d ? d->rank : 0;
    if (world == 1)
        return clip_loss_forward_backward(image, text, n, e, logit_scale, d_image, d_text, d_logit_scale, NULL);
    size_t local = (size_t)n * e;
    int total = n * world;
    dist_allgather(d, image, global_image, local);
    dist_allgather(d, text, global_text, local);
    double loss = o->local_loss
                      ? clip_loss_general(global_image, global_text, total, e, rank * n, n, !o->gather_with_grad,
                                          logit_scale, d_global_image, d_global_text, d_logit_scale, NULL)
                      : clip_loss_forward_backward(global_image, global_text, total, e, logit_scale, d_global_image,
                                                   d_global_text, d_logit_scale, NULL);
    if (o->gather_with_grad) {
        dist_reduce_scatter(d, d_global_image, d_image, local);
        dist_reduce_scatter(d, d_global_text, d_text, local);
    } else {
        memcpy(d_image, d_global_image + (size_t)rank * local, local * sizeof(float));
        memcpy(d_text, d_global_text + (size_t)rank * local, local * sizeof(float));
    }
    double sum = loss;
    dist_allreduce_sum_double(d, &sum, 1);
    return sum / world;
}
