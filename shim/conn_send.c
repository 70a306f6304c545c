#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "conn_internal.h"
#include "log.h"
#include "real.h"

/* Per-thread buffers for sealing, allocated on first send. */
struct seal_scratch {
	uint8_t out[SEAL_OUT_SIZE];
	uint8_t gather[REC_MAX_PAYLOAD];
};
static __thread struct seal_scratch *thread_scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void
scratch_free(void *p)
{
	free(p);
}

static void
scratch_key_init(void)
{
	(void)pthread_key_create(&scratch_key, scratch_free);
}

static struct seal_scratch *
scratch_get(void)
{
	if (thread_scratch == NULL) {
		pthread_once(&scratch_once, scratch_key_init);
		if ((thread_scratch = malloc(sizeof(*thread_scratch))) == NULL)
			return NULL;
		(void)pthread_setspecific(scratch_key, thread_scratch);
	}
	return thread_scratch;
}

int
conn_pending_reserve(struct conn *c, size_t more)
{
	size_t len = atomic_load(&c->pending_len);
	uint8_t *grown;

	if (c->pending_off > 0 && len > 0)
		memmove(c->pending, c->pending + c->pending_off, len);
	c->pending_off = 0;
	if (len + more <= c->pending_cap)
		return 0;
	if ((grown = realloc(c->pending, len + more)) == NULL)
		return -ENOMEM;
	c->pending = grown;
	c->pending_cap = len + more;
	return 0;
}

/* Give the application its own TCP_NODELAY back once the handshake and
 * what was queued during it are out (caller holds send_lock, or no sender
 * can run yet). */
void
conn_restore_nodelay(struct conn *c)
{
	int off = 0;

	if (!c->nodelay_forced)
		return;
	c->nodelay_forced = false;
	(void)real.setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &off, sizeof(off));
}

/* Seal the plaintext queued during the handshake; lock held, and no
 * sender can touch the send state before the state says ESTABLISHED. */
int
conn_seal_queue_locked(struct conn *c)
{
	struct iovec iov = { .iov_base = c->queued, .iov_len = c->queued_len };
	size_t done = 0, records, consumed, len;
	struct seal_scratch *s;

	if (c->queued_len == 0)
		return 0;
	records = c->queued_len / REC_MAX_PAYLOAD + 2;
	if ((s = scratch_get()) == NULL ||
	    conn_pending_reserve(c, c->queued_len + records * 2 * REC_OVERHEAD))
		return -ENOMEM;
	while (done < c->queued_len) {
		len = atomic_load(&c->pending_len);
		len += rec_seal_iov(c->tx, &iov, 1, done, c->pending + len,
		    c->pending_cap - len, s->gather, &consumed);
		atomic_store(&c->pending_len, len);
		done += consumed;
	}
	c->bytes_out += c->queued_len;
	sodium_memzero(c->queued, c->queued_len);
	free(c->queued);
	c->queued = NULL;
	c->queued_len = 0;
	return 0;
}

/*
 * Write ciphertext to the kernel: bytes written or -errno. The kernel
 * socket keeps the application's blocking mode, so a blocking write
 * blocks in the kernel (honouring SO_SNDTIMEO and signals as it would
 * without the shim); the shim's own writes pass MSG_DONTWAIT. The thread
 * that runs it is the one the kernel would signal, so SIGPIPE follows the
 * application's MSG_NOSIGNAL.
 */
