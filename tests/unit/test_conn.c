/*
 * The connection layer inside one process, over a socketpair, with a
 * scripted transport in the real-call table that delivers one byte at a
 * time, injects EAGAIN and EINTR, takes short writes, and can corrupt or
 * cut the stream. The data path's tests key both ends from secrets (no
 * handshake, no credentials); the tests of what happens during and
 * around the handshake run the real mutual TLS handshake, with
 * credentials made by tlshim-keys.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "../../shim/config.h"
#include "../../shim/conn.h"
#include "../../shim/progress.h"
#include "../../shim/real.h"
#include "run_suite.h"

static struct real_calls libc;
static char creds_root[] = "/tmp/tlshim-test-conn-XXXXXX";
/* Only the tests of the handshake need credentials (made by tlshim-keys);
 * the data path's run keyed from secrets without them. */
static bool creds_made;

static bool
creds_ready(void)
{
	return creds_made;
}

/* What the scripted transport does. */
static atomic_int script_chunk;		/* max bytes per read/write, 0: all */
static atomic_int script_eagain;	/* fail every Nth call with EAGAIN */
static atomic_int script_eintr;		/* fail every Nth call with EINTR */
static atomic_long script_corrupt_at;	/* flip the byte at this offset */
static atomic_long sent_total;
static atomic_int calls;

/* An error to inject into this call, if any: EAGAIN only where the kernel
 * could give it (a call that does not block). */
static int
injected_error(int flags)
{
	int n = atomic_fetch_add(&calls, 1) + 1;
	int ea = atomic_load(&script_eagain), ei = atomic_load(&script_eintr);

	if (ea && n % ea == 0 && (flags & MSG_DONTWAIT))
		return EAGAIN;
	if (ei && n % ei == 0)
		return EINTR;
	return 0;
}

static size_t
chunk(size_t len)
{
	int c = atomic_load(&script_chunk);

	return c > 0 && len > (size_t)c ? (size_t)c : len;
}

static ssize_t
scripted_recv(int fd, void *buf, size_t len, int flags)
{
	int err = injected_error(flags);

	if (err) {
		errno = err;
		return -1;
	}
	return libc.recv(fd, buf, chunk(len), flags);
}

static ssize_t
scripted_recvmsg(int fd, struct msghdr *msg, int flags)
{
	int err = injected_error(flags);

	if (err) {
		errno = err;
		return -1;
	}
	if (atomic_load(&script_chunk) > 0) {
		size_t i;

		for (i = 0; i < msg->msg_iovlen; i++)
			if (msg->msg_iov[i].iov_len > 0)
				return libc.recv(fd, msg->msg_iov[i].iov_base,
				    chunk(msg->msg_iov[i].iov_len), flags);
		return 0;
	}
	return libc.recvmsg(fd, msg, flags);
}

static ssize_t
scripted_send(int fd, const void *buf, size_t len, int flags)
{
	long at = atomic_load(&script_corrupt_at), base;
	int err = injected_error(flags);
	uint8_t *copy;
	ssize_t n;

	if (err) {
		errno = err;
		return -1;
	}
	len = chunk(len);
	if (len > 65536)
		len = 65536;
	/* On the heap: the callers' threads may have small stacks. */
	if ((copy = malloc(len)) == NULL) {
		errno = ENOBUFS;
		return -1;
	}
	memcpy(copy, buf, len);
	base = atomic_load(&sent_total);
	if (at >= base && at < base + (long)len)
		copy[at - base] ^= 0x20;
	n = libc.send(fd, copy, len, flags);
	free(copy);
	if (n > 0)
		atomic_fetch_add(&sent_total, n);
	return n;
}

static int
make_creds(void)
{
	const char *keys = getenv("TLSHIM_KEYS");
	char cmd[1024];

	if (keys == NULL)
		keys = "build/tlshim-keys";
	if (mkdtemp(creds_root) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "%s init --dir %s/ca --name unit >/dev/null && "
	    "%s issue --ca %s/ca --node a --out %s/a >/dev/null && "
	    "%s init --dir %s/other --name unit >/dev/null && "
	    "%s issue --ca %s/other --node x --out %s/x >/dev/null", keys,
	    creds_root, keys, creds_root, creds_root, keys, creds_root, keys,
	    creds_root, creds_root);
	return system(cmd) == 0 ? 0 : -1;
}

