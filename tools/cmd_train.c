/* vitamin train: contrastive training / fine-tuning with open_clip's flags. */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "commands.h"
#include "train/dist.h"
#include "train/train_run.h"

static const char TRAIN_HELP[] =
    "usage: vitamin train --train-data DATA [options]\n"
    "\n"
    "Trains a ViTamin CLIP model with open_clip's contrastive loss, AdamW and\n"
    "warmup + cosine schedule. Flags mirror open_clip_train where the idea is the\n"
    "same. Results depend only on --seed, never on --threads or --workers.\n"
    "\n"
    "Model\n"
    "      --model NAME         ViTamin-S, ViTamin-B, ..., ViTamin-Tiny, ViTamin-C<w>-N<d>[-size]\n"
    "                           (default ViTamin-S)\n"
    "      --pretrained CKPT    start from these weights instead of a fresh init: a checkpoint file or\n"
    "                           directory, a hub repo (hf-hub:jienengchen/ViTamin-S), or datacomp1b\n"
    "                           (open_clip's tag) for the released weights of --model; from the\n"
    "                           Hugging Face cache, downloaded when missing (not under mpirun:\n"
    "                           run 'vitamin pull' first)\n"
    "      --drop-path R        stochastic depth of the transformer blocks (default 0.1, as\n"
    "                           open_clip's ViTamin configs; a ViT has none)\n"
    "      --force-patch-dropout P  a ViT: open_clip's PatchDropout while training (each image keeps\n"
    "                           the class token and max(1, int(N(1 - P))) of its N patch tokens,\n"
    "                           a fresh random subset per step; 0 = off, the default)\n"
    "      --lock-image         freeze the image tower (ViTamin: the trunk, its head projection still\n"
    "                           trains; a ViT: all of it, proj included, as open_clip)\n"
    "      --lock-image-unlocked-groups N  with --lock-image: leave the last N trunk layer groups\n"
    "                           trainable (timm's groups: fc_norm, then each transformer block,\n"
    "                           then pos_embed + the conv stem/stages; default 0). A ViT: open_clip's\n"
    "                           VisionTransformer.lock groups (proj, the last block + ln_post, each\n"
    "                           block, then conv1 + embeddings + ln_pre)\n"
    "      --lock-text          freeze the text tower\n"
    "      --lock-text-unlocked-layers N  with --lock-text: leave the last N text groups trainable\n"
    "                           (text_projection, then last block + ln_final, then each block,\n"
    "                           then the embeddings; default 0)\n"
    "      --grad-checkpointing re-run each block's forward in the backward instead of keeping\n"
    "                           its activations (about half the memory, an extra forward of the\n"
    "                           blocks, bit-identical results)\n"
    "Data\n"
    "      --train-data DATA    CSV/TSV table, or WebDataset shards (a.tar, dir/{000..009}.tar,\n"
    "                           several joined with ::)\n"
    "      --csv-separator C    default tab (\\t)\n"
    "      --csv-img-key K      image path column (default filepath)\n"
    "      --csv-caption-key K  caption column (default title)\n"
    "      --workers N          decode threads (default 2)\n"
    "      --strict             fail on a missing or corrupt sample instead of skipping it\n"
    "Optimisation\n"
    "      --batch-size N       batch per process (default 64; under mpirun the global batch is\n"
    "                           ranks x N, as in open_clip)\n"
    "      --accum-freq N       split each batch into N micro-batches (same gradients, less memory)\n"
    "      --epochs N           default 32\n"
    "      --steps N            stop after N steps (overrides --epochs)\n"
    "      --lr X               default 5e-4\n"
    "      --wd X               weight decay, default 0.2 (none on gains, biases, logit_scale)\n"
    "      --beta1 X --beta2 X --eps X   AdamW, default 0.9 0.98 1e-6\n"
    "      --warmup N           warmup steps, default 10000\n"
    "      --lr-scheduler S     cosine (default) or const\n"
    "      --grad-clip-norm X   clip the global gradient norm (default off)\n"
    "      --seed N             default 0\n"
    "Checkpoints and logs\n"
    "      --save-dir DIR       checkpoints DIR/step_N/ (open_clip safetensors + config +\n"
    "                           optimizer state) and DIR/latest\n"
    "      --save-every N       steps between checkpoints (default: every epoch)\n"
    "      --keep-last N        keep only the newest N checkpoints (default all)\n"
    "      --resume R           latest, a checkpoint directory, or an open_clip checkpoint file\n"
    "      --log FILE           one JSON object per step (step, loss, lr, logit_scale, images_per_s, ...)\n"
    "      --log-every N        progress line every N steps (default 10)\n"
    "      --plot FILE.png      loss / zero-shot accuracy plot at the end (needs --log and gnuplot)\n"
    "Evaluation during training\n"
    "      --zeroshot-data D    ImageFolder directory or CSV (columns filepath, label)\n"
    "      --zeroshot-classnames F  one class name per line\n"
    "      --zeroshot-templates F   one template per line with {} (default open_clip's)\n"
    "      --retrieval-data F   CSV of image paths and captions (same --csv-* columns): recall@1/5/10\n"
    "      --eval-every N       steps between evaluations (default: only at the end)\n"
    "Data parallel (run build/mpi/vitamin under mpirun / srun; --batch-size is per rank)\n"
    "      --gather-with-grad   back-propagate through the feature all-gather (exact global-batch\n"
    "                           gradients; ViTamin's recipe)\n"
    "      --local-loss         each rank's rows against all columns (ViTamin's recipe)\n"
    "      --zero1              shard the AdamW moments over ranks (ZeRO stage 1)\n"
    "Other\n"
    "  -t, --threads N          compute threads (default: all cores)\n"
    "      --vocab FILE         BPE vocabulary (default: the installed one)\n";

