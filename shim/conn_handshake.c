#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "config.h"
#include "conn_internal.h"
#include "identity.h"
#include "log.h"
#include "real.h"

/* The end of our last handshake flight the kernel has not taken yet goes
 * out first, ahead of any record; lock held. */
static int
conn_take_handshake_tail(struct conn *c)
{
	size_t n = handshake_unsent(c->hs), len;

	if (n == 0)
		return 0;
	if (conn_pending_reserve(c, n))
		return -ENOMEM;
	len = atomic_load(&c->pending_len);
	len += handshake_take_unsent(c->hs, c->pending + len, n);
	atomic_store(&c->pending_len, len);
	return 0;
}

/* The handshake succeeded: key the data channel; lock held. */
static void
conn_establish_locked(struct conn *c, int64_t now)
{
	struct log_event ev;
	uint8_t tx_secret[REC_SECRET_SIZE], rx_secret[REC_SECRET_SIZE];
	enum rec_cipher cipher;

	if (handshake_export(c->hs, &cipher, tx_secret, rx_secret) != 0) {
		log_msg(LOG_LEVEL_ERROR, "fd %d: %s", c->fd, handshake_error(c->hs));
		conn_fail_locked(c, c->is_client ? ECONNREFUSED : ECONNRESET);
		return;
	}
	c->tx = rec_keys_new(cipher, tx_secret, config.rekey_records);
	c->rx = rec_keys_new(cipher, rx_secret, config.rekey_records);
	sodium_memzero(tx_secret, sizeof(tx_secret));
	sodium_memzero(rx_secret, sizeof(rx_secret));
	if (c->tx == NULL || c->rx == NULL || conn_take_handshake_tail(c) != 0 ||
	    conn_seal_queue_locked(c) != 0) {
		log_msg_limited(LOG_LEVEL_ERROR, "fd %d: out of memory keying the connection",
		    c->fd);
		conn_fail_locked(c, ENOMEM);
		return;
	}
	snprintf(c->peer, sizeof(c->peer), "%s", handshake_peer(c->hs));
	ev = conn_log_event(c, "protected");
	ev.suite = handshake_suite(c->hs);
	ev.data_cipher = cipher == REC_AES256GCM ? "AES-256-GCM" :
	    "ChaCha20-Poly1305";
	ev.handshake_ms = now - c->started_ms;
	log_event(LOG_LEVEL_INFO, &ev, "fd %d: protected as %s, peer %s at %s, "
	    "%s, data %s, handshake %lld ms", c->fd, conn_role(c), c->peer,
	    c->peer_at, ev.suite, ev.data_cipher, ev.handshake_ms);
	handshake_free(c->hs);
	c->hs = NULL;
	if (atomic_load(&c->pending_len) == 0)
		conn_restore_nodelay(c);
	c->state = CONN_ESTABLISHED;
	pthread_cond_broadcast(&c->changed);
}

