#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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

/*
 * Handshakes cost CPU (signatures, key exchange), and a rendezvous brings
 * hundreds of connections at once: up to PROGRESS_MAX_THREADS threads, one
 * per core, share the work. Connections go to them in turn (to a running
 * one when the next cannot start), and each keeps its thread for its whole
 * life.
 */
#define PROGRESS_MAX_THREADS 4

struct progress_thread {
	pthread_mutex_t lock;
	struct conn **watched;
	size_t watched_count, watched_cap;
	int wake_fd;
	pid_t pid;		/* process whose thread is running, 0 if none */
};

static struct progress_thread threads[PROGRESS_MAX_THREADS] = {
	[0 ... PROGRESS_MAX_THREADS - 1] = {
		.lock = PTHREAD_MUTEX_INITIALIZER, .wake_fd = -1 },
};
static int thread_count;	/* set once, at the first watch */
static pthread_once_t count_once = PTHREAD_ONCE_INIT;

static void
count_threads(void)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	thread_count = cores < 1 ? 1 : cores > PROGRESS_MAX_THREADS ?
	    PROGRESS_MAX_THREADS : (int)cores;
}

/* The thread for a connection that has none yet: each in turn. */
static int
thread_index_next(void)
{
	static atomic_uint turn;

	pthread_once(&count_once, count_threads);
	return (int)(atomic_fetch_add(&turn, 1) % (unsigned)thread_count);
}

static void
progress_wake(struct progress_thread *t)
{
	uint64_t one = 1;

	(void)!real.write(t->wake_fd, &one, sizeof(one));
}

