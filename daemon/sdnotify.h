/*
 * systemd service notifications (sd_notify(3)) for Type=notify: readiness,
 * reloads, stopping, a one-line status and the watchdog. Every call is a
 * no-op when $NOTIFY_SOCKET is unset (not started by systemd) or when
 * gemwatch was built without libsystemd. Main thread only.
 */
#ifndef GEMWATCH_SDNOTIFY_H
#define GEMWATCH_SDNOTIFY_H

struct store;

/* Note $NOTIFY_SOCKET and the watchdog period ($WATCHDOG_USEC, when
 * $WATCHDOG_PID is unset or this process). */
void sdnotify_init(void);
/* READY=1: the configuration is applied and the HTTP endpoint answers. */
void sdnotify_ready(void);
/* RELOADING=1 with MONOTONIC_USEC: a reload starts (READY=1 ends it). */
void sdnotify_reloading(void);
/* STOPPING=1: shutting down. */
void sdnotify_stopping(void);
/*
 * One pass of the main loop: WATCHDOG=1 when half the watchdog period
 * has passed since the last, and STATUS= ("12 capsules, 11 up, 1 down")
 * from the store when it changed, looked at every few seconds. Returns
 * wait_ms, shortened so the loop comes back in time for the next.
 */
int sdnotify_tick(struct store *, int wait_ms);

#endif
