/* A whole training run (train_run.h). */
#include "train/train_run.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "eval/eval_data.h"
#include "eval/eval_metrics.h"
#include "eval/zeroshot.h"
#include "model/config.h"
#include "train/lock.h"
#include "train/optimizer.h"
#include "train/params.h"
#include "train/rng.h"
#include "train/train_checkpoint.h"
#include "train/trainer.h"

void train_run_defaults(train_run_options *o) {
    memset(o, 0, sizeof *o);
    o->model_name = "ViTamin-S";
    o->data.csv_separator = '\t';
    o->data.csv_img_key = "filepath";
    o->data.csv_caption_key = "title";
    o->data.augment = 1;
    o->batch_size = 64;
    o->accum_freq = 1;
    o->epochs = 32;
    /* open_clip_train get_default_params for ViT-style names. */
    o->lr = 5e-4;
    o->beta1 = 0.9;
    o->beta2 = 0.98;
    o->eps = 1e-6;
    o->wd = 0.2;
    o->warmup = 10000;
    o->lr_scheduler = "cosine";
    o->drop_path = -1.0f;
    o->log_every = 10;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void format_duration(double s, char *out, size_t cap) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(out, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(out, cap, "%lds", t);
}

typedef struct {
    eval_dataset set;
    char **classnames, **templates;
    size_t n_classnames, n_templates;
    vt_tokenizer *tok;
} zeroshot_setup;

static vt_status zeroshot_open(const train_run_options *o, vt_tokenizer *tok, zeroshot_setup *z, vt_error *err) {
    memset(z, 0, sizeof *z);
    z->tok = tok;
    vt_status st = VT_OK;
    if (o->zeroshot_classnames) st = eval_read_lines(o->zeroshot_classnames, "class names", &z->classnames, &z->n_classnames, err);
    if (!st && o->zeroshot_templates) st = eval_read_lines(o->zeroshot_templates, "templates", &z->templates, &z->n_templates, err);
    if (st) return st;
    struct stat info;
    if (stat(o->zeroshot_data, &info) == 0 && S_ISDIR(info.st_mode)) {
        st = eval_load_image_folder(o->zeroshot_data, &z->set, err);
    } else {
        if (!z->classnames)
            return vt_fail(err, VT_ERR_ARGUMENT, "--zeroshot-data %s is a table: give its class names with "
                           "--zeroshot-classnames FILE (one per line)", o->zeroshot_data);
        eval_csv_options co = {o->data.csv_separator, o->data.csv_img_key, "label", o->data.csv_caption_key};
        st = eval_load_classification_csv(o->zeroshot_data, &co, (const char *const *)z->classnames,
                                          (int)z->n_classnames, &z->set, err);
    }
    return st;
}

static void zeroshot_close(zeroshot_setup *z) {
    eval_dataset_free(&z->set);
    if (z->classnames) eval_free_lines(z->classnames, z->n_classnames);
    if (z->templates) eval_free_lines(z->templates, z->n_templates);
}

static vt_status zeroshot_run(const train_params *p, zeroshot_setup *z, zeroshot_metrics *m, vt_error *err) {
    vt_model *model = NULL;
    vt_status st = train_params_build_model(p, &model, err);
    if (st) return st;
    const char *const *names = z->classnames ? (const char *const *)z->classnames
                                             : (const char *const *)z->set.classnames;
    int n_classes = z->classnames ? (int)z->n_classnames : z->set.n_classes;
    const char *const *templates = z->templates ? (const char *const *)z->templates : ZEROSHOT_DEFAULT_TEMPLATES;
    int n_templates = z->templates ? (int)z->n_templates : ZEROSHOT_DEFAULT_TEMPLATE_COUNT;
    eval_options eo = {0};
    eo.batch = 256;
    st = eval_zeroshot(model, z->tok, (const char *const *)z->set.paths, z->set.labels, z->set.n, names, n_classes,
                       templates, n_templates, &eo, m, err);
    vt_model_free(model);
    return st;
}

static vt_status retrieval_run(const train_params *p, const vt_tokenizer *tok, const eval_dataset *set,
                               retrieval_metrics *m, vt_error *err) {
    vt_model *model = NULL;
    vt_status st = train_params_build_model(p, &model, err);
    if (st) return st;
    st = eval_retrieval(model, tok, (const char *const *)set->paths, (const char *const *)set->captions, set->n, NULL,
                        m, err);
    vt_model_free(model);
    return st;
}

/* Draws the loss (and zero-shot top-1) curves from the JSON log with gnuplot,
 * if it is installed. */
static void draw_plot(const char *log_path, const char *png, int have_eval) {
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        fprintf(stderr, "vitamin train: gnuplot not found; no plot written (apt-get install gnuplot-nox)\n");
        return;
    }
    char script[4096], cmd[8192];
    /* The JSON lines are flat, so awk pulls the fields out for gnuplot. */
    snprintf(script, sizeof script,
             "set terminal pngcairo size 900,500; set output '%s'; set xlabel 'step'; set ylabel 'loss'; "
             "set y2label 'zero-shot top-1 (%%)'; set ytics nomirror; set y2tics; set grid; set key top right; "
             "plot \"< awk -F'[:,}]' '/\\\"loss\\\"/{for(i=1;i<NF;i++){if($i~/\\\"step\\\"/)s=$(i+1);if($i~/\\\"loss\\\"/)l=$(i+1)} print s, l}' %s\" "
             "using 1:2 with lines title 'loss' axes x1y1%s",
             png, log_path,
             have_eval ? ", \"< awk -F'[:,}]' '/zeroshot_top1/{for(i=1;i<NF;i++){if($i~/\\\"step\\\"/)s=$(i+1);if($i~/zeroshot_top1/)a=$(i+1)} print s, 100*a}' "
                         : "");
    if (have_eval) {
        size_t len = strlen(script);
        snprintf(script + len, sizeof script - len, "%s\" using 1:2 with linespoints title 'zero-shot top-1' axes x1y2", log_path);
    }
    /* The script holds both kinds of quotes: hand it to gnuplot as a file. */
    char path[] = "/tmp/vitamin-plot-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "%s\n", script);
    fclose(f);
    snprintf(cmd, sizeof cmd, "gnuplot %s", path);
    if (system(cmd) != 0) fprintf(stderr, "vitamin train: gnuplot failed; no plot written\n");
    else fprintf(stderr, "vitamin train: plot written to %s\n", png);
    unlink(path);
}

