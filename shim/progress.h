#ifndef TLSHIM_PROGRESS_H
#define TLSHIM_PROGRESS_H

/*
 * The background progress threads: drive TCP connects and TLS handshakes,
 * and drain ciphertext the kernel could not take, without the application
 * calling into the shim (a rank that sends and then blocks in accept() must
 * not deadlock). Started on first need, and again in a forked child that
 * makes new connections.
 */

struct conn;

/* progress_watch(c): have the thread look after ${c} (takes a reference)
 * until conn_progress_events() says there is nothing left to do.
 * Returns 0, or -errno when the thread cannot be started. */
int progress_watch(struct conn *c) __attribute__((warn_unused_result));

/*
 * progress_drain(timeout_ms):
 * As the process exits: wait up to ${timeout_ms} until the thread has
 * delivered what applications closed or shut down with bytes still owed
 * (data queued during a handshake, the close record). The kernel would
 * have delivered them after exit; the shim can only do it before.
 */
void progress_drain(int timeout_ms);

/* progress_fork_child(void): after fork(), the thread does not exist in the
 * child; forget it and the parent's watch list. */
void progress_fork_child(void);

#endif
