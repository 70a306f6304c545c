#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "conn.h"
#include "handshake.h"
#include "identity.h"
#include "log.h"
#include "progress.h"
#include "real.h"
#include "record.h"

/* Plaintext accepted while the handshake runs; beyond it, senders wait. */
#define QUEUE_MAX (1u << 20)
/* Ciphertext sealed per write: two full records. */
#define SEAL_OUT_SIZE (2 * (REC_MAX_BODY + REC_HEADER_SIZE) + 2 * REC_OVERHEAD)
/* Buffers larger than this are given back once empty, so an idle
 * connection holds little memory. */
#define IDLE_BUFFER_MAX 4096
/* How long data and the close record may take to drain after close(). */
#define CLOSE_DRAIN_MS 30000

#define CONN_MAX_ALIASES 8

struct conn {
	int fd;				/* the descriptor the shim uses */
	int aliases[CONN_MAX_ALIASES];	/* every application descriptor */
	int alias_count;
	pid_t owner;
	atomic_int refs;
	bool watched;			/* progress thread's, under its lock */

	pthread_mutex_t lock;
	pthread_cond_t changed;
	enum conn_state state;
	int error;			/* errno once FAILED */
	int so_error;			/* connect error not yet read by SO_ERROR */
	bool error_reported;		/* SO_ERROR has told of the failure */
	bool is_client;
	atomic_bool app_nonblocking;
	int rcvtimeo_ms, sndtimeo_ms;	/* -1: no timeout */
	bool linger_abort;		/* SO_LINGER {1, 0}: reset, no close record */
	bool nodelay_forced;		/* TCP_NODELAY on until the handshake is out */
	bool app_closed;		/* ${fd} is now our duplicate, or -1 */
	bool want_shut_wr;		/* close record due once all is sent */
	bool want_shut_rd;
	bool shut_wr_done;
	atomic_bool shut_rd;
	int64_t started_ms, deadline_ms;	/* handshake deadline */
	int64_t drain_deadline_ms;		/* after close: give up sending */
	struct handshake *hs;
	char peer[256];			/* identity, once authenticated */
	char peer_at[64];		/* "198.18.0.2:7000", for the log */
	uint8_t *queued;
	size_t queued_len;

	pthread_mutex_t send_lock;
	struct rec_keys *tx;
	uint8_t *pending;		/* ciphertext the kernel has not taken */
	size_t pending_off, pending_cap;
	atomic_size_t pending_len;
	uint64_t bytes_out;

	pthread_mutex_t recv_lock;
	struct rec_keys *rx;
	uint8_t rx_header[REC_HEADER_SIZE];	/* next header, being read */
	size_t rx_header_have;
	uint8_t rx_record_header[REC_HEADER_SIZE];	/* current record's */
	bool rx_in_body;
	enum rec_type rx_type;
	size_t rx_body_len, rx_body_have;
	uint8_t *rx_buf;		/* current body, then its plaintext */
	size_t rx_plain_off, rx_plain_len;
	bool rx_eof;			/* authenticated close received */
	int rx_error;
	atomic_bool rx_readable;	/* plaintext, EOF or error is waiting */
	uint64_t bytes_in;
};

static pid_t conn_process_pid;

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

int64_t
conn_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? INT64_MAX : conn_now_ms() + timeout_ms;
}

/* Wait on the state condition until ${deadline}; lock held. */
static int
wait_changed(struct conn *c, int64_t deadline)
{
	struct timespec ts;

	if (deadline == INT64_MAX) {
		pthread_cond_wait(&c->changed, &c->lock);
		return 0;
	}
	if (deadline <= conn_now_ms())
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
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_mutex_init(&c->recv_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->changed, &attr);
	pthread_condattr_destroy(&attr);
	c->rcvtimeo_ms = read_timeout_ms(fd, SO_RCVTIMEO);
	c->sndtimeo_ms = read_timeout_ms(fd, SO_SNDTIMEO);
	c->started_ms = conn_now_ms();
	return c;
}