/* Messages from rank 0 only (every rank runs the same loop). */
static int is_root(const train_run_options *o) { return !o->dist || o->dist->rank == 0; }

/* Full-size AdamW moments for saving/loading: the trainer's own buffers, or
 * with ZeRO-1 temporaries that the shards are gathered into / copied from. */
static vt_status full_moments(trainer *t, float **m, float **v, vt_error *err) {
    if (!t->dist.zero1) {
        *m = t->exp_avg;
        *v = t->exp_avg_sq;
        return VT_OK;
    }
    *m = calloc(t->params->total, sizeof(float));
    *v = calloc(t->params->total, sizeof(float));
    if (!*m || !*v) return vt_fail(err, VT_ERR_NOMEM, "out of memory for the optimizer state");
    return VT_OK;
}

static void free_full_moments(trainer *t, float *m, float *v) {
    if (t->dist.zero1) {
        free(m);
        free(v);
    }
}

static void copy_shard_out(trainer *t, float *m, float *v) {
    size_t n = t->moment_end - t->moment_begin;
    memcpy(t->exp_avg, m + t->moment_begin, n * sizeof(float));
    memcpy(t->exp_avg_sq, v + t->moment_begin, n * sizeof(float));
}

static vt_status save_checkpoint(const train_run_options *o, trainer *t, train_state *state, vt_error *err) {
    float *m = NULL, *v = NULL;
    vt_status st = full_moments(t, &m, &v, err);
    if (!st && t->dist.zero1) {
        size_t n = t->moment_end - t->moment_begin;
        memcpy(m + t->moment_begin, t->exp_avg, n * sizeof(float));
        memcpy(v + t->moment_begin, t->exp_avg_sq, n * sizeof(float));
        dist_gatherv_to_root(o->dist, m, t->shard);
        dist_gatherv_to_root(o->dist, v, t->shard);
    }
    if (!st && is_root(o)) {
        char saved[4096];
        state->args_json = o->args_json;
        st = train_checkpoint_save(o->save_dir, t->params, m, v, state, o->keep_last, saved, sizeof saved, err);
        if (!st) fprintf(stderr, "vitamin train: saved %s\n", saved);
    }
    if (m) free_full_moments(t, m, v);
    return st;
}

