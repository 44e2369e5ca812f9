/* Unit tests for src/eval/ metrics on embeddings: retrieval recall@K and
 * zero-shot accuracy against brute-force definitions, on small-integer
 * embeddings so every dot product is exact (float = double) and ties are
 * real; sizes cross the similarity block edges (256 x 2048). */
#include <stdlib.h>
#include <string.h>

#include "eval/eval_metrics.h"
#include "eval/similarity.h"
#include "unit.h"

enum { DIM = 8 };

static unsigned long long rng_state = 12345;
static int small_int(void) { /* -3..3 */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (int)((rng_state >> 33) % 7) - 3;
}

static void fill(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)small_int();
}

static double dotd(const float *a, const float *b) {
    double s = 0;
    for (int j = 0; j < DIM; j++) s += (double)a[j] * b[j];
    return s;
}

/* Brute force: text->image hit@k if fewer than k images score strictly above
 * its own; image->text hit@k if fewer than k other images' captions score
 * strictly above its best caption. */
static void brute_retrieval(const float *img, size_t ni, const float *txt, const size_t *owner, size_t nt,
                            retrieval_metrics *out) {
    memset(out, 0, sizeof *out);
    for (size_t t = 0; t < nt; t++) {
        double own = dotd(txt + t * DIM, img + owner[t] * DIM);
        size_t above = 0;
        for (size_t i = 0; i < ni; i++) above += i != owner[t] && dotd(txt + t * DIM, img + i * DIM) > own;
        for (int k = 0; k < RETRIEVAL_KS; k++) out->text_to_image[k] += above < (size_t)RETRIEVAL_K[k];
    }
    for (size_t i = 0; i < ni; i++) {
        double best = -1e300;
        for (size_t t = 0; t < nt; t++)
            if (owner[t] == i && dotd(txt + t * DIM, img + i * DIM) > best) best = dotd(txt + t * DIM, img + i * DIM);
        size_t above = 0;
        for (size_t t = 0; t < nt; t++) above += owner[t] != i && dotd(txt + t * DIM, img + i * DIM) > best;
        for (int k = 0; k < RETRIEVAL_KS; k++) out->image_to_text[k] += above < (size_t)RETRIEVAL_K[k];
    }
    for (int k = 0; k < RETRIEVAL_KS; k++) {
        out->text_to_image[k] /= (double)nt;
        out->image_to_text[k] /= (double)ni;
    }
}

static void test_retrieval_brute_force(size_t ni, size_t nt) {
    float *img = malloc(ni * DIM * sizeof(float)), *txt = malloc(nt * DIM * sizeof(float));
    size_t *owner = malloc(nt * sizeof(size_t));
    fill(img, ni * DIM);
    fill(txt, nt * DIM);
    for (size_t t = 0; t < nt; t++) owner[t] = t < ni ? t : (t * 7) % ni; /* every image has a caption */
    retrieval_metrics got, want;
    vt_error err = {0};
    CHECK(eval_retrieval_features(img, ni, txt, owner, nt, DIM, &got, &err) == VT_OK);
    brute_retrieval(img, ni, txt, owner, nt, &want);
    CHECK(got.n_images == ni && got.n_texts == nt);
    for (int k = 0; k < RETRIEVAL_KS; k++) {
        CHECK_NEAR(got.text_to_image[k], want.text_to_image[k], 1e-12);
        CHECK_NEAR(got.image_to_text[k], want.image_to_text[k], 1e-12);
    }
    free(img);
    free(txt);
    free(owner);
}

static void test_retrieval_hand_made(void) {
    /* 2-d: image 0 = (1,0), image 1 = (0,1), image 2 = (1,1).
     * captions: c0 -> img0 (1,0); c1 -> img0 (0,1); c2 -> img1 (0,1); c3 -> img2 (-1,-1). */
    float img[3 * 2] = {1, 0, 0, 1, 1, 1};
    float txt[4 * 2] = {1, 0, 0, 1, 0, 1, -1, -1};
    size_t owner[4] = {0, 0, 1, 2};
    retrieval_metrics m;
    vt_error err = {0};
    CHECK(eval_retrieval_features(img, 3, txt, owner, 4, 2, &m, &err) == VT_OK);
    /* text->image @1: c0 scores img0 1, img2 1 (a tie: not strictly above) -> hit;
     * c1: img0 0 < img1 1, img2 1 -> miss; c2: img1 1 ties img2 1 -> hit; c3: img2 -2 lowest -> miss. */
    CHECK_NEAR(m.text_to_image[0], 0.5, 1e-12);
    CHECK_NEAR(m.text_to_image[1], 1.0, 1e-12); /* k = 5 > 3 images: every caption hits */
    /* image->text @1: img0 best own caption c0 (1); others c2 0, c3 -1 -> hit. img1 own c2 (1);
     * c1 (img0's) also 1: tie, hit. img2 own c3 (-2); c0, c1, c2 all 1 -> miss. */
    CHECK_NEAR(m.image_to_text[0], 2.0 / 3.0, 1e-12);
    CHECK_NEAR(m.image_to_text[1], 1.0, 1e-12);

    size_t bad_owner[4] = {0, 0, 0, 2}; /* image 1 has no caption */
    CHECK(eval_retrieval_features(img, 3, txt, bad_owner, 4, 2, &m, &err) == VT_ERR_ARGUMENT);
    CHECK(strstr(err.message, "image 1 has no caption") != NULL);
    size_t out_of_range[4] = {0, 1, 2, 3};
    CHECK(eval_retrieval_features(img, 3, txt, out_of_range, 4, 2, &m, &err) == VT_ERR_ARGUMENT);
}

