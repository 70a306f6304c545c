#ifndef TLSHIM_EPOLLSET_H
#define TLSHIM_EPOLLSET_H

/*
 * epoll over protected sockets. The kernel cannot see plaintext the shim
 * already decrypted and holds: for level-triggered interest in reading,
 * epoll_wait reports such sockets itself, with the application's data,
 * honouring EPOLLONESHOT (a reported one-shot registration is disarmed in
 * the kernel too, until the application re-arms it). Edge-triggered
 * interest is left to the kernel: a new edge needs new bytes on the wire,
 * exactly as without the shim.
 *
 * Until a connection is keyed, the kernel's readiness is about handshake
 * bytes, not data: its kernel registration then carries no read or write
 * interest (errors and hang-ups still come through), the shim reports
 * writability itself (sends are queued), and waits are cut into short
 * slices so the registration is restored soon after the handshake.
 */

#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <time.h>

/* epollset_note_ctl(epfd, op, fd, event): after a successful epoll_ctl. */
void epollset_note_ctl(int epfd, int op, int fd, const struct epoll_event *event);

/* epollset_forget(epfd): ${epfd} is being closed. */
void epollset_forget(int epfd);

/* epollset_conn_established(c): ${c} finished its handshake: give every
 * set watching it the application's full interest again, so that the
 * kernel wakes waiters when it is ready (called without c's lock). */
struct conn;
void epollset_conn_established(struct conn *c);

/* epollset_tracked(epfd): does ${epfd} watch a protected socket? */
int epollset_tracked(int epfd);

/*
 * epollset_wait_emulated(epfd, events, max, timeout_ms, sigmask):
 * epoll_wait/epoll_pwait/epoll_pwait2 for a tracked set (epoll_pwait2's
 * timeout rounded up to milliseconds). Returns the number of events or
 * -errno.
 */
int epollset_wait_emulated(int epfd, struct epoll_event *events, int max,
    int timeout_ms, const sigset_t *sigmask);

#endif