/* Everything one run holds; train_run's helpers fill and use it, run_close frees it. */
typedef struct {
    const train_run_options *o;
    vt_model_config cfg;
    train_params p;
    vt_tokenizer *tok;
    data_loader *loader;
    trainer *t;
    FILE *log;
    zeroshot_setup zs;
    eval_dataset rt;
    int have_zs, have_rt;
    int world;
    int64_t per_epoch, total;
    train_state state;
} run_ctx;

static void run_close(run_ctx *r) {
    if (r->log) fclose(r->log);
    if (r->have_zs) zeroshot_close(&r->zs);
    if (r->have_rt) eval_dataset_free(&r->rt);
    trainer_free(r->t);
    data_loader_close(r->loader);
    vt_tokenizer_free(r->tok);
    train_params_free(&r->p);
}

/* Model config, parameters, tokenizer, data loader and trainer. */
static vt_status run_open(run_ctx *r, vt_error *err) {
    const train_run_options *o = r->o;
    vt_status st;
    if ((st = vt_config_lookup(o->model_name, &r->cfg, err))) return st;
    if ((st = clip_train_supports(&r->cfg, err))) return st;
    if (o->patch_dropout != 0 && r->cfg.image_tower != VT_TOWER_VIT)
        return vt_fail(err, VT_ERR_ARGUMENT, "--force-patch-dropout: %s is a %s model; patch dropout is "
                       "open_clip's for ViT towers (a conv trunk needs the whole grid)", r->cfg.name,
                       r->cfg.image_tower == VT_TOWER_CONVNEXT ? "ConvNeXt" : "ViTamin");
    if (!(o->patch_dropout >= 0 && o->patch_dropout < 1))
        return vt_fail(err, VT_ERR_ARGUMENT, "--force-patch-dropout %g: must be in [0, 1)", o->patch_dropout);
    if (r->cfg.image_tower == VT_TOWER_VIT && o->drop_path > 0)
        return vt_fail(err, VT_ERR_ARGUMENT, "--drop-path: %s is a ViT, and open_clip's VisionTransformer has no "
                       "stochastic depth; drop the flag", r->cfg.name);
    if (o->batch_size < 2) return vt_fail(err, VT_ERR_ARGUMENT, "--batch-size must be at least 2 (a contrastive loss needs negatives)");
    if (o->accum_freq < 1 || o->batch_size % o->accum_freq)
        return vt_fail(err, VT_ERR_ARGUMENT, "--accum-freq %d must divide --batch-size %d", o->accum_freq, o->batch_size);
    if ((st = train_params_create(&r->cfg, &r->p, err))) return st;
    if ((st = vt_tokenizer_load(o->vocab_path, &r->tok, err))) return st;

    data_options dopt = o->data;
    dopt.image_size = r->cfg.image_size;
    dopt.context_length = r->cfg.context_length;
    dopt.tokenizer = r->tok;
    dopt.seed = o->seed;
    r->world = o->dist ? o->dist->world : 1;
    dopt.rank = o->dist ? o->dist->rank : 0;
    dopt.world = r->world;
    dopt.global_batch = o->batch_size * r->world;
    if ((st = data_loader_open(&dopt, &r->loader, err))) return st;
    r->per_epoch = data_loader_steps_per_epoch(r->loader);
    if (r->per_epoch < 1)
        return vt_fail(err, VT_ERR_ARGUMENT, "%s has %lld samples, fewer than one batch of %d: lower --batch-size",
                       o->data.train_data, (long long)data_loader_samples(r->loader), o->batch_size * r->world);
    r->total = o->steps > 0 ? o->steps : (int64_t)o->epochs * r->per_epoch;

    clip_train_options copt = {.batch = o->batch_size / o->accum_freq,
                               .drop_path = o->drop_path < 0 ? 0.1f : o->drop_path,
                               .patch_dropout = o->patch_dropout,
                               .seed = o->seed,
                               .recompute = o->grad_checkpointing};
    if ((st = trainer_create(&r->p, o->batch_size, o->batch_size / o->accum_freq, &copt, &r->t, err))) return st;
    if (r->world > 1 || o->zero1) {
        trainer_dist_options dto = {o->dist, o->local_loss, o->gather_with_grad, o->zero1};
        if ((st = trainer_set_distributed(r->t, &dto, err))) return st;
    }
    return VT_OK;
}

