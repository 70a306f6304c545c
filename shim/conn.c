#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>

#include <sodium.h>

#include "config.h"
#include "conn_internal.h"
#include "log.h"
#include "monotime.h"
#include "real.h"

static pid_t conn_process_pid;

int64_t
conn_deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? INT64_MAX : monotime_ms() + timeout_ms;
}

/* Wait on the state condition until ${deadline}; lock held. */
int
conn_wait_changed(struct conn *c, int64_t deadline)
{
	struct timespec ts;

	if (deadline == INT64_MAX) {
		pthread_cond_wait(&c->changed, &c->lock);
		return 0;
	}
	if (deadline <= monotime_ms())
		return -EAGAIN;
	ts.tv_sec = deadline / 1000;
	ts.tv_nsec = (deadline % 1000) * 1000000;
	return pthread_cond_timedwait(&c->changed, &c->lock, &ts) == ETIMEDOUT ?
	    -EAGAIN : 0;
}

static int
read_timeout_ms(int fd, int optname)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (real.getsockopt(fd, SOL_SOCKET, optname, &tv, &len) != 0 ||
	    (tv.tv_sec == 0 && tv.tv_usec == 0))
		return -1;
	return (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

static struct conn *
conn_alloc(int fd)
{
	struct conn *c;
	pthread_condattr_t attr;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->fd = fd;
	c->aliases[0] = fd;
	c->alias_count = 1;
	c->owner = conn_process_pid ? conn_process_pid : getpid();
	if (conn_process_pid == 0)
		conn_process_pid = c->owner;
	atomic_init(&c->refs, 1);
	atomic_init(&c->watcher, -1);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_mutex_init(&c->recv_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->changed, &attr);
	pthread_condattr_destroy(&attr);
	c->rcvtimeo_ms = read_timeout_ms(fd, SO_RCVTIMEO);
	c->sndtimeo_ms = read_timeout_ms(fd, SO_SNDTIMEO);
	c->started_ms = monotime_ms();
	return c;
}

struct conn *
conn_new(int fd, unsigned int flags)
{
	struct conn *c;

	if ((c = conn_alloc(fd)) == NULL)
		return NULL;
	c->is_client = (flags & CONN_NEW_CLIENT) != 0;
	c->connect_outcome_due = (flags & CONN_NEW_CONNECTING) != 0;
	atomic_store(&c->app_nonblocking, (flags & CONN_NEW_NONBLOCKING) != 0);
	c->state = (flags & CONN_NEW_CONNECTING) ? CONN_CONNECTING :
	    CONN_HANDSHAKING;
	c->deadline_ms = (flags & CONN_NEW_CONNECTING) ? INT64_MAX :
	    c->started_ms + config.handshake_timeout_ms;
	conn_keep_kernel_lowat(c);
	if (c->is_client) {
		int on = 0;
		socklen_t len = sizeof(on);

		/* The client's last handshake message and its first record
		 * are two small writes in a row: with Nagle's algorithm the
		 * second waits for the peer's delayed ACK (40 ms). */
		if (real.getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0 &&
		    !on) {
			on = 1;
			c->nodelay_forced = real.setsockopt(fd, IPPROTO_TCP,
			    TCP_NODELAY, &on, sizeof(on)) == 0;
		}
	}
	return c;
}

void
conn_ref(struct conn *c)
{
	atomic_fetch_add(&c->refs, 1);
}

void
conn_unref(struct conn *c)
{
	if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	/* In a forked child the key pages are already zero (WIPEONFORK). */
	rec_keys_free(c->tx);
	rec_keys_free(c->rx);
	handshake_free(c->hs);
	if (c->queued != NULL) {
		sodium_memzero(c->queued, c->queued_len);
		free(c->queued);
	}
	sodium_memzero(c->rx_small, sizeof(c->rx_small));
	if (c->rx_buf != NULL && c->rx_buf != c->rx_small) {
		sodium_memzero(c->rx_buf, REC_MAX_BODY);
		free(c->rx_buf);
	}
	free(c->pending);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->recv_lock);
	pthread_cond_destroy(&c->changed);
	free(c);
}

