#ifndef TLSHIM_MONOTIME_H
#define TLSHIM_MONOTIME_H

/* The shim's one clock: monotonic milliseconds, for deadlines. */

#include <stdint.h>
#include <time.h>

static inline int64_t
monotime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