/* Resumed state, pretrained weights or a fresh init; then the locks. */
static vt_status run_restore(run_ctx *r, vt_error *err) {
    const train_run_options *o = r->o;
    vt_status st;
    memset(&r->state, 0, sizeof r->state);
    r->state.seed = o->seed;
    if (o->resume) {
        char resolved[4096];
        float *m = NULL, *v = NULL;
        if ((st = train_checkpoint_resolve(o->resume, o->save_dir, resolved, sizeof resolved, err))) return st;
        if ((st = full_moments(r->t, &m, &v, err))) return st;
        st = train_checkpoint_load(resolved, &r->p, m, v, &r->state, err);
        if (!st && r->t->dist.zero1) copy_shard_out(r->t, m, v);
        free_full_moments(r->t, m, v);
        if (st) return st;
        free(r->state.loaded_args_json);
        r->state.loaded_args_json = NULL;
        if (r->state.warning[0] && is_root(o)) fprintf(stderr, "vitamin train: %s\n", r->state.warning);
        /* Checkpoints move across world sizes as long as the global batch (and
         * so the data order and step meaning) stays the same. */
        int64_t step = r->state.step, seen = r->state.samples_seen;
        if (step > 0 && seen != step * (int64_t)o->batch_size * r->world)
            return vt_fail(err, VT_ERR_ARGUMENT, "%s was trained with a global batch of %lld; this run has %d (%d ranks "
                           "x --batch-size %d): choose --batch-size so that ranks x batch-size = %lld",
                           resolved, (long long)(seen / step), o->batch_size * r->world, r->world, o->batch_size,
                           (long long)(seen / step));
        r->t->step = step;
        if (is_root(o)) fprintf(stderr, "vitamin train: resumed from %s at step %lld\n", resolved, (long long)step);
    } else if (o->pretrained) {
        if ((st = train_params_load_checkpoint(&r->p, o->pretrained, err))) return st;
    } else {
        train_params_init(&r->p, o->seed);
    }
    train_lock_apply(&r->p, r->t->model->frozen, o->lock_image, o->lock_image_unlocked_groups, o->lock_text,
                     o->lock_text_unlocked_layers);
    return clip_trainer_update_frozen(r->t->model, err);
}