static void
setup(void)
{
	static int saved;

	/* Keep libc's table from before any scripting (the fixture runs per
	 * test, all in one process under valgrind). */
	if (!saved) {
		real_init();
		libc = real;
		saved = 1;
	}
	real = libc;
	conn_set_background(progress_watch);
	real.recv = scripted_recv;
	real.recvmsg = scripted_recvmsg;
	real.send = scripted_send;
	atomic_store(&script_chunk, 0);
	atomic_store(&script_eagain, 0);
	atomic_store(&script_eintr, 0);
	atomic_store(&script_corrupt_at, -1);
	atomic_store(&sent_total, 0);
	memset(&config, 0, sizeof(config));
	config.enabled = true;
	config.handshake_timeout_ms = 5000;
	config.rekey_records = CONFIG_DEFAULT_REKEY_RECORDS;
	snprintf(config.dir, sizeof(config.dir), "%s/a", creds_root);
	ck_assert_int_ge(sodium_init(), 0);
}

struct pair {
	int fd[2];
	struct conn *client, *server;
};

/* Two ends keyed from mirrored secrets: the data path alone, with no
 * handshake and no credentials. */
static void
pair_open_keyed(struct pair *p, bool nonblocking_client)
{
	uint8_t a[REC_SECRET_SIZE], b[REC_SECRET_SIZE];

	randombytes_buf(a, sizeof(a));
	randombytes_buf(b, sizeof(b));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	p->client = conn_new_keyed(p->fd[0], CONN_NEW_CLIENT |
	    (nonblocking_client ? CONN_NEW_NONBLOCKING : 0), rec_cipher_best(),
	    a, b);
	p->server = conn_new_keyed(p->fd[1], 0, rec_cipher_best(), b, a);
	ck_assert_ptr_nonnull(p->client);
	ck_assert_ptr_nonnull(p->server);
}

/* Two ends that run the real handshake first (credentials needed). */
static void
pair_open(struct pair *p, bool nonblocking_client)
{
	ck_assert_msg(creds_ready(), "cannot create credentials (set "
	    "TLSHIM_KEYS to the tlshim-keys binary)");
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	p->client = conn_new(p->fd[0], CONN_NEW_CLIENT |
	    (nonblocking_client ? CONN_NEW_NONBLOCKING : 0));
	p->server = conn_new(p->fd[1], 0);
	ck_assert_ptr_nonnull(p->client);
	ck_assert_ptr_nonnull(p->server);
	ck_assert_int_eq(progress_watch(p->client), 0);
	ck_assert_int_eq(progress_watch(p->server), 0);
}

struct transfer {
	struct conn *c;
	const uint8_t *data;
	size_t len;
	ssize_t result;
};

static void *
sender(void *arg)
{
	struct transfer *t = arg;
	size_t done = 0;

	while (done < t->len) {
		/* Odd sizes so records and writes never line up. */
		size_t want = t->len - done < 70001 ? t->len - done : 70001;
		struct iovec iov = { (void *)(t->data + done), want };
		ssize_t n = conn_send(t->c, &iov, 1, MSG_NOSIGNAL);

		if (n == -EINTR)
			continue;
		if (n < 0) {
			t->result = n;
			return NULL;
		}
		done += (size_t)n;
	}
	t->result = (ssize_t)done;
	return NULL;
}