int
conn_alias_add(struct conn *c, int fd)
{
	int rc = -EMFILE;

	pthread_mutex_lock(&c->lock);
	if (c->alias_count < CONN_MAX_ALIASES) {
		c->aliases[c->alias_count++] = fd;
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

bool
conn_alias_remove(struct conn *c, int fd)
{
	bool last, moves;
	int i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < c->alias_count; i++) {
		if (c->aliases[i] == fd) {
			c->aliases[i] = c->aliases[--c->alias_count];
			break;
		}
	}
	last = c->alias_count == 0;
	moves = !last && c->fd == fd && !c->app_closed;
	pthread_mutex_unlock(&c->lock);
	if (!moves)
		return last;
	/* The data paths use c->fd under their direction lock only, so it
	 * may change only while neither runs. */
	pthread_mutex_lock(&c->send_lock);
	pthread_mutex_lock(&c->recv_lock);
	pthread_mutex_lock(&c->lock);
	c->fd = c->aliases[0];
	if (c->hs != NULL)
		handshake_set_fd(c->hs, c->fd);
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->recv_lock);
	pthread_mutex_unlock(&c->send_lock);
	return false;
}

atomic_int *
conn_watcher(struct conn *c)
{
	return &c->watcher;
}

bool *
conn_watch_flag(struct conn *c)
{
	return &c->watched;
}

bool
conn_owned(const struct conn *c)
{
	return c->owner == conn_process_pid;
}

/* Hands a connection to the background (the progress thread): set once by
 * shim.c, so that this layer does not depend on the thread that drives
 * it. */
static int (*background_watch)(struct conn *c);

void
conn_set_background(int (*watch)(struct conn *c))
{
	background_watch = watch;
}

int
conn_background(struct conn *c)
{
	return background_watch != NULL ? background_watch(c) : -ENOSYS;
}

void
conn_fork_child(void)
{
	conn_process_pid = getpid();
}

const char *
conn_role(const struct conn *c)
{
	return c->is_client ? "client" : "server";
}

/* Fail the connection for good; lock held. Wakes every waiter. */
void
conn_fail_locked(struct conn *c, int err)
{
	if (c->state == CONN_FAILED)
		return;
	c->state = CONN_FAILED;
	c->error = err;
	handshake_free(c->hs);
	c->hs = NULL;
	if (c->queued != NULL) {
		sodium_memzero(c->queued, c->queued_len);
		free(c->queued);
		c->queued = NULL;
		c->queued_len = 0;
	}
	/* Fail closed: the peer must not wait for bytes that will never
	 * be authentic. */
	if (c->fd >= 0)
		(void)real.shutdown(c->fd, SHUT_RDWR);
	atomic_store(&c->failed, true);
	atomic_store(&c->rx_readable, true);
	pthread_cond_broadcast(&c->changed);
}

void
conn_fail(struct conn *c, int err)
{
	pthread_mutex_lock(&c->lock);
	conn_fail_locked(c, err);
	pthread_mutex_unlock(&c->lock);
}