struct conn *
conn_new(int fd, bool is_client, bool connecting, bool app_nonblocking)
{
	struct conn *c;
	if ((c = conn_alloc(fd)) == NULL)
		return NULL;
	c->is_client = is_client;
	atomic_store(&c->app_nonblocking, app_nonblocking);
	c->state = connecting ? CONN_CONNECTING : CONN_HANDSHAKING;
	c->deadline_ms = connecting ? INT64_MAX :
	    c->started_ms + config.handshake_timeout_ms;
	if (is_client) {
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

struct conn *
conn_new_failed(int fd, int err)
{
	struct conn *c;

	if ((c = conn_alloc(fd)) == NULL)
		return NULL;
	c->state = CONN_FAILED;
	c->error = err;
	c->so_error = err;
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
	if (c->rx_buf != NULL) {
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

void
conn_fork_child(void)
{
	conn_process_pid = getpid();
}

static const char *
role(const struct conn *c)
{
	return c->is_client ? "client" : "server";
}

/* Fail the connection for good; lock held. Wakes every waiter. */
static void
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
	atomic_store(&c->rx_readable, true);
	pthread_cond_broadcast(&c->changed);
}

static void
conn_fail(struct conn *c, int err)
{
	pthread_mutex_lock(&c->lock);
	conn_fail_locked(c, err);
	pthread_mutex_unlock(&c->lock);
}

static int
pending_reserve(struct conn *c, size_t more)
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
static void
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
static int
conn_seal_queue_locked(struct conn *c)
{
	struct iovec iov = { .iov_base = c->queued, .iov_len = c->queued_len };
	size_t done = 0, records, consumed, len;
	struct seal_scratch *s;

	if (c->queued_len == 0)
		return 0;
	records = c->queued_len / REC_MAX_PAYLOAD + 2;
	if ((s = scratch_get()) == NULL ||
	    pending_reserve(c, c->queued_len + records * 2 * REC_OVERHEAD))
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

/* The end of our last handshake flight the kernel has not taken yet goes
 * out first, ahead of any record; lock held. */
static int
conn_take_handshake_tail(struct conn *c)
{
	size_t n = handshake_unsent(c->hs), len;

	if (n == 0)
		return 0;
	if (pending_reserve(c, n))
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
	uint8_t tx_secret[REC_SECRET_SIZE], rx_secret[REC_SECRET_SIZE];
	enum rec_cipher cipher;

	if (handshake_export(c->hs, &cipher, tx_secret, rx_secret) != 0) {
		log_msg(LOG_ERROR, "fd %d: %s", c->fd, handshake_error(c->hs));
		conn_fail_locked(c, c->is_client ? ECONNREFUSED : ECONNRESET);
		return;
	}
	c->tx = rec_keys_new(cipher, tx_secret, config.rekey_records);
	c->rx = rec_keys_new(cipher, rx_secret, config.rekey_records);
	sodium_memzero(tx_secret, sizeof(tx_secret));
	sodium_memzero(rx_secret, sizeof(rx_secret));
	if (c->tx == NULL || c->rx == NULL || conn_take_handshake_tail(c) != 0 ||
	    conn_seal_queue_locked(c) != 0) {
		log_msg_limited(LOG_ERROR, "fd %d: out of memory keying the connection",
		    c->fd);
		conn_fail_locked(c, ENOMEM);
		return;
	}
	snprintf(c->peer, sizeof(c->peer), "%s", handshake_peer(c->hs));
	log_msg(LOG_INFO, "fd %d: protected as %s, peer %s at %s, %s, data %s, "
	    "handshake %lld ms", c->fd, role(c), c->peer, c->peer_at,
	    handshake_suite(c->hs), cipher == REC_AES256GCM ?
	    "AES-256-GCM" : "ChaCha20-Poly1305",
	    (long long)(now - c->started_ms));
	handshake_free(c->hs);
	c->hs = NULL;
	if (atomic_load(&c->pending_len) == 0)
		conn_restore_nodelay(c);
	c->state = CONN_ESTABLISHED;
	pthread_cond_broadcast(&c->changed);
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
static int
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
static int
conn_queue_close_record(struct conn *c)
{
	size_t len;

	if (pending_reserve(c, REC_OVERHEAD))
		return -ENOMEM;
	len = atomic_load(&c->pending_len);
	len += rec_seal(c->tx, REC_CLOSE, NULL, 0, c->pending + len);
	atomic_store(&c->pending_len, len);
	return 0;
}

static void
log_closed(struct conn *c)
{
	log_msg(LOG_INFO, "fd %d: closed, peer %s at %s, sent %llu bytes, "
	    "received %llu bytes", c->fd, c->peer[0] ? c->peer : "(none)",
	    c->peer_at[0] ? c->peer_at : "?",
	    (unsigned long long)c->bytes_out, (unsigned long long)c->bytes_in);
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

static size_t
iov_total(const struct iovec *iov, int iovcnt)
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

ssize_t
conn_send(struct conn *c, const struct iovec *iov, int iovcnt, int flags)
{
	bool nonblock = atomic_load(&c->app_nonblocking) ||
	    (flags & MSG_DONTWAIT);
	size_t total = iov_total(iov, iovcnt), skip = 0, consumed, len;
	size_t queued;			/* of this call, counted when sealed */
	struct seal_scratch *s;
	int64_t deadline;
	ssize_t n;
	int rc;

	if (!conn_owned(c)) {
		log_msg(LOG_WARN, "fd %d: a forked child cannot use its parent's "
		    "protected connection", c->fd);
		return -ECONNRESET;
	}
	if (flags & MSG_OOB)
		return -EOPNOTSUPP;
	if ((s = scratch_get()) == NULL)
		return -ENOMEM;
	deadline = deadline_after(c->sndtimeo_ms);

	pthread_mutex_lock(&c->send_lock);
	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (c->state == CONN_FAILED) {
			rc = -c->error;
			goto err1;
		}
		if (c->want_shut_wr || c->shut_wr_done) {
			raise_sigpipe(flags);
			rc = -EPIPE;
			goto err1;
		}
		if (c->state == CONN_ESTABLISHED)
			break;
		if (skip == total) {
			rc = 0;
			goto err1;
		}
		if ((n = conn_queue_locked(c, iov, iovcnt, skip, total - skip)) < 0) {
			rc = (int)n;
			goto err1;
		}
		skip += (size_t)n;
		/* Queued bytes are accepted; a blocking sender, like the
		 * kernel's, waits until all of its bytes are. */
		if (skip == total || nonblock) {
			rc = skip > 0 ? 0 : -EAGAIN;
			goto err1;
		}
		if ((rc = wait_changed(c, deadline)) != 0)
			goto err1;
	}
	pthread_mutex_unlock(&c->lock);
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
			if (pending_reserve(c, len - (size_t)n)) {
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
	if (len > 0 && progress_watch(c) != 0)
		conn_fail(c, ENOMEM);
	return (ssize_t)skip;

err1:
	pthread_mutex_unlock(&c->lock);
err0:
	pthread_mutex_unlock(&c->send_lock);
	/* What was accepted before a failure or a timeout is reported, as
	 * the kernel reports a partial send. */
	return skip > 0 ? (ssize_t)skip : rc;
}

/* Give the receive buffer back between records (an idle connection keeps
 * no record-sized buffer); recv_lock held. */
static void
rx_buf_release(struct conn *c)
{
	if (c->rx_buf == NULL || c->rx_in_body || c->rx_plain_len > 0)
		return;
	free(c->rx_buf);
	c->rx_buf = NULL;
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
			atomic_store(&c->rx_readable, c->rx_eof || c->rx_error);
			rx_buf_release(c);
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
	enum rec_type type = c->rx_type;
	size_t body_len = c->rx_body_len;
	uint8_t *out;
	int n;

	c->rx_in_body = false;
	out = direct != NULL && direct_len >= body_len - REC_TAG_SIZE ?
	    direct : c->rx_buf;
	n = rec_open(c->rx, c->rx_record_header, c->rx_buf, body_len, out);
	if (n < 0) {
		log_msg_limited(LOG_ERROR, "fd %d: record from %s failed authentication "
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
		log_msg(LOG_DEBUG, "fd %d: peer moved to receive key epoch %llu",
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
	int flags = block ? 0 : MSG_DONTWAIT;
	enum rec_type type;
	size_t body_len;
	ssize_t n;

	if (!c->rx_in_body) {
		if (c->rx_header_have < REC_HEADER_SIZE) {
			n = real.recv(c->fd, c->rx_header + c->rx_header_have,
			    REC_HEADER_SIZE - c->rx_header_have, flags);
			if (n < 0)
				return errno == EWOULDBLOCK ? -EAGAIN : -errno;
			if (n == 0)
				goto eof;
			c->rx_header_have += (size_t)n;
			if (c->rx_header_have < REC_HEADER_SIZE)
				return 0;
		}
		if (c->rx_header[0] == 0x15) {
			/* A TLS alert where a record should be: the peer's
			 * TLS stack rejected the handshake we finished. */
			log_msg_limited(LOG_ERROR, "fd %d: peer %s rejected this node's "
			    "certificate (TLS alert)", c->fd, c->peer);
			return conn_rx_fail(c, ECONNREFUSED);
		}
		if (rec_header_parse(c->rx_header, &type, &body_len) != 0) {
			log_msg_limited(LOG_ERROR, "fd %d: malformed record header from %s; "
			    "connection closed", c->fd, c->peer);
			return conn_rx_fail(c, ECONNRESET);
		}
		if (c->rx_buf == NULL &&
		    (c->rx_buf = malloc(REC_MAX_BODY)) == NULL)
			return conn_rx_fail(c, ENOMEM);
		memcpy(c->rx_record_header, c->rx_header, REC_HEADER_SIZE);
		c->rx_header_have = 0;
		c->rx_in_body = true;
		c->rx_type = type;
		c->rx_body_len = body_len;
		c->rx_body_have = 0;
	}
	{
		size_t left = c->rx_body_len - c->rx_body_have;
		struct iovec iov[2] = {
			{ c->rx_buf + c->rx_body_have, left },
			{ c->rx_header, REC_HEADER_SIZE },
		};
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };

		n = real.recvmsg(c->fd, &msg, flags);
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (n == 0)
			goto eof;
		if ((size_t)n >= left) {
			c->rx_body_have = c->rx_body_len;
			c->rx_header_have = (size_t)n - left;
			return 1;
		}
		c->rx_body_have += (size_t)n;
		return 0;
	}

eof:
	pthread_mutex_lock(&c->lock);
	n = c->state == CONN_FAILED ? c->error : 0;
	pthread_mutex_unlock(&c->lock);
	if (n != 0)
		return conn_rx_fail(c, (int)n);	/* we closed it ourselves */
	/* TCP closed without an authenticated close record: the stream may
	 * have been cut short by anyone on the path. */
	log_msg_limited(LOG_ERROR, "fd %d: connection from %s ended without a close "
	    "record (truncated)", c->fd, c->peer[0] ? c->peer : "peer");
	return conn_rx_fail(c, ECONNRESET);
}

ssize_t
conn_recv(struct conn *c, const struct iovec *iov, int iovcnt, int flags)
{
	bool nonblock = atomic_load(&c->app_nonblocking) ||
	    (flags & MSG_DONTWAIT);
	bool peek = flags & MSG_PEEK, waitall = (flags & MSG_WAITALL) && !peek;
	size_t total = iov_total(iov, iovcnt), done = 0;
	int64_t deadline;
	int rc;

	if (!conn_owned(c)) {
		log_msg(LOG_WARN, "fd %d: a forked child cannot use its parent's "
		    "protected connection", c->fd);
		return -ECONNRESET;
	}
	if (flags & MSG_OOB)
		return -EOPNOTSUPP;
	deadline = deadline_after(c->rcvtimeo_ms);

	/* Wait out the handshake. */
	pthread_mutex_lock(&c->lock);
	while (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKING) {
		if (nonblock) {
			pthread_mutex_unlock(&c->lock);
			return -EAGAIN;
		}
		if ((rc = wait_changed(c, deadline)) != 0) {
			pthread_mutex_unlock(&c->lock);
			return rc;
		}
	}
	pthread_mutex_unlock(&c->lock);

	pthread_mutex_lock(&c->recv_lock);
	while (total == 0 || done < total) {
		if (c->rx_plain_len > 0) {
			done += conn_deliver(c, iov, iovcnt, done, peek);
			if (!waitall || peek)
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
			if (rc > 0 && !waitall)
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
	pthread_mutex_unlock(&c->recv_lock);
	if (done > 0)
		return (ssize_t)done;
	return rc;
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
		pthread_mutex_unlock(&c->lock);
		rc = conn_queue_close_record(c);
		if (rc == 0)
			rc = conn_flush(c, false, MSG_NOSIGNAL);
		pthread_mutex_lock(&c->lock);
		if (rc == 0) {
			c->shut_wr_done = true;
			(void)real.shutdown(c->fd, how);
		} else if (rc == -EAGAIN) {
			background = true;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->send_lock);
	if (background && progress_watch(c) != 0)
		conn_fail(c, ENOMEM);
	return rc;
}

void
conn_close(struct conn *c)
{
	bool background = false;
	int rc, dupfd;

	if (!conn_owned(c))
		return;
	pthread_mutex_lock(&c->send_lock);
	pthread_mutex_lock(&c->lock);
	if (c->state == CONN_ESTABLISHED && !c->linger_abort)
		log_closed(c);
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
		pthread_mutex_unlock(&c->lock);
		rc = conn_queue_close_record(c);
		if (rc == 0)
			rc = conn_flush(c, false, MSG_NOSIGNAL);
		pthread_mutex_lock(&c->lock);
		if (rc == 0)
			c->shut_wr_done = true;
	}
	background = c->state != CONN_ESTABLISHED || !c->shut_wr_done;
	if (background) {
		/* Keep the socket open on a descriptor of our own, so the
		 * application's number can be reused at once, and let the
		 * progress thread finish what the application asked. */
		dupfd = real.fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
		if (dupfd < 0) {
			log_msg(LOG_WARN, "fd %d: closed before its data could be "
			    "sent (no descriptor left to finish it)", c->fd);
			background = false;
			c->fd = -1;
			conn_fail_locked(c, ECONNRESET);
		} else {
			c->fd = dupfd;
			if (c->hs != NULL)
				handshake_set_fd(c->hs, dupfd);
			c->want_shut_wr = true;
			c->drain_deadline_ms = conn_now_ms() + CLOSE_DRAIN_MS;
		}
	} else {
		c->fd = -1;
	}
	c->app_closed = true;
out:
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->send_lock);
	if (background && progress_watch(c) != 0) {
		pthread_mutex_lock(&c->lock);
		if (c->fd >= 0)
			real.close(c->fd);
		c->fd = -1;
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

	if (!conn_owned(c) || pthread_mutex_trylock(&c->send_lock) != 0)
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
	if (go && atomic_load(&c->pending_len) > 0 && progress_watch(c) != 0)
		log_msg(LOG_WARN, "fd %d: exiting with data not yet sent", c->fd);
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

short
conn_poll(struct conn *c, short events, short *kernel_events, bool *handshaking)
{
	short ready = 0;

	*kernel_events = 0;
	*handshaking = false;
	pthread_mutex_lock(&c->lock);
	switch (c->state) {
	case CONN_FAILED:
		ready = (events & (POLLIN | POLLOUT)) | POLLERR | POLLHUP;
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
		*kernel_events = events & ~ready;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	if (atomic_load(&c->shut_rd) && (events & POLLIN))
		ready |= POLLIN;
	return ready;
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
conn_take_so_error(struct conn *c, int *err)
{
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (c->so_error != 0) {
		*err = c->so_error;
		c->so_error = 0;
		c->error_reported = true;
		rc = 1;
	} else if (c->state == CONN_FAILED && !c->error_reported) {
		*err = c->error;
		c->error_reported = true;
		rc = 1;
	} else if (c->state == CONN_CONNECTING) {
		int kerr = 0;
		socklen_t len = sizeof(kerr);

		/* Reading SO_ERROR clears it: remember what we took. */
		if (real.getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &kerr, &len) == 0 &&
		    kerr != 0) {
			conn_fail_locked(c, kerr);
			c->error_reported = true;
		}
		*err = kerr;
		rc = 1;
	} else {
		*err = 0;
		rc = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
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
	int rc;

	struct sockaddr_storage peer;
	socklen_t len = sizeof(peer);

	pthread_mutex_lock(&c->lock);
	switch (c->state) {
	case CONN_CONNECTING:
		/* Once TCP is up the kernel says EISCONN, though the progress
		 * thread may not have seen it yet: hiredis and others call
		 * connect again after POLLOUT to learn the outcome. */
		rc = real.getpeername(c->fd, (struct sockaddr *)&peer, &len) == 0 ?
		    EISCONN : EALREADY;
		break;
	case CONN_FAILED:
		rc = c->error_reported ? EISCONN : c->error;
		c->error_reported = true;
		break;
	default:
		rc = EISCONN;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
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
		log_msg_limited(LOG_ERROR, "fd %d: refusing to connect in plaintext: "
		    "invalid configuration: %s", c->fd, config.error);
		conn_fail_locked(c, c->is_client ? ECONNREFUSED : ECONNRESET);
		return;
	}
	if (real.getpeername(c->fd, (struct sockaddr *)&peer_addr, &len) != 0)
		peer_addr.ss_family = AF_UNSPEC;
	identity_format_address((struct sockaddr *)&peer_addr, c->peer_at,
	    sizeof(c->peer_at));
	if ((c->hs = handshake_new(c->fd, c->is_client,
	    (struct sockaddr *)&peer_addr, err, sizeof(err))) == NULL) {
		log_msg_limited(LOG_ERROR, "fd %d: cannot protect the connection, so it "
		    "is refused: %s", c->fd, err);
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
			log_msg(LOG_INFO, "fd %d: connect failed: %s", c->fd,
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
			log_msg_limited(LOG_ERROR, "fd %d: TLS handshake as %s with %s "
			    "timed out after %d s (peer stalled or not running "
			    "tlshim)%s", c->fd, role(c), c->peer_at,
			    config.handshake_timeout_ms / 1000, scope_hint(c));
			conn_fail_locked(c, ETIMEDOUT);
		}
		return;
	}
	if (rc != 0) {
		log_msg_limited(LOG_ERROR, "fd %d: connection refused as %s "
		    "(%s %s): %s%s", c->fd, role(c), c->is_client ? "to" : "from",
		    c->peer_at, handshake_error(c->hs),
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
			if (!keep && c->app_closed && c->fd >= 0) {
				real.close(c->fd);
				c->fd = -1;
			}
			pthread_mutex_unlock(&c->lock);
			return keep;
		}
	}
	if (c->state == CONN_FAILED) {
		if (c->app_closed && c->fd >= 0) {
			real.close(c->fd);
			c->fd = -1;
		}
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
	if (rc == 0 && c->want_shut_wr && !c->shut_wr_done) {
		pthread_mutex_unlock(&c->lock);
		rc = conn_queue_close_record(c);
		if (rc == 0)
			rc = conn_flush(c, false, MSG_NOSIGNAL);
		pthread_mutex_lock(&c->lock);
		if (rc == 0) {
			c->shut_wr_done = true;
			if (!app_closed)
				(void)real.shutdown(c->fd, c->want_shut_rd ?
				    SHUT_RDWR : SHUT_WR);
		}
	}
	if (rc != 0 && rc != -EAGAIN) {
		conn_fail_locked(c, -rc);
	} else if (rc == -EAGAIN && app_closed && now >= c->drain_deadline_ms) {
		log_msg(LOG_WARN, "fd %d: gave up sending to %s %d s after close",
		    c->fd, c->peer, CLOSE_DRAIN_MS / 1000);
		conn_fail_locked(c, ETIMEDOUT);
	}
	if (app_closed && c->fd >= 0 &&
	    (c->state == CONN_FAILED || c->shut_wr_done)) {
		real.close(c->fd);
		c->fd = -1;
		keep = false;
	}
	if (c->state == CONN_FAILED)
		keep = false;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->send_lock);
	return keep;
}
