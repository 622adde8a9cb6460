#!/bin/sh
# test_deb.sh: the Debian package (TAP). Builds it with `make deb` in the
# configured build tree ($TOP_BUILDDIR, default: the source tree), runs
# lintian on it (no errors), checks its file list against the one below,
# its conffile and its control fields, then installs it with dpkg -i on
# this machine, runs the installed gemwatch (-V, -n on the installed
# /etc/gemwatch.conf), runs systemd-analyze verify on the installed unit,
# and purges it again.
#
# Installing needs root and changes the machine: .ci/run runs this on a
# throwaway CI machine (it is not part of make check). It leaves the
# machine as it found it, except for the system user _gemwatch, which
# Debian keeps after a purge. A gemwatch package installed before is not
# touched: the install steps are then skipped.
set -u

top=${TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${TOP_BUILDDIR:-$top}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_deb.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

notok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n - $1"
	[ -s "$tmp/out" ] && sed 's/^/# /' "$tmp/out" | tail -n 60
	return 0
}

skip() {
	n=$((n + 1))
	echo "ok $n # SKIP $1"
}

check() {
	desc=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then
		ok "$desc"
	else
		notok "$desc"
	fi
}

finish() {
	echo "1..$n"
	exit $failed
}

bail() {
	echo "Bail out! $1"
	[ -s "$tmp/out" ] && sed 's/^/# /' "$tmp/out" | tail -n 60
	exit 1
}

# What the package installs: every file and symlink (directories left
# out), as dpkg -c lists them without the leading ".".
cat >"$tmp/expected" <<'EOF'
/etc/gemwatch.conf
/lib/systemd/system/gemwatch.service
/usr/lib/sysusers.d/gemwatch.conf
/usr/sbin/gemwatch
/usr/share/doc/gemwatch/README.Debian
/usr/share/doc/gemwatch/README.md.gz
/usr/share/doc/gemwatch/changelog.gz
/usr/share/doc/gemwatch/copyright
/usr/share/gemwatch/grafana/gemwatch-dashboard.json
/usr/share/gemwatch/prometheus/gemwatch-alerts.test.yml
/usr/share/gemwatch/prometheus/gemwatch-alerts.yml
/usr/share/gemwatch/prometheus/prometheus.yml
/usr/share/man/man5/gemwatch.conf.5.gz
/usr/share/man/man8/gemwatch.8.gz
EOF

for tool in dpkg-buildpackage dh lintian; do
	command -v $tool >/dev/null 2>&1 ||
	    bail "$tool missing (apt-get install dpkg-dev debhelper lintian)"
done
[ -f "$build/Makefile" ] || bail "$build is not configured"
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
deb=$build/gemwatch_${version}_$arch.deb
changes=$build/gemwatch_${version}_$arch.changes

# 1-2. make deb builds it and leaves the source tree as it was.
in_git() {
	command -v git >/dev/null 2>&1 &&
	    git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1
}
if in_git; then
	git -C "$top" status --porcelain --ignored=no >"$tmp/before"
else
	: >"$tmp/before"
fi
rm -f "$deb" "$changes"
if make -C "$build" deb >"$tmp/out" 2>&1 && [ -f "$deb" ]; then
	ok "make deb builds $(basename "$deb")"
else
	bail "make deb failed"
fi
if in_git; then
	git -C "$top" status --porcelain --ignored=no >"$tmp/after"
	diff "$tmp/before" "$tmp/after" >"$tmp/out" 2>&1
	check "make deb leaves the source tree as it was" \
	    test ! -s "$tmp/out"
else
	skip "not a git checkout: cannot compare the source tree"
fi

# 3. lintian: no errors (warnings and notes are printed).
lintian --fail-on error --display-info "$changes" >"$tmp/lintian" 2>&1
rc=$?
sed 's/^/# lintian: /' "$tmp/lintian"
cp "$tmp/lintian" "$tmp/out"
if [ $rc -eq 0 ] && ! grep -q '^E: ' "$tmp/lintian"; then
	ok "lintian: no errors"
else
	notok "lintian: no errors"
fi

# 4. The file list.
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { p = $6; sub(/^\./, "", p); print p }' |
    sort >"$tmp/got"
if diff -u "$tmp/expected" "$tmp/got" >"$tmp/out"; then
	ok "dpkg -c: the expected $(wc -l <"$tmp/expected") files"
else
	notok "dpkg -c: the expected files"
fi

# 5. Control: the conffile, the name, version and dependencies.
dpkg-deb -e "$deb" "$tmp/control"
check "/etc/gemwatch.conf is a conffile" \
    grep -qx /etc/gemwatch.conf "$tmp/control/conffiles"
dpkg-deb -f "$deb" Package Version Architecture Depends >"$tmp/fields"
cp "$tmp/fields" "$tmp/out"
if grep -qx "Package: gemwatch" "$tmp/fields" &&
    grep -qx "Version: $version" "$tmp/fields" &&
    grep -qx "Architecture: $arch" "$tmp/fields" &&
    grep -q "libgnutls30" "$tmp/fields" &&
    grep -q "libmicrohttpd" "$tmp/fields" &&
    grep -q "libsystemd0" "$tmp/fields" &&
    grep -q "systemd | systemd-standalone-sysusers" "$tmp/fields"; then
	ok "control: name, version, architecture, library and sysusers dependencies"
else
	notok "control: name, version, architecture, library and sysusers dependencies"
