#ifndef TLSHIM_CONN_H
#define TLSHIM_CONN_H

/*
 * One protected TCP connection: its state machine (TCP connect, TLS
 * handshake, data channel, failure), the plaintext queued while the
 * handshake runs, and the data path that turns the application's send and
 * recv into records. Functions return a count or a negative errno; only the
 * hook layer sets errno.
 *
 * The kernel socket keeps the application's blocking mode: a blocking
 * call blocks in the kernel (with its timeouts and signals), while the
 * shim's own calls (the progress thread's handshake and flushing) pass
 * MSG_DONTWAIT. Only waiting for the handshake is emulated here.
 *
 * Locks: send_lock serialises senders, recv_lock receivers, and lock guards
 * the state shared with the progress thread. Order: send_lock, recv_lock,
 * lock; no blocking wait holds lock or the other direction's lock.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "record.h"

enum conn_state {
	CONN_CONNECTING,	/* TCP connect in progress (non-blocking) */
	CONN_HANDSHAKING,	/* TLS handshake driven by the progress thread */
	CONN_ESTABLISHED,	/* data channel keyed */
	CONN_FAILED,		/* never usable again; see conn->error */
};

struct conn;

/* conn_new's flags. */
#define CONN_NEW_CLIENT 0x1	/* this end called connect(): the TLS client */
#define CONN_NEW_CONNECTING 0x2	/* TCP connect still in progress */
#define CONN_NEW_NONBLOCKING 0x4 /* the application's socket is non-blocking */

/*
 * conn_new(fd, flags):
 * A connection on socket ${fd}, in CONNECTING (CONN_NEW_CONNECTING) or
 * HANDSHAKING. The kernel socket keeps the application's blocking mode;
 * the shim only remembers it. One reference.
 */
struct conn *conn_new(int fd, unsigned int flags);

/*
 * conn_new_keyed(fd, flags, cipher, tx_secret, rx_secret):
 * A connection already ESTABLISHED, its data channel keyed from the given
 * secrets as a handshake would have: the data path without a handshake
 * or credentials (unit tests). One reference.
 */
struct conn *conn_new_keyed(int fd, unsigned int flags, enum rec_cipher cipher,
    const uint8_t tx_secret[REC_SECRET_SIZE],
    const uint8_t rx_secret[REC_SECRET_SIZE]);

void conn_ref(struct conn *c);
/* conn_unref(c): drop a reference; the last one frees (NULL is a no-op). */
void conn_unref(struct conn *c);

/*
 * conn_send(c, iov, iovcnt, flags):
 * Send like sendmsg(2) on a blocking or non-blocking socket per the
 * application's mode and MSG_DONTWAIT. Returns bytes accepted or -errno.
 */
ssize_t conn_send(struct conn *c, const struct iovec *iov, int iovcnt,
    int flags);

/*
 * conn_recv(c, iov, iovcnt, flags):
 * Receive like recvmsg(2) (MSG_PEEK, MSG_WAITALL, MSG_DONTWAIT honoured).
 * Returns bytes, 0 at the peer's authenticated close, or -errno.
 */
ssize_t conn_recv(struct conn *c, const struct iovec *iov, int iovcnt,
    int flags);

/* conn_shutdown(c, how): shutdown(2); SHUT_WR first sends what is queued
 * and the close record. Returns 0 or -errno. */
int conn_shutdown(struct conn *c, int how);

/*
 * conn_close(c):
 * The application is closing its descriptor. Sends queued data and the
 * close record (in the background if the socket cannot take them now, on a
 * duplicate descriptor the progress thread owns).
 */
void conn_close(struct conn *c);

/* conn_close_at_exit(c): as the process exits, queue the close record of
 * a connection the application left open (never waiting for a lock). */
void conn_close_at_exit(struct conn *c);

/* conn_owes_bytes(c): does the shim still have bytes to deliver on the
 * application's behalf (queued data, the close record)? */
bool conn_owes_bytes(struct conn *c);

/*
 * conn_poll(c, events, kernel_events, handshaking):
 * Readiness: returns the events ready now without asking the kernel, and
 * sets ${kernel_events} to those the kernel must be asked about. Sets
 * ${handshaking} when readiness may change without any kernel event.
 */
short conn_poll(struct conn *c, short events, short *kernel_events,
    bool *handshaking);

