/*
 * tlshim-bench: the measurements. A --listen server answers a small
 * command header per connection; the --connect side runs every test
 * against the plaintext port and the protected port (PORT + 1), and, when
 * given, through an stunnel pair.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define BENCH_MAGIC 0x544c5342u	/* "TLSB" */
#define PING_COUNT 2000
#define PING_WARMUP 100
#define CONNECT_COUNT 200

struct command {
	uint32_t magic, test, size, pad;
	uint64_t amount;
};

double
bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
bench_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
bench_read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
bench_split_addr(const char *text, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(text, ':');
	size_t len;

	if (colon == NULL)
		return -1;
	len = (size_t)(colon - text);
	if (text[0] == '[' && len >= 2 && text[len - 1] == ']') {
		text++;
		len -= 2;
	}
	if (len >= hostlen)
		return -1;
	memcpy(host, text, len);
	host[len] = '\0';
	*port = atoi(colon + 1);
	return *port > 0 && *port < 65536 ? 0 : -1;
}

static int
dial(const char *host, int port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	char service[16];
	int fd, one = 1;

	snprintf(service, sizeof(service), "%d", port);
	if (getaddrinfo(host, service, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int
listen_on(const char *host, int port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE }, *ai;
	char service[16];
	int fd, one = 1;

	snprintf(service, sizeof(service), "%d", port);
	if (getaddrinfo(host, service, &hints, &ai) != 0)
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 256) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Send ${amount} bytes in messages of ${size}. */
struct sender {
	int fd;
	size_t size;
	uint64_t amount;
	int rc;
};

static void *
send_amount(void *arg)
{
	struct sender *s = arg;
	char *buf = malloc(s->size);
	uint64_t done = 0;

	memset(buf, 0x5a, s->size);
	s->rc = 0;
	while (done < s->amount) {
		size_t len = s->amount - done < s->size ? s->amount - done : s->size;

		if (bench_write_all(s->fd, buf, len) != 0) {
			s->rc = -1;
			break;
		}
		done += len;
	}
	free(buf);
	return NULL;
}

static uint64_t
drain(int fd, uint64_t limit)
{
	const size_t cap = 1 << 20;
	char *buf = malloc(cap);
	uint64_t got = 0;
	ssize_t n;

	while (buf != NULL && got < limit) {
		size_t want = limit - got < cap ? limit - got : cap;

		n = recv(fd, buf, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (uint64_t)n;
	}
	free(buf);
	return got;
}

static void *
serve_one(void *arg)
{
	int fd = (int)(intptr_t)arg, one = 1;
	struct command c;
	char *buf;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bench_read_all(fd, &c, sizeof(c)) != 0 || c.magic != BENCH_MAGIC ||
	    c.size == 0 || c.size > (256u << 20))
		goto out;
	switch (c.test) {
	case T_SINK: {
		uint64_t got = drain(fd, UINT64_MAX);

		(void)bench_write_all(fd, &got, sizeof(got));
		break;
	}
	case T_BOTH: {
		struct sender s = { fd, c.size, c.amount, 0 };
		pthread_t th;
		uint64_t got;

		pthread_create(&th, NULL, send_amount, &s);
		got = drain(fd, c.amount);
		pthread_join(th, NULL);
		(void)bench_write_all(fd, &got, sizeof(got));
		break;
	}
	case T_PING:
		buf = malloc(c.size);
		while (bench_read_all(fd, buf, c.size) == 0)
			if (bench_write_all(fd, buf, c.size) != 0)
				break;
		free(buf);
		break;
	case T_CONNECT:
		(void)bench_write_all(fd, "k", 1);
		(void)drain(fd, 1);
		break;
	}
out:
	close(fd);
	return NULL;
}

int
bench_listen(const char *addrport)
{
	char host[128];
	int port, plain, shimmed;

	if (bench_split_addr(addrport, host, sizeof(host), &port) != 0) {
		fprintf(stderr, "tlshim-bench: bad address %s\n", addrport);
		return 1;
	}
	plain = listen_on(host, port);
	shimmed = listen_on(host, port + 1);
	if (plain < 0 || shimmed < 0) {
		perror("tlshim-bench: listen");
		return 1;
	}
	fprintf(stderr, "tlshim-bench: serving plaintext on port %d, tlshim on "
	    "port %d\n", port, port + 1);
	for (;;) {
		int ls[2] = { plain, shimmed };
		fd_set set;
		int i;

		FD_ZERO(&set);
		FD_SET(plain, &set);
		FD_SET(shimmed, &set);
		if (select((plain > shimmed ? plain : shimmed) + 1, &set, NULL, NULL,
		    NULL) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (i = 0; i < 2; i++) {
			pthread_t th;
			int fd;

			if (!FD_ISSET(ls[i], &set))
				continue;
			if ((fd = accept(ls[i], NULL, NULL)) < 0)
				continue;
			pthread_create(&th, NULL, serve_one, (void *)(intptr_t)fd);
			pthread_detach(th);
		}
	}
}

int
bench_start_test(const char *host, int port, enum bench_test test, size_t size,
    uint64_t amount)
{
	struct command c = { BENCH_MAGIC, test, (uint32_t)size, 0, amount };
	int fd = dial(host, port);

	if (fd < 0)
		return -1;
	if (bench_write_all(fd, &c, sizeof(c)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One way: send for ${seconds}; Gbit/s as the receiver counted it. */
static double
measure_one_way(const char *host, int port, size_t size, double seconds,
    uint64_t *moved)
{
	char *buf = malloc(size);
	uint64_t sent = 0, got = 0;
	double t0, t1;
	int fd = bench_start_test(host, port, T_SINK, size, 0);

	if (fd < 0 || buf == NULL) {
		free(buf);
		return 0;
	}
	memset(buf, 0xa5, size);
	t0 = bench_now_s();
	do {
		if (bench_write_all(fd, buf, size) != 0)
			break;
		sent += size;
	} while (bench_now_s() - t0 < seconds);
	shutdown(fd, SHUT_WR);
	if (bench_read_all(fd, &got, sizeof(got)) != 0 || got != sent)
		got = 0;
	t1 = bench_now_s();
	close(fd);
	free(buf);
	*moved = got;
	return got * 8.0 / (t1 - t0) / 1e9;
}

/* Both ways at once, ${amount} bytes each; Gbit/s per direction. */
static double
measure_both_ways(const char *host, int port, size_t size, uint64_t amount)
{
	int fd = bench_start_test(host, port, T_BOTH, size, amount);
	struct sender s = { fd, size, amount, 0 };
	uint64_t got, echo = 0;
	pthread_t th;
	double t0, t1;

	if (fd < 0)
		return 0;
	t0 = bench_now_s();
	pthread_create(&th, NULL, send_amount, &s);
	got = drain(fd, amount);
	pthread_join(th, NULL);
	if (bench_read_all(fd, &echo, sizeof(echo)) != 0)
		echo = 0;
	t1 = bench_now_s();
	close(fd);
	if (s.rc != 0 || got != amount || echo != amount)
		return 0;
	return amount * 8.0 / (t1 - t0) / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
measure_ping(const char *host, int port, double *median, double *p99)
{
	static double rtt[PING_COUNT];
	char msg[64] = "ping";
	int fd = bench_start_test(host, port, T_PING, sizeof(msg), 0), i;

	*median = *p99 = 0;
	if (fd < 0)
		return;
	for (i = -PING_WARMUP; i < PING_COUNT; i++) {
		double t0 = bench_now_s();

		if (bench_write_all(fd, msg, sizeof(msg)) || bench_read_all(fd, msg, sizeof(msg))) {
			close(fd);
			return;
		}
		if (i >= 0)
			rtt[i] = (bench_now_s() - t0) * 1e6;
	}
	close(fd);
	qsort(rtt, PING_COUNT, sizeof(rtt[0]), cmp_double);
	*median = rtt[PING_COUNT / 2];
	*p99 = rtt[PING_COUNT * 99 / 100];
}

static void
measure_connect(const char *host, int port, double *median, double *p99,
    double *per_s)
{
	static double t[CONNECT_COUNT];
	double start = bench_now_s();
	int i;

	*median = *p99 = *per_s = 0;
	for (i = 0; i < CONNECT_COUNT; i++) {
		double t0 = bench_now_s();
		int fd = bench_start_test(host, port, T_CONNECT, 1, 0);
		char k;

		if (fd < 0 || bench_read_all(fd, &k, 1) != 0) {
			if (fd >= 0)
				close(fd);
			return;
		}
		t[i] = (bench_now_s() - t0) * 1e3;
		close(fd);
	}
	*per_s = CONNECT_COUNT / (bench_now_s() - start);
	qsort(t, CONNECT_COUNT, sizeof(t[0]), cmp_double);
	*median = t[CONNECT_COUNT / 2];
	*p99 = t[CONNECT_COUNT * 99 / 100];
}

static const char *path_names[PATH_COUNT] = { "plaintext", "tlshim", "stunnel" };

int
bench_measure(const char *host, int port, int stunnel_port, double seconds,
    struct bench_results *r)
{
	int p, i;

	for (p = 0; p < PATH_COUNT; p++) {
		const char *h = p == PATH_STUNNEL ? "127.0.0.1" : host;
		int pt = p == PATH_PLAIN ? port : p == PATH_TLSHIM ? port + 1 :
		    stunnel_port;

		if (p == PATH_STUNNEL && stunnel_port <= 0)
			continue;
		for (i = 0; i < r->nsizes; i++) {
			uint64_t moved = 0;

			fprintf(stderr, "  %-9s throughput, %zu-byte messages\n",
			    path_names[p], r->sizes[i]);
			r->one_way[p][i] = measure_one_way(h, pt, r->sizes[i],
			    seconds, &moved);
			/* Both ways: the same volume, so about as long. */
			r->both_ways[p][i] = measure_both_ways(h, pt, r->sizes[i],
			    moved / 2 > r->sizes[i] ? moved / 2 : r->sizes[i]);
			if (r->one_way[p][i] == 0) {
				fprintf(stderr, "tlshim-bench: %s at %zu bytes failed\n",
				    path_names[p], r->sizes[i]);
				return -1;
			}
		}
		fprintf(stderr, "  %-9s 64-byte ping-pong and connection setup\n",
		    path_names[p]);
		measure_ping(h, pt, &r->rtt_median_us[p], &r->rtt_p99_us[p]);
		measure_connect(h, pt, &r->connect_median_ms[p],
		    &r->connect_p99_ms[p], &r->connects_per_s[p]);
	}
	if (r->pipe_depth > 0 &&
	    bench_measure_small(host, port, stunnel_port, seconds, r) != 0)
		return -1;
	return 0;
}

/* A ring allreduce (reduce-scatter then allgather) of ${bytes} of floats;
 * each step sends to the next rank while receiving from the previous. */
struct ring_send {
	int fd;
	const char *buf;
	size_t len;
	int rc;
};

static void *
ring_sender(void *arg)
{
	struct ring_send *s = arg;

	s->rc = bench_write_all(s->fd, s->buf, s->len);
	return NULL;
}

int
bench_ring_rank(int rank, int size, const char *listen_addr,
    const char *next_addr, size_t bytes, double *MBps)
{
	char lhost[128], nhost[128];
	int lport, nport, lfd, out = -1, in, step, iter, i, tries;
	size_t n = bytes / sizeof(float) / (size_t)size * (size_t)size;
	size_t chunk = n / (size_t)size;
	float *data, *tmp;
	double t0 = 0;
	const int iters = 5;

	if (bench_split_addr(listen_addr, lhost, sizeof(lhost), &lport) ||
	    bench_split_addr(next_addr, nhost, sizeof(nhost), &nport))
		return 1;
	if ((lfd = listen_on(lhost, lport)) < 0) {
		perror("ring: listen");
		return 1;
	}
	for (tries = 0; tries < 400 && out < 0; tries++) {
		if ((out = dial(nhost, nport)) < 0)
			usleep(25000);
	}
	if (out < 0 || (in = accept(lfd, NULL, NULL)) < 0) {
		perror("ring: connect/accept");
		return 1;
	}
	data = malloc(n * sizeof(float));
	tmp = malloc(chunk * sizeof(float));
	for (iter = -1; iter < iters; iter++) {
		if (iter == 0)
			t0 = bench_now_s();
		for (i = 0; i < (int)n; i++)
			data[i] = (float)(rank + 1);
		for (step = 0; step < 2 * (size - 1); step++) {
			int s_idx, r_idx;
			struct ring_send s;
			pthread_t th;

			if (step < size - 1) {
				s_idx = ((rank - step) % size + size) % size;
				r_idx = ((rank - step - 1) % size + size) % size;
			} else {
				int k = step - (size - 1);

				s_idx = ((rank - k + 1) % size + size) % size;
				r_idx = ((rank - k) % size + size) % size;
			}
			s.fd = out;
			s.buf = (const char *)(data + (size_t)s_idx * chunk);
			s.len = chunk * sizeof(float);
			pthread_create(&th, NULL, ring_sender, &s);
			if (bench_read_all(in, tmp, chunk * sizeof(float)) != 0) {
				fprintf(stderr, "ring: receive failed\n");
				return 1;
			}
			pthread_join(th, NULL);
			if (s.rc != 0) {
				fprintf(stderr, "ring: send failed\n");
				return 1;
			}
			if (step < size - 1)
				for (i = 0; i < (int)chunk; i++)
					data[(size_t)r_idx * chunk + i] += tmp[i];
			else
				memcpy(data + (size_t)r_idx * chunk, tmp,
				    chunk * sizeof(float));
		}
		for (i = 0; i < (int)n; i++) {
			if (data[i] != (float)(size * (size + 1) / 2)) {
				fprintf(stderr, "ring: wrong sum at %d\n", i);
				return 1;
			}
		}
	}
	*MBps = (double)n * sizeof(float) * iters / (bench_now_s() - t0) / 1e6;
	shutdown(out, SHUT_WR);
	(void)drain(in, UINT64_MAX);
	close(out);
	close(in);
	close(lfd);
	free(data);
	free(tmp);
	return 0;
}