static ssize_t
write_out(int fd, const uint8_t *buf, size_t len, bool block, int flags)
{
	ssize_t n;

	n = real.send(fd, buf, len, (block ? 0 : MSG_DONTWAIT) |
	    (flags & MSG_NOSIGNAL));
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

/* Send pending ciphertext; send_lock held. */
int
conn_flush(struct conn *c, bool block, int flags)
{
	size_t len;
	ssize_t n;

	while ((len = atomic_load(&c->pending_len)) > 0) {
		n = write_out(c->fd, c->pending + c->pending_off, len, block, flags);
		if (n > 0) {
			c->pending_off += (size_t)n;
			atomic_store(&c->pending_len, len - (size_t)n);
			continue;
		}
		if (n == -EINTR && !block)
			continue;
		return n == 0 ? -EPIPE : (int)n;
	}
	c->pending_off = 0;
	conn_restore_nodelay(c);
	if (c->pending_cap > IDLE_BUFFER_MAX) {
		free(c->pending);
		c->pending = NULL;
		c->pending_cap = 0;
	}
	return 0;
}

/* Seal and queue the close record; send_lock held, lock not. */
int
conn_queue_close_record(struct conn *c)
{
	size_t len;

	if (conn_pending_reserve(c, REC_OVERHEAD))
		return -ENOMEM;
	len = atomic_load(&c->pending_len);
	len += rec_seal(c->tx, REC_CLOSE, NULL, 0, c->pending + len);
	atomic_store(&c->pending_len, len);
	return 0;
}

static void
raise_sigpipe(int flags)
{
	if (!(flags & MSG_NOSIGNAL)) {
		int saved = errno;

		(void)pthread_kill(pthread_self(), SIGPIPE);
		errno = saved;
	}
}

size_t
conn_iov_total(const struct iovec *iov, int iovcnt)
{
	size_t total = 0;
	int i;

	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	return total;
}

/* Copy up to ${max} bytes of ${iov} from offset ${skip} into ${dst}. */
static size_t
iov_gather(uint8_t *dst, const struct iovec *iov, int iovcnt, size_t skip,
    size_t max)
{
	size_t done = 0;
	int i;

	for (i = 0; i < iovcnt && done < max; i++) {
		size_t len = iov[i].iov_len, take;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		take = len - skip;
		if (take > max - done)
			take = max - done;
		memcpy(dst + done, (const uint8_t *)iov[i].iov_base + skip, take);
		done += take;
		skip = 0;
	}
	return done;
}

/* Queue up to ${want} bytes of plaintext from ${iov} after ${skip} during
 * the handshake; lock held. */
static ssize_t
conn_queue_locked(struct conn *c, const struct iovec *iov, int iovcnt,
    size_t skip, size_t want)
{
	size_t room = QUEUE_MAX - c->queued_len, take;
	uint8_t *grown;

	take = want < room ? want : room;
	if (take == 0)
		return 0;
	/* Grow exactly: the buffer holds plaintext and is wiped on free. */
	if ((grown = malloc(c->queued_len + take)) == NULL)
		return -ENOMEM;
	if (c->queued != NULL) {
		memcpy(grown, c->queued, c->queued_len);
		sodium_memzero(c->queued, c->queued_len);
		free(c->queued);
	}
	c->queued = grown;
	c->queued_len += iov_gather(c->queued + c->queued_len, iov, iovcnt, skip,
	    take);
	return (ssize_t)take;
}

/*
 * Until the channel is keyed: queue what fits (the handshake's plaintext
 * queue) and, for a blocking sender, wait for the rest; lock held.
 * Returns 1 once established (the bytes after ${*skip} go out as
 * records), else what conn_send returns when nothing more is accepted:
 * 0 (the queued bytes, counted in ${*skip}) or -errno.
 */
static int
send_until_established(struct conn *c, const struct iovec *iov, int iovcnt,
    size_t total, bool nonblock, int flags, int64_t deadline, size_t *skip)
{
	ssize_t n;
	int rc;

	for (;;) {
		if (c->state == CONN_FAILED)
			return -c->error;
		if (c->want_shut_wr || c->shut_wr_done) {
			raise_sigpipe(flags);
			return -EPIPE;
		}
		if (c->state == CONN_ESTABLISHED)
			return 1;
		if (*skip == total)
			return 0;
		if ((n = conn_queue_locked(c, iov, iovcnt, *skip,
		    total - *skip)) < 0)
			return (int)n;
		*skip += (size_t)n;
		/* Queued bytes are accepted; a blocking sender, like the
		 * kernel's, waits until all of its bytes are. */
		if (*skip == total || nonblock)
			return *skip > 0 ? 0 : -EAGAIN;
		if ((rc = conn_wait_changed(c, deadline)) != 0)
			return rc;
	}
}

ssize_t
conn_send(struct conn *c, const struct iovec *iov, int iovcnt, int flags)
{
	bool nonblock = atomic_load(&c->app_nonblocking) ||
	    (flags & MSG_DONTWAIT);
	size_t total = conn_iov_total(iov, iovcnt), skip = 0, consumed, len;
	size_t queued;			/* of this call, counted when sealed */
	struct seal_scratch *s;
	int64_t deadline;
	ssize_t n;
	int rc;

	if ((rc = conn_check_owner(c)) != 0)
		return rc;
	if (flags & MSG_OOB)
		return -EOPNOTSUPP;
	if ((s = scratch_get()) == NULL)
		return -ENOMEM;
	deadline = conn_deadline_after(c->sndtimeo_ms);

	pthread_mutex_lock(&c->send_lock);
	pthread_mutex_lock(&c->lock);
	rc = send_until_established(c, iov, iovcnt, total, nonblock, flags,
	    deadline, &skip);
	pthread_mutex_unlock(&c->lock);
	if (rc != 1)
		goto err0;
	queued = skip;

	if ((rc = conn_flush(c, !nonblock, flags)) != 0)
		goto err0;
	while (skip < total) {
		len = rec_seal_iov(c->tx, iov, iovcnt, skip, s->out,
		    sizeof(s->out), s->gather, &consumed);
		n = write_out(c->fd, s->out, len, !nonblock, flags);
		if (n < 0 && n != -EAGAIN && n != -EINTR) {
			/* Records were sealed but never sent: the stream
			 * cannot continue. */
			conn_fail(c, (int)-n);
			rc = (int)n;
			goto err0;
		}
		if (n < 0)
			n = 0;
		skip += consumed;
		if ((size_t)n < len) {
			if (conn_pending_reserve(c, len - (size_t)n)) {
				conn_fail(c, ENOMEM);
				rc = -ENOMEM;
				goto err0;
			}
			memcpy(c->pending + atomic_load(&c->pending_len),
			    s->out + n, len - (size_t)n);
			atomic_fetch_add(&c->pending_len, len - (size_t)n);
			/* Sealed records are accepted bytes: what an interrupted
			 * or timed-out blocking write left, the progress thread
			 * sends. */
			if (nonblock || conn_flush(c, true, flags) != 0)
				break;
		}
	}
	c->bytes_out += skip - queued;
	len = atomic_load(&c->pending_len);
	pthread_mutex_unlock(&c->send_lock);
	/* Bytes accepted stay accepted: the progress thread sends what the
	 * kernel could not take yet. */
	if (len > 0 && conn_background(c) != 0)
		conn_fail(c, ENOMEM);
	return (ssize_t)skip;

err0:
	pthread_mutex_unlock(&c->send_lock);
	/* What was accepted before a failure or a timeout is reported, as
	 * the kernel reports a partial send. */
	return skip > 0 ? (ssize_t)skip : rc;
}

int
conn_write_close_locked(struct conn *c)
{
	int rc;

	pthread_mutex_unlock(&c->lock);
	rc = conn_queue_close_record(c);
	if (rc == 0)
		rc = conn_flush(c, false, MSG_NOSIGNAL);
	pthread_mutex_lock(&c->lock);
	if (rc == 0)
		c->shut_wr_done = true;
	return rc;
}
