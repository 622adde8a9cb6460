/*
 * The subcommands of the gemwatch binary besides the daemon itself.
 */
#ifndef GEMWATCH_CMD_H
#define GEMWATCH_CMD_H

/* gemwatch probe [-j] [-4|-6] [-t SECONDS] [--sni NAME] URL... */
int cmd_probe(int argc, char *argv[]);
/* gemwatch trust [-f FILE] NAME...; path is the default configuration. */
int cmd_trust(int argc, char *argv[], const char *path);
/* gemwatch notify-test [-f FILE] [NAME]; path is the default configuration. */
int cmd_notify_test(int argc, char *argv[], const char *path);

#endif
