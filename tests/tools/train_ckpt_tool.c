/* train_ckpt_tool: drives train_checkpoint_{save,resolve,load} and the
 * open_clip_config.json writer/reader for tests/test_train_checkpoint.py.
 *
 *   train_ckpt_tool save --model NAME --save-dir DIR --step N [--keep-last K]
 *       [--fill-seed S] [--no-moments] [--seed U64] [--samples N] [--skipped N]
 *       [--loss X] [--args JSON] [--die-at STAGE] [--dump PREFIX]
 *     fills the parameters and moments with seeded values (every bit pattern
 *     class: -0.0, subnormals, huge), saves, prints {"saved": DIR}. --die-at
 *     SIGKILLs the process at that stage of the save (see train_checkpoint.h).
 *   train_ckpt_tool load --model NAME --resume R [--save-dir DIR] [--dump PREFIX]
 *       [--weights-only]
 *     resolves and loads, prints the state as JSON.
 *   train_ckpt_tool config --model NAME --out PATH
 *     writes open_clip_config.json and checks that reading it back gives the
 *     same config.
 * --dump PREFIX writes PREFIX.values.npy, PREFIX.exp_avg.npy, PREFIX.exp_avg_sq.npy
 * (each [1, total], the flat buffers) and PREFIX.table.json (name, offset, count).
 * Exits 1 with the library's message on stderr on any failure. */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/serial/json_write.h"
#include "io/serial/npy.h"
#include "model/config_json.h"
#include "train/train_checkpoint.h"

static const char *die_at_stage;

static void die_at(const char *stage) {
    if (die_at_stage && !strcmp(stage, die_at_stage)) {
        fflush(stdout);
        raise(SIGKILL);
    }
}

static int fail(const vt_error *err) {
    fprintf(stderr, "error: %s\n", err->message);
    return 1;
}

static uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Seeded values in each tensor's range (padding stays zero), with special
 * bit patterns sprinkled in so that "bit-exact" means it. */
static void fill(const train_params *p, float *x, uint64_t seed, int positive) {
    static const float SPECIAL[] = {-0.0f, 1e-40f, -3e-42f, 3e38f, -1.5e-38f, 0.0f};
    for (int i = 0; i < p->count; i++) {
        const train_param *q = &p->params[i];
        for (size_t k = 0; k < q->count; k++) {
            uint64_t r = splitmix(seed * 0x100000001b3ULL + q->offset + k);
            float v = (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
            if ((r & 1023) < 6) v = SPECIAL[r & 1023];
            x[q->offset + k] = positive ? fabsf(v) : v;
        }
    }
}

static int dump(const char *prefix, const train_params *p, const float *m, const float *v) {
    char path[4096];
    vt_error err = {0};
    const float *buffers[] = {p->values, m, v};
    const char *names[] = {"values", "exp_avg", "exp_avg_sq"};
    for (int b = 0; b < 3; b++) {
        snprintf(path, sizeof path, "%s.%s.npy", prefix, names[b]);
        if (buffers[b] && npy_write_f32(path, 1, (int64_t)p->total, buffers[b], &err)) return fail(&err);
    }
    json_writer w = {0};
    json_write_raw(&w, "[");
    for (int i = 0; i < p->count; i++) {
        json_write_raw(&w, i ? ",\n" : "\n");
        json_write_format(&w, "{\"name\": \"%s\", \"offset\": %zu, \"count\": %zu}", p->params[i].name,
                          p->params[i].offset, p->params[i].count);
    }
    json_write_raw(&w, "]\n");
    snprintf(path, sizeof path, "%s.table.json", prefix);
    FILE *f = fopen(path, "w");
    int ok = f && !w.failed && fwrite(w.text, 1, w.length, f) == w.length;
    if (f) ok = fclose(f) == 0 && ok;
    json_writer_free(&w);
    if (!ok) fprintf(stderr, "error: cannot write %s\n", path);
    return !ok;
}

typedef struct {
    const char *model, *save_dir, *resume, *args, *dump, *out;
    int64_t step, samples, skipped;
    uint64_t seed, fill_seed;
    double loss;
    int keep_last, no_moments, weights_only;
} options;

static int parse(int argc, char **argv, options *o) {
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-moments")) { o->no_moments = 1; continue; }
        if (!strcmp(a, "--weights-only")) { o->weights_only = 1; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "error: %s needs a value\n", a); return 0; }
        const char *v = argv[++i];
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--save-dir")) o->save_dir = v;
        else if (!strcmp(a, "--resume")) o->resume = v;
        else if (!strcmp(a, "--args")) o->args = v;
        else if (!strcmp(a, "--dump")) o->dump = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--die-at")) die_at_stage = v;
        else if (!strcmp(a, "--step")) o->step = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--samples")) o->samples = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--skipped")) o->skipped = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--fill-seed")) o->fill_seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--loss")) o->loss = strtod(v, NULL);
        else if (!strcmp(a, "--keep-last")) o->keep_last = atoi(v);
        else { fprintf(stderr, "error: unknown option %s\n", a); return 0; }
    }
    if (!o->model) { fprintf(stderr, "error: --model is required\n"); return 0; }
    return 1;
}

