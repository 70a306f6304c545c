#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <sodium.h>

#include "conn_internal.h"
#include "log.h"
#include "real.h"

/* Give the receive buffer back between records (an idle connection keeps
 * no record-sized buffer); recv_lock held. */
static void
rx_buf_release(struct conn *c)
{
	if (c->rx_buf == NULL || c->rx_reader.in_body || c->rx_whole ||
	    c->rx_plain_len > 0)
		return;
	if (c->rx_buf != c->rx_small)
		free(c->rx_buf);
	c->rx_buf = NULL;
}

/* A place for the body of ${body_len} bytes whose header was accepted:
 * the connection's own small buffer, or a record-sized one. 0 or -ENOMEM;
 * recv_lock held (no plaintext is waiting: records are read only then). */
static int
rx_body_buffer(struct conn *c, size_t body_len)
{
	if (c->rx_buf != NULL &&
	    (c->rx_buf != c->rx_small || body_len <= RX_SMALL_BODY))
		return 0;
	if (body_len <= RX_SMALL_BODY) {
		c->rx_buf = c->rx_small;
		return 0;
	}
	return (c->rx_buf = malloc(REC_MAX_BODY)) == NULL ? -ENOMEM : 0;
}

/* Does what was read ahead complete a record a receive hands out? */
static bool
rx_ahead_ready(const struct conn *c)
{
	return c->rx_ahead_len > 0 && rec_reader_ready(&c->rx_reader,
	    c->rx_ahead + c->rx_ahead_off, c->rx_ahead_len);
}

/* Could a receive hand out more now without waiting: records read ahead,
 * or the kernel may hold more than the last read took? */
static bool
rx_more_now(const struct conn *c)
{
	return rx_ahead_ready(c) || c->rx_kernel_more;
}

/* Would a receive hand out something now, without the kernel? */
static bool
rx_input_waiting(const struct conn *c)
{
	return c->rx_plain_len > 0 || c->rx_whole || c->rx_eof || c->rx_error ||
	    rx_ahead_ready(c);
}

/*
 * Fill the places ${iov} names (${parts} entries; the array has room for
 * one more) with the stream's next bytes: from what was read ahead, else
 * from the kernel, which may also fill the read-ahead buffer in the same
 * call. Bytes placed, 0 at the end of the stream, or -errno.
 */
