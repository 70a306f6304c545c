/* The enrollment channel: TLS 1.3 with deadlines (keys_tls.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "tls.h"

static const char binding_label[] = "EXPORTER-tlshim enroll";

/* The client is a one-shot command: one set of pins per process (join
 * pins one CA; renew and crl accept any CA of the node's bundle). */
static char expected_pins[KEYS_TRUST_MAX + 1][KEYS_PIN_SIZE];
static int expected_count;
#define expected_pin expected_pins[0]
static char presented_pin[KEYS_PIN_SIZE];

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for ${events} until the connection's deadline. 0, or -1 timed out. */
static int
wait_until_deadline(struct keys_conn *c, short events)
{
	struct pollfd pfd = { .fd = c->fd, .events = events };
	long long left;
	int n;

	for (;;) {
		if ((left = c->deadline_ms - now_ms()) <= 0) {
			c->timed_out = true;
			return -1;
		}
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static int
io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct keys_conn *c = ctx;
	ssize_t n;

	(void)ssl;
	for (;;) {
		n = recv(c->fd, buf, (size_t)sz, MSG_DONTWAIT);
		if (n > 0)
			return (int)n;
		if (n == 0)
			return WOLFSSL_CBIO_ERR_CONN_CLOSE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return WOLFSSL_CBIO_ERR_CONN_RST;
		if (wait_until_deadline(c, POLLIN) != 0)
			return WOLFSSL_CBIO_ERR_TIMEOUT;
	}
}

static int
io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct keys_conn *c = ctx;
	ssize_t n;

	(void)ssl;
	for (;;) {
		n = send(c->fd, buf, (size_t)sz, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0)
			return (int)n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return errno == EPIPE ? WOLFSSL_CBIO_ERR_CONN_CLOSE :
			    WOLFSSL_CBIO_ERR_CONN_RST;
		if (wait_until_deadline(c, POLLOUT) != 0)
			return WOLFSSL_CBIO_ERR_TIMEOUT;
	}
}

/* The server's certificate is the CA's: accept exactly the pinned key.
 * The handshake's CertificateVerify then proves the server holds it. */
static int
pin_verify(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
	const uint8_t *der;
	int len = 0;

	(void)preverify;
	if (store == NULL || store->current_cert == NULL ||
	    store->error_depth != 0)
		return 0;
	der = wolfSSL_X509_get_der(store->current_cert, &len);
	if (der == NULL || keys_pin_of_der(der, (size_t)len, presented_pin) != 0)
		return 0;
	return keys_tls_pin_accepted(presented_pin);
}

bool
keys_tls_pin_accepted(const char *pin)
{
	int i, ok = 0;

	for (i = 0; i < expected_count; i++)
		ok |= sodium_memcmp(pin, expected_pins[i], KEYS_PIN_SIZE) == 0;
	return ok;
}

int
keys_tls_accept_pin(const char *pin)
{
	if (strlen(pin) != KEYS_PIN_SIZE - 1 ||
	    expected_count == KEYS_TRUST_MAX + 1)
		return -1;
	memcpy(expected_pins[expected_count++], pin, KEYS_PIN_SIZE);
	return 0;
}

const char *
keys_tls_server_pin(void)
{
	return presented_pin;
}

static WOLFSSL_CTX *
ctx_new(bool client)
{
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(client ? wolfTLSv1_3_client_method() :
	    wolfTLSv1_3_server_method());

	if (ctx == NULL) {
		keys_fail(KEYS_CRYPTO, "wolfSSL could not create a TLS context");
		return NULL;
	}
	wolfSSL_CTX_SetIORecv(ctx, io_recv);
	wolfSSL_CTX_SetIOSend(ctx, io_send);
	wolfSSL_CTX_no_ticket_TLSv13(ctx);
	return ctx;
}

