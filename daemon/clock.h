/*
 * The two clocks: monotonic for durations and deadlines, wall for the
 * times users read. Both in seconds as doubles.
 */
#ifndef GEMWATCH_CLOCK_H
#define GEMWATCH_CLOCK_H

/* Monotonic seconds (CLOCK_MONOTONIC): deadlines, durations. */
double clock_mono(void);
/* Unix time in seconds (CLOCK_REALTIME): timestamps. */
double clock_wall(void);

#endif
