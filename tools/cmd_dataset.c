/* PLACEHOLDER while issue 4 is in progress: replaced by the real command. */
#include <stdio.h>

#include "cli.h"
#include "commands.h"

int cmd_dataset(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "vitamin dataset: not built yet\n");
    return CLI_FAIL;
}
