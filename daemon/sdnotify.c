/*
 * systemd service notifications through libsystemd's sd_notify(3).
 *
 * With Type=notify, systemd counts the service as started at READY=1, so
 * main sends it only once the configuration is applied and /healthz
 * answers. A SIGHUP reload is bracketed by RELOADING=1 (with the
 * MONOTONIC_USEC systemd expects beside it) and READY=1; STOPPING=1 tells
 * that a stop is the daemon's own doing. WatchdogSec= is met from the
 * main loop, never from a thread of its own: a loop that stalls stops the
 * pings, and systemd restarts the daemon. STATUS= is what `systemctl
 * status` shows on its Status: line.
 *
 * Built without libsystemd, every function is a no-op, and the unit made
 * by make is Type=simple without a watchdog (configure.ac).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "clock.h"
#include "log.h"
#include "sdnotify.h"
#include "store.h"

#define STATUS_INTERVAL 5.0 /* seconds between looks at the store */

static int enabled;        /* $NOTIFY_SOCKET is set */
static double wd_every;    /* seconds between WATCHDOG=1; 0: none */
static double wd_next;     /* clock_mono() of the next */
static double status_next; /* clock_mono() of the next look */
static char status[256];   /* the last STATUS= sent */

static void
notify(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	static int warned;
	int r;

	if (!enabled)
		return;
	if ((r = sd_notify(0, state)) < 0 && !warned) {
		log_warnx("sd_notify: %s", strerror(-r));
		warned = 1;
	}
#else
	(void)state;
#endif
}

void
sdnotify_init(void)
{
#ifdef HAVE_LIBSYSTEMD
	uint64_t usec;

	enabled = getenv("NOTIFY_SOCKET") != NULL;
	if (enabled && sd_watchdog_enabled(0, &usec) > 0) {
		wd_every = (double)usec / 2e6;
		wd_next = clock_mono();
		log_info("systemd watchdog: WATCHDOG=1 every %.3g s", wd_every);
	}
#endif
}

void
sdnotify_ready(void)
{
	notify("READY=1");
}

void
sdnotify_reloading(void)
{
	struct timespec ts;
	char buf[64];

	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL +
	        (unsigned long long)ts.tv_nsec / 1000);
	notify(buf);
}

void
sdnotify_stopping(void)
{
	notify("STOPPING=1");
}

/* "12 capsules, 11 up, 1 down" and what else is worth a glance. */
static void
status_format(struct store *store, char *buf, size_t len)
{
	struct store_tally t;
	size_t n;

	store_tally(store, &t);
	n = (size_t)snprintf(buf, len, "%zu capsule%s, %zu up, %zu down",
	    t.capsules, t.capsules == 1 ? "" : "s", t.up, t.down);
	if (t.pending > 0 && n < len)
		n += (size_t)snprintf(
		    buf + n, len - n, ", %zu not probed yet", t.pending);
	if (t.error_pages_failing > 0 && n < len)
		n += (size_t)snprintf(buf + n, len - n,
		    ", %zu error page%s failing", t.error_pages_failing,
		    t.error_pages_failing == 1 ? "" : "s");
	if (!t.reload_ok && n < len)
		(void)snprintf(buf + n, len - n,
		    "; the last reload failed, "
		    "the previous configuration runs");
}

/* Milliseconds from now until when, rounded up; at least 0. */
static int
ms_until(double when, double now)
{
	double ms = (when - now) * 1000.0 + 0.999;

	return ms <= 0 ? 0 : ms >= INT32_MAX ? INT32_MAX : (int)ms;
}

int
sdnotify_tick(struct store *store, int wait_ms)
{
	char text[sizeof status], state[sizeof status + 8];
	double now;
	int ms;

	if (!enabled)
		return wait_ms;
	now = clock_mono();
	if (wd_every > 0 && now >= wd_next) {
		notify("WATCHDOG=1");
		wd_next = now + wd_every;
	}
	if (now >= status_next) {
		status_format(store, text, sizeof text);
		if (strcmp(text, status) != 0) {
			snprintf(state, sizeof state, "STATUS=%s", text);
			notify(state);
			memcpy(status, text, sizeof status);
		}
		status_next = now + STATUS_INTERVAL;
	}
	ms = ms_until(status_next, now);
	if (wd_every > 0 && ms_until(wd_next, now) < ms)
		ms = ms_until(wd_next, now);
	return wait_ms < 0 || ms < wait_ms ? ms : wait_ms;
}
