/* train/optimizer.c and train/rng.c against their formulas: AdamW
 * (torch.optim.AdamW's update, decay and no-decay groups), open_clip's
 * cosine_lr and const schedules, clip_grad_norm_, and the counter-based RNG's
 * promise that a draw depends only on (key, index). The end-to-end AdamW
 * parity against torch is tests/reference/test_train_parity.py; this pins
 * each formula where a reader can check it by hand. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/optimizer.h"
#include "train/rng.h"
#include "unit.h"

/* Three AdamW steps on a few values, against the update written out in
 * double: 1e-6 relative (float state, double reference). */
static void test_adamw(void) {
    enum { N = 5 };
    adamw_hparams h = {0.9f, 0.98f, 1e-6f, 0.2f};
    for (int decay = 0; decay < 2; decay++) {
        float p[N] = {0.5f, -1.25f, 2.0f, 0.0f, 3e-3f}, m[N] = {0}, v[N] = {0};
        double pr[N], mr[N] = {0}, vr[N] = {0};
        for (int i = 0; i < N; i++) pr[i] = p[i];
        for (int64_t step = 1; step <= 3; step++) {
            float g[N];
            for (int i = 0; i < N; i++) g[i] = (float)(0.1 * (i + 1) * (step % 2 ? 1 : -1) + 0.01 * i);
            double lr = 1e-2 / (double)step;
            adamw_update(p, g, m, v, N, (float)lr, decay, step, &h);
            for (int i = 0; i < N; i++) {
                if (decay) pr[i] -= lr * h.weight_decay * pr[i];
                mr[i] = h.beta1 * mr[i] + (1 - h.beta1) * g[i];
                vr[i] = h.beta2 * vr[i] + (1 - h.beta2) * (double)g[i] * g[i];
                double mhat = mr[i] / (1 - pow(h.beta1, (double)step)), vhat = vr[i] / (1 - pow(h.beta2, (double)step));
                pr[i] -= lr * mhat / (sqrt(vhat) + h.eps);
            }
        }
        for (int i = 0; i < N; i++) CHECK_NEAR(p[i], pr[i], 1e-6 * (1 + fabs(pr[i])));
    }
}

/* open_clip_train/scheduler.py: warmup ramps to base_lr, cosine reaches 0 at
 * the last step, const holds base_lr. */
static void test_schedules(void) {
    CHECK_NEAR(lr_cosine(1.0, 10, 110, 0), 0.1, 1e-12);
    CHECK_NEAR(lr_cosine(1.0, 10, 110, 9), 1.0, 1e-12);
    CHECK_NEAR(lr_cosine(1.0, 10, 110, 10), 1.0, 1e-12);
    CHECK_NEAR(lr_cosine(1.0, 10, 110, 60), 0.5, 1e-12);
    CHECK_NEAR(lr_cosine(1.0, 10, 110, 110), 0.0, 1e-12);
    CHECK_NEAR(lr_const(2.0, 4, 1), 1.0, 1e-12);
    CHECK_NEAR(lr_const(2.0, 4, 50), 2.0, 1e-12);
}

/* clip_grad_norm_: the norm before clipping is returned, gradients scaled by
 * max/(norm + 1e-6) only above max. */
static void test_clip(void) {
    float g[4] = {3, 4, 0, 0};
    CHECK_NEAR(clip_grad_global_norm(g, 4, 10.0), 5.0, 1e-12);
    CHECK(g[0] == 3 && g[1] == 4);
    CHECK_NEAR(clip_grad_global_norm(g, 4, 1.0), 5.0, 1e-12);
    CHECK_NEAR(g[0], 3 * 1.0 / (5 + 1e-6), 1e-7);
    CHECK_NEAR(g[1], 4 * 1.0 / (5 + 1e-6), 1e-7);
    CHECK_NEAR(grad_sum_squares(g, 4), (double)g[0] * g[0] + (double)g[1] * g[1], 1e-12);
}

/* A draw is a pure function of (key, index): the same in any order; other
 * domains and indices give other numbers; uniforms lie in [0, 1) with a mean
 * near 1/2 and normals a variance near 1 over 20000 draws (4 sigma bounds). */
static void test_rng(void) {
    uint64_t key = rng_key(42, RNG_DOMAIN_INIT, 3);
    CHECK(key == rng_key(42, RNG_DOMAIN_INIT, 3));
    CHECK(key != rng_key(42, RNG_DOMAIN_INIT, 4));
    CHECK(key != rng_key(43, RNG_DOMAIN_INIT, 3));
    CHECK(key != rng_key(42, RNG_DOMAIN_SHUFFLE, 3));
    double backwards = rng_uniform(key, 999), forwards = 0;
    for (int i = 0; i <= 999; i++) forwards = rng_uniform(key, i);
    CHECK(forwards == backwards);
    double sum = 0, sq = 0;
    int bad = 0, n = 20000;
    for (int i = 0; i < n; i++) {
        double u = rng_uniform(key, i), z = rng_normal(key, i);
        bad += !(u >= 0 && u < 1);
        sum += u;
        sq += z * z;
    }
    CHECK(bad == 0);
    CHECK(fabs(sum / n - 0.5) < 4 * sqrt(1.0 / 12 / n));
    CHECK(fabs(sq / n - 1.0) < 4 * sqrt(2.0 / n));
    rng_stream a = rng_stream_for(7, RNG_DOMAIN_SHUFFLE, 2, 5), b = rng_stream_for(7, RNG_DOMAIN_SHUFFLE, 2, 5);
    int same = 1, in_range = 1;
    for (int i = 0; i < 100; i++) {
        uint64_t x = rng_stream_below(&a, 13), y = rng_stream_below(&b, 13);
        same &= x == y;
        in_range &= x < 13;
    }
    CHECK(same && in_range);
}

int main(void) {
    test_adamw();
    test_schedules();
    test_clip();
    test_rng();
    return unit_summary("optimizer");
}
