#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "conn.h"
#include "epollset.h"
#include "log.h"
#include "monotime.h"
#include "progress.h"
#include "real.h"

static pthread_mutex_t progress_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn **watched;
static size_t watched_count, watched_cap;
static int wake_fd = -1;
static pid_t thread_pid;	/* process whose thread is running, 0 if none */

static void
progress_wake(void)
{
	uint64_t one = 1;

	(void)!real.write(wake_fd, &one, sizeof(one));
}

/* Snapshot what to poll for. Connections that need nothing are dropped. */
static size_t
progress_collect(struct conn **conns, struct pollfd *fds, size_t cap,
    int64_t *deadline, struct conn **done, size_t *ndone)
{
	size_t i, n = 0, keep = 0;

	pthread_mutex_lock(&progress_lock);
	for (i = 0; i < watched_count; i++) {
		struct conn *c = watched[i];
		int64_t d = INT64_MAX;
		int fd = -1;
		short ev = conn_progress_events(c, &fd, &d);

		if (ev == 0 && d == INT64_MAX) {
			*conn_watch_flag(c) = false;
			done[(*ndone)++] = c;
			continue;
		}
		watched[keep++] = c;
		if (n < cap) {
			conns[n] = c;
			fds[n].fd = fd;
			fds[n].events = ev;
			fds[n].revents = 0;
			n++;
		}
		if (d < *deadline)
			*deadline = d;
	}
	watched_count = keep;
	pthread_mutex_unlock(&progress_lock);
	return n;
}

static void *
progress_main(void *arg)
{
	struct conn **conns = NULL, **done = NULL;
	struct pollfd *fds = NULL;
	size_t cap = 0;

	(void)arg;
	shim_internal_thread = 1;
	for (;;) {
		int64_t deadline = INT64_MAX, now;
		size_t n, i, ndone = 0;
		int timeout, rc;

		pthread_mutex_lock(&progress_lock);
		if (cap < watched_count + 1) {
			size_t want = (watched_count + 1) * 2;
			void *a = realloc(conns, want * sizeof(*conns));
			void *b = a ? realloc(done, want * sizeof(*done)) : NULL;
			void *f = b ? realloc(fds, (want + 1) * sizeof(*fds)) : NULL;

			if (a)
				conns = a;
			if (b)
				done = b;
			if (f) {
				fds = f;
				cap = want;
			}
		}
		pthread_mutex_unlock(&progress_lock);
		if (cap == 0) {
			/* Out of memory: wait and retry rather than spin. */
			usleep(10000);
			continue;
		}
		n = progress_collect(conns, fds + 1, cap, &deadline, done, &ndone);
		for (i = 0; i < ndone; i++)
			conn_unref(done[i]);
		fds[0].fd = wake_fd;
		fds[0].events = POLLIN;
		fds[0].revents = 0;
		now = monotime_ms();
		if (deadline == INT64_MAX)
			timeout = -1;
		else if (deadline <= now)
			timeout = 0;
		else
			timeout = deadline - now > 60000 ? 60000 :
			    (int)(deadline - now);
		rc = real.poll(fds, n + 1, timeout);
		if (rc < 0 && errno != EINTR) {
			log_msg(LOG_LEVEL_ERROR, "progress thread: poll failed: %s",
			    strerror(errno));
			usleep(10000);
		}
		if (fds[0].revents & POLLIN) {
			uint64_t v;

			(void)!real.read(wake_fd, &v, sizeof(v));
		}
		now = monotime_ms();
		for (i = 0; i < n; i++) {
			bool established;

			(void)conn_progress_step(conns[i], fds[i + 1].revents,
			    now, &established);
			/* An application's epoll set learns at once, not at
			 * its next look. */
			if (established)
				epollset_conn_established(conns[i]);
		}
	}
	return NULL;
}

static int
progress_start_locked(void)
{
	pthread_attr_t attr;
	pthread_t thread;
	sigset_t all, old;
	int rc;

	if (thread_pid == getpid())
		return 0;
	if (wake_fd >= 0) {
		real_fd_internal_remove(wake_fd);
		real.close(wake_fd);
	}
	wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (wake_fd < 0)
		return -errno;
	real_fd_internal_add(wake_fd);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* The default stack size: a smaller one fails (EINVAL) in programs
	 * whose static thread-local storage is larger than it. */
	/* Signals are the application's: the thread must never take one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&thread, &attr, progress_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return -rc;
	thread_pid = getpid();
	return 0;
}

int
progress_watch(struct conn *c)
{
	int rc;

	pthread_mutex_lock(&progress_lock);
	if ((rc = progress_start_locked()) != 0) {
		pthread_mutex_unlock(&progress_lock);
		log_msg(LOG_LEVEL_ERROR, "cannot start the progress thread: %s",
		    strerror(-rc));
		return rc;
	}
	if (*conn_watch_flag(c)) {
		/* Already watched: a wake-up makes the thread look again. */
		progress_wake();
		pthread_mutex_unlock(&progress_lock);
		return 0;
	}
	if (watched_count == watched_cap) {
		size_t want = watched_cap ? watched_cap * 2 : 64;
		struct conn **grown = realloc(watched, want * sizeof(*grown));

		if (grown == NULL) {
			pthread_mutex_unlock(&progress_lock);
			return -ENOMEM;
		}
		watched = grown;
		watched_cap = want;
	}
	conn_ref(c);
	*conn_watch_flag(c) = true;
	watched[watched_count++] = c;
	progress_wake();
	pthread_mutex_unlock(&progress_lock);
	return 0;
}

void
progress_drain(int timeout_ms)
{
	int64_t deadline = monotime_ms() + timeout_ms;

	for (;;) {
		size_t i;
		bool owed = false;

		pthread_mutex_lock(&progress_lock);
		if (thread_pid == getpid())
			for (i = 0; i < watched_count && !owed; i++)
				owed = conn_owes_bytes(watched[i]);
		pthread_mutex_unlock(&progress_lock);
		if (!owed || monotime_ms() >= deadline)
			return;
		usleep(2000);
	}
}

void
progress_fork_child(void)
{
	/* The parent's thread and watch list are not ours; the connections
	 * on it are inherited, hence unusable here. */
	pthread_mutex_init(&progress_lock, NULL);
	watched = NULL;
	watched_count = watched_cap = 0;
	thread_pid = 0;
}
