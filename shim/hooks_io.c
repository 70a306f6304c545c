/*
 * Hooks for the data calls. A descriptor that is not a protected
 * connection costs one table load and goes straight to libc.
 */
#define _GNU_SOURCE
/* The hooks define the calls that fortify would wrap inline. */
#undef _FORTIFY_SOURCE
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"
#include "fdclass.h"
#include "fdtab.h"
#include "real.h"
#include "shim.h"

#define EXPORT __attribute__((visibility("default")))

/* Not a connection of ours: libc's call, unless the descriptor is a
 * connection the policy protects that arrived without keys (see
 * fdclass.h): that fails as a reset connection, never in plaintext. */
#define PASS_OR_REFUSE(fd, call) \
	do { \
		if (fdclass_unkeyed(fd)) { \
			errno = ECONNRESET; \
			return -1; \
		} \
		return call; \
	} while (0)

/* Descriptors that arrived in SCM_RIGHTS are new here: classify afresh. */
static void
forget_received_fds(const struct msghdr *msg)
{
	struct cmsghdr *cm;

	if (msg == NULL || msg->msg_control == NULL || msg->msg_controllen == 0)
		return;
	for (cm = CMSG_FIRSTHDR((struct msghdr *)msg); cm != NULL;
	    cm = CMSG_NXTHDR((struct msghdr *)msg, cm)) {
		size_t i, n;
		int fd;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			fdclass_forget(fd);
		}
	}
}

static ssize_t
send_iov(int fd, const struct iovec *iov, int iovcnt, int flags)
{
	struct conn *c = fdtab_get(fd);
	ssize_t rc;

	if (c == NULL)
		return -EBADF;	/* closed by another thread meanwhile */
	rc = conn_send(c, iov, iovcnt, flags);
	conn_unref(c);
	return rc;
}

static ssize_t
recv_iov(int fd, const struct iovec *iov, int iovcnt, int flags)
{
	struct conn *c = fdtab_get(fd);
	ssize_t rc;

	if (c == NULL)
		return -EBADF;
	rc = conn_recv(c, iov, iovcnt, flags);
	conn_unref(c);
	return rc;
}

/*
 * recvmsg() on a protected connection. The only ancillary data TCP gives
 * is TCP_CM_INQ (with TCP_INQ set): how many bytes are still waiting.
 * gRPC reads on until it says 0 and then waits for the next edge, so it
 * must count what the shim holds as well as what the kernel holds.
 */
static ssize_t
recvmsg_protected(int fd, struct msghdr *msg, int flags)
{
	size_t room = msg->msg_control != NULL ? msg->msg_controllen : 0;
	struct conn *c = fdtab_get(fd);
	ssize_t n;

	msg->msg_controllen = 0;
	msg->msg_flags = 0;
	if (c == NULL)
		return -EBADF;
	n = conn_recv(c, msg->msg_iov, (int)msg->msg_iovlen, flags);
	if (n >= 0 && conn_wants_inq(c)) {
		int inq = conn_inq_bytes(c);

		if (room >= CMSG_SPACE(sizeof(inq))) {
			struct cmsghdr *cm = (struct cmsghdr *)msg->msg_control;

			memset(cm, 0, CMSG_SPACE(sizeof(inq)));
			cm->cmsg_level = IPPROTO_TCP;
			cm->cmsg_type = TCP_CM_INQ;
			cm->cmsg_len = CMSG_LEN(sizeof(inq));
			memcpy(CMSG_DATA(cm), &inq, sizeof(inq));
			msg->msg_controllen = CMSG_SPACE(sizeof(inq));
		} else {
			msg->msg_flags |= MSG_CTRUNC;
		}
	}
	conn_unref(c);
	return n;
}

EXPORT ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	struct iovec iov = { (void *)buf, len };

	if (!fdtab_has(fd))
		PASS_OR_REFUSE(fd, REAL(send)(fd, buf, len, flags));
	HOOK_RETURN(ssize_t, send_iov(fd, &iov, 1, flags));
}

EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *addr, socklen_t addrlen)
{
	struct iovec iov = { (void *)buf, len };

	if (!fdtab_has(fd))
		PASS_OR_REFUSE(fd, REAL(sendto)(fd, buf, len, flags, addr, addrlen));
	/* A connected TCP socket ignores the address. */
	HOOK_RETURN(ssize_t, send_iov(fd, &iov, 1, flags));
}

EXPORT ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (!fdtab_has(fd))
		PASS_OR_REFUSE(fd, REAL(sendmsg)(fd, msg, flags));
	if (msg->msg_iovlen > IOV_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	HOOK_RETURN(ssize_t, send_iov(fd, msg->msg_iov, (int)msg->msg_iovlen,
	    flags));
}

EXPORT ssize_t
write(int fd, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };

	if (!fdtab_has(fd))
		PASS_OR_REFUSE(fd, REAL(write)(fd, buf, len));
	HOOK_RETURN(ssize_t, send_iov(fd, &iov, 1, 0));
}

EXPORT ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	if (!fdtab_has(fd))
		PASS_OR_REFUSE(fd, REAL(writev)(fd, iov, iovcnt));
	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	HOOK_RETURN(ssize_t, send_iov(fd, iov, iovcnt, 0));
}