static int parse_double(const char *name, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        cli_errorf("train", "%s expects a number, got '%s'", name, s);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_int64(const char *name, const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0) {
        cli_errorf("train", "%s expects a non-negative integer, got '%s'", name, s);
        return 0;
    }
    *out = v;
    return 1;
}

/* The command line as a JSON array of strings (stored in checkpoints). */
static char *args_as_json(int argc, char **argv) {
    size_t cap = 16;
    for (int i = 0; i < argc; i++) cap += 6 * strlen(argv[i]) + 4;
    char *out = malloc(cap), *p = out;
    if (!out) return NULL;
    p += sprintf(p, "[");
    for (int i = 0; i < argc; i++) {
        p += sprintf(p, "%s\"", i ? ", " : "");
        for (const unsigned char *s = (const unsigned char *)argv[i]; *s; s++) {
            if (*s == '"' || *s == '\\') p += sprintf(p, "\\%c", *s);
            else if (*s < 0x20) p += sprintf(p, "\\u%04x", *s);
            else *p++ = (char)*s;
        }
        *p++ = '"';
    }
    sprintf(p, "]");
    return out;
}

int cmd_train(int argc, char **argv) {
    train_run_options o;
    train_run_defaults(&o);
    const char *v;
    int threads = 0, ival;
    double d;
    int64_t n;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(TRAIN_HELP, stdout);
            return CLI_OK;
        }
#define STR(flag, field) else if (cli_option(argc, argv, &i, flag, NULL, &v)) o.field = v;
#define NUM(flag, field) else if (cli_option(argc, argv, &i, flag, NULL, &v)) { if (!parse_double(flag, v, &d)) return CLI_USAGE; o.field = d; }
#define INT64(flag, field) else if (cli_option(argc, argv, &i, flag, NULL, &v)) { if (!parse_int64(flag, v, &n)) return CLI_USAGE; o.field = n; }
        STR("--model", model_name)
        STR("--pretrained", pretrained)
        STR("--train-data", data.train_data)
        STR("--csv-img-key", data.csv_img_key)
        STR("--csv-caption-key", data.csv_caption_key)
        STR("--lr-scheduler", lr_scheduler)
        STR("--save-dir", save_dir)
        STR("--resume", resume)
        STR("--log", log_path)
        STR("--plot", plot_path)
        STR("--zeroshot-data", zeroshot_data)
        STR("--retrieval-data", retrieval_data)
        STR("--zeroshot-classnames", zeroshot_classnames)
        STR("--zeroshot-templates", zeroshot_templates)
        STR("--vocab", vocab_path)
        NUM("--lr", lr)
        NUM("--wd", wd)
        NUM("--beta1", beta1)
        NUM("--beta2", beta2)
        NUM("--eps", eps)
        NUM("--grad-clip-norm", grad_clip_norm)
        NUM("--drop-path", drop_path)
        NUM("--force-patch-dropout", patch_dropout)
        INT64("--steps", steps)
        INT64("--warmup", warmup)
        INT64("--save-every", save_every)
        INT64("--eval-every", eval_every)
        INT64("--seed", seed)
        else if (cli_option(argc, argv, &i, "--csv-separator", NULL, &v)) {
            if (!strcmp(v, "\\t") || !strcmp(v, "\t")) o.data.csv_separator = '\t';
            else if (strlen(v) == 1) o.data.csv_separator = v[0];
            else {
                cli_errorf("train", "--csv-separator takes one character (or \\t), got '%s'", v);
                return CLI_USAGE;
            }
        }
        else if (cli_int_option(argc, argv, &i, "--batch-size", NULL, 2, 1 << 20, &o.batch_size)) {}
        else if (cli_int_option(argc, argv, &i, "--accum-freq", NULL, 1, 1 << 20, &o.accum_freq)) {}
        else if (cli_int_option(argc, argv, &i, "--epochs", NULL, 1, 1 << 20, &o.epochs)) {}
        else if (cli_int_option(argc, argv, &i, "--keep-last", NULL, 0, 1 << 20, &o.keep_last)) {}
        else if (cli_int_option(argc, argv, &i, "--log-every", NULL, 1, 1 << 30, &o.log_every)) {}
        else if (cli_int_option(argc, argv, &i, "--workers", NULL, 0, 256, &ival)) o.data.workers = ival;
        else if (cli_int_option(argc, argv, &i, "--threads", "-t", 0, 1024, &threads)) {}
        else if (cli_int_option(argc, argv, &i, "--lock-image-unlocked-groups", NULL, 0, 1 << 20,
                                &o.lock_image_unlocked_groups)) {}
        else if (cli_int_option(argc, argv, &i, "--lock-text-unlocked-layers", NULL, 0, 1 << 20,
                                &o.lock_text_unlocked_layers)) {}
        else if (!strcmp(a, "--strict")) o.data.strict = 1;
        else if (!strcmp(a, "--local-loss")) o.local_loss = 1;
        else if (!strcmp(a, "--gather-with-grad")) o.gather_with_grad = 1;
        else if (!strcmp(a, "--zero1")) o.zero1 = 1;
        else if (!strcmp(a, "--lock-image")) o.lock_image = 1;
        else if (!strcmp(a, "--lock-text")) o.lock_text = 1;
        else if (!strcmp(a, "--grad-checkpointing")) o.grad_checkpointing = 1;
        else {
            cli_errorf("train", "unknown option '%s' (see 'vitamin train --help')", a);
            return CLI_USAGE;
        }