static ssize_t
rx_fill(struct conn *c, struct iovec *iov, int parts, int flags)
{
	struct msghdr msg = { .msg_iov = iov };
	size_t want = conn_iov_total(iov, parts), placed = 0;
	ssize_t n;
	int i;

	if (c->rx_ahead_len > 0) {
		for (i = 0; i < parts && c->rx_ahead_len > 0; i++) {
			size_t take = iov[i].iov_len < c->rx_ahead_len ?
			    iov[i].iov_len : c->rx_ahead_len;

			memcpy(iov[i].iov_base, c->rx_ahead + c->rx_ahead_off, take);
			c->rx_ahead_off += take;
			c->rx_ahead_len -= take;
			placed += take;
		}
		if (c->rx_ahead_len == 0)
			c->rx_ahead_off = 0;
		return (ssize_t)placed;
	}
	iov[parts].iov_base = c->rx_ahead;
	iov[parts].iov_len = sizeof(c->rx_ahead);
	msg.msg_iovlen = (size_t)parts + 1;
	n = real.recvmsg(c->fd, &msg, flags);
	if (n < 0) {
		c->rx_kernel_more = false;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
	/* TCP hands out all it holds up to the room given: a short read
	 * means there was no more. */
	c->rx_kernel_more = (size_t)n == want + sizeof(c->rx_ahead);
	if ((size_t)n > want) {
		c->rx_ahead_off = 0;
		c->rx_ahead_len = (size_t)n - want;
		n = (ssize_t)want;
	}
	return n;
}

/* Hand out buffered plaintext; recv_lock held. */
static size_t
conn_deliver(struct conn *c, const struct iovec *iov, int iovcnt,
    size_t done, bool peek)
{
	size_t avail = c->rx_plain_len, copied = 0, skip = done;
	int i;

	for (i = 0; i < iovcnt && copied < avail; i++) {
		size_t len = iov[i].iov_len, take;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		take = len - skip;
		if (take > avail - copied)
			take = avail - copied;
		memcpy((uint8_t *)iov[i].iov_base + skip,
		    c->rx_buf + c->rx_plain_off + copied, take);
		copied += take;
		skip = 0;
	}
	if (!peek) {
		c->rx_plain_off += copied;
		c->rx_plain_len -= copied;
		if (c->rx_plain_len == 0) {
			rx_buf_release(c);
			atomic_store(&c->rx_readable, rx_input_waiting(c));
		}
	}
	return copied;
}

static int
conn_rx_fail(struct conn *c, int err)
{
	c->rx_error = err;
	conn_fail(c, err);
	return -err;
}

/* A complete record is in rx_buf: open it. Returns payload bytes written
 * straight into ${direct} (when given and large enough), 0 otherwise, or
 * -errno. recv_lock held. */
static int
conn_open_record(struct conn *c, uint8_t *direct, size_t direct_len)
{
	enum rec_type type = c->rx_reader.type;
	size_t body_len = c->rx_reader.body_len;
	uint8_t *out;
	int n;

	out = direct != NULL && direct_len >= body_len - REC_TAG_SIZE ?
	    direct : c->rx_buf;
	n = rec_open(c->rx, c->rx_reader.record_header, c->rx_buf, body_len, out);
	if (n < 0) {
		log_msg_limited(LOG_LEVEL_ERROR, "fd %d: record from %s failed authentication "
		    "(tampered, replayed or corrupted); connection closed", c->fd,
		    c->peer);
		return conn_rx_fail(c, ECONNRESET);
	}
	if (type == REC_CLOSE) {
		c->rx_eof = true;
		atomic_store(&c->rx_readable, true);
		return 0;
	}
	if (type == REC_REKEY) {
		log_msg(LOG_LEVEL_DEBUG, "fd %d: peer moved to receive key epoch %llu",
		    c->fd, (unsigned long long)rec_keys_epoch(c->rx));
		return 0;
	}
	c->bytes_in += (size_t)n;
	if (out == direct) {
		rx_buf_release(c);
		return n;
	}
	c->rx_plain_off = 0;
	c->rx_plain_len = (size_t)n;
	if (n > 0)
		atomic_store(&c->rx_readable, true);
	return 0;
}

/* Read ciphertext for the record being assembled, never beyond its end
 * and the next record's header; ${block} waits in the kernel (the socket
 * keeps the application's mode, timeouts and signals). Returns 1 when a
 * record is complete, 0 on progress, or -errno (-EAGAIN: nothing there,
 * or SO_RCVTIMEO expired). recv_lock held. */
static int
conn_read_record(struct conn *c, bool block)
{
	int flags = block ? 0 : MSG_DONTWAIT, parts;
	struct iovec iov[3];	/* rec_reader_iov's two, and read-ahead */
	ssize_t n = 0;

	if (c->rx_whole) {	/* assembled by conn_input_ready() */
		c->rx_whole = false;
		atomic_store(&c->rx_readable, rx_input_waiting(c));
		return 1;
	}
	if (c->rx_reader.in_body && c->rx_buf == NULL)
		return conn_rx_fail(c, ENOMEM);
	if ((parts = rec_reader_iov(&c->rx_reader, c->rx_buf, iov)) > 0) {
		n = rx_fill(c, iov, parts, flags);
		if (n < 0)
			return (int)n;
		if (n == 0)
			goto eof;
	}
	switch (rec_reader_got(&c->rx_reader, (size_t)n)) {
	case REC_READER_MORE:
		return 0;
	case REC_READER_WHOLE:
		return 1;
	case REC_READER_BODY:
		if (rx_body_buffer(c, c->rx_reader.body_len) != 0)
			return conn_rx_fail(c, ENOMEM);
		return 0;
	case REC_READER_ALERT:
		/* The peer's TLS stack rejected the handshake we finished. */
		log_msg_limited(LOG_LEVEL_ERROR, "fd %d: peer %s rejected this "
		    "node's certificate (TLS alert)", c->fd, c->peer);
		return conn_rx_fail(c, ECONNREFUSED);
	case REC_READER_BAD:
	default:
		log_msg_limited(LOG_LEVEL_ERROR, "fd %d: malformed record header "
		    "from %s; connection closed", c->fd, c->peer);
		return conn_rx_fail(c, ECONNRESET);
	}

eof:
	pthread_mutex_lock(&c->lock);
	n = c->state == CONN_FAILED ? c->error : 0;
	pthread_mutex_unlock(&c->lock);
	if (n != 0)
		return conn_rx_fail(c, (int)n);	/* we closed it ourselves */
	/* TCP closed without an authenticated close record: the stream may
	 * have been cut short by anyone on the path. */
	log_msg_limited(LOG_LEVEL_ERROR, "fd %d: connection from %s ended without a close "
	    "record (truncated)", c->fd, c->peer[0] ? c->peer : "peer");
	return conn_rx_fail(c, ECONNRESET);
}

ssize_t
conn_recv(struct conn *c, const struct iovec *iov, int iovcnt, int flags)
{
	bool nonblock = atomic_load(&c->app_nonblocking) ||
	    (flags & MSG_DONTWAIT);
	bool peek = flags & MSG_PEEK, waitall = (flags & MSG_WAITALL) && !peek;
	size_t total = conn_iov_total(iov, iovcnt), done = 0;
	int64_t deadline;
	int rc;

	if ((rc = conn_check_owner(c)) != 0)
		return rc;
	if (flags & MSG_OOB)
		return -EOPNOTSUPP;
	deadline = conn_deadline_after(c->rcvtimeo_ms);

	/* Wait out the handshake. */
	pthread_mutex_lock(&c->lock);
	while (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKING) {
		if (nonblock) {
			pthread_mutex_unlock(&c->lock);
			return -EAGAIN;
		}
		if ((rc = conn_wait_changed(c, deadline)) != 0) {
			pthread_mutex_unlock(&c->lock);
			return rc;
		}
	}
	pthread_mutex_unlock(&c->lock);

	pthread_mutex_lock(&c->recv_lock);
	while (total == 0 || done < total) {
		if (c->rx_plain_len > 0) {
			done += conn_deliver(c, iov, iovcnt, done, peek);
			/* Like the kernel, hand out what is here, up to the
			 * caller's room (records read ahead, and what the
			 * kernel holds): a program that reads until a short
			 * read must not leave whole records behind. */
			if (peek || total == 0 || (!waitall && !rx_more_now(c)))
				break;
			continue;
		}
		if (c->rx_eof || atomic_load(&c->shut_rd))
			break;
		if (c->rx_error) {
			rc = -c->rx_error;
			goto out;
		}
		pthread_mutex_lock(&c->lock);
		rc = c->state == CONN_FAILED ? -c->error : 0;
		pthread_mutex_unlock(&c->lock);
		if (rc != 0)
			goto out;
		if (total == 0 && done == 0)
			break;
		/* Wait in the kernel only when the caller would. */
		rc = conn_read_record(c, !nonblock && (done == 0 || waitall));
		if (rc == 1) {
			/* Decrypt straight into the caller when it fits. */
			uint8_t *direct = iovcnt == 1 && !peek ?
			    (uint8_t *)iov[0].iov_base + done : NULL;

			rc = conn_open_record(c, direct, total - done);
			if (rc < 0)
				goto out;
			done += (size_t)rc;
			if (rc > 0 && !waitall && !rx_more_now(c))
				break;
			continue;
		}
		if (rc == 0)
			continue;
		if (rc == -EINTR && nonblock)
			continue;
		/* Nothing more now, a timeout, a signal, or an error: what
		 * was already received is returned first, as by the kernel. */
		if (done > 0)
			break;
		goto out;
	}
	rc = 0;
out:
	atomic_store(&c->rx_readable, rx_input_waiting(c));
	pthread_mutex_unlock(&c->recv_lock);
	if (done > 0)
		return (ssize_t)done;
	return rc;
}

int
conn_readable_bytes(struct conn *c)
{
	int rc, avail = 0;

	if (conn_check_owner(c) != 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	rc = c->state == CONN_ESTABLISHED;
	pthread_mutex_unlock(&c->lock);
	if (!rc)
		return 0;	/* no data before the channel is keyed */
	pthread_mutex_lock(&c->recv_lock);
	/* Complete records the kernel holds are opened now (never waiting),
	 * so that "readable" means what recv() will return. */
	while (c->rx_plain_len == 0 && !c->rx_eof && !c->rx_error &&
	    (rc = conn_read_record(c, false)) >= 0) {
		if (rc == 1 && conn_open_record(c, NULL, 0) < 0)
			break;
	}
	if (c->rx_plain_len <= (size_t)INT32_MAX)
		avail = (int)c->rx_plain_len;
	atomic_store(&c->rx_readable, rx_input_waiting(c));
	pthread_mutex_unlock(&c->recv_lock);
	return avail;
}

int
conn_inq_bytes(struct conn *c)
{
	size_t held;
	int kernel = 0;

	pthread_mutex_lock(&c->recv_lock);
	held = c->rx_plain_len + (rx_ahead_ready(c) ? c->rx_ahead_len : 0) +
	    (c->rx_whole ? c->rx_reader.body_len : 0);
	pthread_mutex_unlock(&c->recv_lock);
	/* Ciphertext the kernel holds: an upper bound of the plaintext in
	 * it (a record's header and tag are counted too). */
	if (real.ioctl(c->fd, SIOCINQ, &kernel) != 0 || kernel < 0)
		kernel = 0;
	held += (size_t)kernel;
	return held > INT32_MAX ? INT32_MAX : (int)held;
}

bool
conn_wants_inq(struct conn *c)
{
	return atomic_load(&c->tcp_inq);
}

void
conn_set_inq(struct conn *c, bool on)
{
	atomic_store(&c->tcp_inq, on);
}

bool
conn_peer_closed(struct conn *c)
{
	return atomic_load(&c->rx_eof);
}

bool
conn_input_ready(struct conn *c)
{
	enum conn_state state;
	bool ready;
	int rc = 0;

	if (conn_check_owner(c) != 0)
		return true;	/* recv() reports the error */
	pthread_mutex_lock(&c->lock);
	state = c->state;
	pthread_mutex_unlock(&c->lock);
	/* Failed: recv() reports it. Connecting or in the handshake: what
	 * the kernel holds is the handshake's, nothing to read. */
	if (state == CONN_FAILED || atomic_load(&c->shut_rd))
		return true;
	if (state != CONN_ESTABLISHED)
		return false;
	/* Another thread is reading (perhaps blocked in the kernel): the
	 * kernel's word stands rather than waiting for it. */
	if (pthread_mutex_trylock(&c->recv_lock) != 0)
		return true;
	while (c->rx_plain_len == 0 && !c->rx_whole && !c->rx_eof &&
	    !c->rx_error) {
		if ((rc = conn_read_record(c, false)) == 0)
			continue;
		if (rc == 1 && c->rx_reader.type != REC_DATA) {
			/* A key change or the close hands out nothing (recv
			 * would go on to EAGAIN): open it here and read on. */
			if (conn_open_record(c, NULL, 0) < 0)
				break;
			continue;
		}
		if (rc == 1) {
			c->rx_whole = true;
			atomic_store(&c->rx_readable, true);
		} else if (rc != -EAGAIN && !c->rx_error) {
			(void)conn_rx_fail(c, -rc);	/* the kernel said it once */
		}
		break;
	}
	ready = rx_input_waiting(c);
	atomic_store(&c->rx_readable, ready);
	pthread_mutex_unlock(&c->recv_lock);
	return ready;
}