static int run_config(const options *o, const vt_model_config *cfg) {
    vt_error err = {0};
    if (!o->out) { fprintf(stderr, "error: --out is required\n"); return 1; }
    if (config_write_open_clip_json(o->out, cfg, &err)) return fail(&err);
    vt_model_config back;
    int found = 0;
    if (config_read_json(o->out, &back, &found, NULL, &err)) return fail(&err);
    if (!found) { fprintf(stderr, "error: %s not recognised as a ViTamin config\n", o->out); return 1; }
    /* Every field must survive, except the preprocessing size: the json says
     * the trunk's size where open_clip's own XL-384 json says 256. */
    back.open_clip_preprocess_size = cfg->open_clip_preprocess_size;
    if (memcmp(&back, cfg, sizeof back) != 0) {
        fprintf(stderr, "error: %s read back as %s (width %d depth %d heads %d, text %d/%d/%d, embed %d, image %d, pos %d)\n",
                o->out, back.name, back.width, back.depth, back.heads, back.text_width, back.text_heads,
                back.text_layers, back.embed_dim, back.image_size, back.has_pos_embed);
        return 1;
    }
    printf("{\"ok\": true, \"name\": \"%s\"}\n", back.name);
    return 0;
}

int main(int argc, char **argv) {
    options o = {.loss = 0};
    if (argc < 2 || !parse(argc, argv, &o)) {
        fprintf(stderr, "usage: train_ckpt_tool save|load|config --model NAME ... (see the source)\n");
        return 2;
    }
    vt_error err = {0};
    vt_model_config cfg;
    if (vt_config_lookup(o.model, &cfg, &err)) return fail(&err);
    if (!strcmp(argv[1], "config")) return run_config(&o, &cfg);
    train_params p;
    if (train_params_create(&cfg, &p, &err)) return fail(&err);
    float *m = calloc(p.total ? p.total : 1, sizeof *m), *v = calloc(p.total ? p.total : 1, sizeof *v);
    int rc = 1;
    if (!m || !v) { fprintf(stderr, "error: out of memory\n"); goto done; }
    if (!strcmp(argv[1], "save")) {
        fill(&p, p.values, o.fill_seed, 0);
        fill(&p, m, o.fill_seed + 1, 0);
        fill(&p, v, o.fill_seed + 2, 1);
        train_state s = {.step = o.step, .samples_seen = o.samples, .skipped = o.skipped, .seed = o.seed,
                         .last_loss = o.loss, .args_json = o.args};
        train_checkpoint_save_hook = die_at;
        char saved[4096];
        vt_status st = train_checkpoint_save(o.save_dir, &p, o.no_moments ? NULL : m, o.no_moments ? NULL : v, &s,
                                             o.keep_last, saved, sizeof saved, &err);
        if (o.dump && dump(o.dump, &p, o.no_moments ? NULL : m, o.no_moments ? NULL : v)) goto done;
        if (st) {
            if (saved[0]) printf("{\"saved\": \"%s\"}\n", saved);
            fail(&err);
            goto done;
        }
        printf("{\"saved\": \"%s\"}\n", saved);
        rc = 0;
    } else if (!strcmp(argv[1], "load")) {
        char resolved[4096];
        if (train_checkpoint_resolve(o.resume, o.save_dir, resolved, sizeof resolved, &err)) { fail(&err); goto done; }
        train_state s = {.seed = 7};
        if (train_checkpoint_load(resolved, &p, o.weights_only ? NULL : m, o.weights_only ? NULL : v, &s, &err)) {
            fail(&err);
            goto done;
        }
        if (o.dump && dump(o.dump, &p, o.weights_only ? NULL : m, o.weights_only ? NULL : v)) goto done;
        json_writer w = {0};
        json_write_raw(&w, "{\"resolved\": ");
        json_write_string(&w, resolved);
        json_write_format(&w, ", \"step\": %" PRId64 ", \"samples_seen\": %" PRId64 ", \"skipped\": %" PRId64
                              ", \"seed\": \"%" PRIu64 "\", \"last_loss\": ",
                          s.step, s.samples_seen, s.skipped, s.seed);
        json_write_double(&w, s.last_loss);
        json_write_raw(&w, ", \"last_loss_hex\": ");
        json_write_format(&w, "\"%a\"", s.last_loss);
        json_write_raw(&w, ", \"args\": ");
        json_write_raw(&w, s.loaded_args_json ? s.loaded_args_json : "null");
        json_write_raw(&w, ", \"warning\": ");
        json_write_string(&w, s.warning);
        json_write_raw(&w, "}\n");
        free(s.loaded_args_json);
        if (!w.failed) fputs(w.text, stdout);
        rc = w.failed;
        json_writer_free(&w);
    } else {
        fprintf(stderr, "error: unknown command %s\n", argv[1]);
    }
done:
    free(m);
    free(v);
    train_params_free(&p);
    return rc;
}