#undef STR
#undef NUM
#undef INT64
    }
    if (!o.data.train_data) {
        cli_errorf("train", "missing --train-data (a CSV/TSV of image paths and captions, or .tar shards); "
                            "see 'vitamin train --help'");
        return CLI_USAGE;
    }
    if (strcmp(o.lr_scheduler, "cosine") && strcmp(o.lr_scheduler, "const")) {
        cli_errorf("train", "--lr-scheduler must be cosine or const, got '%s'", o.lr_scheduler);
        return CLI_USAGE;
    }
    if (o.resume && !strcmp(o.resume, "latest") && !o.save_dir) {
        cli_errorf("train", "--resume latest needs --save-dir (where 'latest' lives)");
        return CLI_USAGE;
    }
    /* open_clip ignores these without the lock flag; a silent no-op would hide a typo'd command line. */
    if (o.lock_image_unlocked_groups && !o.lock_image) {
        cli_errorf("train", "--lock-image-unlocked-groups only applies with --lock-image");
        return CLI_USAGE;
    }
    if (o.lock_text_unlocked_layers && !o.lock_text) {
        cli_errorf("train", "--lock-text-unlocked-layers only applies with --lock-text");
        return CLI_USAGE;
    }
    if (o.plot_path && !o.log_path) {
        cli_errorf("train", "--plot draws from the JSON log: add --log FILE");
        return CLI_USAGE;
    }
    vt_checkpoint_ref pretrained;
    if (o.pretrained) {
        /* open_clip's --model NAME --pretrained TAG: the released weights of NAME. */
        const char *spec = strcasecmp(o.pretrained, "datacomp1b") ? o.pretrained : o.model_name;
        if (!spec) {
            cli_errorf("train", "--pretrained datacomp1b needs --model NAME (the released model to start from)");
            return CLI_USAGE;
        }
        /* Ranks of one job must not race to download into one cache. */
        const char *world = getenv("OMPI_COMM_WORLD_SIZE");
        if (!world) world = getenv("PMI_SIZE");
        vt_hub_options ho = {.offline = world && atoi(world) > 1, .progress = cli_progress_enabled()};
        vt_error rerr = {0};
        if (vt_resolve_checkpoint(spec, &ho, &pretrained, &rerr)) {
            cli_error("train", &rerr);
            return CLI_FAIL;
        }
        o.pretrained = pretrained.path;
    }
    if (threads > 0) omp_set_num_threads(threads);
    char *args = args_as_json(argc, argv);
    o.args_json = args;
    vt_error err = {0};
    dist_ctx dist;
    vt_status st = dist_init(&dist, &err);
    if (!st) {
        o.dist = &dist;
        st = train_run(&o, &err);
    }
    free(args);
    if (st) {
        if (dist.rank == 0 || dist.world == 1) cli_error("train", &err);
        else fprintf(stderr, "vitamin train (rank %d): %s\n", dist.rank, err.message);
        /* One failing rank ends the job instead of leaving the others in a collective. */
        if (dist.world > 1) dist_abort(&dist, CLI_FAIL);
        return CLI_FAIL;
    }
    dist_finalize(&dist);
    return CLI_OK;
}
