/*
 * The probe engine's contract, without a Gemini server: probes beyond
 * max_in_flight wait their turn (FIFO);
 * done is called once per probe, on a loop thread; engine_free abandons
 * what is in flight or waiting without calling done and without waiting
 * for a peer (here: a listener that never accepts, so every handshake
 * hangs); a probe started at a later time (engine_start_at) waits until
 * then, and is abandoned like the others.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "engine.h"
#include "probe.h"
#include "tap.h"
#include "url.h"

#define N 20

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int ndone, on_main;
static enum reason reasons[N];
static double done_at[N];
static pthread_t main_thread;

static void
done(void *arg, struct probe_result *res)
{
	size_t i = (size_t)(uintptr_t)arg;

	pthread_mutex_lock(&lock);
	reasons[i] = res->reason;
	done_at[i] = clock_mono();
	if (pthread_equal(pthread_self(), main_thread))
		on_main++;
	ndone++;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
}

/* Wait until n probes are done or secs pass; the number done. */
static int
wait_done(int n, double secs)
{
	double end = clock_mono() + secs;
	int got;

	pthread_mutex_lock(&lock);
	while (ndone < n && clock_mono() < end) {
		pthread_mutex_unlock(&lock);
		usleep(10000);
		pthread_mutex_lock(&lock);
	}
	got = ndone;
	pthread_mutex_unlock(&lock);
	return got;
}

/*
 * Accept what has connected, without waiting, and keep it open (the
 * handshakes go on waiting): how many. close_all closes them.
 */
static int accepted[N];
static int naccepted;

static int
accept_all(int fd)
{
	int c, n = 0;

	while (naccepted < N &&
	       (c = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) != -1) {
		accepted[naccepted++] = c;
		n++;
	}
	return n;
}

static void
close_all(void)
{
	while (naccepted > 0)
		close(accepted[--naccepted]);
}

/*
 * A listener (non-blocking, for accept_all) that accepts only when the
 * test says: connections complete, TLS waits.
 */
static int
listener(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int fd;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		return -1;
	*port = ntohs(sin.sin_port);
	return fd;
}

int
main(void)
{
	struct engine *e;
	struct probe_req reqs[N];
	struct url u, wrong;
	const char *err;
	char text[64];
	double t0;
	size_t i;
	int fd, port;

	main_thread = pthread_self();
	if (probe_global_init() == -1 || (fd = listener(&port)) == -1) {
		ok(0, "set-up");
		return done_testing();
	}
	snprintf(text, sizeof text, "gemini://127.0.0.1:%d/", port);
	if (url_parse(text, strlen(text), &u, &err) == -1 ||
	    url_parse("gemini://[::1]:1/", strlen("gemini://[::1]:1/"), &wrong,
	        &err) == -1) {
		ok(0, "URLs");
		return done_testing();
	}

	/* 20 hanging probes, 8 at a time: 12 wait, none ends. */
	e = engine_new(8, 2);
	ok(e != NULL, "engine_new");
	for (i = 0; i < N; i++) {
		probe_req_init(&reqs[i], &u);
		reqs[i].timeout = 30;
		engine_start(e, &reqs[i], done, (void *)(uintptr_t)i);
	}
	usleep(300000); /* let the loops connect and reach the handshakes */
	is_int(accept_all(fd), 8, "8 connections at once (max_in_flight)");
	usleep(200000);
	is_int(accept_all(fd), 0, "the rest wait their turn");
	t0 = clock_mono();
	engine_free(e);
	close_all();
	/* The probes' deadline is 30 s: this says whether it waited. */
	ok(clock_mono() - t0 < 5.0,
	    "engine_free does not wait on the peers "
	    "(%.3fs)",
	    clock_mono() - t0);
	is_int(wait_done(1, 0.2), 0,
	    "engine_free calls no done: an abandoned "
	    "probe says nothing");

	/* Probes that end: done once each, on a loop thread, FIFO beyond 2. */
	e = engine_new(2, 0);
	for (i = 0; i < 6; i++) {
		probe_req_init(&reqs[i], i % 2 ? &wrong : &u);
		reqs[i].family = i % 2 ? AF_INET : AF_UNSPEC;
		reqs[i].timeout = 0.3;
		engine_start(e, &reqs[i], done, (void *)(uintptr_t)i);
	}
	is_int(wait_done(6, 10), 6, "six probes, six dones");
	is_int(on_main, 0, "done runs on a loop thread, never in engine_start");
	for (i = 0; i < 6; i++)
		is_int(reasons[i], i % 2 ? REASON_RESOLVE : REASON_TIMEOUT,
		    "probe %zu: %s", i,
		    i % 2 ? "an IPv6 literal with -4: resolve"
		          : "a handshake that never ends: timeout");
	/* Later: not before its time, then as any probe; abandoned too. */
	ndone = 0;
	probe_req_init(&reqs[0], &wrong);
	reqs[0].family = AF_INET; /* ends at once: resolve */
	t0 = clock_mono();
	engine_start_at(e, t0 + 0.5, &reqs[0], done, (void *)(uintptr_t)0);
	is_int(wait_done(1, 0.3), 0, "engine_start_at: not begun before then");
	is_int(wait_done(1, 10), 1, "engine_start_at: done after");
	ok(done_at[0] - t0 >= 0.5,
	    "engine_start_at: begun at its time "
	    "(%.3fs after)",
	    done_at[0] - t0);
	is_int(
	    reasons[0], REASON_RESOLVE, "engine_start_at: an ordinary probe");
	probe_req_init(&reqs[1], &wrong);
	reqs[1].family = AF_INET;
	engine_start_at(
	    e, clock_mono() + 60, &reqs[1], done, (void *)(uintptr_t)1);
	engine_free(e);
	is_int(wait_done(2, 0.2), 1,
	    "engine_free abandons a probe waiting for its time");

	url_free(&u);
	url_free(&wrong);
	close(fd);
	probe_global_free();
	return done_testing();
}
