/*
 * Hooks for the calls that create, configure, duplicate and close
 * sockets. Connections are classified here (policy), and descriptors kept
 * in step with the fd table.
 */
#define _GNU_SOURCE
/* The hooks define the calls that fortify would wrap inline. */
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "decide.h"
#include "epollset.h"
#include "fdclass.h"
#include "fdtab.h"
#include "identity.h"
#include "log.h"
#include "policy.h"
#include "progress.h"
#include "real.h"
#include "shim.h"
#include "uring_guard.h"

#define EXPORT __attribute__((visibility("default")))

static bool
is_tcp(int fd)
{
	int type = 0, proto = 0;
	socklen_t len = sizeof(type);

	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
	    type != SOCK_STREAM)
		return false;
	len = sizeof(proto);
	return REAL(getsockopt)(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
	    proto == IPPROTO_TCP;
}

/* A TCP connection the policy leaves in clear: one info line (the audit
 * trail shows what was not protected, and why not). */
static void
log_clear(int fd, const char *role, const struct sockaddr *local,
    const struct sockaddr *peer)
{
	char local_at[64], peer_at[64];
	struct log_event ev = { .event = "clear", .role = role,
	    .handshake_ms = -1, .sent = -1, .received = -1,
	    .reason = "not protected by the policy (TLSHIM_PEERS, "
	    "TLSHIM_INCLUDE, TLSHIM_EXCLUDE)" };

	/* Loopback is this host's own traffic, not the network's. */
	if (!log_enabled(LOG_LEVEL_INFO) || policy_is_loopback(peer))
		return;
	identity_format_address(peer, peer_at, sizeof(peer_at));
	ev.peer = peer_at;
	if (local != NULL) {
		identity_format_address(local, local_at, sizeof(local_at));
		ev.local = local_at;
	}
	log_event(LOG_LEVEL_INFO, &ev, "fd %d: connection %s %s left in clear "
	    "(the policy does not protect it)", fd, strcmp(role, "client") == 0 ?
	    "to" : "from", peer_at);
}

/* Track ${c} on ${fd} and hand it to the progress thread. */
static int
track(int fd, struct conn *c)
{
	int rc;

	if ((rc = fdtab_set(fd, c)) == 0 && (rc = progress_watch(c)) != 0)
		conn_unref(fdtab_take(fd));
	conn_unref(c);
	return rc;
}

/* The application closes ${fd}, or dup2 replaces it. */
static void
untrack(int fd)
{
	struct conn *c = fdtab_take(fd);

	if (c == NULL)
		return;
	if (conn_alias_remove(c, fd))
		conn_close(c);
	conn_unref(c);
}

EXPORT int
socket(int domain, int type, int protocol)
{
	/* Nothing to do until connect or accept decides; hooked so that the
	 * shim is initialised before the first socket exists. */
	int fd;

	(void)shim_enabled();
	if ((fd = REAL(socket)(domain, type, protocol)) >= 0)
		fdclass_forget(fd);	/* the number may have been a file's */
	return fd;
}

/* Blocking connect: wait for TCP as the kernel would, honouring
 * SO_SNDTIMEO, then let the handshake run in the background. */
static int
connect_wait(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	struct timeval tv = { 0, 0 };
	socklen_t len = sizeof(tv);
	int timeout = -1, err = 0, rc;

	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0 &&
	    (tv.tv_sec || tv.tv_usec))
		timeout = (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
	rc = REAL(poll)(&p, 1, timeout);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return -EINPROGRESS;
	len = sizeof(err);
	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return -errno;
	return -err;
}

static int
connect_protected(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	int flags = REAL(fcntl)(fd, F_GETFL);
	bool nonblock = flags >= 0 && (flags & O_NONBLOCK);
	struct conn *c;
	int rc;

	if (config.error[0] != '\0') {
		log_msg(LOG_LEVEL_ERROR, "fd %d: refusing to connect in plaintext: "
		    "invalid configuration: %s", fd, config.error);
		return -ECONNREFUSED;
	}
	if (!nonblock)
		(void)REAL(fcntl)(fd, F_SETFL, flags | O_NONBLOCK);
	rc = REAL(connect)(fd, addr, addrlen) == 0 ? 0 : -errno;
	if (rc == -EINPROGRESS && !nonblock)
		rc = connect_wait(fd);
	if (rc != 0 && rc != -EINPROGRESS) {
		if (!nonblock)
			(void)REAL(fcntl)(fd, F_SETFL, flags);
		return rc;
	}
	/* A blocking connect that timed out or was interrupted goes on in
	 * the background, as in the kernel; the socket is blocking again
	 * either way. */
	if (!nonblock)
		(void)REAL(fcntl)(fd, F_SETFL, flags);
	c = conn_new(fd, CONN_NEW_CLIENT |
	    (rc == -EINPROGRESS ? CONN_NEW_CONNECTING : 0) |
	    (nonblock ? CONN_NEW_NONBLOCKING : 0));
	if (c == NULL)
		return -ENOBUFS;
	if (track(fd, c) != 0)
		return -ENOBUFS;
	return rc;
}

