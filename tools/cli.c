#include "cli.h"

#include <dirent.h>
#include <glob.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char CLI_MODEL_OPTIONS_HELP[] =
    "  -m, --model SPEC       checkpoint ($VITAMIN_MODEL): a pytorch_model.bin / *.safetensors file\n"
    "                         (open_clip's, transformers' CLIPModel) or OpenAI's TorchScript .pt,\n"
    "                         a directory holding one, a hub repo (hf-hub:jienengchen/ViTamin-L-384px)\n"
    "                         or a released model's name (ViTamin-L-384): found in the Hugging Face\n"
    "                         cache, downloaded into it when missing (see 'vitamin pull')\n"
    "      --pretrained TAG   open_clip's pretrained tag (datacomp1b, the only one), or a checkpoint\n"
    "                         PATH, with -m NAME then naming the architecture\n"
    "      --offline          never download (also HF_HUB_OFFLINE=1)\n"
    "      --revision REV     hub branch, tag or commit (default main)\n"
    "      --model-name NAME  architecture (e.g. ViTamin-L-384), overriding any config file beside the\n"
    "                         checkpoint and shape inference\n"
    "      --vocab PATH       BPE vocabulary .txt.gz (default: open_clip's, built into vitamin)\n"
    "  -t, --threads N        worker threads (default: all cores)\n"
    "  -b, --batch N          inputs per forward pass (default: 8 images / 64 texts)\n"
    "      --bf16             bfloat16 weights, fp32 accumulation (AVX512-BF16 CPUs; see README)\n"
    "      --image-size N     run a ViT at N px (open_clip's force_image_size: the positional\n"
    "                         embedding is resampled bicubically; N a multiple of the patch size)\n";

void cli_errorf(const char *command, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vitamin %s: ", command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void cli_error(const char *command, const vt_error *err) { cli_errorf(command, "%s", err->message); }

int cli_option(int argc, char **argv, int *i, const char *name, const char *short_name, const char **value) {
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (!strncmp(arg, name, n) && arg[n] == '=') { /* --name=value */
        *value = arg + n + 1;
        return 1;
    }
    if (strcmp(arg, name) && !(short_name && !strcmp(arg, short_name))) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "vitamin: option %s needs a value\n", arg);
        exit(CLI_USAGE);
    }
    *value = argv[++*i];
    return 1;
}

int cli_int_option(int argc, char **argv, int *i, const char *name, const char *short_name, int min, int max,
                   int *value) {
    const char *text;
    if (!cli_option(argc, argv, i, name, short_name, &text)) return 0;
    char *end;
    long v = strtol(text, &end, 10);
    if (!*text || *end || v < min || v > max) {
        fprintf(stderr, "vitamin: %s expects an integer in [%d, %d], got '%s'\n", name, min, max, text);
        exit(CLI_USAGE);
    }
    *value = (int)v;
    return 1;
}

int cli_model_option(int argc, char **argv, int *i, cli_model_options *opt) {
    if (!strcmp(argv[*i], "--bf16")) {
        opt->bf16 = 1;
        return 1;
    }
    if (!strcmp(argv[*i], "--offline")) {
        opt->offline = 1;
        return 1;
    }
    return cli_option(argc, argv, i, "--model", "-m", &opt->model_path) ||
           cli_option(argc, argv, i, "--model-name", NULL, &opt->model_name) ||
           cli_option(argc, argv, i, "--pretrained", NULL, &opt->pretrained) ||
           cli_option(argc, argv, i, "--revision", NULL, &opt->revision) ||
           cli_option(argc, argv, i, "--vocab", NULL, &opt->vocab_path) ||
           cli_int_option(argc, argv, i, "--threads", "-t", 0, 1024, &opt->threads) ||
           cli_int_option(argc, argv, i, "--batch", "-b", 1, 4096, &opt->batch) ||
           cli_int_option(argc, argv, i, "--image-size", NULL, 1, 8192, &opt->image_size);
}

int cli_progress_enabled(void) {
    const char *env = getenv("VITAMIN_PROGRESS");
    return env ? atoi(env) : isatty(2);
}

int cli_resolve_checkpoint(const char *command, const cli_model_options *opt, vt_checkpoint_ref *ref,
                           const char **model_name) {
    const char *spec = opt->model_path ? opt->model_path : getenv("VITAMIN_MODEL");
    *model_name = opt->model_name;
    if (!spec || !*spec) {
        cli_errorf(command, "no model given: pass -m with a checkpoint file or directory, a hub repo "
                            "(hf-hub:jienengchen/ViTamin-L-384px) or a released model name (ViTamin-L-384), or set "
                            "VITAMIN_MODEL");
        return 0;
    }
    struct stat st;
    const char *pretrained = opt->pretrained;
    if (pretrained && !stat(pretrained, &st)) {
        /* open_clip's create_model(NAME, pretrained=PATH): -m names the architecture. */
        if (!*model_name) *model_name = spec;
        spec = pretrained;
    } else if (pretrained && strcasecmp(pretrained, "datacomp1b")) {
        cli_errorf(command, "--pretrained %s: unknown tag and no such file; the released ViTamin weights have one "
                            "tag, datacomp1b (or give a checkpoint path)", pretrained);
        return 0;
    }
    vt_hub_options ho = {.offline = opt->offline, .progress = cli_progress_enabled(), .revision = opt->revision};
    vt_error err = {0};
    if (vt_resolve_checkpoint(spec, &ho, ref, &err)) {
        cli_error(command, &err);
        return 0;
    }
    return 1;
}

