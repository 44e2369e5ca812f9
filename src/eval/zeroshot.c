#include "eval/zeroshot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/norm.h"

const char *const ZEROSHOT_DEFAULT_TEMPLATES[] = {
    "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
    "a {} in a video game.", "art of the {}.", "a photo of the small {}.",
};
const int ZEROSHOT_DEFAULT_TEMPLATE_COUNT = 7;

vt_status zeroshot_fill_template(const char *tpl, const char *classname, char *out, size_t out_size, vt_error *err) {
    const char *hole = strstr(tpl, "{}");
    size_t hole_len = 2;
    if (!hole) { hole = strstr(tpl, "{c}"); hole_len = 3; }
    if (!hole) return vt_fail(err, VT_ERR_ARGUMENT, "template '%s' has no {} (or {c}) placeholder for the class name", tpl);
    int n = snprintf(out, out_size, "%.*s%s%s", (int)(hole - tpl), tpl, classname, hole + hole_len);
    if (n < 0 || (size_t)n >= out_size) return vt_fail(err, VT_ERR_ARGUMENT, "template filled with '%s' is too long", classname);
    return VT_OK;
}

vt_status zeroshot_classifier(const vt_model *model, const vt_tokenizer *tok, const char *const *classnames,
                              int n_classes, const char *const *templates, int n_templates, float *weights,
                              vt_error *err) {
    if (n_classes <= 0 || n_templates <= 0) return vt_fail(err, VT_ERR_ARGUMENT, "need at least one class and one template");
    vt_model_info info;
    vt_model_get_info(model, &info);
    int e = info.embed_dim;
    char **texts = calloc((size_t)n_templates, sizeof *texts);
    float *emb = malloc((size_t)n_templates * e * sizeof(float));
    vt_status st = texts && emb ? VT_OK : vt_fail(err, VT_ERR_NOMEM, "out of memory");
    for (int c = 0; c < n_classes && !st; c++) {
        for (int t = 0; t < n_templates && !st; t++) {
            char buf[4096];
            st = zeroshot_fill_template(templates[t], classnames[c], buf, sizeof buf, err);
            if (!st) {
                free(texts[t]);
                texts[t] = strdup(buf);
                if (!texts[t]) st = vt_fail(err, VT_ERR_NOMEM, "out of memory");
            }
        }
        if (!st) st = vt_encode_texts(model, tok, (const char *const *)texts, n_templates, 1, emb, err);
        if (st) break;
        float *w = weights + (size_t)c * e;
        for (int j = 0; j < e; j++) {
            double s = 0;
            for (int t = 0; t < n_templates; t++) s += emb[(size_t)t * e + j];
            w[j] = (float)(s / n_templates);
        }
        l2_normalize_rows(w, w, 1, e);
    }
    if (texts)
        for (int t = 0; t < n_templates; t++) free(texts[t]);
    free(texts);
    free(emb);
    return st;
}

void zeroshot_probabilities(const float *img, int n_images, const float *weights, int n_classes, int e, float scale,
                            float *probs) {
    for (int i = 0; i < n_images; i++) {
        float *p = probs + (size_t)i * n_classes;
        float mx = -INFINITY;
        for (int c = 0; c < n_classes; c++) {
            double dot = 0;
            for (int j = 0; j < e; j++) dot += (double)img[(size_t)i * e + j] * weights[(size_t)c * e + j];
            p[c] = scale * (float)dot;
            if (p[c] > mx) mx = p[c];
        }
        double sum = 0;
        for (int c = 0; c < n_classes; c++) sum += (p[c] = expf(p[c] - mx));
        for (int c = 0; c < n_classes; c++) p[c] = (float)(p[c] / sum);
    }
}
