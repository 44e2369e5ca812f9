/* One entry point per `vitamin` subcommand (tools/cmd_*.c). argv[0] is the
 * subcommand name; the return value is the process exit code. */
#ifndef VT_TOOLS_COMMANDS_H
#define VT_TOOLS_COMMANDS_H

int cmd_embed(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_similarity(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_dataset(int argc, char **argv);
int cmd_pull(int argc, char **argv);

#endif