EXPORT int
connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	struct conn *c;
	int err;

	if (!shim_enabled() || addr == NULL ||
	    (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
		return REAL(connect)(fd, addr, addrlen);
	if ((c = fdtab_get(fd)) != NULL) {
		err = conn_state_errno_for_connect(c);
		conn_unref(c);
		if (err == 0)
			return 0;
		errno = err;
		return -1;
	}
	if (!is_tcp(fd))
		return REAL(connect)(fd, addr, addrlen);
	if (!decide_connect(addr)) {
		/* Left in clear by this process's decision, not unkeyed. */
		fdclass_set_plain(fd);
		log_clear(fd, "client", NULL, addr);
		return REAL(connect)(fd, addr, addrlen);
	}
	HOOK_RETURN(int, connect_protected(fd, addr, addrlen));
}

static int
accepted(int fd, int flags)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	struct conn *c;

	fdclass_forget(fd);
	if (getsockname(fd, (struct sockaddr *)&local, &len) != 0 ||
	    (local.ss_family != AF_INET && local.ss_family != AF_INET6))
		return fd;
	if (!decide_accept((struct sockaddr *)&local)) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);

		fdclass_set_plain(fd);
		if (log_enabled(LOG_LEVEL_INFO) &&
		    getpeername(fd, (struct sockaddr *)&peer, &plen) == 0)
			log_clear(fd, "server", (struct sockaddr *)&local,
			    (struct sockaddr *)&peer);
		return fd;
	}
	c = conn_new(fd, (flags & SOCK_NONBLOCK) ? CONN_NEW_NONBLOCKING : 0);
	if (c == NULL || track(fd, c) != 0) {
		/* Fail closed: never hand out an unprotected connection
		 * the policy says must be protected. */
		log_msg(LOG_LEVEL_ERROR, "fd %d: out of memory protecting an accepted "
		    "connection; dropped", fd);
		REAL(close)(fd);
		errno = ECONNABORTED;
		return -1;
	}
	return fd;
}

EXPORT int
accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	int nfd = REAL(accept4)(fd, addr, addrlen, flags);

	if (nfd < 0 || !shim_enabled())
		return nfd;
	return accepted(nfd, flags);
}

EXPORT int
accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	int nfd = REAL(accept)(fd, addr, addrlen);

	if (nfd < 0 || !shim_enabled())
		return nfd;
	return accepted(nfd, 0);
}

EXPORT int
close(int fd)
{
	if (shim_internal_thread)
		return REAL(close)(fd);
	if (real_fd_internal(fd))
		return 0;	/* the shim's own: it stays open */
	if ((fdtab_has(fd) || epollset_tracked(fd)) && !shim_in_vfork_child()) {
		untrack(fd);
		epollset_forget(fd);
	}
	fdclass_forget(fd);
	return REAL(close)(fd);
}

struct close_range_args {
	unsigned int first, last;
};

static void
close_range_one(int fd, struct conn *c, void *arg)
{
	struct close_range_args *r = arg;

	(void)c;
	if ((unsigned)fd >= r->first && (unsigned)fd <= r->last)
		untrack(fd);
}

/* Before descriptors first..last close together: close records for
 * protected connections among them. */
static void
closing_range(unsigned int first, unsigned int last)
{
	struct close_range_args r = { first, last };

	if (shim_internal_thread || !shim_enabled() || shim_in_vfork_child())
		return;
	fdclass_forget_range(first, last);
	fdtab_each(close_range_one, &r);
}

