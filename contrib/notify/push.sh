#!/bin/sh
# push.sh: a gemwatch notify command that pushes each event to an ntfy
# topic, or with -g to a Gotify server.
#
#   notify /usr/local/bin/gemwatch-push https://ntfy.example.org/capsules
#   notify /usr/local/bin/gemwatch-push -a /etc/gemwatch/ntfy-token https://ntfy.example.org/capsules
#   notify /usr/local/bin/gemwatch-push -g "https://gotify.example.org/message?token=APPTOKEN"
#
# -a FILE sends "Authorization: Bearer" with the first line of FILE (an
# ntfy access token), so that the token is in neither the configuration
# nor the process list. The title is GEMWATCH_SUMMARY; down and
# cert_mismatch go out with a high priority. The values are passed to
# curl as data only (--data-binary @-, --form-string): a server's text
# that starts with "@" or "<" is not a file name to curl.
set -eu

usage() {
	echo "usage: push.sh [-g] [-a TOKENFILE] URL" >&2
	exit 2
}

gotify=0
auth=
while getopts ga: opt; do
	case $opt in
	g) gotify=1 ;;
	a) auth=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
url=$1

LC_ALL=C
export LC_ALL
event=${GEMWATCH_EVENT:-test}
title=${GEMWATCH_SUMMARY:-gemwatch: $event}
case $event in
down | cert_mismatch) ntfy_prio=high gotify_prio=8 ;;
*) ntfy_prio=default gotify_prio=5 ;;
esac

message() {
	printf '%s\n' "$title"
	printf 'url: %s\n' "${GEMWATCH_URL:-}"
	[ -z "${GEMWATCH_REASON:-}" ] ||
	    printf 'reason: %s: %s\n' "$GEMWATCH_REASON" "${GEMWATCH_MESSAGE:-}"
	[ -z "${GEMWATCH_STATUS:-}" ] ||
	    printf 'status: %s %s\n' "$GEMWATCH_STATUS" "${GEMWATCH_META:-}"
	# A crawl's or a diagnose run's: the run in words, the first problems.
	[ -z "${GEMWATCH_PROBLEMS:-}" ] ||
	    printf 'run: %s\n' "${GEMWATCH_MESSAGE:-}"
	[ -z "${GEMWATCH_OFFENDING:-}" ] ||
	    printf 'offending: %s\n' "$GEMWATCH_OFFENDING"
	printf 'since: %s\n' "${GEMWATCH_SINCE:-}"
}

# The token goes to curl through a header file, not its arguments.
hdr=$(mktemp "${TMPDIR:-/tmp}/gemwatch-push.XXXXXX")
trap 'rm -f "$hdr"' EXIT
: >"$hdr"
if [ -n "$auth" ]; then
	token=$(head -n 1 "$auth")
	printf 'Authorization: Bearer %s\n' "$token" >>"$hdr"
fi

if [ "$gotify" -eq 1 ]; then
	curl -fsS --max-time 20 --proto =http,https -H @"$hdr" \
	    --form-string "title=$title" \
	    --form-string "message=$(message)" \
	    --form-string "priority=$gotify_prio" \
	    "$url" >/dev/null
else
	# ntfy reads RFC 2047 words in headers: a title that is not ASCII
	# is encoded.
	case $title in
	*[!\ -~]*)
		title_hdr="=?UTF-8?B?$(printf '%s' "$title" | base64 | tr -d '\n')?="
		;;
	*)
		title_hdr=$title
		;;
	esac
	printf 'Title: %s\nPriority: %s\nTags: gemwatch,%s\n' \
	    "$title_hdr" "$ntfy_prio" "$event" >>"$hdr"
	message | curl -fsS --max-time 20 --proto =http,https -H @"$hdr" \
	    --data-binary @- "$url" >/dev/null
fi