EXPORT ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	struct iovec iov = { buf, len };

	if (!fdtab_has(fd))
		PASS_OR_REFUSE(fd, REAL(recv)(fd, buf, len, flags));
	HOOK_RETURN(ssize_t, recv_iov(fd, &iov, 1, flags));
}

EXPORT ssize_t
recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
    socklen_t *addrlen)
{
	struct iovec iov = { buf, len };

	if (!fdtab_has(fd))
		PASS_OR_REFUSE(fd, REAL(recvfrom)(fd, buf, len, flags, addr, addrlen));
	/* TCP reports no source address, as the kernel does. */
	if (addrlen != NULL)
		*addrlen = 0;
	HOOK_RETURN(ssize_t, recv_iov(fd, &iov, 1, flags));
}

EXPORT ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (!fdtab_has(fd)) {
		ssize_t n;

		if (fdclass_unkeyed(fd)) {
			errno = ECONNRESET;
			return -1;
		}
		if ((n = REAL(recvmsg)(fd, msg, flags)) >= 0)
			forget_received_fds(msg);
		return n;
	}
	if (msg->msg_iovlen > IOV_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	msg->msg_namelen = 0;
	HOOK_RETURN(ssize_t, recvmsg_protected(fd, msg, flags));
}

EXPORT ssize_t
read(int fd, void *buf, size_t len)
{
	struct iovec iov = { buf, len };

	if (!fdtab_has(fd))
		PASS_OR_REFUSE(fd, REAL(read)(fd, buf, len));
	HOOK_RETURN(ssize_t, recv_iov(fd, &iov, 1, 0));
}

EXPORT ssize_t
readv(int fd, const struct iovec *iov, int iovcnt)
{
	if (!fdtab_has(fd))
		PASS_OR_REFUSE(fd, REAL(readv)(fd, iov, iovcnt));
	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	HOOK_RETURN(ssize_t, recv_iov(fd, iov, iovcnt, 0));
}

/*
 * Several messages in one call: on a protected socket each goes through
 * the record layer, with the kernel's partial-success convention (the
 * count of messages done if any, else the error). For receiving, only the
 * first message may wait (MSG_WAITFORONE's meaning), an end of stream ends
 * the batch, and recvmmsg's timeout is not applied (the kernel documents
 * it as unreliable).
 */
enum mmsg_direction { MMSG_SEND, MMSG_RECEIVE };

static int
mmsg_each(int fd, struct mmsghdr *msgs, unsigned int n, int flags,
    enum mmsg_direction direction)
{
	bool receiving = direction == MMSG_RECEIVE;

	unsigned int i;

	for (i = 0; i < n; i++) {
		struct msghdr *h = &msgs[i].msg_hdr;
		ssize_t rc;

		if (h->msg_iovlen > IOV_MAX)
			rc = -EMSGSIZE;
		else if (!receiving)
			rc = send_iov(fd, h->msg_iov, (int)h->msg_iovlen, flags);
		else
			rc = recv_iov(fd, h->msg_iov, (int)h->msg_iovlen,
			    (i > 0 ? flags | MSG_DONTWAIT : flags) &
			    ~MSG_WAITFORONE);
		if (rc < 0) {
			if (i > 0)
				return (int)i;
			errno = (int)-rc;
			return -1;
		}
		msgs[i].msg_len = (unsigned int)rc;
		if (receiving) {
			h->msg_namelen = 0;
			h->msg_controllen = 0;
			h->msg_flags = 0;
			if (rc == 0)
				return (int)i + 1;
		}
	}
	return (int)n;
}

EXPORT int
sendmmsg(int fd, struct mmsghdr *msgs, unsigned int n, int flags)
{
	if (!fdtab_has(fd))
		PASS_OR_REFUSE(fd, REAL(sendmmsg)(fd, msgs, n, flags));
	return mmsg_each(fd, msgs, n, flags, MMSG_SEND);
}

EXPORT int
recvmmsg(int fd, struct mmsghdr *msgs, unsigned int n, int flags,
    struct timespec *timeout)
{
	if (!fdtab_has(fd)) {
		int got, i;

		if (fdclass_unkeyed(fd)) {
			errno = ECONNRESET;
			return -1;
		}
		got = REAL(recvmmsg)(fd, msgs, n, flags, timeout);
		for (i = 0; i < got; i++)
			forget_received_fds(&msgs[i].msg_hdr);
		return got;
	}
	return mmsg_each(fd, msgs, n, flags, MMSG_RECEIVE);
}

/* Fortified variants: libc's own check (and abort on overflow, the
 * program's bug) runs first; then the same path as the plain call. */
EXPORT ssize_t
__recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	if (!fdtab_has(fd) || len > buflen)
		PASS_OR_REFUSE(fd, REAL(__recv_chk)(fd, buf, len, buflen, flags));
	return recv(fd, buf, len, flags);
}

EXPORT ssize_t
__recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
    struct sockaddr *addr, socklen_t *addrlen)
{
	if (!fdtab_has(fd) || len > buflen)
		PASS_OR_REFUSE(fd, REAL(__recvfrom_chk)(fd, buf, len, buflen,
		    flags, addr, addrlen));
	return recvfrom(fd, buf, len, flags, addr, addrlen);
}

EXPORT ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	if (!fdtab_has(fd) || len > buflen)
		PASS_OR_REFUSE(fd, REAL(__read_chk)(fd, buf, len, buflen));
	return read(fd, buf, len);
}
