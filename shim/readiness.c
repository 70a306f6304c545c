#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "fdtab.h"
#include "monotime.h"
#include "readiness.h"
#include "real.h"

/* While a handshake runs, readiness can change with no kernel event on the
 * application's set; look again this often. */
#define HANDSHAKE_RECHECK_MS 2

int
readiness_wait_ms(int64_t deadline, bool ready_now, bool handshaking)
{
	int64_t left;
	int wait_ms;

	if (ready_now)
		return 0;
	if (deadline == INT64_MAX)
		return handshaking ? HANDSHAKE_RECHECK_MS : -1;
	left = deadline - monotime_ms();
	wait_ms = left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
	if (handshaking && wait_ms > HANDSHAKE_RECHECK_MS)
		wait_ms = HANDSHAKE_RECHECK_MS;
	return wait_ms;
}

bool
readiness_any_protected(const struct pollfd *fds, nfds_t n)
{
	nfds_t i;

	for (i = 0; i < n; i++)
		if (fdtab_has(fds[i].fd))
			return true;
	return false;
}

/* The kernel's POLLIN for ${k}, kept only when a recv() would return
 * something: ciphertext that is part of a record is not readable (see
 * conn_input_ready). */
static short
input_revents(const struct pollfd *k)
{
	struct conn *c;
	short revents = k->revents;

	if (!(revents & POLLIN) || (revents & (POLLERR | POLLHUP)) ||
	    (c = fdtab_get(k->fd)) == NULL)
		return revents;
	if (!conn_input_ready(c))
		revents &= ~(POLLIN | POLLRDNORM);
	else if ((k->events & POLLRDHUP) && conn_peer_closed(c))
		revents |= POLLRDHUP;
	conn_unref(c);
	return revents;
}

int
readiness_poll(struct pollfd *fds, nfds_t n, int timeout_ms,
    const sigset_t *sigmask)
{
	struct pollfd stack_kernel[64], *kernel = stack_kernel;
	short stack_ready[64], *ready = stack_ready;
	int64_t deadline = timeout_ms < 0 ? INT64_MAX :
	    monotime_ms() + timeout_ms;
	int rc = 0;
	nfds_t i;

	if (n > 64) {
		kernel = malloc(n * sizeof(*kernel));
		ready = malloc(n * sizeof(*ready));
		if (kernel == NULL || ready == NULL) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (;;) {
		bool handshaking = false;
		int now_ready = 0, wait_ms, count = 0;

		for (i = 0; i < n; i++) {
			struct conn *c = fdtab_get(fds[i].fd);

			kernel[i] = fds[i];
			ready[i] = 0;
			if (c == NULL)
				continue;
			{
				bool hs;
				short kev;

				ready[i] = conn_poll(c, fds[i].events, &kev, &hs);
				kernel[i].events = kev;
				handshaking |= hs;
			}
			conn_unref(c);
			if (ready[i])
				now_ready++;
		}
		wait_ms = readiness_wait_ms(deadline, now_ready > 0, handshaking);
		if (sigmask != NULL) {
			struct timespec ts = { wait_ms / 1000,
			    (wait_ms % 1000) * 1000000L };

			rc = real.ppoll(kernel, n, wait_ms < 0 ? NULL : &ts, sigmask);
		} else {
			rc = real.poll(kernel, n, wait_ms);
		}
		if (rc < 0) {
			rc = -errno;
			goto out;
		}
		for (i = 0; i < n; i++) {
			if (rc > 0)
				kernel[i].revents = input_revents(&kernel[i]);
			fds[i].revents = ready[i] | kernel[i].revents;
			if (fds[i].revents)
				count++;
		}
		if (count > 0 || (deadline != INT64_MAX &&
		    monotime_ms() >= deadline)) {
			rc = count;
			goto out;
		}
	}
out:
	if (kernel != stack_kernel)
		free(kernel);
	if (ready != stack_ready)
		free(ready);
	return rc;
}
