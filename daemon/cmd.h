/*
 * The subcommands of the gemwatch binary besides the daemon itself, and
 * what they share.
 */
#ifndef GEMWATCH_CMD_H
#define GEMWATCH_CMD_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdio.h>

/*
 * gemwatch probe [-j] [-4|-6] [-c N] [-t SECONDS] [--sni NAME]
 * [--max-idle DURATION] [--resolver ADDR[:PORT]]... URL...
 */
int cmd_probe(int argc, char *argv[]);
/* gemwatch crawl [-j] [-n PAGES] [-d SECONDS] [-t SECONDS] URL */
int cmd_crawl(int argc, char *argv[]);
/* gemwatch survey [-c N] [-t SECONDS] [-j | --csv] [FILE | -] */
int cmd_survey(int argc, char *argv[]);
/* gemwatch diagnose [-j] [-4|-6] [-t S] [--only CHECK,...] [--list] TARGET */
int cmd_diagnose(int argc, char *argv[]);
/* gemwatch trust [-f FILE] NAME...; path is the default configuration. */
int cmd_trust(int argc, char *argv[], const char *path);
/* gemwatch notify-test [-f FILE] [NAME]; path is the default configuration. */
int cmd_notify_test(int argc, char *argv[], const char *path);

/* Probes in flight by default for probe. */
#define CMD_PARALLEL 1024
/*
 * For survey: a third of the public capsules hang or refuse, so the
 * survey of 5,000 takes its time from the slots the dead ones hold. On
 * tests/bench's simulated Geminispace, 1024 took 18-22 s and 28 MiB, 512
 * 22-24 s and 18 MiB, 256 37 s: 512 keeps the 5,000 within 30 s.
 */
#define CMD_SURVEY_PARALLEL 512
/* Resolver addresses --resolver may give. */
#define CMD_RESOLVERS_MAX 16

/*
 * The options of the commands that read the configuration (trust,
 * notify-test): -f FILE into *path, -h. The index of the first operand,
 * or -1 with *rv the exit status (0 after -h, 2 on a usage error, usage
 * printed on stdout or stderr).
 */
int cmd_config_opts(
    int argc, char *argv[], const char **path, void (*usage)(FILE *), int *rv);
/*
 * Parse option opt of cmd: a timeout in seconds (a positive number, at
 * most one hour), or a count of probes in flight (1 to 1000000). 0, or -1
 * after a message on stderr.
 */
int cmd_seconds(const char *cmd, char opt, const char *, double *);
int cmd_count(const char *cmd, char opt, const char *, unsigned *);
/*
 * Add a --resolver address to ss[*n] (at most CMD_RESOLVERS_MAX); 0, or
 * -1 after a message on stderr naming cmd.
 */
int cmd_resolver(
    const char *cmd, const char *arg, struct sockaddr_storage *ss, size_t *n);
/*
 * The probes in flight cmd may have: parallel, lowered (said on stderr)
 * to what the descriptor limit allows once raised to its hard limit.
 */
unsigned cmd_parallel(const char *cmd, unsigned parallel);

#endif
