#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "epollset.h"
#include "fdtab.h"
#include "monotime.h"
#include "readiness.h"
#include "real.h"

#include <poll.h>

struct epoll_reg {
	int fd;
	struct conn *conn;	/* reference held */
	uint32_t events;
	epoll_data_t data;
	bool armed;		/* false after a one-shot event, until MOD */
	bool reduced;		/* kernel interest without IN/OUT (handshake) */
	bool settled;		/* the connection was seen established or
				 * failed: it stays so, no need to ask again */
};

/* Put the kernel registration of ${r} in step with its connection: the
 * application's interest once settled, none for IN/OUT before. */
static void
reg_sync_kernel(int epfd, struct epoll_reg *r)
{
	struct epoll_event ev = { .events = r->events, .data = r->data };
	bool reduce;

	if (!r->settled)
		r->settled = conn_settled(r->conn);
	reduce = !r->settled;

	if (!r->armed || reduce == r->reduced)
		return;
	if (reduce)
		ev.events &= ~(uint32_t)(EPOLLIN | EPOLLOUT | EPOLLRDNORM |
		    EPOLLWRNORM | EPOLLPRI);
	/* An EPOLLEXCLUSIVE registration cannot be modified, only added
	 * again. */
	if (r->events & EPOLLEXCLUSIVE) {
		if (real.epoll_ctl(epfd, EPOLL_CTL_DEL, r->fd, NULL) == 0 &&
		    real.epoll_ctl(epfd, EPOLL_CTL_ADD, r->fd, &ev) == 0)
			r->reduced = reduce;
		return;
	}
	if (real.epoll_ctl(epfd, EPOLL_CTL_MOD, r->fd, &ev) == 0)
		r->reduced = reduce;
}

struct epoll_set {
	int epfd;
	struct epoll_reg *regs;
	int count, cap;
};

/* Few sets exist (one per event loop); a list under one lock is enough. */
static pthread_mutex_t sets_lock = PTHREAD_MUTEX_INITIALIZER;
static struct epoll_set *sets;
static int sets_count, sets_cap;
static atomic_int sets_live;

static struct epoll_set *
set_find(int epfd)
{
	int i;

	for (i = 0; i < sets_count; i++)
		if (sets[i].epfd == epfd)
			return &sets[i];
	return NULL;
}

static struct epoll_set *
set_get(int epfd)
{
	struct epoll_set *s = set_find(epfd), *grown;

	if (s != NULL)
		return s;
	if (sets_count == sets_cap) {
		int want = sets_cap ? sets_cap * 2 : 4;

		if ((grown = realloc(sets, (size_t)want * sizeof(*sets))) == NULL)
			return NULL;
		sets = grown;
		sets_cap = want;
	}
	s = &sets[sets_count++];
	memset(s, 0, sizeof(*s));
	s->epfd = epfd;
	atomic_store(&sets_live, sets_count);
	return s;
}

static void
reg_drop(struct epoll_set *s, int i)
{
	conn_unref(s->regs[i].conn);
	s->regs[i] = s->regs[--s->count];
}

static int
reg_find(struct epoll_set *s, int fd)
{
	int i;

	for (i = 0; i < s->count; i++)
		if (s->regs[i].fd == fd)
			return i;
	return -1;
}

void
epollset_note_ctl(int epfd, int op, int fd, const struct epoll_event *event)
{
	struct conn *c = NULL;
	struct epoll_set *s;
	int i;

	if (op != EPOLL_CTL_DEL && (c = fdtab_get(fd)) == NULL &&
	    atomic_load(&sets_live) == 0)
		return;
	pthread_mutex_lock(&sets_lock);
	s = c != NULL ? set_get(epfd) : set_find(epfd);
	if (s == NULL)
		goto out;
	i = reg_find(s, fd);
	if (op == EPOLL_CTL_DEL || c == NULL) {
		if (i >= 0)
			reg_drop(s, i);
		goto out;
	}
	if (i < 0) {
		if (s->count == s->cap) {
			int want = s->cap ? s->cap * 2 : 8;
			struct epoll_reg *grown = realloc(s->regs,
			    (size_t)want * sizeof(*grown));

			if (grown == NULL)
				goto out;
			s->regs = grown;
			s->cap = want;
		}
		i = s->count++;
		s->regs[i].fd = fd;
		s->regs[i].conn = c;
		c = NULL;	/* the registration keeps the reference */
	} else if (s->regs[i].conn != c) {
		/* The number was closed and now names another connection:
		 * the old registration (the kernel dropped it) is replaced. */
		struct conn *old = s->regs[i].conn;

		s->regs[i].conn = c;
		c = old;	/* released below */
	}
	s->regs[i].events = event != NULL ? event->events : 0;
	s->regs[i].data = event != NULL ? event->data : (epoll_data_t){ 0 };
	s->regs[i].armed = true;
	/* The kernel now has the application's full interest. */
	s->regs[i].reduced = false;
	s->regs[i].settled = false;
	reg_sync_kernel(epfd, &s->regs[i]);
out:
	pthread_mutex_unlock(&sets_lock);
	conn_unref(c);
}

