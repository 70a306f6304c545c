#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>

#include "conn_internal.h"
#include "log.h"
#include "monotime.h"
#include "real.h"

void
conn_log_closed(struct conn *c)
{
	struct log_event ev = conn_log_event(c, "closed");

	if (c->close_logged)
		return;
	c->close_logged = true;
	ev.sent = (long long)c->bytes_out;
	ev.received = (long long)c->bytes_in;
	log_event(LOG_LEVEL_INFO, &ev, "fd %d: closed, peer %s at %s, sent %llu "
	    "bytes, received %llu bytes", c->fd, c->peer[0] ? c->peer : "(none)",
	    c->peer_at[0] ? c->peer_at : "?",
	    (unsigned long long)c->bytes_out, (unsigned long long)c->bytes_in);
}

int
conn_shutdown(struct conn *c, int how)
{
	bool wr = how == SHUT_WR || how == SHUT_RDWR;
	bool rd = how == SHUT_RD || how == SHUT_RDWR;
	bool background = false;
	int rc = 0;

	if (!conn_owned(c))
		return real.shutdown(c->fd, how) ? -errno : 0;
	if (rd)
		atomic_store(&c->shut_rd, true);
	if (!wr)
		return real.shutdown(c->fd, how) ? -errno : 0;

	pthread_mutex_lock(&c->send_lock);
	pthread_mutex_lock(&c->lock);
	if (c->state == CONN_FAILED) {
		rc = -c->error;
	} else if (c->want_shut_wr || c->shut_wr_done) {
		rc = 0;
	} else if (c->state != CONN_ESTABLISHED) {
		/* The close record follows the queued data once keyed. */
		c->want_shut_wr = true;
		c->want_shut_rd = rd;
		background = true;
	} else {
		c->want_shut_wr = true;
		c->want_shut_rd = rd;
		if ((rc = conn_write_close_locked(c)) == 0) {
			(void)real.shutdown(c->fd, how);
		} else if (rc == -EAGAIN) {
			background = true;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->send_lock);
	if (background && conn_background(c) != 0)
		conn_fail(c, ENOMEM);
	return rc;
}

void
conn_close(struct conn *c)
{
	bool background = false;
	int dupfd;

	if (!conn_owned(c))
		return;
	pthread_mutex_lock(&c->send_lock);
	pthread_mutex_lock(&c->lock);
	if (c->state == CONN_ESTABLISHED && !c->linger_abort)
		conn_log_closed(c);
	if (c->state == CONN_FAILED || c->linger_abort) {
		/* Nothing to deliver, or the application asked for a reset. */
		c->app_closed = true;
		c->fd = -1;
		if (c->state != CONN_FAILED)
			conn_fail_locked(c, ECONNRESET);
		goto out;
	}
	if (c->state == CONN_ESTABLISHED && !c->want_shut_wr &&
	    !c->shut_wr_done) {
		c->want_shut_wr = true;
		(void)conn_write_close_locked(c);
	}
	background = c->state != CONN_ESTABLISHED || !c->shut_wr_done;
	if (background) {
		/* Keep the socket open on a descriptor of our own, so the
		 * application's number can be reused at once, and let the
		 * progress thread finish what the application asked. */
		dupfd = real.fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
		if (dupfd < 0) {
			log_msg(LOG_LEVEL_WARN, "fd %d: closed before its data could be "
			    "sent (no descriptor left to finish it)", c->fd);
			background = false;
			c->fd = -1;
			conn_fail_locked(c, ECONNRESET);
		} else {
			c->fd = dupfd;
			if (c->hs != NULL)
				handshake_set_fd(c->hs, dupfd);
			c->want_shut_wr = true;
			c->drain_deadline_ms = monotime_ms() + CLOSE_DRAIN_MS;
		}
	} else {
		c->fd = -1;
	}
	c->app_closed = true;
out:
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->send_lock);
	if (background && conn_background(c) != 0) {
		pthread_mutex_lock(&c->lock);
		conn_release_fd_locked(c);
		conn_fail_locked(c, ENOMEM);
		pthread_mutex_unlock(&c->lock);
	}
}

void
conn_close_at_exit(struct conn *c)
{
	/* Without it, a program that exits without closing its sockets
	 * would look truncated to its peers. Never wait: other threads may
	 * hold the locks forever. */
	bool go = false;

	if (!conn_owned(c))
		return;
	/* The audit trail's bytes at close, for a program that exits without
	 * closing (the state lock is only ever held briefly). */
	pthread_mutex_lock(&c->lock);
	if (c->state == CONN_ESTABLISHED && !c->app_closed)
		conn_log_closed(c);
	pthread_mutex_unlock(&c->lock);
	if (pthread_mutex_trylock(&c->send_lock) != 0)
		return;
	if (pthread_mutex_trylock(&c->lock) == 0) {
		go = c->state == CONN_ESTABLISHED && !c->app_closed &&
		    !c->shut_wr_done && !c->want_shut_wr && !c->linger_abort;
		if (go)
			c->want_shut_wr = true;
		pthread_mutex_unlock(&c->lock);
	}
	if (go && conn_queue_close_record(c) == 0)
		(void)conn_flush(c, false, MSG_NOSIGNAL);
	pthread_mutex_unlock(&c->send_lock);
	/* What the kernel did not take yet, the progress thread sends while
	 * the exit waits for it (progress_drain). */
	if (go && atomic_load(&c->pending_len) > 0 && conn_background(c) != 0)
		log_msg(LOG_LEVEL_WARN, "fd %d: exiting with data not yet sent", c->fd);
}

bool
conn_owes_bytes(struct conn *c)
{
	bool owes;

	pthread_mutex_lock(&c->lock);
	owes = c->state != CONN_FAILED && (c->app_closed ||
	    atomic_load(&c->pending_len) > 0 ||
	    (c->want_shut_wr && !c->shut_wr_done));
	pthread_mutex_unlock(&c->lock);
	return owes;
}