fi
# The unit, as packaged: notify, watchdog, the system user, the paths.
dpkg-deb -x "$deb" "$tmp/root"
unit=$tmp/root/lib/systemd/system/gemwatch.service
cp "$unit" "$tmp/out" 2>/dev/null
if grep -qx "Type=notify" "$unit" && grep -qx "WatchdogSec=30s" "$unit" &&
    grep -qx "User=_gemwatch" "$unit" && grep -qx "DynamicUser=no" "$unit" &&
    grep -qx "StateDirectory=gemwatch" "$unit" &&
    grep -qx "ExecStart=/usr/sbin/gemwatch -f /etc/gemwatch.conf" "$unit" &&
    grep -qx "ExecReload=/usr/sbin/gemwatch -n -f /etc/gemwatch.conf" "$unit" &&
    grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit"; then
	ok "the unit: Type=notify, WatchdogSec=30s, User=_gemwatch, /usr/sbin, /etc"
else
	notok "the unit: Type=notify, WatchdogSec=30s, User=_gemwatch, /usr/sbin, /etc"
fi
# The built-in state-dir is the unit's StateDirectory= (--localstatedir=/var).
check "the binary's default state-dir is /var/lib/gemwatch" \
    grep -aq /var/lib/gemwatch "$tmp/root/usr/sbin/gemwatch"

# The manual pages name this build's paths (not the /usr/local ones of a
# source build; an example command may still live in /usr/local/bin).
zcat "$tmp/root/usr/share/man/man8/gemwatch.8.gz" \
    "$tmp/root/usr/share/man/man5/gemwatch.conf.5.gz" >"$tmp/man"
grep -n -e /usr/local/etc -e /usr/local/var "$tmp/man" >"$tmp/out"
if grep -q /etc/gemwatch.conf "$tmp/man" &&
    grep -q /var/lib/gemwatch "$tmp/man" && ! [ -s "$tmp/out" ]; then
	ok "the manual pages name /etc/gemwatch.conf and /var/lib/gemwatch"
else
	notok "the manual pages name /etc/gemwatch.conf and /var/lib/gemwatch"
fi

# 6-. Installed on this machine.
if [ "$(id -u)" -ne 0 ]; then
	for t in install user -V -n -h verify enabled purge; do
		skip "not root: cannot install ($t)"
	done
	finish
fi
if dpkg-query -W -f='${Status}' gemwatch 2>/dev/null | grep -q installed; then
	for t in install user -V -n -h verify enabled purge; do
		skip "a gemwatch package is installed already ($t)"
	done
	finish
fi
check "dpkg -i installs it" dpkg -i "$deb"
check "dpkg: install ok installed" sh -c \
    "dpkg-query -W -f='\${Status}' gemwatch | grep -qx 'install ok installed'"
getent passwd _gemwatch >"$tmp/out"
uid=$(cut -d: -f3 "$tmp/out")
if [ -n "$uid" ] && [ "$uid" -lt 1000 ] &&
    [ "$(cut -d: -f7 "$tmp/out")" = /usr/sbin/nologin ]; then
	ok "the system user _gemwatch exists (uid $uid, nologin)"
else
	notok "the system user _gemwatch exists"
fi
/usr/sbin/gemwatch -V >"$tmp/out" 2>&1
if head -n 1 "$tmp/out" | grep -qx "gemwatch $version"; then
	ok "installed gemwatch -V: gemwatch $version"
else
	notok "installed gemwatch -V: gemwatch $version"
fi
/usr/sbin/gemwatch -n -f /etc/gemwatch.conf >"$tmp/out" 2>&1
if [ $? -eq 0 ] && grep -qx "configuration OK" "$tmp/out"; then
	ok "installed gemwatch -n -f /etc/gemwatch.conf: configuration OK"
else
	notok "installed gemwatch -n -f /etc/gemwatch.conf: configuration OK"
fi
# As the service's user, as ExecReload runs it.
check "gemwatch -n as _gemwatch (ExecReload)" \
    runuser -u _gemwatch -- /usr/sbin/gemwatch -n -f /etc/gemwatch.conf
check "installed gemwatch -h names /etc/gemwatch.conf" \
    sh -c "/usr/sbin/gemwatch -h | grep -q '(default /etc/gemwatch.conf)'"
check "man gemwatch.8 and gemwatch.conf.5 are installed" \
    test -s /usr/share/man/man8/gemwatch.8.gz -a \
    -s /usr/share/man/man5/gemwatch.conf.5.gz
if command -v systemd-analyze >/dev/null 2>&1; then
	if systemd-analyze verify /lib/systemd/system/gemwatch.service \
	    >"$tmp/out" 2>&1 && ! [ -s "$tmp/out" ]; then
		ok "systemd-analyze verify on the installed unit"
	else
		notok "systemd-analyze verify on the installed unit"
	fi
else
	skip "systemd-analyze missing"
fi
check "the unit is enabled (multi-user.target.wants)" \
    test -L /etc/systemd/system/multi-user.target.wants/gemwatch.service

# Purge: the files, the conffile and the state go; the user stays.
mkdir -p /var/lib/gemwatch && : >/var/lib/gemwatch/known_hosts
check "dpkg --purge removes it" dpkg --purge gemwatch
left=""
for f in /usr/sbin/gemwatch /etc/gemwatch.conf /var/lib/gemwatch \
    /lib/systemd/system/gemwatch.service \
    /etc/systemd/system/multi-user.target.wants/gemwatch.service; do
	[ -e "$f" ] || [ -L "$f" ] && left="$left $f"
done
echo "left:$left" >"$tmp/out"
check "purge leaves no binary, conffile, unit, link or state" \
    test -z "$left"

finish