void
epollset_forget(int epfd)
{
	struct epoll_set *s;

	if (atomic_load(&sets_live) == 0)
		return;
	pthread_mutex_lock(&sets_lock);
	if ((s = set_find(epfd)) != NULL) {
		while (s->count > 0)
			reg_drop(s, 0);
		free(s->regs);
		*s = sets[--sets_count];
		atomic_store(&sets_live, sets_count);
	}
	pthread_mutex_unlock(&sets_lock);
}

int
epollset_tracked(int epfd)
{
	int found;

	if (atomic_load(&sets_live) == 0)
		return 0;
	pthread_mutex_lock(&sets_lock);
	found = set_find(epfd) != NULL;
	pthread_mutex_unlock(&sets_lock);
	return found;
}

/* Events the kernel cannot report: plaintext held by the shim, a
 * connection that failed in the shim, or room to queue sends during a
 * handshake. Fills ${out}; returns the count, and sets ${waiting} when a
 * handshake is running (readiness may change with no kernel event). */
static int
epoll_synthesise(int epfd, struct epoll_event *out, int max, bool *waiting)
{
	struct epoll_set *s;
	int i, n = 0;

	*waiting = false;
	pthread_mutex_lock(&sets_lock);
	if ((s = set_find(epfd)) == NULL)
		goto out;
	for (i = 0; i < s->count && n < max; i++) {
		struct epoll_reg *r = &s->regs[i];
		short kernel_events, want = 0, ready;
		bool handshaking;

		if (!fdtab_holds(r->fd, r->conn)) {
			/* The descriptor was closed (and maybe reused):
			 * the kernel dropped it from the set as well. */
			reg_drop(s, i--);
			continue;
		}
		reg_sync_kernel(epfd, r);
		if (!r->armed)
			continue;
		if (r->reduced)
			*waiting = true;
		if (r->events & EPOLLET)
			continue;
		/* Most connections of a busy loop have nothing the kernel
		 * does not report: a few atomic loads say so. */
		if (r->settled && !r->reduced && conn_input_quiet(r->conn))
			continue;
		if (r->events & EPOLLIN)
			want |= POLLIN;
		if (r->events & EPOLLRDHUP)
			want |= POLLRDHUP;
		if (r->reduced && (r->events & EPOLLOUT))
			want |= POLLOUT;
		if (want == 0)
			continue;
		ready = conn_poll(r->conn, want, &kernel_events, &handshaking);
		if (!ready)
			continue;
		out[n].events = ((ready & POLLIN) ? EPOLLIN : 0) |
		    ((ready & POLLRDHUP) ? EPOLLRDHUP : 0) |
		    ((ready & POLLOUT) ? EPOLLOUT : 0) |
		    ((ready & POLLERR) ? EPOLLERR : 0) |
		    ((ready & POLLHUP) ? EPOLLHUP : 0);
		out[n].data = r->data;
		n++;
		if (r->events & EPOLLONESHOT) {
			struct epoll_event off = { .events = EPOLLONESHOT,
			    .data = r->data };

			r->armed = false;
			(void)real.epoll_ctl(epfd, EPOLL_CTL_MOD, r->fd, &off);
		}
	}
out:
	pthread_mutex_unlock(&sets_lock);
	return n;
}

/* Kernel events for one-shot registrations disarm ours too; an event for
 * data we already reported is merged into it. Returns the new count. */
