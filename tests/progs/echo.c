/*
 * An echo server for the end-to-end tests: serves COUNT connections one
 * after another, each until its end of stream. Exits 0 only when every
 * connection ended cleanly (an authenticated close under the shim).
 *
 *   echo PORT COUNT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	int lfd, fd, one = 1, count, i, unclean = 0;
	char buf[65536];
	ssize_t n;

	if (argc != 3) {
		fprintf(stderr, "usage: echo PORT COUNT\n");
		return 2;
	}
	sin.sin_port = htons((uint16_t)atoi(argv[1]));
	count = atoi(argv[2]);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (void *)&sin, sizeof(sin)) || listen(lfd, 8)) {
		perror("echo: listen");
		return 1;
	}
	for (i = 0; i < count; i++) {
		if ((fd = accept(lfd, NULL, NULL)) < 0) {
			perror("echo: accept");
			return 1;
		}
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
			if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
				break;
		if (n != 0) {
			fprintf(stderr, "echo: connection %d ended uncleanly: %s\n",
			    i + 1, n < 0 ? strerror(errno) : "send failed");
			unclean++;
		}
		close(fd);
	}
	close(lfd);
	return unclean ? 1 : 0;
}
