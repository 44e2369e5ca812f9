/* Library API under concurrency: one loaded model, several threads encoding at
 * once must give bit-identical results to a single caller (no shared mutable
 * state in the model or tokenizer).
 *   api_threads CKPT IMAGE TEXT     → exit 0 if all threads agree */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitamin.h"

enum { THREADS = 4, ROUNDS = 3 };

typedef struct {
    const vt_model *model;
    const vt_tokenizer *tok;
    const char *image, *text;
    float *image_out, *text_out;
    vt_status status;
    vt_error err;
} job;

static void *encode(void *arg) {
    job *j = arg;
    for (int r = 0; r < ROUNDS && !j->status; r++) {
        j->status = vt_encode_image_files(j->model, &j->image, 1, 1, j->image_out, &j->err);
        if (!j->status) j->status = vt_encode_texts(j->model, j->tok, &j->text, 1, 1, j->text_out, &j->err);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: api_threads CKPT IMAGE TEXT\n");
        return 2;
    }
    vt_error err = {0};
    vt_model *model;
    vt_tokenizer *tok;
    if (vt_model_load(argv[1], NULL, &model, &err) || vt_tokenizer_load(NULL, &tok, &err)) {
        fprintf(stderr, "api_threads: %s\n", err.message);
        return 1;
    }
    vt_model_info info;
    vt_model_get_info(model, &info);
    size_t e = (size_t)info.embed_dim;
    job jobs[THREADS + 1];
    for (int t = 0; t <= THREADS; t++) {
        jobs[t] = (job){model, tok, argv[2], argv[3], calloc(e, 4), calloc(e, 4), VT_OK, {0}};
    }
    encode(&jobs[THREADS]); /* the single-caller reference */
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, encode, &jobs[t]);
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    int rc = 0;
    for (int t = 0; t <= THREADS; t++) {
        if (jobs[t].status) {
            fprintf(stderr, "api_threads: thread %d: %s\n", t, jobs[t].err.message);
            rc = 1;
        } else if (memcmp(jobs[t].image_out, jobs[THREADS].image_out, e * 4) ||
                   memcmp(jobs[t].text_out, jobs[THREADS].text_out, e * 4)) {
            fprintf(stderr, "api_threads: thread %d disagrees with the single-threaded result\n", t);
            rc = 1;
        }
        free(jobs[t].image_out);
        free(jobs[t].text_out);
    }
    vt_tokenizer_free(tok);
    vt_model_free(model);
    if (!rc) printf("%d threads x %d rounds agree\n", THREADS, ROUNDS);
    return rc;
}
