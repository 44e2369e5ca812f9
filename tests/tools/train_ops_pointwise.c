/* train_ops_pointwise: runs one training op of train/ops.h or train/optimizer.h
 * on float32 .npy inputs in DIR and writes its outputs as DIR/out_<name>.npy,
 * for tests/reference/test_train_ops_pointwise.py.
 *
 *   layernorm DIR EPS MODE        x weight bias dy dweight0 dbias0
 *                                 → y mean rstd dx dweight dbias
 *   gelu DIR MODE                 x dy → y dx
 *   geglu DIR                     gate lin dy → y dgate dlin
 *   swiglu DIR                    gate lin dy → y dgate dlin (SiLU gate)
 *   depthwise DIR B H W C STRIDE MODE
 *                                 x weight[C,9] bias dy dweight0 dbias0 → y dx dweight dbias
 *   avgpool DIR B H W C           x dy → y dx
 *   clip DIR                      image text logit_scale → loss logits dimage dtext dlogit_scale
 *   adamw DIR N_DECAY LR WARMUP TOTAL BETA1 BETA2 EPS WD MAX_NORM
 *                                 params[1,n] grads[steps,n] → params exp_avg exp_avg_sq norms lrs
 *   lr DIR BASE WARMUP TOTAL      (no inputs) → cosine const: lr_cosine / lr_const for steps 0..TOTAL
 *
 * MODE: "plain"; "alias" (outputs written over their inputs: y over x, dx
 * over dy); "noparams" (dweight/dbias NULL: only dx). The parameter-gradient
 * outputs start from dweight0/dbias0, so they show the += semantics. In adamw
 * the first N_DECAY values get weight decay, the rest none; each step clips
 * the whole gradient to MAX_NORM and uses lr_cosine(LR, WARMUP, TOTAL, step).
 * Exits 1 with a message on any failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/serial/npy.h"
#include "kernels/activation.h"
#include "kernels/conv.h"
#include "train/ops.h"
#include "train/optimizer.h"

typedef struct {
    float *data;
    int64_t rows, cols;
} array;

static const char *g_dir;

static array load(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", g_dir, name);
    array a;
    vt_error err;
    if (npy_read_f32(path, &a.data, &a.rows, &a.cols, &err) != VT_OK) {
        fprintf(stderr, "train_ops_pointwise: %s\n", err.message);
        exit(1);
    }
    return a;
}

static void save(const char *name, int64_t rows, int64_t cols, const float *data) {
    char path[4096];
    snprintf(path, sizeof path, "%s/out_%s.npy", g_dir, name);
    vt_error err;
    if (npy_write_f32(path, rows, cols, data, &err) != VT_OK) {
        fprintf(stderr, "train_ops_pointwise: %s\n", err.message);
        exit(1);
    }
}

static float *alloc_floats(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "train_ops_pointwise: out of memory\n");
        exit(1);
    }
    return p;
}

static size_t count(array a) { return (size_t)(a.rows * a.cols); }

static int run_layernorm(float eps, const char *mode) {
    array x = load("x"), weight = load("weight"), bias = load("bias"), dy = load("dy");
    array dweight = load("dweight0"), dbias = load("dbias0");
    size_t rows = (size_t)x.rows;
    int dim = (int)x.cols;
    float *mean = alloc_floats(rows), *rstd = alloc_floats(rows);
    int alias = !strcmp(mode, "alias"), noparams = !strcmp(mode, "noparams");
    float *y = alias ? x.data : alloc_floats(count(x));
    float *dx = alias ? dy.data : alloc_floats(count(x));
    /* In alias mode x is overwritten by y, so the backward gets a saved copy. */
    float *x_saved = alloc_floats(count(x));
    memcpy(x_saved, x.data, sizeof(float) * count(x));
    layernorm_train_forward(y, mean, rstd, x.data, weight.data, bias.data, rows, dim, eps);
    layernorm_train_backward(dx, noparams ? NULL : dweight.data, noparams ? NULL : dbias.data, dy.data, x_saved,
                             mean, rstd, weight.data, rows, dim);
    save("y", x.rows, x.cols, y);
    save("mean", 1, x.rows, mean);
    save("rstd", 1, x.rows, rstd);
    save("dx", x.rows, x.cols, dx);
    save("dweight", 1, dim, dweight.data);
    save("dbias", 1, dim, dbias.data);
    return 0;
}

