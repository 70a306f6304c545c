#ifndef TLSHIM_REAL_H
#define TLSHIM_REAL_H

/*
 * The one table through which the shim reaches libc's socket calls. Core
 * modules never call libc's socket functions by name: the hooks would catch
 * them, and tests could not replace the transport. Unit tests overwrite the
 * entries with a scripted transport.
 */

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/uio.h>

struct real_calls {
	int (*socket)(int, int, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*close)(int);
	int (*shutdown)(int, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int, struct timespec *);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
	int (*fcntl)(int, int, ...);
	int (*ioctl)(int, unsigned long, ...);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	ssize_t (*splice)(int, off_t *, int, off_t *, size_t, unsigned int);
	int (*close_range)(unsigned int, unsigned int, int);
	void (*closefrom)(int);
	long (*syscall)(long, ...);
	int (*pidfd_getfd)(int, int, unsigned int);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
	ssize_t (*__recv_chk)(int, void *, size_t, size_t, int);
	ssize_t (*__recvfrom_chk)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*__read_chk)(int, void *, size_t, size_t);
	int (*__poll_chk)(struct pollfd *, nfds_t, int, size_t);
	int (*__ppoll_chk)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t);
};

/* The table; filled by real_init(), replaceable by tests. */
extern struct real_calls real;

/*
 * real_init(void):
 * Resolve every entry with dlsym(RTLD_NEXT). Idempotent and thread-safe;
 * called from the library constructor and lazily from any hook that runs
 * before it (another library's constructor may call socket functions).
 */
void real_init(void);

extern int real_resolved;

/* The shim's own threads (the progress thread) run library code such as
 * wolfSSL's, which calls close() and read() itself: their hooked calls go
 * straight to libc, never into the shim's locks. */
extern __thread int shim_internal_thread;

/*
 * real_fd_internal_add(fd), real_fd_internal(fd):
 * The shim's own descriptors (the progress thread's wake-up eventfd, the
 * log file). An application that closes every descriptor it does not know
 * (closefrom, close_range, a loop of close) must not take them: the close
 * hooks leave them open.
 */
void real_fd_internal_add(int fd);
void real_fd_internal_remove(int fd);
int real_fd_internal(int fd);

/* real_close_range_keeping(first, last, flags): close_range(2) around the
 * shim's own descriptors. */
int real_close_range_keeping(unsigned int first, unsigned int last, int flags);

/* REAL(name): the real call, for hooks, which may run before the
 * library's constructor (another library's constructor may use sockets). */
#define REAL(name) (real_ready(), real.name)

/* real_ready(): make sure the table is filled before a hook uses it. */
static inline void
real_ready(void)
{
	if (__builtin_expect(!real_resolved, 0))
		real_init();
}

#endif