/* Receive until ${len} bytes, EOF or error; returns count or -errno. */
static ssize_t
receive(struct conn *c, uint8_t *out, size_t len)
{
	size_t done = 0, sizes[] = { 1, 7, 4096, 65536, 100000 };
	int i = 0;

	while (done < len) {
		size_t want = sizes[i++ % 5];
		struct iovec iov;
		ssize_t n;

		if (want > len - done)
			want = len - done;
		iov.iov_base = out + done;
		iov.iov_len = want;
		n = conn_recv(c, &iov, 1, 0);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			return done > 0 && n == 0 ? (ssize_t)done : n;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static struct pair p_shared;

/* Receives t->len bytes from t->c into a buffer it allocates (t->data). */
static void *
receiver(void *arg)
{
	struct transfer *t = arg;
	uint8_t *buf = malloc(t->len);

	t->result = receive(t->c, buf, t->len);
	t->data = buf;
	return NULL;
}

static void
exchange(struct pair *p, size_t len)
{
	uint8_t *data = malloc(len), *got = malloc(len);
	struct transfer t = { p->client, data, len, 0 };
	pthread_t th;

	randombytes_buf(data, len);
	pthread_create(&th, NULL, sender, &t);
	ck_assert_int_eq(receive(p->server, got, len), (ssize_t)len);
	pthread_join(th, NULL);
	ck_assert_int_eq(t.result, (ssize_t)len);
	ck_assert(memcmp(data, got, len) == 0);
	free(data);
	free(got);
}

static void
pair_close(struct pair *p)
{
	uint8_t b;
	struct iovec iov = { &b, 1 };

	ssize_t n;

	conn_close(p->client);
	/* The client's authenticated close record reads as EOF (a blocking
	 * receive may be interrupted by a signal first, as in the kernel). */
	while ((n = conn_recv(p->server, &iov, 1, 0)) == -EINTR)
		;
	ck_assert_int_eq(n, 0);
	conn_close(p->server);
	conn_unref(p->client);
	conn_unref(p->server);
	libc.close(p->fd[0]);
	libc.close(p->fd[1]);
}

START_TEST(transfer_plain_transport)
{
	struct pair p;

	pair_open_keyed(&p, false);
	exchange(&p, 3 << 20);
	pair_close(&p);
}
END_TEST

START_TEST(transfer_one_byte_at_a_time_with_eagain_and_eintr)
{
	struct pair p;

	atomic_store(&script_chunk, 1);
	atomic_store(&script_eagain, 3);
	atomic_store(&script_eintr, 7);
	pair_open_keyed(&p, false);
	exchange(&p, 200000);
	pair_close(&p);
}
END_TEST

START_TEST(short_writes_and_rekeying)
{
	struct pair p;

	config.rekey_records = 3;
	atomic_store(&script_chunk, 9973);
	atomic_store(&script_eagain, 5);
	pair_open_keyed(&p, false);
	exchange(&p, 4 << 20);
	pair_close(&p);
}
END_TEST

START_TEST(send_during_handshake_is_queued)
{
	struct pair p;
	uint8_t got[12];
	struct iovec iov = { (void *)"NCCL-magic!!", 12 };

	/* Like a rank that connects, sends at once and then blocks
	 * elsewhere: the non-blocking send must take all 12 bytes. */
	atomic_store(&script_chunk, 1);
	pair_open(&p, true);
	ck_assert_int_eq(conn_send(p.client, &iov, 1, MSG_DONTWAIT), 12);
	ck_assert_int_eq(receive(p.server, got, 12), 12);
	ck_assert(memcmp(got, "NCCL-magic!!", 12) == 0);
	pair_close(&p);
}
END_TEST

START_TEST(blocking_send_larger_than_the_queue_is_taken_whole)
{
	size_t len = 3 << 20;
	uint8_t *data = malloc(len), *got = malloc(len);
	struct transfer t = { NULL, data, len, 0 };
	struct iovec iov = { data, len };
	pthread_t th;
	ssize_t n;

	randombytes_buf(data, len);
	pair_open(&p_shared, false);
	/* Sent before the handshake can have finished: a blocking send,
	 * like the kernel's, returns only when all 3 MiB are accepted. */
	t.c = p_shared.server;
	pthread_create(&th, NULL, receiver, &t);
	n = conn_send(p_shared.client, &iov, 1, MSG_NOSIGNAL);
	ck_assert_int_eq(n, (ssize_t)len);
	pthread_join(th, NULL);
	ck_assert_int_eq(t.result, (ssize_t)len);
	ck_assert(memcmp(t.data, data, len) == 0);
	free((void *)t.data);
	pair_close(&p_shared);
	free(data);
	free(got);
}
END_TEST

START_TEST(corrupted_record_is_rejected)
{
	struct pair p;
	uint8_t *got = malloc(1 << 20), *data = malloc(1 << 20);
	struct transfer t = { NULL, data, 1 << 20, 0 };
	pthread_t th;
	ssize_t n;

	memset(data, 'P', 1 << 20);
	pair_open_keyed(&p, false);
	t.c = p.client;
	/* Past the handshake, inside the data records. */
	atomic_store(&script_corrupt_at, 5000 + 300000);
	pthread_create(&th, NULL, sender, &t);
	n = receive(p.server, got, 1 << 20);
	ck_assert_int_eq(n, -ECONNRESET);
	/* And the connection stays failed. */
	{
		struct iovec iov = { got, 10 };

		ck_assert_int_eq(conn_recv(p.server, &iov, 1, 0), -ECONNRESET);
	}
	conn_close(p.server);
	libc.shutdown(p.fd[1], SHUT_RDWR);
	pthread_join(th, NULL);
	conn_close(p.client);
	conn_unref(p.client);
	conn_unref(p.server);
	free(got);
	free(data);
}
END_TEST

START_TEST(truncation_is_detected)
{
	struct pair p;
	uint8_t got[100];
	struct iovec iov = { (void *)"partial data", 12 };

	pair_open_keyed(&p, false);
	ck_assert_int_eq(conn_send(p.client, &iov, 1, 0), 12);
	ck_assert_int_eq(receive(p.server, got, 12), 12);
	/* The TCP stream ends without a close record. */
	libc.shutdown(p.fd[0], SHUT_WR);
	iov.iov_base = got;
	iov.iov_len = sizeof(got);
	ck_assert_int_eq(conn_recv(p.server, &iov, 1, 0), -ECONNRESET);
	conn_unref(p.client);
	conn_unref(p.server);
}
END_TEST

/* Small records that arrive together are read in one go: a receive hands
 * out all of them that fit, as the kernel hands out all it holds; and
 * records read ahead while the kernel holds nothing more still make the
 * connection readable. */
START_TEST(small_records_together_are_handed_out_together)
{
	struct pair p;
	uint8_t sent[40 * 33], got[sizeof(sent) + 100];
	struct pollfd kernel = { .events = POLLIN };
	struct iovec iov;
	size_t off = 0;
	short kev;
	bool hs;
	int i;

	config.rekey_records = 7;	/* key changes between the records */
	pair_open_keyed(&p, false);
	randombytes_buf(sent, sizeof(sent));
	for (i = 0; i < 40; i++) {
		iov = (struct iovec){ sent + off, 33 };
		ck_assert_int_eq(conn_send(p.client, &iov, 1, 0), 33);
		off += 33;
	}
	/* The first message alone fits: the rest is read ahead, and the
	 * kernel holds nothing. */
	iov = (struct iovec){ got, 10 };
	ck_assert_int_eq(conn_recv(p.server, &iov, 1, MSG_DONTWAIT), 10);
	/* A receive of nothing (gRPC makes them) returns 0 at once while
	 * plaintext and records read ahead are waiting (it once spun). */
	iov = (struct iovec){ got + 10, 0 };
	ck_assert_int_eq(conn_recv(p.server, &iov, 1, MSG_DONTWAIT), 0);
	ck_assert_int_eq(conn_recv(p.server, &iov, 0, 0), 0);
	iov = (struct iovec){ got + 10, 23 };
	ck_assert_int_eq(conn_recv(p.server, &iov, 1, MSG_DONTWAIT), 23);
	kernel.fd = p.fd[1];
	ck_assert_int_eq(libc.poll(&kernel, 1, 0), 0);
	ck_assert(conn_poll(p.server, POLLIN, &kev, &hs) & POLLIN);
	/* One receive with room hands out everything. */
	iov = (struct iovec){ got + 33, sizeof(got) - 33 };
	ck_assert_int_eq(conn_recv(p.server, &iov, 1, MSG_DONTWAIT),
	    (ssize_t)sizeof(sent) - 33);
	ck_assert(memcmp(got, sent, sizeof(sent)) == 0);
	ck_assert(!(conn_poll(p.server, POLLIN, &kev, &hs) & POLLIN));
	ck_assert_int_eq(conn_recv(p.server, &iov, 1, MSG_DONTWAIT), -EAGAIN);
	pair_close(&p);
}
END_TEST

START_TEST(missing_credentials_fail_closed)
{
	struct pair p;
	ssize_t n;
	uint8_t got[10];
	struct iovec iov = { (void *)"secret", 6 };

	snprintf(config.dir, sizeof(config.dir), "%s/missing", creds_root);
	pair_open(&p, false);
	/* Queued while the handshake is attempted (never sent), or refused
	 * at once if the handshake already failed: a slow run (valgrind)
	 * sees the second. */
	n = conn_send(p.client, &iov, 1, 0);
	ck_assert(n == 6 || n == -ECONNREFUSED);
	iov.iov_base = got;
	iov.iov_len = sizeof(got);
	ck_assert_int_eq(conn_recv(p.client, &iov, 1, 0), -ECONNREFUSED);
	ck_assert_int_eq(conn_recv(p.server, &iov, 1, 0), -ECONNRESET);
	/* Nothing but a failed handshake crossed: no "secret" in the
	 * server's socket. */
	{
		uint8_t raw[4096];
		ssize_t seen = libc.recv(p.fd[1], raw, sizeof(raw), MSG_DONTWAIT);

		ck_assert(seen <= 0 || memmem(raw, (size_t)seen, "secret", 6) == NULL);
	}
	conn_close(p.client);
	conn_close(p.server);
	conn_unref(p.client);
	conn_unref(p.server);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("conn");
	int failed;

	creds_made = make_creds() == 0;
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, transfer_plain_transport);
	tcase_add_test(tc, transfer_one_byte_at_a_time_with_eagain_and_eintr);
	tcase_add_test(tc, short_writes_and_rekeying);
	tcase_add_test(tc, send_during_handshake_is_queued);
	tcase_add_test(tc, blocking_send_larger_than_the_queue_is_taken_whole);
	tcase_add_test(tc, corrupted_record_is_rejected);
	tcase_add_test(tc, truncation_is_detected);
	tcase_add_test(tc, small_records_together_are_handed_out_together);
	tcase_add_test(tc, missing_credentials_fail_closed);
	suite_add_tcase(s, tc);
	failed = run_suite(s);
	if (creds_made) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", creds_root);
		(void)!system(cmd);
	}
	return failed == 0 ? 0 : 1;
}