WOLFSSL_CTX *
keys_tls_client_ctx(const char *pin, const uint8_t *crt, size_t crtlen,
    const uint8_t *key, size_t keylen)
{
	WOLFSSL_CTX *ctx;

	if (strlen(pin) != KEYS_PIN_SIZE - 1) {
		keys_fail(KEYS_USAGE, "a pin is sha256: and 64 hex digits");
		return NULL;
	}
	memcpy(expected_pin, pin, KEYS_PIN_SIZE);
	expected_count = 1;
	if ((ctx = ctx_new(true)) == NULL)
		return NULL;
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, pin_verify);
	if (crt != NULL && (wolfSSL_CTX_use_certificate_buffer(ctx, crt,
	    (long)crtlen, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_use_PrivateKey_buffer(ctx, key, (long)keylen,
	    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)) {
		keys_fail(KEYS_FILE, "node.crt or node.key is not usable");
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

WOLFSSL_CTX *
keys_tls_server_ctx(const struct keys_ca *ca)
{
	WOLFSSL_CTX *ctx;
	uint8_t key_der[256];
	int n;

	if ((ctx = ctx_new(false)) == NULL)
		return NULL;
	/* The private key goes to wolfSSL as DER straight from memory. */
	n = wc_EccKeyToDer((ecc_key *)&ca->key, key_der, sizeof(key_der));
	if (n <= 0 ||
	    wolfSSL_CTX_use_certificate_buffer(ctx, ca->crt_pem,
	    (long)ca->crt_len, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_use_PrivateKey_buffer(ctx, key_der, n,
	    WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_load_verify_buffer(ctx, ca->crt_pem, (long)ca->crt_len,
	    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		sodium_memzero(key_der, sizeof(key_der));
		keys_fail(KEYS_CRYPTO, "wolfSSL refused the CA as server "
		    "credentials");
		wolfSSL_CTX_free(ctx);
		return NULL;
	}
	sodium_memzero(key_der, sizeof(key_der));
	/* Client certificates are optional (join has none) but verified
	 * against the CA when sent (renew). */
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
	return ctx;
}

/* Split "HOST:PORT" or "[HOST]:PORT". */
static int
split_hostport(const char *hostport, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char *colon;
	size_t len;

	if (hostport[0] == '[') {
		const char *close = strchr(hostport, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		len = (size_t)(close - hostport - 1);
		hostport++;
		colon = close + 1;
	} else {
		if ((colon = strrchr(hostport, ':')) == NULL)
			return -1;
		len = (size_t)(colon - hostport);
	}
	if (len == 0 || len >= hostlen || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= portlen ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	memcpy(host, hostport, len);
	host[len] = '\0';
	snprintf(port, portlen, "%s", colon + 1);
	return 0;
}

static void
conn_start(struct keys_conn *c, int fd, int timeout_s)
{
	c->fd = fd;
	c->ssl = NULL;
	c->timed_out = false;
	c->deadline_ms = now_ms() + (long long)timeout_s * 1000;
}

/* Connect one address before the deadline. */
static int
connect_one(struct keys_conn *c, const struct addrinfo *ai, int *err)
{
	socklen_t len = sizeof(*err);
	int one = 1;

	c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (c->fd < 0) {
		*err = errno;
		return -1;
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	*err = errno;
	if (errno == EINPROGRESS) {
		if (wait_until_deadline(c, POLLOUT) != 0)
			*err = ETIMEDOUT;
		else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, err, &len) == 0 &&
		    *err == 0)
			return 0;
	}
	close(c->fd);
	c->fd = -1;
	return -1;
}

int
keys_tls_connect(WOLFSSL_CTX *ctx, const char *hostport, int timeout_s,
    struct keys_conn *c, char *why, size_t whylen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICSERV }, *res = NULL, *ai;
	char host[256], port[16], detail[80];
	int rc, err = 0;

	conn_start(c, -1, timeout_s);
	snprintf(c->peer, sizeof(c->peer), "%.79s", hostport);
	if (split_hostport(hostport, host, sizeof(host), port, sizeof(port))) {
		snprintf(why, whylen, "'%s' is not HOST:PORT", hostport);
		return KEYS_USAGE;
	}
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(why, whylen, "cannot resolve %s: %s", host,
		    gai_strerror(rc));
		return KEYS_NETWORK;
	}
	for (ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next)
		(void)connect_one(c, ai, &err);
	freeaddrinfo(res);
	if (c->fd < 0) {
		snprintf(why, whylen, "cannot connect to %s: %s", hostport,
		    strerror(err));
		return KEYS_NETWORK;
	}
	presented_pin[0] = '\0';
	if ((c->ssl = wolfSSL_new(ctx)) == NULL) {
		snprintf(why, whylen, "out of memory");
		keys_tls_close(c);
		return KEYS_NETWORK;
	}
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	if ((rc = wolfSSL_connect(c->ssl)) == WOLFSSL_SUCCESS)
		return KEYS_OK;
	rc = wolfSSL_get_error(c->ssl, rc);
	wolfSSL_ERR_error_string_n((unsigned long)rc, detail, sizeof(detail));
	if (presented_pin[0] != '\0' && !keys_tls_pin_accepted(presented_pin)) {
		snprintf(why, whylen, "%s presented CA key %s, not the pinned "
		    "%s: refusing it (nothing was sent)", hostport,
		    presented_pin, expected_pin);
		rc = KEYS_PIN;
	} else if (c->timed_out) {
		snprintf(why, whylen, "%s did not complete a TLS handshake in "
		    "%d s", hostport, timeout_s);
		rc = KEYS_NETWORK;
	} else {
		snprintf(why, whylen, "TLS handshake with %s failed: %s (is it "
		    "'tlshim-keys serve'? a renewing node's certificate must be "
		    "valid)", hostport, detail);
		rc = KEYS_NETWORK;
	}
	keys_tls_close(c);
	return rc;
}

int
keys_tls_accept(WOLFSSL_CTX *ctx, int fd, int timeout_s, struct keys_conn *c,
    char *why, size_t whylen)
{
	char detail[80];
	int rc, flags = fcntl(fd, F_GETFL);

	conn_start(c, fd, timeout_s);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
	    (c->ssl = wolfSSL_new(ctx)) == NULL) {
		snprintf(why, whylen, "cannot set up the connection");
		return -1;
	}
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	if ((rc = wolfSSL_accept(c->ssl)) == WOLFSSL_SUCCESS)
		return 0;
	rc = wolfSSL_get_error(c->ssl, rc);
	wolfSSL_ERR_error_string_n((unsigned long)rc, detail, sizeof(detail));
	if (c->timed_out)
		snprintf(why, whylen, "handshake not completed in %d s",
		    timeout_s);
	else
		snprintf(why, whylen, "TLS handshake failed: %s (%d)", detail, rc);
	return -1;
}

int
keys_tls_binding(struct keys_conn *c, uint8_t out[32])
{
	uint8_t secret[32];
	int rc;

	rc = wolfSSL_export_keying_material(c->ssl, secret, sizeof(secret),
	    binding_label, sizeof(binding_label) - 1, NULL, 0, 0);
	if (rc != WOLFSSL_SUCCESS) {
		sodium_memzero(secret, sizeof(secret));
		return -1;
	}
	crypto_hash_sha256(out, secret, sizeof(secret));
	sodium_memzero(secret, sizeof(secret));
	return 0;
}

/* Move exactly ${len} bytes through TLS, in either direction. */
static int
transfer_exact(struct keys_conn *c, uint8_t *data, size_t len, bool out)
{
	while (len > 0) {
		int chunk = len > 16384 ? 16384 : (int)len;
		int n = out ? wolfSSL_write(c->ssl, data, chunk) :
		    wolfSSL_read(c->ssl, data, chunk);

		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int
keys_tls_send(struct keys_conn *c, const struct keys_message *m)
{
	uint8_t *buf = malloc(KEYS_MESSAGE_MAX + 4);
	long len;
	int rc = -1;

	if (buf == NULL)
		return -1;
	if ((len = keys_message_format(m, buf + 4, KEYS_MESSAGE_MAX)) > 0) {
		buf[0] = (uint8_t)(len >> 24);
		buf[1] = (uint8_t)(len >> 16);
		buf[2] = (uint8_t)(len >> 8);
		buf[3] = (uint8_t)len;
		rc = transfer_exact(c, buf, (size_t)len + 4, true);
	}
	sodium_memzero(buf, KEYS_MESSAGE_MAX + 4);	/* may hold the token */
	free(buf);
	return rc;
}

int
keys_tls_recv(struct keys_conn *c, struct keys_message *m, char *why,
    size_t whylen)
{
	uint8_t header[4], *body;
	size_t len;
	int rc = -1;

	if (transfer_exact(c, header, sizeof(header), false) != 0) {
		snprintf(why, whylen, c->timed_out ? "timed out waiting for a "
		    "message" : "connection closed before a message");
		return -1;
	}
	len = (size_t)header[0] << 24 | (size_t)header[1] << 16 |
	    (size_t)header[2] << 8 | header[3];
	if (len == 0 || len > KEYS_MESSAGE_MAX) {
		snprintf(why, whylen, "message length %zu out of range", len);
		return -1;
	}
	if ((body = malloc(len)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (transfer_exact(c, body, len, false) != 0)
		snprintf(why, whylen, c->timed_out ? "timed out inside a "
		    "message" : "connection closed inside a message");
	else
		rc = keys_message_parse(body, len, m, why, whylen);
	sodium_memzero(body, len);
	free(body);
	return rc;
}

void
keys_tls_close(struct keys_conn *c)
{
	if (c->ssl != NULL) {
		if (!c->timed_out)
			(void)wolfSSL_shutdown(c->ssl);
		wolfSSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}
