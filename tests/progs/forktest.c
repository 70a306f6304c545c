/*
 * fork and a protected connection. The client checks, after each case,
 * that an echo round trip on its connection still works, which proves that
 * no child sent anything on it (a record sealed with the parent's keys
 * would break authentication of the stream):
 *   a. the child exits (running atexit handlers and destructors)
 *   b. the child closes the inherited descriptor
 *   c. the child writes to it: it must get an error
 *   d. a vfork()ed child closes it before exec
 *
 *   forktest HOST PORT          (against tests/progs/echo.c)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void
die(const char *what)
{
	fprintf(stderr, "forktest: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
echo_check(int fd, const char *what)
{
	char msg[64], got[64];
	size_t len;

	len = (size_t)snprintf(msg, sizeof(msg), "echo after %s", what);
	if (send(fd, msg, len, MSG_NOSIGNAL) != (ssize_t)len)
		die("send");
	if (recv(fd, got, len, MSG_WAITALL) != (ssize_t)len ||
	    memcmp(got, msg, len) != 0) {
		fprintf(stderr, "forktest: echo broken after %s\n", what);
		exit(1);
	}
	printf("forktest: connection works after %s\n", what);
}

static int
child_status(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		die("waitpid");
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int
client(const char *host, const char *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	pid_t pid;
	int fd;

	sin.sin_port = htons((uint16_t)atoi(port));
	inet_pton(AF_INET, host, &sin.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (void *)&sin, sizeof(sin)) != 0)
		die("connect");
	echo_check(fd, "connect");

	if ((pid = fork()) == 0)
		exit(0);
	if (child_status(pid) != 0)
		return 1;
	echo_check(fd, "a child exited");

	if ((pid = fork()) == 0) {
		close(fd);
		_exit(0);
	}
	if (child_status(pid) != 0)
		return 1;
	echo_check(fd, "a child closed it");

	if ((pid = fork()) == 0) {
		ssize_t n = send(fd, "from the child", 14, MSG_NOSIGNAL);

		if (n >= 0) {
			fprintf(stderr, "forktest: the child could send\n");
			_exit(1);
		}
		printf("forktest: the child's send failed: %s\n", strerror(errno));
		fflush(stdout);
		_exit(0);
	}
	if (child_status(pid) != 0)
		return 1;
	echo_check(fd, "a child tried to write");

	if ((pid = vfork()) == 0) {
		close(fd);
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	if (child_status(pid) != 0)
		return 1;
	echo_check(fd, "a vforked child closed it");

	close(fd);
	return 0;
}

int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3)
		return client(argv[1], argv[2]);
	fprintf(stderr, "usage: forktest HOST PORT\n");
	return 2;
}