static int run_gelu(const char *mode) {
    array x = load("x"), dy = load("dy");
    size_t n = count(x);
    int alias = !strcmp(mode, "alias");
    float *x_saved = alloc_floats(n);
    memcpy(x_saved, x.data, sizeof(float) * n);
    float *y = alias ? x.data : alloc_floats(n), *dx = alias ? dy.data : alloc_floats(n);
    gelu_train_forward(y, x.data, n);
    gelu_train_backward(dx, dy.data, x_saved, n);
    save("y", x.rows, x.cols, y);
    save("dx", x.rows, x.cols, dx);
    return 0;
}

static int run_glu(int act) {
    array gate = load("gate"), lin = load("lin"), dy = load("dy");
    size_t n = count(gate);
    float *y = alloc_floats(n), *dgate = alloc_floats(n), *dlin = alloc_floats(n);
    glu_train_forward(act, y, gate.data, lin.data, (size_t)gate.rows, (int)gate.cols);
    glu_train_backward(act, dgate, dlin, dy.data, gate.data, lin.data, (size_t)gate.rows, (int)gate.cols);
    save("y", gate.rows, gate.cols, y);
    save("dgate", gate.rows, gate.cols, dgate);
    save("dlin", gate.rows, gate.cols, dlin);
    return 0;
}

static int run_depthwise(int batch, int h, int w, int c, int stride, const char *mode) {
    array x = load("x"), weight = load("weight"), bias = load("bias"), dy = load("dy");
    array dweight = load("dweight0"), dbias = load("dbias0");
    int ho = conv3x3_out(h, stride), wo = conv3x3_out(w, stride);
    int noparams = !strcmp(mode, "noparams");
    float *y = alloc_floats((size_t)batch * ho * wo * c), *dx = alloc_floats(count(x));
    depthwise3x3_train_forward(y, x.data, weight.data, bias.data, batch, h, w, c, stride);
    depthwise3x3_train_backward(dx, noparams ? NULL : dweight.data, noparams ? NULL : dbias.data, dy.data, x.data,
                                weight.data, batch, h, w, c, stride);
    save("y", (int64_t)batch * ho * wo, c, y);
    save("dx", x.rows, x.cols, dx);
    save("dweight", c, 9, dweight.data);
    save("dbias", 1, c, dbias.data);
    return 0;
}

static int run_avgpool(int batch, int h, int w, int c) {
    array x = load("x"), dy = load("dy");
    int ho = conv3x3_out(h, 2), wo = conv3x3_out(w, 2);
    float *y = alloc_floats((size_t)batch * ho * wo * c), *dx = alloc_floats(count(x));
    /* dx starts as garbage: the backward must overwrite, not accumulate. */
    for (size_t i = 0; i < count(x); i++) dx[i] = 12345.0f;
    avgpool3x3s2_forward(y, x.data, batch, h, w, c);
    avgpool3x3s2_backward(dx, dy.data, batch, h, w, c);
    save("y", (int64_t)batch * ho * wo, c, y);
    save("dx", x.rows, x.cols, dx);
    return 0;
}

static int run_clip(void) {
    array image = load("image"), text = load("text"), scale = load("logit_scale");
    int n = (int)image.rows, e = (int)image.cols;
    float *dimage = alloc_floats(count(image)), *dtext = alloc_floats(count(text));
    float *logits = alloc_floats((size_t)n * n), dscale, loss_f;
    double loss = clip_loss_forward_backward(image.data, text.data, n, e, scale.data[0], dimage, dtext, &dscale,
                                             logits);
    loss_f = (float)loss;
    save("loss", 1, 1, &loss_f);
    save("logits", n, n, logits);
    save("dimage", n, e, dimage);
    save("dtext", n, e, dtext);
    save("dlogit_scale", 1, 1, &dscale);
    return 0;
}

