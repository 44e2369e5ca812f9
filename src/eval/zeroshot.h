/* Zero-shot classification as open_clip's build_zero_shot_classifier does it:
 * for each class, embed every template filled with the class name, L2-normalise
 * each, average, L2-normalise the mean. Logits = exp(logit_scale)·img·Wᵀ. */
#ifndef VT_EVAL_ZEROSHOT_H
#define VT_EVAL_ZEROSHOT_H

#include "vitamin.h"

/* The 7 "simple" ImageNet templates open_clip uses by default (zero_shot_metadata.py). */
extern const char *const ZEROSHOT_DEFAULT_TEMPLATES[];
extern const int ZEROSHOT_DEFAULT_TEMPLATE_COUNT;

/* Fills `template_` ("a photo of a {}." or "{c}") with `classname` into out. */
vt_status zeroshot_fill_template(const char *template_, const char *classname, char *out, size_t out_size,
                                 vt_error *err);

/* weights: [n_classes, embed_dim], rows unit-norm. */
vt_status zeroshot_classifier(const vt_model *model, const vt_tokenizer *tok, const char *const *classnames,
                              int n_classes, const char *const *templates, int n_templates, float *weights,
                              vt_error *err);

/* probs[i, c] = softmax_c(scale · img[i] · weights[c]); img rows unit-norm. */
void zeroshot_probabilities(const float *image_features, int n_images, const float *weights, int n_classes,
                            int embed_dim, float scale, float *probs);

#endif
