/*
 * NCCL's bootstrap ring, strictly: every rank listens, then does a
 * non-blocking connect to the next rank and at once sends 12 bytes with
 * MSG_DONTWAIT, expecting the whole write to be taken, and only then
 * blocks in accept() for the previous rank and receives its 12 bytes.
 * A second round passes 1 MiB around the ring.
 *
 *   ring RANK N LISTEN_ADDR PORT NEXT_ADDR NEXT_PORT
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void
die(const char *what)
{
	fprintf(stderr, "ring: %s: %s\n", what, strerror(errno));
	exit(1);
}

static struct sockaddr_in
address(const char *ip, const char *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	sin.sin_port = htons((uint16_t)atoi(port));
	if (inet_pton(AF_INET, ip, &sin.sin_addr) != 1)
		die("address");
	return sin;
}

static void
recv_all(int fd, void *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len, MSG_WAITALL);

	if (n != (ssize_t)len) {
		fprintf(stderr, "ring: recv got %zd of %zu: %s\n", n, len,
		    n < 0 ? strerror(errno) : "end of stream");
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in me, next;
	char magic[13], got[12];
	int rank, n, lfd, out, in, one = 1, flags;
	size_t big = 1 << 20, i;
	unsigned char *buf, *back;
	ssize_t sent;

	if (argc != 7) {
		fprintf(stderr, "usage: ring RANK N LISTEN_ADDR PORT NEXT_ADDR "
		    "NEXT_PORT\n");
		return 2;
	}
	rank = atoi(argv[1]);
	n = atoi(argv[2]);
	me = address(argv[3], argv[4]);
	next = address(argv[5], argv[6]);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (void *)&me, sizeof(me)) || listen(lfd, 16))
		die("listen");
	/* Every rank is listening before any connects (as after NCCL's
	 * allgather of addresses). */
	sleep(1);

	out = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (connect(out, (void *)&next, sizeof(next)) != 0 && errno != EINPROGRESS)
		die("connect");
	snprintf(magic, sizeof(magic), "RING%08u", (unsigned)rank % 100000000u);
	sent = send(out, magic, 12, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (sent != 12) {
		fprintf(stderr, "ring: first send right after connect took %zd of "
		    "12 bytes (%s)\n", sent, sent < 0 ? strerror(errno) : "short");
		return 1;
	}

	if ((in = accept(lfd, NULL, NULL)) < 0)
		die("accept");
	recv_all(in, got, sizeof(got));
	snprintf(magic, sizeof(magic), "RING%08u",
	    (unsigned)((rank + n - 1) % n) % 100000000u);
	if (memcmp(got, magic, 12) != 0) {
		fprintf(stderr, "ring: rank %d got '%.12s'\n", rank, got);
		return 1;
	}

	/* Round two: 1 MiB around the ring, on blocking sockets. */
	flags = fcntl(out, F_GETFL);
	fcntl(out, F_SETFL, flags & ~O_NONBLOCK);
	buf = malloc(big);
	back = malloc(big);
	for (i = 0; i < big; i++)
		buf[i] = (unsigned char)(i * 31 + rank);
	if (send(out, buf, big, MSG_NOSIGNAL) != (ssize_t)big)
		die("send 1 MiB");
	recv_all(in, back, big);
	for (i = 0; i < big; i++) {
		if (back[i] != (unsigned char)(i * 31 + (rank + n - 1) % n)) {
			fprintf(stderr, "ring: rank %d: byte %zu wrong\n", rank, i);
			return 1;
		}
	}
	shutdown(out, SHUT_RDWR);
	close(out);
	close(in);
	close(lfd);
	printf("ring rank %d of %d: ok\n", rank, n);
	return 0;
}