short
conn_poll(struct conn *c, short events, short *kernel_events, bool *handshaking)
{
	short ready = 0;

	*kernel_events = 0;
	*handshaking = false;
	pthread_mutex_lock(&c->lock);
	switch (c->state) {
	case CONN_FAILED:
		/* As the kernel reports a reset or refused socket (the shim
		 * shut it down both ways). */
		ready = (events & (POLLIN | POLLOUT | POLLRDHUP)) | POLLERR |
		    POLLHUP;
		break;
	case CONN_CONNECTING:
		/* The kernel tells when TCP is up; reading waits for the
		 * handshake that follows. */
		*kernel_events = events & ~POLLIN;
		*handshaking = (events & POLLIN) != 0;
		break;
	case CONN_HANDSHAKING:
		/* Sends are queued, so writable; nothing to read yet, and
		 * handshake bytes must not wake the application. */
		if ((events & POLLOUT) && c->queued_len < QUEUE_MAX &&
		    !c->want_shut_wr)
			ready |= POLLOUT;
		*handshaking = true;
		break;
	case CONN_ESTABLISHED:
		if ((events & POLLIN) && atomic_load(&c->rx_readable))
			ready |= POLLIN;
		if ((events & POLLRDHUP) && atomic_load(&c->rx_eof))
			ready |= POLLRDHUP;
		*kernel_events = events & ~ready;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	if (atomic_load(&c->shut_rd) && (events & POLLIN))
		ready |= POLLIN;
	return ready;
}

bool
conn_input_quiet(struct conn *c)
{
	return !atomic_load(&c->rx_readable) && !atomic_load(&c->rx_eof) &&
	    !atomic_load(&c->shut_rd) && !atomic_load(&c->failed);
}

bool
conn_settled(struct conn *c)
{
	bool settled;

	pthread_mutex_lock(&c->lock);
	settled = c->state == CONN_ESTABLISHED || c->state == CONN_FAILED;
	pthread_mutex_unlock(&c->lock);
	return settled;
}

int
conn_take_so_error(struct conn *c)
{
	int err;

	pthread_mutex_lock(&c->lock);
	if (c->so_error != 0) {
		err = c->so_error;
		c->so_error = 0;
		c->error_reported = true;
	} else if (c->state == CONN_FAILED && !c->error_reported) {
		err = c->error;
		c->error_reported = true;
	} else if (c->state == CONN_CONNECTING) {
		int kerr = 0;
		socklen_t len = sizeof(kerr);

		/* Reading SO_ERROR clears it: remember what we took. */
		if (real.getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &kerr, &len) == 0 &&
		    kerr != 0) {
			conn_fail_locked(c, kerr);
			c->error_reported = true;
		}
		err = kerr;
	} else {
		err = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return err;
}

void
conn_set_nonblocking(struct conn *c, bool on)
{
	atomic_store(&c->app_nonblocking, on);
}

void
conn_set_timeout(struct conn *c, bool send, int timeout_ms)
{
	pthread_mutex_lock(&c->lock);
	if (send)
		c->sndtimeo_ms = timeout_ms;
	else
		c->rcvtimeo_ms = timeout_ms;
	pthread_mutex_unlock(&c->lock);
}

/*
 * SO_RCVLOWAT counts bytes in the kernel, but the shim takes ciphertext
 * out of the kernel ahead of the application (a record being assembled,
 * records read ahead): a low-water mark in the kernel could then wait for
 * bytes that will never come (gRPC sets one per message it expects, and
 * stalled with megabytes queued). The kernel's mark stays 1; the
 * application's is kept for getsockopt.
 */
void
conn_keep_kernel_lowat(struct conn *c)
{
	int lowat = 1;
	socklen_t len = sizeof(lowat);

	if (real.getsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, &len) != 0)
		return;
	atomic_store(&c->app_rcvlowat, lowat);
	if (lowat <= 1)
		return;
	lowat = 1;
	(void)real.setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat,
	    sizeof(lowat));
}

int
conn_app_rcvlowat(struct conn *c)
{
	int lowat = atomic_load(&c->app_rcvlowat);

	return lowat > 0 ? lowat : 1;
}

void
conn_app_set_nodelay(struct conn *c)
{
	/* The application chose for itself: never undo it. */
	pthread_mutex_lock(&c->send_lock);
	c->nodelay_forced = false;
	pthread_mutex_unlock(&c->send_lock);
}

void
conn_set_linger_abort(struct conn *c, bool on)
{
	pthread_mutex_lock(&c->lock);
	c->linger_abort = on;
	pthread_mutex_unlock(&c->lock);
}

int
conn_state_errno_for_connect(struct conn *c)
{
	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);
	int rc;

	pthread_mutex_lock(&c->lock);
	switch (c->state) {
	case CONN_CONNECTING:
		/* Once TCP is up the kernel tells the outcome, though the
		 * progress thread may not have seen it yet: hiredis and others
		 * call connect again after POLLOUT to learn it. */
		if (real.getpeername(c->fd, (struct sockaddr *)&peer, &len) != 0) {
			rc = EALREADY;
			break;
		}
		rc = c->connect_outcome_due ? 0 : EISCONN;
		c->connect_outcome_due = false;
		break;
	case CONN_FAILED:
		rc = c->error_reported ? EISCONN : c->error;
		c->error_reported = true;
		break;
	default:
		rc = c->connect_outcome_due ? 0 : EISCONN;
		c->connect_outcome_due = false;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int
conn_check_owner(struct conn *c)
{
	if (conn_owned(c))
		return 0;
	log_msg(LOG_LEVEL_WARN, "fd %d: a forked child cannot use its parent's "
	    "protected connection", c->fd);
	return -ECONNRESET;
}

void
conn_release_fd_locked(struct conn *c)
{
	if (c->fd >= 0)
		real.close(c->fd);
	c->fd = -1;
}

struct log_event
conn_log_event(const struct conn *c, const char *event)
{
	struct log_event ev = {
		.event = event,
		.role = conn_role(c),
		.local = c->local_at[0] ? c->local_at : NULL,
		.peer = c->peer_at[0] ? c->peer_at : NULL,
		.identity = c->peer[0] && c->peer[0] != '(' ? c->peer : NULL,
		.handshake_ms = -1,
		.sent = -1,
		.received = -1,
	};

	return ev;
}