static void test_zeroshot_brute_force(size_t n, int classes) {
    float *img = malloc(n * DIM * sizeof(float)), *w = malloc((size_t)classes * DIM * sizeof(float));
    int *labels = malloc(n * sizeof(int));
    fill(img, n * DIM);
    fill(w, (size_t)classes * DIM);
    for (size_t i = 0; i < n; i++) labels[i] = (int)((i * 5) % (size_t)(classes > 1 ? classes - 1 : 1)); /* last class unused */
    zeroshot_metrics got;
    vt_error err = {0};
    CHECK(eval_zeroshot_features(img, labels, n, w, classes, DIM, &got, &err) == VT_OK);
    int k = classes < 5 ? classes : 5;
    size_t top1 = 0, topk = 0, *hit = calloc((size_t)classes, sizeof(size_t)), *total = calloc((size_t)classes, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        double own = dotd(img + i * DIM, w + (size_t)labels[i] * DIM);
        int above = 0;
        for (int c = 0; c < classes; c++) above += c != labels[i] && dotd(img + i * DIM, w + (size_t)c * DIM) > own;
        top1 += above == 0;
        topk += above < k;
        total[labels[i]]++;
        hit[labels[i]] += above == 0;
    }
    double recall = 0;
    int present = 0;
    for (int c = 0; c < classes; c++)
        if (total[c]) {
            recall += (double)hit[c] / total[c];
            present++;
        }
    CHECK(got.n_images == n && got.n_classes == classes && got.top5_k == k);
    CHECK(got.top1_correct == top1 && got.top5_correct == topk);
    CHECK_NEAR(got.top1, (double)top1 / n, 1e-12);
    CHECK_NEAR(got.top5, (double)topk / n, 1e-12);
    CHECK(got.classes_with_images == present);
    CHECK_NEAR(got.mean_per_class_recall, recall / present, 1e-12);
    free(hit);
    free(total);
    free(img);
    free(w);
    free(labels);
}

static void test_zeroshot_errors(void) {
    float img[DIM] = {1}, w[2 * DIM] = {1};
    int bad = 2;
    zeroshot_metrics m;
    vt_error err = {0};
    CHECK(eval_zeroshot_features(img, &bad, 1, w, 2, DIM, &m, &err) == VT_ERR_ARGUMENT);
    CHECK(strstr(err.message, "label 2 of image 0 is not a class index in [0, 2)") != NULL);
    CHECK(eval_zeroshot_features(img, &bad, 1, w, 0, DIM, &m, &err) == VT_ERR_ARGUMENT);
}

/* similarity_blocks must visit each pair once with the right score. */
static size_t visited;
static int wrong;
static const float *sa, *sb;
static void check_block(void *user, size_t a0, size_t na, size_t b0, size_t nb, const float *s) {
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++) {
            visited++;
            if (s[i * nb + j] != (float)dotd(sa + (a0 + i) * DIM, sb + (b0 + j) * DIM)) wrong++;
        }
}

static void test_similarity_blocks(void) {
    size_t na = 300, nb = 2100;
    float *a = malloc(na * DIM * sizeof(float)), *b = malloc(nb * DIM * sizeof(float));
    fill(a, na * DIM);
    fill(b, nb * DIM);
    sa = a;
    sb = b;
    vt_error err = {0};
    CHECK(similarity_blocks(a, na, b, nb, DIM, check_block, NULL, &err) == VT_OK);
    CHECK(visited == na * nb && wrong == 0);
    free(a);
    free(b);
}

int main(void) {
    test_retrieval_hand_made();
    test_retrieval_brute_force(7, 19);
    test_retrieval_brute_force(2100, 2300); /* images over one B block (2048), texts over one A block (256) */
    test_zeroshot_brute_force(40, 3);      /* k = min(5, 3) */
    test_zeroshot_brute_force(600, 2100);
    test_zeroshot_errors();
    test_similarity_blocks();
    return unit_summary("test_eval_metrics");
}
