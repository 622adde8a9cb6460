/*
 * How late probes start, as the scheduler counts it: the data that goes
 * from the scheduler (which owns it) through main to the store, and from
 * there to /metrics and the status page.
 */
#ifndef GEMWATCH_LAG_H
#define GEMWATCH_LAG_H

#include <stdint.h>

/* Upper bounds of the lag histogram's buckets, in seconds (+Inf after). */
#define LAG_BOUNDS                                                             \
	{                                                                      \
		0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60                    \
	}
#define LAG_NBUCKETS 10

/* A probe is late when it starts more than this part of its interval late. */
#define LAG_LATE_FRACTION 0.1

struct lag {
	uint64_t bucket[LAG_NBUCKETS]; /* not cumulative; +Inf is count */
	uint64_t count;                /* probes started */
	double sum;                    /* seconds of lag, all of them */
	uint64_t late;                 /* started late (LAG_LATE_FRACTION) */
	double last_late; /* monotonic time of the latest late start, 0 none */
	double last_late_by;  /* and by how much */
	unsigned in_flight;   /* probes in flight now */
	unsigned concurrency; /* the bound in force */
};

#endif