/* conn_input_quiet(c): for an established connection, nothing that
 * conn_poll() would report beyond the kernel (no plaintext or record
 * held, no end, not failed); lock-free, for event loops with many
 * connections. */
bool conn_input_quiet(struct conn *c);

/* conn_settled(c): established or failed, so the kernel's readiness for
 * the socket means what it says (not during connect or handshake). */
bool conn_settled(struct conn *c);

/* conn_readable_bytes(c): ioctl(FIONREAD): plaintext a recv() returns
 * now without waiting (the record being read; complete records the
 * kernel holds are opened to tell). 0 before the channel is keyed. */
int conn_readable_bytes(struct conn *c);

/* conn_set_inq(c, on), conn_wants_inq(c): the application's TCP_INQ;
 * conn_inq_bytes(c): what recvmsg's TCP_CM_INQ reports: plaintext held,
 * records read ahead and the ciphertext the kernel holds (an upper bound:
 * zero only when nothing at all is waiting). */
void conn_set_inq(struct conn *c, bool on);
/* conn_keep_kernel_lowat(c): SO_RCVLOWAT set on the kernel socket becomes
 * the application's (conn_app_rcvlowat); the kernel's goes back to 1, as
 * the shim holds bytes the kernel no longer counts. */
void conn_keep_kernel_lowat(struct conn *c);
int conn_app_rcvlowat(struct conn *c);
bool conn_wants_inq(struct conn *c);
int conn_inq_bytes(struct conn *c);

/* conn_input_ready(c): whether recv() now returns data, the end or an
 * error rather than EAGAIN. The kernel's readiness counts ciphertext, and
 * part of a record is nothing the application can read; what the kernel
 * holds is read (never waiting), a whole record kept for the next recv()
 * to open straight into the caller's buffer. */
bool conn_input_ready(struct conn *c);

/* conn_peer_closed(c): the peer's authenticated close has arrived: its
 * writing half is shut (POLLRDHUP, EPOLLRDHUP), even before its FIN. */
bool conn_peer_closed(struct conn *c);

/* conn_take_so_error(c): SO_ERROR as the kernel would report it (reading
 * clears it). */
int conn_take_so_error(struct conn *c);

/* Application-visible socket settings the shim emulates. */
void conn_set_nonblocking(struct conn *c, bool on);
void conn_set_timeout(struct conn *c, bool send, int timeout_ms);
void conn_set_linger_abort(struct conn *c, bool on);
/* conn_app_set_nodelay(c): the application set TCP_NODELAY itself. */
void conn_app_set_nodelay(struct conn *c);

/* conn_state_errno_for_connect(c): what a repeated connect(2) gets, as
 * from the kernel: EALREADY while TCP connects; once it is up, 0 the
 * first time after a non-blocking connect (the outcome), EISCONN after
 * that; the failure once. */
int conn_state_errno_for_connect(struct conn *c);

/*
 * conn_alias_add(c, fd), conn_alias_remove(c, fd):
 * Descriptors made by dup() share the connection. Removing returns true
 * when ${fd} was the last one (the connection is then really closing).
 */
int conn_alias_add(struct conn *c, int fd) __attribute__((warn_unused_result));
bool conn_alias_remove(struct conn *c, int fd);

/* conn_owned(c): created in this process (not inherited through fork). */
bool conn_owned(const struct conn *c);

/* conn_fork_child(void): in a forked child, inherited connections are
 * no longer ours. */
void conn_fork_child(void);

/*
 * For the progress thread: conn_progress_events() says what to wait for on
 * which descriptor and until when (0: nothing, stop watching);
 * conn_progress_step() acts on the result and returns true while the
 * connection still needs the thread; ${established} says whether this
 * step completed the handshake.
 */
short conn_progress_events(struct conn *c, int *fd, int64_t *deadline_ms);
bool conn_progress_step(struct conn *c, short revents, int64_t now_ms,
    bool *established);

/* conn_watcher(c): the progress thread that looks after ${c}: -1 until one
 * is chosen, then that one for good (set and read by progress.c). */
atomic_int *conn_watcher(struct conn *c);

/* conn_watch_flag(c): whether ${c} is on its progress thread's list; only
 * that thread's module touches it, under that thread's lock. */
bool *conn_watch_flag(struct conn *c);

/* conn_set_background(watch): how a connection is handed to the thread
 * that drives handshakes and sends what the kernel could not take yet
 * (progress_watch; set once at start-up). */
void conn_set_background(int (*watch)(struct conn *c));

#endif
