/*
 * Hooks for the readiness calls: poll, ppoll, select, pselect, their
 * fortified forms, and epoll. Sets without a protected socket go straight to libc.
 */
#define _GNU_SOURCE
/* The hooks define the calls that fortify would wrap inline. */
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "epollset.h"
#include "fdtab.h"
#include "readiness.h"
#include "real.h"
#include "shim.h"

#define EXPORT __attribute__((visibility("default")))

/* glibc declares poll's array write-only; a hook reads the events in it.
 * (gcc's warning; clang has no such group.) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

static int
timespec_ms(const struct timespec *ts)
{
	if (ts == NULL)
		return -1;
	if (ts->tv_sec > 2000000)
		return 2000000000;
	return (int)(ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000);
}

EXPORT int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (!readiness_any_protected(fds, n))
		return REAL(poll)(fds, n, timeout);
	HOOK_RETURN(int, readiness_poll(fds, n, timeout, NULL));
}

EXPORT int
ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
    const sigset_t *sigmask)
{
	if (!readiness_any_protected(fds, n))
		return REAL(ppoll)(fds, n, ts, sigmask);
	HOOK_RETURN(int, readiness_poll(fds, n, timespec_ms(ts), sigmask));
}

EXPORT int
__poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	if (!readiness_any_protected(fds, n) || fdslen / sizeof(*fds) < n)
		return REAL(__poll_chk)(fds, n, timeout, fdslen);
	return poll(fds, n, timeout);
}

EXPORT int
__ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
    const sigset_t *sigmask, size_t fdslen)
{
	if (!readiness_any_protected(fds, n) || fdslen / sizeof(*fds) < n)
		return REAL(__ppoll_chk)(fds, n, ts, sigmask, fdslen);
	return ppoll(fds, n, ts, sigmask);
}

static bool
select_has_protected(int nfds, fd_set *r, fd_set *w, fd_set *e)
{
	int fd;

	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (fdtab_has(fd) && ((r && FD_ISSET(fd, r)) ||
		    (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e))))
			return true;
	return false;
}

/* select through readiness_poll: the sets become a poll set and back. */
static int
select_emulated(int nfds, fd_set *r, fd_set *w, fd_set *e, int timeout_ms,
    const sigset_t *sigmask)
{
	struct pollfd *fds;
	int fd, n = 0, i, rc, count = 0;

	if (nfds > FD_SETSIZE)
		nfds = FD_SETSIZE;
	if ((fds = calloc((size_t)nfds, sizeof(*fds))) == NULL)
		return -ENOMEM;
	for (fd = 0; fd < nfds; fd++) {
		short ev = 0;

		if (r && FD_ISSET(fd, r))
			ev |= POLLIN;
		if (w && FD_ISSET(fd, w))
			ev |= POLLOUT;
		if (e && FD_ISSET(fd, e))
			ev |= POLLPRI;
		if (ev == 0)
			continue;
		fds[n].fd = fd;
		fds[n].events = ev;
		n++;
	}
	rc = readiness_poll(fds, (nfds_t)n, timeout_ms, sigmask);
	if (rc < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (fds[i].revents & POLLNVAL) {
			rc = -EBADF;
			goto out;
		}
	}
	if (r)
		FD_ZERO(r);
	if (w)
		FD_ZERO(w);
	if (e)
		FD_ZERO(e);
	for (i = 0; i < n; i++) {
		short rev = fds[i].revents;

		if ((fds[i].events & POLLIN) && (rev & (POLLIN | POLLHUP | POLLERR))) {
			FD_SET(fds[i].fd, r);
			count++;
		}
		if ((fds[i].events & POLLOUT) && (rev & (POLLOUT | POLLERR))) {
			FD_SET(fds[i].fd, w);
			count++;
		}
		if ((fds[i].events & POLLPRI) && (rev & POLLPRI)) {
			FD_SET(fds[i].fd, e);
			count++;
		}
	}
	rc = count;
out:
	free(fds);
	return rc;
}

EXPORT int
select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	int timeout_ms = -1;

	if (nfds < 0 || !select_has_protected(nfds, r, w, e))
		return REAL(select)(nfds, r, w, e, tv);
	if (tv != NULL)
		timeout_ms = (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
	HOOK_RETURN(int, select_emulated(nfds, r, w, e, timeout_ms, NULL));
}

EXPORT int
pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
    const sigset_t *sigmask)
{
	if (nfds < 0 || !select_has_protected(nfds, r, w, e))
		return REAL(pselect)(nfds, r, w, e, ts, sigmask);
	HOOK_RETURN(int, select_emulated(nfds, r, w, e, timespec_ms(ts),
	    sigmask));
}

EXPORT int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
	int rc = REAL(epoll_ctl)(epfd, op, fd, event);


	if (rc == 0 && (fdtab_has(fd) || epollset_tracked(epfd)))
		epollset_note_ctl(epfd, op, fd, event);
	return rc;
}

EXPORT int
epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
	if (shim_internal_thread || !epollset_tracked(epfd))
		return REAL(epoll_wait)(epfd, events, max, timeout);
	HOOK_RETURN(int, epollset_wait_emulated(epfd, events, max, timeout, NULL));
}

EXPORT int
epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout,
    const sigset_t *sigmask)
{
	if (shim_internal_thread || !epollset_tracked(epfd))
		return REAL(epoll_pwait)(epfd, events, max, timeout, sigmask);
	HOOK_RETURN(int, epollset_wait_emulated(epfd, events, max, timeout,
	    sigmask));
}

EXPORT int
epoll_pwait2(int epfd, struct epoll_event *events, int max,
    const struct timespec *ts, const sigset_t *sigmask)
{
	if (shim_internal_thread || !epollset_tracked(epfd))
		return REAL(epoll_pwait2)(epfd, events, max, ts, sigmask);
	HOOK_RETURN(int, epollset_wait_emulated(epfd, events, max,
	    timespec_ms(ts), sigmask));
}
