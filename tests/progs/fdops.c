/*
 * What an application sees of descriptors and blocking modes under the
 * shim, which keeps every protected socket non-blocking in the kernel:
 *
 *   1. F_GETFL shows the application's mode; F_SETFL and FIONBIO change it
 *   2. SO_RCVTIMEO still fires (EAGAIN after the timeout)
 *   3. dup and F_DUPFD share the connection; closing the original keeps it
 *   4. dup2 of another socket over a protected descriptor (as NCCL does)
 *      closes the connection cleanly and leaves the new socket plaintext
 *   5. syscall(SYS_close) and closefrom() close connections cleanly
 *   6. a non-blocking connect to a closed port reports ECONNREFUSED
 *      through SO_ERROR
 *   7. a handshake that fails after the TCP connect reports its error
 *      through SO_ERROR once, and through recv
 *
 *   fdops HOST ECHO_PORT CLOSED_PORT SILENT_PORT
 * The echo server (tests/progs/echo.c) must expect 4 connections.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *host;

static void
fail(const char *what)
{
	fprintf(stderr, "fdops: %s (errno %s)\n", what, strerror(errno));
	exit(1);
}

static int
connect_port(const char *port, int flags)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | flags, 0);

	sin.sin_port = htons((uint16_t)atoi(port));
	inet_pton(AF_INET, host, &sin.sin_addr);
	if (connect(fd, (void *)&sin, sizeof(sin)) != 0 && errno != EINPROGRESS)
		fail("connect");
	return fd;
}

static void
echo(int fd, const char *what)
{
	char got[64];
	size_t len = strlen(what);

	if (send(fd, what, len, MSG_NOSIGNAL) != (ssize_t)len)
		fail(what);
	if (recv(fd, got, len, MSG_WAITALL) != (ssize_t)len ||
	    memcmp(got, what, len) != 0)
		fail(what);
	printf("fdops: ok: %s\n", what);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
so_error(int fd)
{
	int err = -1;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		fail("getsockopt");
	return err;
}

static void
wait_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	if (poll(&p, 1, 10000) != 1)
		fail("poll for connect");
}

int
main(int argc, char **argv)
{
	int fd, d, d2, sp[2], one = 1, zero = 0, err;
	struct timeval tv = { 0, 300000 };
	char buf[64];
	double t0;

	if (argc != 5) {
		fprintf(stderr, "usage: fdops HOST ECHO_PORT CLOSED_PORT "
		    "SILENT_PORT\n");
		return 2;
	}
	host = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* 1. Blocking mode as the application set it. */
	fd = connect_port(argv[2], 0);
	echo(fd, "connected");
	if (fcntl(fd, F_GETFL) & O_NONBLOCK)
		fail("F_GETFL shows O_NONBLOCK on a blocking socket");
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
		fail("F_SETFL O_NONBLOCK not shown");
	if (recv(fd, buf, sizeof(buf), 0) != -1 || errno != EAGAIN)
		fail("non-blocking recv with nothing to read");
	ioctl(fd, FIONBIO, &zero);
	if (fcntl(fd, F_GETFL) & O_NONBLOCK)
		fail("FIONBIO 0 did not make it blocking");
	ioctl(fd, FIONBIO, &one);
	if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
		fail("FIONBIO 1 did not make it non-blocking");
	ioctl(fd, FIONBIO, &zero);
	printf("fdops: ok: fcntl and FIONBIO\n");

	/* 2. SO_RCVTIMEO on a blocking socket. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	t0 = now();
	if (recv(fd, buf, sizeof(buf), 0) != -1 || errno != EAGAIN)
		fail("recv past SO_RCVTIMEO did not fail with EAGAIN");
	if (now() - t0 < 0.25 || now() - t0 > 5)
		fail("SO_RCVTIMEO fired at the wrong time");
	tv.tv_usec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	printf("fdops: ok: SO_RCVTIMEO fired after %.2f s\n", now() - t0);

	/* 3. Duplicates share the connection. */
	d = dup(fd);
	close(fd);
	echo(d, "through dup after closing the original");
	d2 = fcntl(d, F_DUPFD_CLOEXEC, 100);
	echo(d2, "through F_DUPFD");
	close(d2);
	echo(d, "after closing the F_DUPFD copy");

	/* 4. dup2 replaces the protected descriptor with a plain socket. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0)
		fail("socketpair");
	if (dup2(sp[0], d) != d)
		fail("dup2");
	if (write(d, "plain", 5) != 5 || read(sp[1], buf, 5) != 5 ||
	    memcmp(buf, "plain", 5) != 0)
		fail("the socket dup2'd over a protected one is not plain");
	close(d);
	close(sp[0]);
	close(sp[1]);
	printf("fdops: ok: dup2 replaced the connection\n");

	/* 5. syscall(SYS_close), then closefrom. */
	fd = connect_port(argv[2], 0);
	echo(fd, "second connection");
	if (syscall(SYS_close, fd) != 0)
		fail("syscall(SYS_close)");
	d = open("/dev/null", O_WRONLY);
	if (write(d, "x", 1) != 1)
		fail("a file reusing the number is not plain");
	close(d);
	fd = connect_port(argv[2], 0);
	echo(fd, "third connection");
	closefrom(fd);
	printf("fdops: ok: syscall(SYS_close) and closefrom\n");

	/* 6. Connection refused by the kernel. */
	fd = connect_port(argv[3], SOCK_NONBLOCK);
	wait_writable(fd);
	if ((err = so_error(fd)) != ECONNREFUSED) {
		errno = err;
		fail("SO_ERROR after a refused connect");
	}
	close(fd);
	printf("fdops: ok: SO_ERROR reports ECONNREFUSED\n");

	/* 7. TCP connects, the handshake fails (the peer never answers). */
	fd = connect_port(argv[4], SOCK_NONBLOCK);
	wait_writable(fd);
	if (so_error(fd) != 0)
		fail("SO_ERROR right after the TCP connect");
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 10000) != 1 || !(p.revents & (POLLERR | POLLHUP)))
			fail("a failed handshake does not show as an error in poll");
	}
	if ((err = so_error(fd)) != ETIMEDOUT) {
		errno = err;
		fail("SO_ERROR after the handshake timed out");
	}
	if (so_error(fd) != 0)
		fail("SO_ERROR was not cleared by reading it");
	if (recv(fd, buf, 1, 0) != -1 || errno != ETIMEDOUT)
		fail("recv after a failed handshake");
	close(fd);
	printf("fdops: ok: a failed handshake shows in poll, SO_ERROR and recv\n");

	/* The echo server's fourth connection ends the run cleanly. */
	fd = connect_port(argv[2], 0);
	echo(fd, "last connection");
	close(fd);
	return 0;
}