static int run_adamw(char **arg) {
    size_t n_decay = strtoull(arg[0], NULL, 10);
    double lr = strtod(arg[1], NULL), max_norm = strtod(arg[8], NULL);
    int64_t warmup = strtoll(arg[2], NULL, 10), total = strtoll(arg[3], NULL, 10);
    adamw_hparams h = {.beta1 = strtof(arg[4], NULL), .beta2 = strtof(arg[5], NULL), .eps = strtof(arg[6], NULL),
                       .weight_decay = strtof(arg[7], NULL)};
    array params = load("params"), grads = load("grads");
    size_t n = count(params);
    int steps = (int)grads.rows;
    if ((size_t)grads.cols != n || n_decay > n) {
        fprintf(stderr, "train_ops_pointwise: grads must be [steps, n] and N_DECAY <= n\n");
        return 1;
    }
    float *exp_avg = alloc_floats(n), *exp_avg_sq = alloc_floats(n), *grad = alloc_floats(n);
    float *norms = alloc_floats(steps), *lrs = alloc_floats(steps);
    for (int s = 0; s < steps; s++) {
        memcpy(grad, grads.data + (size_t)s * n, sizeof(float) * n);
        norms[s] = (float)clip_grad_global_norm(grad, n, max_norm);
        double step_lr = lr_cosine(lr, warmup, total, s);
        lrs[s] = (float)step_lr;
        adamw_update(params.data, grad, exp_avg, exp_avg_sq, n_decay, (float)step_lr, 1, s + 1, &h);
        adamw_update(params.data + n_decay, grad + n_decay, exp_avg + n_decay, exp_avg_sq + n_decay, n - n_decay,
                     (float)step_lr, 0, s + 1, &h);
    }
    save("params", 1, n, params.data);
    save("exp_avg", 1, n, exp_avg);
    save("exp_avg_sq", 1, n, exp_avg_sq);
    save("norms", 1, steps, norms);
    save("lrs", 1, steps, lrs);
    return 0;
}

static int run_lr(double base, int64_t warmup, int64_t total) {
    float *cosine = alloc_floats((size_t)total + 1), *constant = alloc_floats((size_t)total + 1);
    for (int64_t s = 0; s <= total; s++) {
        cosine[s] = (float)lr_cosine(base, warmup, total, s);
        constant[s] = (float)lr_const(base, warmup, s);
    }
    save("cosine", 1, total + 1, cosine);
    save("const", 1, total + 1, constant);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: train_ops_pointwise OP DIR [ARGS...] (see the source)\n");
        return 1;
    }
    const char *op = argv[1];
    g_dir = argv[2];
    int extra = argc - 3;
    char **arg = argv + 3;
    if (!strcmp(op, "layernorm") && extra == 2) return run_layernorm(strtof(arg[0], NULL), arg[1]);
    if (!strcmp(op, "gelu") && extra == 1) return run_gelu(arg[0]);
    if (!strcmp(op, "geglu") && extra == 0) return run_glu(VT_GLU_GELU);
    if (!strcmp(op, "swiglu") && extra == 0) return run_glu(VT_GLU_SILU);
    if (!strcmp(op, "depthwise") && extra == 6)
        return run_depthwise(atoi(arg[0]), atoi(arg[1]), atoi(arg[2]), atoi(arg[3]), atoi(arg[4]), arg[5]);
    if (!strcmp(op, "avgpool") && extra == 4)
        return run_avgpool(atoi(arg[0]), atoi(arg[1]), atoi(arg[2]), atoi(arg[3]));
    if (!strcmp(op, "clip") && extra == 0) return run_clip();
    if (!strcmp(op, "adamw") && extra == 9) return run_adamw(arg);
    if (!strcmp(op, "lr") && extra == 3)
        return run_lr(strtod(arg[0], NULL), strtoll(arg[1], NULL, 10), strtoll(arg[2], NULL, 10));
    fprintf(stderr, "train_ops_pointwise: unknown op '%s' or wrong argument count\n", op);
    return 1;
}
