#!/bin/sh
# mail.sh: a gemwatch notify command that mails each event.
#
#   notify /usr/local/bin/gemwatch-mail [-f FROM] ADDRESS...
#
# The subject is GEMWATCH_SUMMARY, the body lists the event's values. The
# mail goes to sendmail ($SENDMAIL, default /usr/sbin/sendmail), which
# every MTA provides (exim4, postfix, OpenSMTPD, msmtp-mta, ...). gemwatch
# has cleaned the values of control characters; they are expanded here
# only inside double quotes, never evaluated, so whatever a server sent
# stays text.
set -eu

usage() {
	echo "usage: mail.sh [-f FROM] ADDRESS..." >&2
	exit 2
}

from=
while getopts f: opt; do
	case $opt in
	f) from=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || usage

LC_ALL=C
export LC_ALL
event=${GEMWATCH_EVENT:-test}
subject=${GEMWATCH_SUMMARY:-gemwatch: $event}

# A header value that is not printable ASCII goes as an RFC 2047 word.
header() {
	case $1 in
	*[!\ -~]*)
		printf '=?UTF-8?B?%s?=' "$(printf '%s' "$1" | base64 | tr -d '\n')"
		;;
	*)
		printf '%s' "$1"
		;;
	esac
}

to=
for rcpt in "$@"; do
	to=${to:+$to, }$rcpt
done

{
	[ -z "$from" ] || printf 'From: %s\n' "$from"
	printf 'To: %s\n' "$to"
	printf 'Subject: %s\n' "$(header "$subject")"
	printf 'Auto-Submitted: auto-generated\n'
	printf 'X-Gemwatch-Event: %s\n' "$event"
	printf 'MIME-Version: 1.0\n'
	printf 'Content-Type: text/plain; charset=utf-8\n'
	printf 'Content-Transfer-Encoding: 8bit\n'
	printf '\n%s\n\n' "$subject"
	printf 'event:       %s\n' "$event"
	printf 'capsule:     %s\n' "${GEMWATCH_CAPSULE:-}"
	printf 'check:       %s\n' "${GEMWATCH_CHECK:-}"
	printf 'url:         %s\n' "${GEMWATCH_URL:-}"
	printf 'time:        %s\n' "${GEMWATCH_TIME:-}"
	printf 'since:       %s\n' "${GEMWATCH_SINCE:-}"
	printf 'reason:      %s\n' "${GEMWATCH_REASON:-}"
	printf 'message:     %s\n' "${GEMWATCH_MESSAGE:-}"
	printf 'status:      %s\n' "${GEMWATCH_STATUS:-}"
	printf 'meta:        %s\n' "${GEMWATCH_META:-}"
	printf 'end:         %s\n' "${GEMWATCH_END:-}"
	printf 'certificate: %s\n' "${GEMWATCH_CERT_SHA256:-}"
	printf 'not after:   %s\n' "${GEMWATCH_CERT_NOT_AFTER:-}"
	[ -z "${GEMWATCH_PREVIOUS_CERT_SHA256:-}" ] ||
	    printf 'previous:    %s\n' "$GEMWATCH_PREVIOUS_CERT_SHA256"
	# A crawl's or a diagnose run's: how many problems, the first ones.
	[ -z "${GEMWATCH_PROBLEMS:-}" ] ||
	    printf 'problems:    %s\n' "$GEMWATCH_PROBLEMS"
	[ -z "${GEMWATCH_OFFENDING:-}" ] ||
	    printf 'offending:   %s\n' "$GEMWATCH_OFFENDING"
} | fold -b -w 990 | "${SENDMAIL:-/usr/sbin/sendmail}" -oi -- "$@"