vt_model *cli_load_model(const char *command, const cli_model_options *opt) {
    if (opt->threads > 0) omp_set_num_threads(opt->threads);
    vt_checkpoint_ref ref;
    const char *model_name;
    if (!cli_resolve_checkpoint(command, opt, &ref, &model_name)) return NULL;
    vt_model *model;
    vt_error err = {0};
    vt_load_options lo = {.model_name = model_name, .bf16 = opt->bf16, .image_size = opt->image_size,
                          .fallback_model_name = ref.model_name[0] ? ref.model_name : NULL};
    if (vt_model_load(ref.path, &lo, &model, &err)) {
        cli_error(command, &err);
        if (ref.repo[0])
            fprintf(stderr, "vitamin %s: (%s came from the Hugging Face cache for %s; if the file is damaged, "
                            "delete it and run 'vitamin pull %s')\n", command, ref.path, ref.repo, ref.repo);
        return NULL;
    }
    cli_print_notes(command, model);
    return model;
}

void cli_print_notes(const char *command, const vt_model *model) {
    vt_model_info info;
    vt_model_get_info(model, &info);
    for (const char *line = info.notes; line && *line;) {
        const char *end = strchr(line, '\n');
        int n = end ? (int)(end - line) : (int)strlen(line);
        fprintf(stderr, "vitamin %s: note: %.*s\n", command, n, line);
        line += n + (end != NULL);
    }
}

vt_tokenizer *cli_load_tokenizer(const char *command, const cli_model_options *opt) {
    vt_tokenizer *tok;
    vt_error err = {0};
    if (vt_tokenizer_load(opt->vocab_path, &tok, &err)) {
        cli_error(command, &err);
        return NULL;
    }
    return tok;
}

void cli_list_push(cli_list *list, const char *s) {
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? list->capacity * 2 : 16;
        list->items = realloc(list->items, list->capacity * sizeof *list->items);
        if (!list->items) { fprintf(stderr, "vitamin: out of memory\n"); exit(CLI_FAIL); }
    }
    list->items[list->count] = strdup(s);
    if (!list->items[list->count]) { fprintf(stderr, "vitamin: out of memory\n"); exit(CLI_FAIL); }
    list->count++;
}

void cli_list_free(cli_list *list) {
    for (size_t i = 0; i < list->count; i++) free(list->items[i]);
    free(list->items);
    memset(list, 0, sizeof *list);
}

static int has_image_extension(const char *name) {
    static const char *const EXT[] = {".jpg", ".jpeg", ".png", ".webp", ".jpe"};
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof EXT / sizeof *EXT; i++)
        if (!strcasecmp(dot, EXT[i])) return 1;
    return 0;
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int cli_add_images(const char *command, cli_list *images, const char *spec) {
    struct stat st;
    if (!stat(spec, &st)) {
        if (!S_ISDIR(st.st_mode)) {
            cli_list_push(images, spec);
            return 1;
        }
        DIR *dir = opendir(spec);
        if (!dir) { cli_errorf(command, "%s: cannot open directory", spec); return 0; }
        cli_list found = {0};
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (e->d_name[0] == '.' || !has_image_extension(e->d_name)) continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", spec, e->d_name);
            cli_list_push(&found, path);
        }
        closedir(dir);
        if (!found.count) { cli_errorf(command, "%s: no .jpg/.jpeg/.png/.webp files in this directory", spec); cli_list_free(&found); return 0; }
        qsort(found.items, found.count, sizeof *found.items, compare_strings);
        for (size_t i = 0; i < found.count; i++) cli_list_push(images, found.items[i]);
        cli_list_free(&found);
        return 1;
    }
    glob_t g;
    if (strpbrk(spec, "*?[") && glob(spec, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) cli_list_push(images, g.gl_pathv[i]);
        globfree(&g);
        return 1;
    }
    cli_errorf(command, "%s: no such file, directory or matching glob", spec);
    return 0;
}

int cli_add_lines(const char *command, cli_list *list, const char *path) {
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) { cli_errorf(command, "%s: cannot open", path); return 0; }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len > 0) cli_list_push(list, line);
    }
    free(line);
    if (f != stdin) fclose(f);
    return 1;
}

void cli_add_csv(cli_list *list, const char *csv) {
    const char *p = csv;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (b > a) {
            char *item = strndup(a, (size_t)(b - a));
            cli_list_push(list, item);
            free(item);
        }
        p = *end ? end + 1 : end;
    }
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress(const char *what, size_t done, size_t total, double started) {
    if (!cli_progress_enabled()) return;
    double rate = done / (cli_now() - started + 1e-9);
    fprintf(stderr, "\r%s: %zu/%zu (%.1f/s)%s", what, done, total, rate, done == total ? "\n" : "");
    fflush(stderr);
}

int cli_parse_separator(const char *text, char *out) {
    if (!strcmp(text, "tab") || !strcmp(text, "\\t") || !strcmp(text, "\t")) *out = '\t';
    else if (!strcmp(text, "comma")) *out = ',';
    else if (strlen(text) == 1 && text[0] != '"' && text[0] != '\n' && text[0] != '\r' && (unsigned char)text[0] < 0x80) *out = text[0];
    else return 0;
    return 1;
}