/* Evaluation sets and the JSON log (rank 0 only). */
static vt_status run_open_outputs(run_ctx *r, vt_error *err) {
    const train_run_options *o = r->o;
    vt_status st;
    if (!is_root(o)) return VT_OK;
    if (o->retrieval_data) {
        eval_csv_options co = {o->data.csv_separator, o->data.csv_img_key, "label", o->data.csv_caption_key};
        if ((st = eval_load_retrieval_csv(o->retrieval_data, &co, &r->rt, err))) return st;
        r->have_rt = 1;
    }
    if (o->zeroshot_data) {
        if ((st = zeroshot_open(o, r->tok, &r->zs, err))) return st;
        r->have_zs = 1;
    }
    if (o->log_path) {
        r->log = fopen(o->log_path, r->state.step ? "a" : "w");
        if (!r->log) return vt_fail(err, VT_ERR_IO, "cannot write the log %s", o->log_path);
    }
    return VT_OK;
}

/* After a step: evaluation when due, the JSON log line, the progress line. */
static vt_status run_report(run_ctx *r, const data_batch *batch, const step_result *res, double ips,
                            double *last_top1, vt_error *err) {
    const train_run_options *o = r->o;
    int64_t step = r->state.step;
    int eval_step = (o->eval_every > 0 && step % o->eval_every == 0) || step == r->total;
    int eval_now = r->have_zs && eval_step, retrieval_now = r->have_rt && eval_step;
    zeroshot_metrics zm;
    retrieval_metrics rm;
    vt_status st;
    if (retrieval_now) {
        if ((st = retrieval_run(&r->p, r->tok, &r->rt, &rm, err))) return st;
        fprintf(stderr, "vitamin train: step %lld retrieval image->text R@1/5/10 %.2f/%.2f/%.2f%%, text->image "
                "%.2f/%.2f/%.2f%%\n", (long long)step, 100 * rm.image_to_text[0], 100 * rm.image_to_text[1],
                100 * rm.image_to_text[2], 100 * rm.text_to_image[0], 100 * rm.text_to_image[1],
                100 * rm.text_to_image[2]);
    }
    if (eval_now) {
        if ((st = zeroshot_run(&r->p, &r->zs, &zm, err))) return st;
        *last_top1 = zm.top1;
        fprintf(stderr, "vitamin train: step %lld zero-shot top-1 %.2f%%, top-5 %.2f%%, mean per-class recall "
                "%.2f%%\n", (long long)step, 100 * zm.top1, 100 * zm.top5, 100 * zm.mean_per_class_recall);
    }
    if (r->log) {
        fprintf(r->log, "{\"step\": %lld, \"epoch\": %lld, \"loss\": %.6f, \"lr\": %.6g, \"logit_scale\": %.4f, "
                "\"grad_norm\": %.5g, \"images_per_s\": %.2f, \"skipped\": %lld",
                (long long)step, (long long)batch->epoch, res->loss, res->lr, res->logit_scale, res->grad_norm, ips,
                (long long)batch->skipped_total);
        if (eval_now) fprintf(r->log, ", \"zeroshot_top1\": %.5f, \"zeroshot_top5\": %.5f", zm.top1, zm.top5);
        if (retrieval_now)
            fprintf(r->log, ", \"image_to_text_r1\": %.5f, \"image_to_text_r5\": %.5f, \"text_to_image_r1\": %.5f, "
                    "\"text_to_image_r5\": %.5f", rm.image_to_text[0], rm.image_to_text[1], rm.text_to_image[0],
                    rm.text_to_image[1]);
        fprintf(r->log, "}\n");
        fflush(r->log);
    }
    return VT_OK;
}

