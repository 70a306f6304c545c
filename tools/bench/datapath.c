/*
 * bench-datapath: the shim's data path alone, for counting instructions
 * (tools/bench/instructions.sh runs it under callgrind, which counts only
 * inside the functions named measure_*: set-up and keying are left out).
 *
 *   bench-datapath small N   N times: a 64-byte send on one end, its
 *                            receive on the other (descriptor lookup,
 *                            seal, write; read, open), one thread
 *   bench-datapath bulk N    N records of 256 KiB sealed, written, read
 *                            and opened (a sender thread, as a real
 *                            sender and receiver are two processes)
 *   bench-datapath plain N   the small case on the same socket pair
 *                            without the shim, for scale
 *
 * The two ends are a keyed connection pair over a Unix socket pair; the
 * kernel's own work is not counted by callgrind, only user space.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <sodium.h>

#include "../../shim/config.h"
#include "../../shim/conn.h"
#include "../../shim/fdtab.h"
#include "../../shim/real.h"

#define SMALL 64
#define BULK REC_MAX_PAYLOAD

static int fds[2];

/* What the send()/recv() hooks do for a protected descriptor. */
static ssize_t
shim_send(int fd, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };
	struct conn *c = fdtab_get(fd);
	ssize_t n;

	if (c == NULL)
		return -EBADF;
	n = conn_send(c, &iov, 1, MSG_NOSIGNAL);
	conn_unref(c);
	return n;
}

static ssize_t
shim_recv(int fd, void *buf, size_t len)
{
	struct iovec iov = { buf, len };
	struct conn *c = fdtab_get(fd);
	ssize_t n;

	if (c == NULL)
		return -EBADF;
	n = conn_recv(c, &iov, 1, 0);
	conn_unref(c);
	return n;
}

static int
recv_exactly(int fd, uint8_t *buf, size_t len, int shimmed)
{
	size_t have = 0;

	while (have < len) {
		ssize_t n = shimmed ? shim_recv(fd, buf + have, len - have) :
		    recv(fd, buf + have, len - have, 0);

		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return 0;
}

__attribute__((noinline)) static int
measure_small(long rounds, int shimmed)
{
	uint8_t out[SMALL], in[SMALL];
	long i;

	memset(out, 0x42, sizeof(out));
	for (i = 0; i < rounds; i++) {
		ssize_t n = shimmed ? shim_send(fds[0], out, sizeof(out)) :
		    send(fds[0], out, sizeof(out), MSG_NOSIGNAL);

		if (n != (ssize_t)sizeof(out) ||
		    recv_exactly(fds[1], in, sizeof(in), shimmed) != 0 ||
		    memcmp(in, out, sizeof(in)) != 0)
			return -1;
	}
	return 0;
}

struct bulk_sender {
	long rounds;
	uint8_t *buf;
	int rc;
};

static void *
bulk_send(void *arg)
{
	struct bulk_sender *s = arg;
	long i;

	for (i = 0; i < s->rounds && s->rc == 0; i++) {
		size_t done = 0;

		while (done < BULK) {
			ssize_t n = shim_send(fds[0], s->buf + done, BULK - done);

			if (n <= 0) {
				s->rc = -1;
				break;
			}
			done += (size_t)n;
		}
	}
	return NULL;
}

__attribute__((noinline)) static int
measure_bulk(long rounds)
{
	struct bulk_sender s = { rounds, malloc(BULK), 0 };
	uint8_t *in = malloc(BULK);
	pthread_t th;
	long i;
	int rc = 0;

	if (s.buf == NULL || in == NULL)
		return -1;
	memset(s.buf, 0x5a, BULK);
	pthread_create(&th, NULL, bulk_send, &s);
	for (i = 0; i < rounds && rc == 0; i++)
		if (recv_exactly(fds[1], in, BULK, 1) != 0 ||
		    memcmp(in, s.buf, BULK) != 0)
			rc = -1;
	pthread_join(th, NULL);
	free(s.buf);
	free(in);
	return rc == 0 ? s.rc : rc;
}

int
main(int argc, char **argv)
{
	uint8_t a[REC_SECRET_SIZE], b[REC_SECRET_SIZE];
	struct conn *client, *server;
	long rounds;
	int rc;

	if (argc != 3 || (rounds = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: bench-datapath small|bulk|plain ROUNDS\n");
		return 2;
	}
	real_init();
	config_init();
	if (sodium_init() < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
		return 1;
	randombytes_buf(a, sizeof(a));
	randombytes_buf(b, sizeof(b));
	client = conn_new_keyed(fds[0], CONN_NEW_CLIENT, rec_cipher_best(), a, b);
	server = conn_new_keyed(fds[1], 0, rec_cipher_best(), b, a);
	sodium_memzero(a, sizeof(a));
	sodium_memzero(b, sizeof(b));
	if (client == NULL || server == NULL || fdtab_set(fds[0], client) != 0 ||
	    fdtab_set(fds[1], server) != 0)
		return 1;
	if (strcmp(argv[1], "small") == 0)
		rc = measure_small(rounds, 1);
	else if (strcmp(argv[1], "plain") == 0)
		rc = measure_small(rounds, 0);
	else if (strcmp(argv[1], "bulk") == 0)
		rc = measure_bulk(rounds);
	else
		rc = 2;
	if (rc != 0) {
		fprintf(stderr, "bench-datapath: %s failed\n", argv[1]);
		return 1;
	}
	return 0;
}
