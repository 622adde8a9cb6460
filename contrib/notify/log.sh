#!/bin/sh
# log.sh: a gemwatch notify command that appends one line per event to a
# file, tab-separated: time, event, capsule, check, summary.
#
#   notify /usr/local/bin/gemwatch-log /var/log/gemwatch/events.log
#
# gemwatch has replaced tabs and control characters in the values, so a
# line is always one line of five fields. Each line is appended (O_APPEND)
# in one go, so lines from commands running at once do not mix.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: log.sh FILE" >&2
	exit 2
fi
printf '%s\t%s\t%s\t%s\t%s\n' "${GEMWATCH_TIME:-}" "${GEMWATCH_EVENT:-}" \
    "${GEMWATCH_CAPSULE:-}" "${GEMWATCH_CHECK:-}" "${GEMWATCH_SUMMARY:-}" \
    >>"$1"
