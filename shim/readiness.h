#ifndef TLSHIM_READINESS_H
#define TLSHIM_READINESS_H

/*
 * Truthful readiness for protected sockets: plaintext the shim already
 * holds is readable although the kernel has nothing; handshake bytes are
 * not data; a socket still in its handshake is writable (sends queue).
 */

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/*
 * readiness_wait_ms(deadline, ready_now, handshaking):
 * How long one kernel wait may take: 0 when something is ready already,
 * until ${deadline} (INT64_MAX: forever, -1) otherwise, but in short slices
 * while a handshake runs (its end is no kernel event on the caller's set).
 */
int readiness_wait_ms(int64_t deadline, bool ready_now, bool handshaking);

/* readiness_any_protected(fds, n): does the set hold a protected socket? */
bool readiness_any_protected(const struct pollfd *fds, nfds_t n);

/*
 * readiness_poll(fds, n, timeout_ms, sigmask):
 * poll(2)/ppoll(2) over a set holding protected sockets; ${timeout_ms} < 0
 * waits forever; ${sigmask} as ppoll's (NULL: unchanged). Returns the number
 * of ready entries or -errno.
 */
int readiness_poll(struct pollfd *fds, nfds_t n, int timeout_ms,
    const sigset_t *sigmask);

#endif