/* Snapshot what to poll for. Connections that need nothing are dropped. */
static size_t
progress_collect(struct progress_thread *t, struct conn **conns,
    struct pollfd *fds, size_t cap, int64_t *deadline, struct conn **done,
    size_t *ndone)
{
	size_t i, n = 0, keep = 0;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < t->watched_count; i++) {
		struct conn *c = t->watched[i];
		int64_t d = INT64_MAX;
		int fd = -1;
		short ev = conn_progress_events(c, &fd, &d);

		if (ev == 0 && d == INT64_MAX) {
			*conn_watch_flag(c) = false;
			done[(*ndone)++] = c;
			continue;
		}
		t->watched[keep++] = c;
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
	t->watched_count = keep;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void *
progress_main(void *arg)
{
	struct progress_thread *t = arg;
	struct conn **conns = NULL, **done = NULL;
	struct pollfd *fds = NULL;
	size_t cap = 0;

	shim_internal_thread = 1;
	for (;;) {
		int64_t deadline = INT64_MAX, now;
		size_t n, i, ndone = 0;
		int timeout, rc;

		pthread_mutex_lock(&t->lock);
		if (cap < t->watched_count + 1) {
			size_t want = (t->watched_count + 1) * 2;
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
		pthread_mutex_unlock(&t->lock);
		if (cap == 0) {
			/* Out of memory: wait and retry rather than spin. */
			usleep(10000);
			continue;
		}
		n = progress_collect(t, conns, fds + 1, cap, &deadline, done,
		    &ndone);
		for (i = 0; i < ndone; i++)
			conn_unref(done[i]);
		fds[0].fd = t->wake_fd;
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

			(void)!real.read(t->wake_fd, &v, sizeof(v));
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
progress_start_locked(struct progress_thread *t)
{
	pthread_attr_t attr;
	pthread_t thread;
	sigset_t all, old;
	int rc;

	if (t->pid == getpid())
		return 0;
	if (t->wake_fd >= 0) {
		real_fd_internal_remove(t->wake_fd);
		real.close(t->wake_fd);
	}
	t->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->wake_fd < 0)
		return -errno;
	real_fd_internal_add(t->wake_fd);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* The default stack size: a smaller one fails (EINVAL) in programs
	 * whose static thread-local storage is larger than it. */
	/* Signals are the application's: the thread must never take one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&thread, &attr, progress_main, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return -rc;
	/* Seen as such in top -H, ps -L and /proc/PID/task. */
	(void)pthread_setname_np(thread, "tlshim-progress");
	t->pid = getpid();
	return 0;
}

/*
 * The thread that looks after ${c}, running, with its lock held: the one
 * it was given before, or the next in turn, or, when that one cannot be
 * started (memory or thread limits), any running thread. NULL and
 * -errno when none runs.
 */
/* Every thread is started at the first need, so that what the shim holds
 * (threads, descriptors, memory) is the same from the first connection on.
 * One that cannot start is tried again at the next need. */
static void
progress_start_all(void)
{
	static _Atomic pid_t started_in;
	pid_t pid = getpid();
	bool all = true;
	int i;

	if (atomic_load(&started_in) == pid)
		return;
	pthread_once(&count_once, count_threads);
	for (i = 0; i < thread_count; i++) {
		pthread_mutex_lock(&threads[i].lock);
		all &= progress_start_locked(&threads[i]) == 0;
		pthread_mutex_unlock(&threads[i].lock);
	}
	if (all)
		atomic_store(&started_in, pid);
}

static struct progress_thread *
progress_home_locked(struct conn *c, int *err)
{
	atomic_int *watcher = conn_watcher(c);
	int home = atomic_load(watcher), first, i, rc;

	progress_start_all();
	if (home >= 0) {
		/* Its thread for good; in a forked child, started anew. */
		pthread_mutex_lock(&threads[home].lock);
		if ((rc = progress_start_locked(&threads[home])) == 0)
			return &threads[home];
		pthread_mutex_unlock(&threads[home].lock);
		*err = rc;
		return NULL;
	}
	first = thread_index_next();
	*err = -EAGAIN;
	for (i = 0; i < thread_count; i++) {
		int k = (first + i) % thread_count, expected = -1;

		pthread_mutex_lock(&threads[k].lock);
		if ((rc = progress_start_locked(&threads[k])) != 0) {
			pthread_mutex_unlock(&threads[k].lock);
			*err = rc;
			continue;
		}
		if (atomic_compare_exchange_strong(watcher, &expected, k))
			return &threads[k];
		/* Another caller chose first: that choice stands. */
		pthread_mutex_unlock(&threads[k].lock);
		return progress_home_locked(c, err);
	}
	return NULL;
}

int
progress_watch(struct conn *c)
{
	struct progress_thread *t;
	int rc;

	if ((t = progress_home_locked(c, &rc)) == NULL) {
		log_msg(LOG_LEVEL_ERROR, "cannot start the progress thread: %s",
		    strerror(-rc));
		return rc;
	}
	if (*conn_watch_flag(c)) {
		/* Already watched: a wake-up makes the thread look again. */
		progress_wake(t);
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	if (t->watched_count == t->watched_cap) {
		size_t want = t->watched_cap ? t->watched_cap * 2 : 64;
		struct conn **grown = realloc(t->watched, want * sizeof(*grown));

		if (grown == NULL) {
			pthread_mutex_unlock(&t->lock);
			return -ENOMEM;
		}
		t->watched = grown;
		t->watched_cap = want;
	}
	conn_ref(c);
	*conn_watch_flag(c) = true;
	t->watched[t->watched_count++] = c;
	progress_wake(t);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

/* Does any connection a thread of this process watches still owe bytes? */
static bool
progress_owed(void)
{
	bool owed = false;
	int i;
	size_t j;

	for (i = 0; i < PROGRESS_MAX_THREADS && !owed; i++) {
		struct progress_thread *t = &threads[i];

		pthread_mutex_lock(&t->lock);
		if (t->pid == getpid())
			for (j = 0; j < t->watched_count && !owed; j++)
				owed = conn_owes_bytes(t->watched[j]);
		pthread_mutex_unlock(&t->lock);
	}
	return owed;
}

void
progress_drain(int timeout_ms)
{
	int64_t deadline = monotime_ms() + timeout_ms;

	while (progress_owed() && monotime_ms() < deadline)
		usleep(2000);
}

void
progress_fork_child(void)
{
	int i;

	/* The parent's threads and watch lists are not ours; the
	 * connections on them are inherited, hence unusable here. */
	for (i = 0; i < PROGRESS_MAX_THREADS; i++) {
		pthread_mutex_init(&threads[i].lock, NULL);
		threads[i].watched = NULL;
		threads[i].watched_count = threads[i].watched_cap = 0;
		threads[i].pid = 0;
	}
}
