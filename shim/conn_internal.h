#ifndef TLSHIM_CONN_INTERNAL_H
#define TLSHIM_CONN_INTERNAL_H

/*
 * The connection layer's own view of a connection, shared by its files
 * and by nothing else:
 *
 *   conn.c            lifecycle, descriptors, state, failure, options
 *   conn_send.c       plaintext in, records sealed and written
 *   conn_recv.c       records read, opened and delivered
 *   conn_close.c      shutdown, close, the close record, exit
 *   conn_handshake.c  connecting, the handshake and keying, for the
 *                     progress thread
 *
 * Locks, always taken in this order: send_lock, then recv_lock, then lock
 * (state). A sender holds send_lock for its records; a receiver holds
 * recv_lock for its record; lock guards the state machine.
 */

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "conn.h"
#include "handshake.h"
#include "log.h"
#include "record.h"

/* Plaintext accepted while the handshake runs; beyond it, senders wait. */
#define QUEUE_MAX (1u << 20)
/* Ciphertext sealed per write: two full records. */
#define SEAL_OUT_SIZE (2 * (REC_MAX_BODY + REC_HEADER_SIZE) + 2 * REC_OVERHEAD)
/* Buffers larger than this are given back once empty, so an idle
 * connection holds little memory. */
#define IDLE_BUFFER_MAX 4096
/* Ciphertext read past what the record reader asked for, in the same
 * receive call: small records that arrive together cost one call. */
#define RX_AHEAD_SIZE 8192
/* Record bodies up to this size are kept in the connection itself: small
 * messages never allocate a record-sized buffer. */
#define RX_SMALL_BODY (4096 + REC_TAG_SIZE)
/* How long data and the close record may take to drain after close(). */
#define CLOSE_DRAIN_MS 30000

#define CONN_MAX_ALIASES 8

struct conn {
	int fd;				/* the descriptor the shim uses */
	int aliases[CONN_MAX_ALIASES];	/* every application descriptor */
	int alias_count;
	pid_t owner;
	atomic_int refs;
	atomic_int watcher;		/* progress thread, -1: none yet */
	bool watched;			/* progress thread's, under its lock */

	pthread_mutex_t lock;
	pthread_cond_t changed;
	enum conn_state state;
	int error;			/* errno once FAILED */
	atomic_bool failed;		/* state is FAILED (read without lock) */
	int so_error;			/* connect error not yet read by SO_ERROR */
	bool error_reported;		/* SO_ERROR has told of the failure */
	bool is_client;
	bool connect_outcome_due;	/* a repeated connect() says 0 once */
	atomic_bool app_nonblocking;
	int rcvtimeo_ms, sndtimeo_ms;	/* -1: no timeout */
	bool linger_abort;		/* SO_LINGER {1, 0}: reset, no close record */
	bool nodelay_forced;		/* TCP_NODELAY on until the handshake is out */
	bool app_closed;		/* ${fd} is now our duplicate, or -1 */
	bool close_logged;		/* the "closed" line is written */
	bool want_shut_wr;		/* close record due once all is sent */
	bool want_shut_rd;
	bool shut_wr_done;
	atomic_bool shut_rd;
	int64_t started_ms, deadline_ms;	/* handshake deadline */
	int64_t drain_deadline_ms;		/* after close: give up sending */
	struct handshake *hs;
	char peer[256];			/* identity, once authenticated */
	char peer_at[64];		/* "198.18.0.2:7000", for the log */
	char local_at[64];		/* this end's address, likewise */
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
	struct rec_reader rx_reader;	/* framing of the incoming records */
	uint8_t *rx_buf;		/* current body, then its plaintext:
					 * rx_small or an allocated record */
	uint8_t rx_small[RX_SMALL_BODY];
	uint8_t rx_ahead[RX_AHEAD_SIZE];	/* ciphertext read ahead */
	size_t rx_ahead_off, rx_ahead_len;
	bool rx_kernel_more;		/* the last kernel read filled all it
					 * was given: the kernel may hold more */
	atomic_bool tcp_inq;		/* the application set TCP_INQ */
	atomic_int app_rcvlowat;	/* SO_RCVLOWAT as the application set
					 * it; the kernel's stays 1 */
	bool rx_whole;			/* rx_buf holds a whole record, unopened */
	size_t rx_plain_off, rx_plain_len;
	atomic_bool rx_eof;		/* authenticated close received (read
					 * without recv_lock for POLLRDHUP) */
	int rx_error;
	atomic_bool rx_readable;	/* plaintext, EOF or error is waiting */
	uint64_t bytes_in;
};

/* conn.c */
/* conn_check_owner(c): 0, or -ECONNRESET (logged) in a forked child,
 * which must never use its parent's keys. */
int conn_check_owner(struct conn *c);
/* conn_log_closed(c): the "closed" line with the bytes each way, once;
 * lock held. (conn_close.c) */
void conn_log_closed(struct conn *c);
/* conn_log_event(c, event): ${c}'s addresses and peer, for the log. */
struct log_event conn_log_event(const struct conn *c, const char *event);
/* conn_release_fd_locked(c): close the shim's own descriptor; lock held. */
void conn_release_fd_locked(struct conn *c);
/* Hand ${c} to the background thread: 0, or -errno. */
int conn_background(struct conn *c) __attribute__((warn_unused_result));
int64_t conn_deadline_after(int timeout_ms);
int conn_wait_changed(struct conn *c, int64_t deadline);
const char *conn_role(const struct conn *c);
void conn_fail_locked(struct conn *c, int err);
void conn_fail(struct conn *c, int err);

/* conn_send.c */
/* conn_write_close_locked(c): queue the close record and send what the
 * kernel takes; send_lock and lock held (lock is dropped meanwhile).
 * 0 when it is out (shut_wr_done), -EAGAIN when the rest waits, or
 * -errno. */
int conn_write_close_locked(struct conn *c);
int conn_pending_reserve(struct conn *c, size_t more);
void conn_restore_nodelay(struct conn *c);
int conn_seal_queue_locked(struct conn *c);
int conn_flush(struct conn *c, bool block, int flags);
int conn_queue_close_record(struct conn *c);
size_t conn_iov_total(const struct iovec *iov, int iovcnt);

#endif