EXPORT int
close_range(unsigned int first, unsigned int last, int flags)
{
	if (shim_internal_thread)
		return REAL(close_range)(first, last, flags);
	if (!(flags & CLOSE_RANGE_CLOEXEC))
		closing_range(first, last);
	if (REAL(close_range) == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real_close_range_keeping(first, last, flags);
}

EXPORT void
closefrom(int lowfd)
{
	if (shim_internal_thread || lowfd < 0) {
		REAL(closefrom)(lowfd);
		return;
	}
	closing_range((unsigned)lowfd, ~0u);
	if (real_close_range_keeping((unsigned)lowfd, ~0u, 0) != 0)
		REAL(closefrom)(lowfd);	/* old kernel: libc's fallback */
}

/*
 * Raw socket system calls made through syscall(2) take the same hooks as
 * their libc wrappers, so that a program (or a runtime such as Go's cgo
 * glue or libuv, which closes with syscall(SYS_close)) cannot reach a
 * protected socket around the record layer. Returns -2 when ${number} is
 * not one of them.
 */
static long
syscall_hooked(long number, const long a[6])
{
	switch (number) {
	case SYS_read:
		return read((int)a[0], (void *)a[1], (size_t)a[2]);
	case SYS_write:
		return write((int)a[0], (const void *)a[1], (size_t)a[2]);
	case SYS_readv:
		return readv((int)a[0], (const struct iovec *)a[1], (int)a[2]);
	case SYS_writev:
		return writev((int)a[0], (const struct iovec *)a[1], (int)a[2]);
	case SYS_recvfrom:
		return recvfrom((int)a[0], (void *)a[1], (size_t)a[2], (int)a[3],
		    (struct sockaddr *)a[4], (socklen_t *)a[5]);
	case SYS_sendto:
		return sendto((int)a[0], (const void *)a[1], (size_t)a[2],
		    (int)a[3], (const struct sockaddr *)a[4], (socklen_t)a[5]);
	case SYS_recvmsg:
		return recvmsg((int)a[0], (struct msghdr *)a[1], (int)a[2]);
	case SYS_sendmsg:
		return sendmsg((int)a[0], (const struct msghdr *)a[1], (int)a[2]);
	case SYS_recvmmsg:
		return recvmmsg((int)a[0], (struct mmsghdr *)a[1],
		    (unsigned int)a[2], (int)a[3], (struct timespec *)a[4]);
	case SYS_sendmmsg:
		return sendmmsg((int)a[0], (struct mmsghdr *)a[1],
		    (unsigned int)a[2], (int)a[3]);
	case SYS_connect:
		return connect((int)a[0], (const struct sockaddr *)a[1],
		    (socklen_t)a[2]);
	case SYS_accept:
		return accept((int)a[0], (struct sockaddr *)a[1],
		    (socklen_t *)a[2]);
	case SYS_accept4:
		return accept4((int)a[0], (struct sockaddr *)a[1],
		    (socklen_t *)a[2], (int)a[3]);
	case SYS_shutdown:
		return shutdown((int)a[0], (int)a[1]);
	case SYS_close:
		return close((int)a[0]);
	case SYS_dup:
		return dup((int)a[0]);
	case SYS_dup2:
		return dup2((int)a[0], (int)a[1]);
	case SYS_dup3:
		return dup3((int)a[0], (int)a[1], (int)a[2]);
	case SYS_fcntl:
		return fcntl((int)a[0], (int)a[1], a[2]);
	case SYS_ioctl:
		return ioctl((int)a[0], (unsigned long)a[1], a[2]);
	case SYS_sendfile:
		return sendfile((int)a[0], (int)a[1], (off_t *)a[2],
		    (size_t)a[3]);
	case SYS_splice:
		return splice((int)a[0], (off_t *)a[1], (int)a[2], (off_t *)a[3],
		    (size_t)a[4], (unsigned int)a[5]);
	default:
		return -2;
	}
}

EXPORT long
syscall(long number, ...)
{
	long a[6], rc;
	va_list ap;
	int i;

	va_start(ap, number);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	/* Before set-up there is nothing to protect, and setting up here
	 * could deadlock an allocator that calls syscall() under its lock. */
	if (shim_internal_thread || !shim_active())
		return REAL(syscall)(number, a[0], a[1], a[2], a[3], a[4], a[5]);
	if ((rc = syscall_hooked(number, a)) != -2)
		return rc;
#ifdef SYS_close_range
	if (number == SYS_close_range)
		return close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
#endif
#ifdef SYS_io_uring_setup
	if (number == SYS_io_uring_setup)
		uring_guard_note_setup();
#endif
	rc = REAL(syscall)(number, a[0], a[1], a[2], a[3], a[4], a[5]);
#ifdef SYS_pidfd_getfd
	/* A descriptor taken from another process: classified afresh. */
	if (number == SYS_pidfd_getfd && rc >= 0)
		fdclass_forget((int)rc);
#endif
	return rc;
}

/* A descriptor taken from another process: classified afresh (glibc's
 * wrapper; the raw system call is seen in syscall()). */
EXPORT int
pidfd_getfd(int pidfd, int targetfd, unsigned int flags)
{
	int fd;

	if (REAL(pidfd_getfd) != NULL)
		fd = REAL(pidfd_getfd)(pidfd, targetfd, flags);
	else
		fd = (int)REAL(syscall)(SYS_pidfd_getfd, pidfd, targetfd, flags);
	if (fd >= 0)
		fdclass_forget(fd);
	return fd;
}

EXPORT int
shutdown(int fd, int how)
{
	struct conn *c = fdtab_get(fd);
	int rc;

	if (c == NULL)
		return REAL(shutdown)(fd, how);
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) {
		conn_unref(c);
		errno = EINVAL;
		return -1;
	}
	rc = conn_shutdown(c, how);
	conn_unref(c);
	HOOK_RETURN(int, rc);
}