short
conn_progress_events(struct conn *c, int *fd, int64_t *deadline_ms)
{
	short ev = 0;

	pthread_mutex_lock(&c->lock);
	*fd = c->fd;
	switch (c->state) {
	case CONN_CONNECTING:
		ev = POLLOUT;
		*deadline_ms = c->deadline_ms;
		break;
	case CONN_HANDSHAKING:
		ev = c->hs != NULL ? handshake_wants(c->hs) : POLLOUT;
		*deadline_ms = c->deadline_ms;
		break;
	case CONN_ESTABLISHED:
		if (atomic_load(&c->pending_len) > 0 ||
		    (c->want_shut_wr && !c->shut_wr_done)) {
			ev = POLLOUT;
			if (c->app_closed)
				*deadline_ms = c->drain_deadline_ms;
		} else if (c->app_closed && c->fd >= 0) {
			/* All sent: the step closes our descriptor. */
			ev = POLLOUT;
			*deadline_ms = 0;
		}
		break;
	case CONN_FAILED:
		if (c->app_closed && c->fd >= 0) {
			ev = POLLOUT;
			*deadline_ms = 0;
		}
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return ev;
}

/* Start the TLS handshake once TCP is connected; lock held. */
static void
conn_start_handshake_locked(struct conn *c, int64_t now)
{
	struct sockaddr_storage peer_addr;
	socklen_t len = sizeof(peer_addr);
	char err[256];

	if (config.error[0] != '\0') {
		log_msg_limited(LOG_LEVEL_ERROR, "fd %d: refusing to connect in plaintext: "
		    "invalid configuration: %s", c->fd, config.error);
		conn_fail_locked(c, c->is_client ? ECONNREFUSED : ECONNRESET);
		return;
	}
	if (real.getsockname(c->fd, (struct sockaddr *)&peer_addr, &len) != 0)
		peer_addr.ss_family = AF_UNSPEC;
	identity_format_address((struct sockaddr *)&peer_addr, c->local_at,
	    sizeof(c->local_at));
	len = sizeof(peer_addr);
	if (real.getpeername(c->fd, (struct sockaddr *)&peer_addr, &len) != 0)
		peer_addr.ss_family = AF_UNSPEC;
	identity_format_address((struct sockaddr *)&peer_addr, c->peer_at,
	    sizeof(c->peer_at));
	if ((c->hs = handshake_new(c->fd, c->is_client,
	    (struct sockaddr *)&peer_addr, err, sizeof(err))) == NULL) {
		struct log_event ev = conn_log_event(c, "refused");

		ev.reason = err;
		log_event_limited(LOG_LEVEL_ERROR, &ev, "fd %d: cannot protect the "
		    "connection, so it is refused: %s", c->fd, err);
		conn_fail_locked(c, c->is_client ? ECONNREFUSED : ECONNRESET);
		return;
	}
	c->state = CONN_HANDSHAKING;
	c->deadline_ms = now + config.handshake_timeout_ms;
}

/* For a client whose server does not speak tlshim, without TLSHIM_PEERS:
 * the setting that leaves such a service alone. */
static const char *
scope_hint(const struct conn *c)
{
	if (!c->is_client || config.peers_set)
		return "";
	return "; if that is not one of the job's nodes, list the nodes in "
	    "TLSHIM_PEERS (other destinations are then left alone) or name "
	    "it in TLSHIM_EXCLUDE";
}

/* Drive the handshake; lock held. */
static void
conn_handshake_locked(struct conn *c, short revents, int64_t now)
{
	int rc;

	if (c->state == CONN_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (revents == 0)
			return;
		if (real.getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err != 0) {
			log_msg(LOG_LEVEL_INFO, "fd %d: connect failed: %s", c->fd,
			    strerror(err));
			c->so_error = err;
			conn_fail_locked(c, err);
			return;
		}
		if (!(revents & POLLOUT))
			return;
		conn_start_handshake_locked(c, now);
		if (c->state != CONN_HANDSHAKING)
			return;
	}
	if (c->hs == NULL)
		conn_start_handshake_locked(c, now);
	if (c->state != CONN_HANDSHAKING)
		return;
	rc = handshake_step(c->hs);
	if (rc == -EAGAIN) {
		if (now >= c->deadline_ms) {
			struct log_event ev = conn_log_event(c, "refused");

			ev.reason = "TLS handshake timed out";
			log_event_limited(LOG_LEVEL_ERROR, &ev, "fd %d: TLS handshake "
			    "as %s with %s timed out after %d s (peer stalled or not "
			    "running tlshim)%s", c->fd, conn_role(c), c->peer_at,
			    config.handshake_timeout_ms / 1000, scope_hint(c));
			conn_fail_locked(c, ETIMEDOUT);
		}
		return;
	}
	if (rc != 0) {
		struct log_event ev = conn_log_event(c, "refused");

		ev.reason = handshake_error(c->hs);
		log_event_limited(LOG_LEVEL_ERROR, &ev, "fd %d: connection refused "
		    "as %s (%s %s): %s%s", c->fd, conn_role(c), c->is_client ?
		    "to" : "from", c->peer_at, handshake_error(c->hs),
		    strstr(handshake_error(c->hs), "running tlshim") != NULL ?
		    scope_hint(c) : "");
		conn_fail_locked(c, c->is_client ? ECONNREFUSED : ECONNRESET);
		return;
	}
	conn_establish_locked(c, now);
}

bool
conn_progress_step(struct conn *c, short revents, int64_t now,
    bool *established)
{
	bool app_closed, keep = true;
	int rc;

	*established = false;
	pthread_mutex_lock(&c->lock);
	if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKING) {
		conn_handshake_locked(c, revents, now);
		*established = c->state == CONN_ESTABLISHED;
		if (c->state != CONN_ESTABLISHED) {
			keep = c->state != CONN_FAILED;
			if (!keep && c->app_closed)
				conn_release_fd_locked(c);
			pthread_mutex_unlock(&c->lock);
			return keep;
		}
	}
	if (c->state == CONN_FAILED) {
		if (c->app_closed)
			conn_release_fd_locked(c);
		pthread_mutex_unlock(&c->lock);
		return false;
	}
	pthread_mutex_unlock(&c->lock);

	/* Established: drain what the application could not wait for. A
	 * sender holding the lock drains it itself. */
	if (pthread_mutex_trylock(&c->send_lock) != 0)
		return true;
	rc = conn_flush(c, false, MSG_NOSIGNAL);
	pthread_mutex_lock(&c->lock);
	app_closed = c->app_closed;
	if (rc == 0 && c->want_shut_wr && !c->shut_wr_done &&
	    (rc = conn_write_close_locked(c)) == 0 && !app_closed)
		(void)real.shutdown(c->fd, c->want_shut_rd ? SHUT_RDWR : SHUT_WR);
	if (rc != 0 && rc != -EAGAIN) {
		conn_fail_locked(c, -rc);
	} else if (rc == -EAGAIN && app_closed && now >= c->drain_deadline_ms) {
		log_msg(LOG_LEVEL_WARN, "fd %d: gave up sending to %s %d s after close",
		    c->fd, c->peer, CLOSE_DRAIN_MS / 1000);
		conn_fail_locked(c, ETIMEDOUT);
	}
	if (app_closed && c->fd >= 0 &&
	    (c->state == CONN_FAILED || c->shut_wr_done)) {
		/* Closed before the handshake had finished: the line is
		 * written once the data and the close record are out. */
		if (c->shut_wr_done)
			conn_log_closed(c);
		conn_release_fd_locked(c);
		keep = false;
	}
	if (c->state == CONN_FAILED)
		keep = false;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->send_lock);
	return keep;
}

struct conn *
conn_new_keyed(int fd, unsigned int flags, enum rec_cipher cipher,
    const uint8_t tx_secret[REC_SECRET_SIZE],
    const uint8_t rx_secret[REC_SECRET_SIZE])
{
	struct conn *c = conn_new(fd, flags & ~(unsigned int)CONN_NEW_CONNECTING);

	if (c == NULL)
		return NULL;
	c->tx = rec_keys_new(cipher, tx_secret, config.rekey_records);
	c->rx = rec_keys_new(cipher, rx_secret, config.rekey_records);
	if (c->tx == NULL || c->rx == NULL) {
		conn_unref(c);
		return NULL;
	}
	snprintf(c->peer, sizeof(c->peer), "(keyed by the caller)");
	c->state = CONN_ESTABLISHED;
	return c;
}