vt_status train_run(const train_run_options *o, vt_error *err) {
    run_ctx r;
    memset(&r, 0, sizeof r);
    r.o = o;
    vt_status st = run_open(&r, err);
    if (!st) st = run_restore(&r, err);
    if (!st && r.state.step >= r.total) {
        if (is_root(o)) fprintf(stderr, "vitamin train: the checkpoint is at step %lld, the run has %lld steps: nothing to do\n",
                (long long)r.state.step, (long long)r.total);
        run_close(&r);
        return VT_OK;
    }
    if (!st) st = data_loader_seek(r.loader, r.state.step, err);
    if (!st) st = run_open_outputs(&r, err);
    if (st) {
        run_close(&r);
        return st;
    }
    int world = r.world;
    adamw_hparams adam = {(float)o->beta1, (float)o->beta2, (float)o->eps, (float)o->wd};
    if (is_root(o))
        fprintf(stderr, "vitamin train: %s, %lld samples, batch %d (%d ranks x %d, %d per micro-batch), %lld steps "
                "(%lld per epoch), %d threads per rank\n", r.cfg.name, (long long)data_loader_samples(r.loader),
                o->batch_size * world, world, o->batch_size, o->batch_size / o->accum_freq, (long long)r.total,
                (long long)r.per_epoch, omp_get_max_threads());

    double t_start = now_seconds(), t_window = t_start;
    int64_t window_steps = 0, first_step = r.state.step;
    int64_t save_every = o->save_every > 0 ? o->save_every : r.per_epoch;
    double last_top1 = -1.0;
    for (int64_t step = r.state.step; step < r.total && !st; step++) {
        data_batch batch;
        if ((st = data_loader_next(r.loader, &batch, err))) break;
        double lr = !strcmp(o->lr_scheduler, "const") ? lr_const(o->lr, o->warmup, step)
                                                      : lr_cosine(o->lr, o->warmup, r.total, step);
        step_result res;
        uint64_t drop_key = rng_key(o->seed, 0x64726f70ULL /* "drop" */, (uint64_t)step);
        st = trainer_step(r.t, batch.pixels, batch.tokens, batch.count, lr, &adam, o->grad_clip_norm, drop_key, &res,
                          err);
        if (st) {
            vt_error_prefix(err, "step %lld: ", (long long)step + 1);
            if (o->save_dir) {
                size_t len = strlen(err->message);
                snprintf(err->message + len, sizeof err->message - len,
                         "; the last good checkpoint in %s is kept (resume with --resume latest)", o->save_dir);
            }
            break;
        }
        r.state.step = step + 1;
        r.state.samples_seen += (int64_t)o->batch_size * world;
        r.state.skipped = batch.skipped_total;
        r.state.last_loss = res.loss;
        window_steps++;
        double now = now_seconds();
        double ips = (double)(r.state.step - first_step) * o->batch_size * world / (now - t_start);
        if ((st = run_report(&r, &batch, &res, ips, &last_top1, err))) break;
        if (is_root(o) && (r.state.step % (o->log_every > 0 ? o->log_every : 1) == 0 || r.state.step == r.total)) {
            char eta[32];
            format_duration((double)(r.total - r.state.step) * (now - t_start) / (double)(r.state.step - first_step),
                            eta, sizeof eta);
            fprintf(stderr, "step %lld/%lld  epoch %lld  loss %.4f  logit_scale %.2f  lr %.3e  %.1f img/s  ETA %s\n",
                    (long long)r.state.step, (long long)r.total, (long long)batch.epoch, res.loss, res.logit_scale,
                    res.lr, (double)window_steps * o->batch_size * world / (now - t_window), eta);
            t_window = now;
            window_steps = 0;
        }
        if (o->save_dir && (r.state.step % save_every == 0 || r.state.step == r.total))
            st = save_checkpoint(o, r.t, &r.state, err);
    }
    if (!st) {
        if (o->dist && o->dist->world > 1 && is_root(o))
            fprintf(stderr, "vitamin train: rank 0 spent %.1f s in communication\n", o->dist->comm_seconds);
        if (o->plot_path && o->log_path && is_root(o)) {
            if (r.log) fflush(r.log);
            draw_plot(o->log_path, o->plot_path, r.have_zs);
        }
        if (last_top1 >= 0) fprintf(stderr, "vitamin train: final zero-shot top-1 %.2f%%\n", 100 * last_top1);
    }
    run_close(&r);
    return st;
}