/* After a successful dup onto ${newfd}: share ${oldfd}'s connection. */
static int
duplicated(int oldfd, int newfd)
{
	struct conn *c;

	if (newfd >= 0)
		fdclass_copy(oldfd, newfd);	/* what its source is */
	if (newfd < 0 || (c = fdtab_get(oldfd)) == NULL)
		return newfd;
	if (conn_alias_add(c, newfd) != 0 || fdtab_set(newfd, c) != 0) {
		/* Refuse rather than leave an untracked, plaintext alias. */
		(void)conn_alias_remove(c, newfd);
		conn_unref(c);
		REAL(close)(newfd);
		errno = EMFILE;
		return -1;
	}
	conn_unref(c);
	return newfd;
}

EXPORT int
dup(int oldfd)
{
	if (shim_internal_thread)
		return REAL(dup)(oldfd);
	return duplicated(oldfd, REAL(dup)(oldfd));
}

EXPORT int
dup2(int oldfd, int newfd)
{
	int rc;

	if (shim_internal_thread || oldfd == newfd)
		return REAL(dup2)(oldfd, newfd);
	if (fdtab_has(newfd) && !shim_in_vfork_child())
		untrack(newfd);
	rc = REAL(dup2)(oldfd, newfd);
	return duplicated(oldfd, rc);
}

EXPORT int
dup3(int oldfd, int newfd, int flags)
{
	int rc;

	if (shim_internal_thread)
		return REAL(dup3)(oldfd, newfd, flags);
	if (oldfd != newfd && fdtab_has(newfd) && !shim_in_vfork_child())
		untrack(newfd);
	rc = REAL(dup3)(oldfd, newfd, flags);
	return duplicated(oldfd, rc);
}

static int
fcntl_common(int fd, int cmd, void *arg)
{
	struct conn *c;
	int rc;

	if (!fdtab_has(fd))
		return REAL(fcntl)(fd, cmd, arg);
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		return duplicated(fd, REAL(fcntl)(fd, cmd, arg));
	case F_SETFL:
		break;
	default:
		return REAL(fcntl)(fd, cmd, arg);
	}
	/* The kernel socket keeps the application's mode; the shim only
	 * remembers it (its own calls pass MSG_DONTWAIT). */
	rc = REAL(fcntl)(fd, cmd, arg);
	if (rc == 0 && cmd == F_SETFL && (c = fdtab_get(fd)) != NULL) {
		conn_set_nonblocking(c, ((long)arg & O_NONBLOCK) != 0);
		conn_unref(c);
	}
	return rc;
}

EXPORT int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(fd, cmd, arg);
}

/* The large-file name of the same call (_FILE_OFFSET_BITS=64 programs);
 * on LP64 it is fcntl itself. */
EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

EXPORT int
ioctl(int fd, unsigned long request, ...)
{
	struct conn *c;
	va_list ap;
	void *arg;
	int rc;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	/* FIONREAD counts plaintext, as the application will read it; the
	 * kernel would count ciphertext. */
	if (request == FIONREAD && arg != NULL && (c = fdtab_get(fd)) != NULL) {
		*(int *)arg = conn_readable_bytes(c);
		conn_unref(c);
		return 0;
	}
	rc = REAL(ioctl)(fd, request, arg);
	if (rc == 0 && request == FIONBIO && arg != NULL &&
	    (c = fdtab_get(fd)) != NULL) {
		conn_set_nonblocking(c, *(int *)arg != 0);
		conn_unref(c);
	}
	return rc;
}

