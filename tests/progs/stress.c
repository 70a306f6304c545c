/*
 * Both directions at once over one TCP connection, checked byte by byte:
 * each side sends SIZE bytes of a seeded pseudo-random stream and verifies
 * the SIZE bytes it receives against the peer's seed.
 *
 *   stress server PORT MODE [MIB]      stress client HOST PORT MODE [MIB]
 *
 * MODE: lt       non-blocking socket, level-triggered epoll, odd read
 *                sizes (so the shim is often left holding plaintext)
 *       oneshot  the same with EPOLLONESHOT, re-armed after each event
 *       threads  blocking socket, one sender and one receiver thread
 * Exits 0 when every byte matched; prints MiB/s.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct stream {
	uint64_t state;
	uint8_t block[8];
	int used;
};

static void
stream_init(struct stream *s, uint64_t seed)
{
	s->state = seed * 0x9e3779b97f4a7c15ull + 1;
	s->used = 8;
}

static uint8_t
stream_next(struct stream *s)
{
	if (s->used == 8) {
		s->state ^= s->state << 13;
		s->state ^= s->state >> 7;
		s->state ^= s->state << 17;
		memcpy(s->block, &s->state, 8);
		s->used = 0;
	}
	return s->block[s->used++];
}

static void
die(const char *what)
{
	fprintf(stderr, "stress: %s: %s\n", what, strerror(errno));
	exit(2);
}

static size_t total;
static int is_server;

struct side {
	int fd;
	struct stream tx, rx;
	size_t sent, received;
	uint8_t outbuf[65536];
	size_t out_len, out_off;
};

static void
fill_out(struct side *s)
{
	size_t want = total - s->sent - s->out_len, i;

	if (s->out_len > 0 || want == 0)
		return;
	/* Odd sizes: records and reads never line up. */
	if (want > 40000 + s->sent % 25000)
		want = 40000 + s->sent % 25000;
	for (i = 0; i < want; i++)
		s->outbuf[i] = stream_next(&s->tx);
	s->out_len = want;
	s->out_off = 0;
}

static void
check_in(struct side *s, const uint8_t *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (buf[i] != stream_next(&s->rx)) {
			fprintf(stderr, "stress: byte %zu differs\n", s->received + i);
			exit(1);
		}
	}
	s->received += n;
}

static int
do_read(struct side *s)
{
	static const size_t sizes[] = { 1, 1000, 8191, 65536, 300, 100000 };
	static size_t turn;
	uint8_t buf[100000];
	ssize_t n = recv(s->fd, buf, sizes[turn++ % 6], 0);

	if (n > 0) {
		check_in(s, buf, (size_t)n);
		return 1;
	}
	if (n == 0) {
		if (s->received < total) {
			fprintf(stderr, "stress: EOF after %zu bytes\n", s->received);
			exit(1);
		}
		return 0;
	}
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	die("recv");
	return 0;
}

static void
do_write(struct side *s)
{
	ssize_t n;

	fill_out(s);
	if (s->out_len == 0)
		return;
	n = send(s->fd, s->outbuf + s->out_off, s->out_len, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		die("send");
	}
	s->out_off += (size_t)n;
	s->out_len -= (size_t)n;
	s->sent += (size_t)n;
}

static void
run_epoll(struct side *s, int oneshot)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT |
	    (oneshot ? EPOLLONESHOT : 0), .data.u64 = 0xfeed };

	fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
	if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) != 0)
		die("epoll_ctl");
	while (s->received < total || s->sent < total) {
		struct epoll_event got[4];
		int n = epoll_wait(ep, got, 4, 20000), i;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "stress: epoll_wait %s after %zu in, %zu out\n",
			    n == 0 ? "timed out" : strerror(errno), s->received,
			    s->sent);
			exit(1);
		}
		for (i = 0; i < n; i++) {
			if (got[i].data.u64 != 0xfeed) {
				fprintf(stderr, "stress: epoll data lost\n");
				exit(1);
			}
			if (got[i].events & EPOLLIN)
				do_read(s);
			if (got[i].events & EPOLLOUT)
				do_write(s);
		}
		ev.events = (s->received < total ? EPOLLIN : 0) |
		    (s->sent < total ? EPOLLOUT : 0) | (oneshot ? EPOLLONESHOT : 0);
		if (oneshot || s->sent >= total)
			if (epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev) != 0)
				die("epoll_ctl MOD");
	}
	close(ep);
}

static void *
sender_thread(void *arg)
{
	struct side *s = arg;

	while (s->sent < total)
		do_write(s);
	return NULL;
}

static void
run_threads(struct side *s)
{
	pthread_t th;

	pthread_create(&th, NULL, sender_thread, s);
	while (s->received < total)
		if (!do_read(s) && s->received < total && errno != EINTR &&
		    errno != EAGAIN)
			break;
	pthread_join(th, NULL);
}

static int
connect_to(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int fd, tries;

	if (getaddrinfo(host, port, &hints, &ai) != 0)
		die("getaddrinfo");
	for (tries = 0; tries < 100; tries++) {
		fd = socket(ai->ai_family, SOCK_STREAM, 0);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
		usleep(50000);
	}
	freeaddrinfo(ai);
	if (fd < 0)
		die("connect");
	return fd;
}

static int
accept_on(const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE, .ai_family = AF_INET6 }, *ai;
	int one = 1, lfd, fd;

	if (getaddrinfo(NULL, port, &hints, &ai) != 0)
		die("getaddrinfo");
	lfd = socket(ai->ai_family, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(lfd, 4) != 0)
		die("listen");
	freeaddrinfo(ai);
	if ((fd = accept(lfd, NULL, NULL)) < 0)
		die("accept");
	close(lfd);
	return fd;
}

int
main(int argc, char **argv)
{
	static struct side s;
	struct timespec t0, t1;
	const char *mode;
	double secs;

	if (argc < 4 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
		fprintf(stderr, "usage: stress server PORT MODE [MIB] | "
		    "client HOST PORT MODE [MIB]\n");
		return 2;
	}
	is_server = strcmp(argv[1], "server") == 0;
	mode = argv[is_server ? 3 : 4];
	total = (size_t)atoi(argc > (is_server ? 4 : 5) ?
	    argv[is_server ? 4 : 5] : "256") << 20;
	s.fd = is_server ? accept_on(argv[2]) : connect_to(argv[2], argv[3]);
	stream_init(&s.tx, is_server ? 1 : 2);
	stream_init(&s.rx, is_server ? 2 : 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (strcmp(mode, "lt") == 0)
		run_epoll(&s, 0);
	else if (strcmp(mode, "oneshot") == 0)
		run_epoll(&s, 1);
	else if (strcmp(mode, "threads") == 0)
		run_threads(&s);
	else
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	shutdown(s.fd, SHUT_WR);
	{
		/* Wait for the peer's end of stream so neither side closes
		 * while the other still reads. */
		uint8_t b;
		int fl = fcntl(s.fd, F_GETFL);

		fcntl(s.fd, F_SETFL, fl & ~O_NONBLOCK);
		if (recv(s.fd, &b, 1, 0) != 0) {
			fprintf(stderr, "stress: no clean end of stream\n");
			return 1;
		}
	}
	close(s.fd);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("stress %s %s: %zu MiB each way verified, %.0f MiB/s each way\n",
	    argv[1], mode, total >> 20, (total >> 20) / secs);
	return 0;
}
