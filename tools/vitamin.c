/* The `vitamin` command-line tool: dispatches to one file per subcommand. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: vitamin <command> [options]\n");
        return argc < 2 ? 2 : 0;
    }
    fprintf(stderr, "vitamin: unknown command '%s' (try 'vitamin --help')\n", argv[1]);
    return 2;
}