EXPORT int
getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen)
{
	struct conn *c;

	if (level != SOL_SOCKET || (optname != SO_ERROR &&
	    optname != SO_RCVLOWAT) || optval == NULL || optlen == NULL ||
	    *optlen < sizeof(int) || (c = fdtab_get(fd)) == NULL)
		return REAL(getsockopt)(fd, level, optname, optval, optlen);
	*(int *)optval = optname == SO_ERROR ? conn_take_so_error(c) :
	    conn_app_rcvlowat(c);
	conn_unref(c);
	*optlen = sizeof(int);
	return 0;
}

static int
timeval_ms(const void *optval, socklen_t optlen)
{
	const struct timeval *tv = optval;

	if (optlen < sizeof(*tv) || (tv->tv_sec == 0 && tv->tv_usec == 0))
		return -1;
	return (int)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);
}

EXPORT int
setsockopt(int fd, int level, int optname, const void *optval,
    socklen_t optlen)
{
	struct conn *c;
	int rc = REAL(setsockopt)(fd, level, optname, optval, optlen);

	if (rc != 0 || optval == NULL || (c = fdtab_get(fd)) == NULL)
		return rc;
	if (level == IPPROTO_TCP && optname == TCP_NODELAY)
		conn_app_set_nodelay(c);
	else if (level == IPPROTO_TCP && optname == TCP_INQ &&
	    optlen >= sizeof(int))
		conn_set_inq(c, *(const int *)optval != 0);
	else if (level != SOL_SOCKET)
		;
	else if (optname == SO_RCVLOWAT)
		conn_keep_kernel_lowat(c);
	else if (optname == SO_RCVTIMEO || optname == SO_SNDTIMEO)
		conn_set_timeout(c, optname == SO_SNDTIMEO,
		    timeval_ms(optval, optlen));
	else if (optname == SO_LINGER && optlen >= sizeof(struct linger))
		conn_set_linger_abort(c, ((const struct linger *)optval)->l_onoff &&
		    ((const struct linger *)optval)->l_linger == 0);
	conn_unref(c);
	return rc;
}

/* sendfile to a protected socket: the kernel would copy plaintext onto
 * the wire, so read the file and send it through the record layer. */
static ssize_t
sendfile_emulated(struct conn *c, int in_fd, off_t *offset, size_t count)
{
	uint8_t buf[65536];
	size_t total = 0;

	while (total < count) {
		size_t want = count - total < sizeof(buf) ? count - total :
		    sizeof(buf);
		ssize_t n, sent;
		struct iovec iov;

		n = offset != NULL ? pread(in_fd, buf, want, *offset) :
		    REAL(read)(in_fd, buf, want);
		if (n < 0)
			return total > 0 ? (ssize_t)total : -errno;
		if (n == 0)
			break;
		iov.iov_base = buf;
		iov.iov_len = (size_t)n;
		sent = conn_send(c, &iov, 1, 0);
		if (sent < 0)
			return total > 0 ? (ssize_t)total : sent;
		if (offset != NULL)
			*offset += sent;
		else if (sent < n)
			(void)lseek(in_fd, sent - n, SEEK_CUR);
		total += (size_t)sent;
		if (sent < n)
			break;
	}
	return (ssize_t)total;
}

EXPORT ssize_t
sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	struct conn *c = fdtab_get(out_fd);
	ssize_t rc;

	if (c == NULL) {
		if (fdclass_unkeyed(out_fd)) {
			errno = ECONNRESET;
			return -1;
		}
		return REAL(sendfile)(out_fd, in_fd, offset, count);
	}
	rc = sendfile_emulated(c, in_fd, offset, count);
	conn_unref(c);
	HOOK_RETURN(ssize_t, rc);
}

/* The 64-bit file offset variant (what _FILE_OFFSET_BITS=64 programs such
 * as Python call); on LP64 it is the same call. */
EXPORT ssize_t
sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
	return sendfile(out_fd, in_fd, offset, count);
}

EXPORT ssize_t
splice(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len,
    unsigned int flags)
{
	/* splice would move plaintext past the record layer; EINVAL is what
	 * callers already handle by falling back to read and write. */
	if (fdtab_has(fd_in) || fdtab_has(fd_out)) {
		errno = EINVAL;
		return -1;
	}
	if (fdclass_unkeyed(fd_in) || fdclass_unkeyed(fd_out)) {
		errno = ECONNRESET;
		return -1;
	}
	return REAL(splice)(fd_in, off_in, fd_out, off_out, len, flags);
}