static int
epoll_merge(int epfd, struct epoll_event *ev, int synth, int total)
{
	struct epoll_set *s;
	int i, j, k;

	pthread_mutex_lock(&sets_lock);
	s = set_find(epfd);
	for (k = synth; s != NULL && k < total; k++) {
		for (i = 0; i < s->count; i++)
			if (s->regs[i].data.u64 == ev[k].data.u64 &&
			    (s->regs[i].events & EPOLLONESHOT))
				s->regs[i].armed = false;
	}
	pthread_mutex_unlock(&sets_lock);
	for (k = synth; k < total; k++) {
		for (j = 0; j < synth; j++) {
			if (ev[j].data.u64 == ev[k].data.u64) {
				ev[j].events |= ev[k].events;
				ev[k--] = ev[--total];
				break;
			}
		}
	}
	return total;
}

/* The connection registered with ${data} in ${epfd}, referenced, or NULL;
 * not for one-shot registrations (the kernel disarmed them: an event
 * withheld would never come again). */
static struct conn *
reg_conn_by_data(int epfd, epoll_data_t data, uint32_t *events)
{
	struct epoll_set *s;
	struct conn *c = NULL;
	int i;

	pthread_mutex_lock(&sets_lock);
	if ((s = set_find(epfd)) != NULL)
		for (i = 0; i < s->count && c == NULL; i++)
			if (s->regs[i].data.u64 == data.u64 &&
			    !(s->regs[i].events & EPOLLONESHOT)) {
				c = s->regs[i].conn;
				*events = s->regs[i].events;
				conn_ref(c);
			}
	pthread_mutex_unlock(&sets_lock);
	return c;
}

/* The kernel's EPOLLIN on a protected connection says ciphertext came,
 * perhaps part of a record, when recv() would still say EAGAIN: some
 * programs do not survive that after an event (UCX's TCP transport drops
 * its receive state). Such events lose EPOLLIN, and go when nothing is
 * left. Returns the new count. */
static int
epoll_filter_input(int epfd, struct epoll_event *ev, int first, int total)
{
	int k;

	for (k = first; k < total; k++) {
		uint32_t wanted = 0;
		struct conn *c;

		if (!(ev[k].events & EPOLLIN) ||
		    (ev[k].events & (EPOLLERR | EPOLLHUP)) ||
		    (c = reg_conn_by_data(epfd, ev[k].data, &wanted)) == NULL)
			continue;
		if (!conn_input_ready(c))
			ev[k].events &= ~(uint32_t)(EPOLLIN | EPOLLRDNORM);
		else if ((wanted & EPOLLRDHUP) && conn_peer_closed(c))
			ev[k].events |= EPOLLRDHUP;
		conn_unref(c);
		if (ev[k].events == 0)
			ev[k--] = ev[--total];
	}
	return total;
}

void
epollset_conn_established(struct conn *c)
{
	int i, j;

	if (atomic_load(&sets_live) == 0)
		return;
	pthread_mutex_lock(&sets_lock);
	for (i = 0; i < sets_count; i++)
		for (j = 0; j < sets[i].count; j++)
			if (sets[i].regs[j].conn == c)
				reg_sync_kernel(sets[i].epfd, &sets[i].regs[j]);
	pthread_mutex_unlock(&sets_lock);
}

int
epollset_wait_emulated(int epfd, struct epoll_event *events, int max,
    int timeout_ms, const sigset_t *sigmask)
{
	int64_t deadline;
	int synth, n, wait_ms;
	bool waiting;

	if (max <= 0)
		return -EINVAL;
	deadline = timeout_ms < 0 ? INT64_MAX : monotime_ms() + timeout_ms;
	for (;;) {
		synth = epoll_synthesise(epfd, events, max, &waiting);
		if (synth == max)
			return synth;
		wait_ms = readiness_wait_ms(deadline, synth > 0, waiting);
		n = real.epoll_pwait(epfd, events + synth, max - synth, wait_ms,
		    sigmask);
		if (n < 0)
			return synth > 0 ? synth : -errno;
		n = epoll_filter_input(epfd, events, synth, synth + n);
		n = epoll_merge(epfd, events, synth, n);
		if (n > 0 || (deadline != INT64_MAX && monotime_ms() >= deadline))
			return n;
	}
}
