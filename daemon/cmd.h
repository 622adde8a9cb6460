/*
 * The subcommands of the gemwatch binary besides the daemon itself.
 */
#ifndef GEMWATCH_CMD_H
#define GEMWATCH_CMD_H

/* gemwatch probe [-j] [-4|-6] [-t SECONDS] [--sni NAME] URL... */
int cmd_probe(int argc, char *argv[]);

#endif
