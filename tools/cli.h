/* Shared pieces of the `vitamin` subcommands: option matching, model loading,
 * input lists, error printing. Each subcommand lives in its own cmd_*.c file
 * and only parses flags and calls the library. */
#ifndef VT_TOOLS_CLI_H
#define VT_TOOLS_CLI_H

#include <stddef.h>

#include "vitamin.h"

/* Exit codes: 0 ok, 1 runtime failure (bad file, model error), 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Options every model-using command accepts. */
typedef struct {
    const char *model_path;   /* -m/--model: checkpoint file, a directory holding one, a hub repo or a model name */
    const char *model_name;   /* --model-name: architecture, when it cannot be read or inferred */
    const char *pretrained;   /* --pretrained: open_clip tag (datacomp1b) or a checkpoint path */
    const char *revision;     /* --revision: hub branch, tag or commit */
    int offline;              /* --offline: never download */
    const char *vocab_path;   /* --vocab: BPE vocabulary (default: the built-in one) */
    int threads;              /* --threads N (0: all cores) */
    int batch;                /* --batch N (inputs per forward pass) */
    int bf16;                 /* --bf16: bfloat16 GEMM weights */
    int image_size;           /* --image-size N: a ViT at another size (0: its own) */
} cli_model_options;

/* If argv[*i] is `name` (or `short_name`), stores the next argument in *value,
 * advances *i and returns 1. Prints an error and exits 2 if the value is missing. */
int cli_option(int argc, char **argv, int *i, const char *name, const char *short_name, const char **value);
/* --csv-separator: one ASCII character other than a quote or line end, "tab" or "comma". */
int cli_parse_separator(const char *text, char *out);
/* Like cli_option for an integer in [min, max]. */
int cli_int_option(int argc, char **argv, int *i, const char *name, const char *short_name, int min, int max,
                   int *value);
/* Matches the common model options; returns 1 if argv[*i] was one. */
int cli_model_option(int argc, char **argv, int *i, cli_model_options *opt);
/* Help text for the common options. */
extern const char CLI_MODEL_OPTIONS_HELP[];

/* Where -m / --pretrained point: a file, a directory, a hub repo or a model
 * name (downloaded unless --offline); prints the error and returns 0 on failure. */
int cli_resolve_checkpoint(const char *command, const cli_model_options *opt, vt_checkpoint_ref *ref,
                           const char **model_name);
/* Progress bars on stderr: $VITAMIN_PROGRESS (0/1) if set, else when stderr is a terminal. */
int cli_progress_enabled(void);
/* Applies --threads and loads the model; prints the error and returns NULL on failure. */
vt_model *cli_load_model(const char *command, const cli_model_options *opt);
/* Prints the model's load notes (vt_model_info.notes) to stderr, one "note:" line each. */
void cli_print_notes(const char *command, const vt_model *model);
vt_tokenizer *cli_load_tokenizer(const char *command, const cli_model_options *opt);

/* Prints "vitamin <command>: <message>" to stderr. */
void cli_error(const char *command, const vt_error *err);
void cli_errorf(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A growable list of strings (owned copies). */
typedef struct {
    char **items;
    size_t count, capacity;
} cli_list;
void cli_list_push(cli_list *list, const char *s);
void cli_list_free(cli_list *list);

/* Adds image inputs: a file, a directory (its JPEG/PNG/WebP files, sorted) or a
 * glob pattern. Returns 0 and prints an error if nothing matches. */
int cli_add_images(const char *command, cli_list *images, const char *spec);
/* Adds one entry per non-empty line of `path` ("-" = stdin). */
int cli_add_lines(const char *command, cli_list *list, const char *path);
/* Splits "a,b,c" (commas; surrounding spaces trimmed) into the list. */
void cli_add_csv(cli_list *list, const char *csv);

/* Progress on stderr for long jobs (only when stderr is a terminal or
 * VITAMIN_PROGRESS=1): "embed: 120/1000 images (12.3/s)". */
void cli_progress(const char *what, size_t done, size_t total, double started);
double cli_now(void);

#endif
