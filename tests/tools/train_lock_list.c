/* Lists the tensors train_lock_apply freezes, for tests/reference/test_train_lock.py
 * (compared with open_clip's requires_grad == False after lock_image_tower /
 * lock_text_tower). usage: train_lock_list MODEL IMAGE_UNLOCKED TEXT_UNLOCKED
 * where a count < 0 leaves that tower unlocked. One name per line. */
#include <stdio.h>
#include <stdlib.h>

#include "model/config.h"
#include "model/schema.h"
#include "train/lock.h"
#include "train/params.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: train_lock_list MODEL IMAGE_UNLOCKED TEXT_UNLOCKED (-1: tower not locked)\n");
        return 2;
    }
    int image = atoi(argv[2]), text = atoi(argv[3]);
    vt_error err;
    vt_model_config cfg;
    train_params p;
    if (vt_config_lookup(argv[1], &cfg, &err) || train_params_create(&cfg, &p, &err)) {
        fprintf(stderr, "train_lock_list: %s\n", err.message);
        return 1;
    }
    unsigned char *frozen = malloc((size_t)p.count);
    if (!frozen) return 1;
    train_lock_apply(&p, frozen, image >= 0, image, text >= 0, text);
    for (int i = 0; i < p.count; i++)
        if (frozen[i]) {
            char saved[160]; /* open_clip's name for this model (a ViT's text tower at the top level) */
            schema_saved_name(&cfg, p.params[i].name, saved, sizeof saved);
            printf("%s\n", saved);
        }
    free(frozen);
    train_params_free(&p);
    return 0;
}
