#ifndef TLSHIM_KEYS_TLS_H
#define TLSHIM_KEYS_TLS_H

/*
 * The enrollment channel: TLS 1.3 (wolfSSL) between 'join'/'renew' and
 * 'serve', with a deadline on every connection (a stalled peer cannot hold
 * a server slot or a client forever) and framed keys_message exchange.
 *
 * The server presents the CA certificate itself, so a client checks the
 * server against the CA pin (sha256 of its public key) during the
 * handshake: a server with another key is refused before any secret is
 * sent. Renewal adds the node's current certificate (mutual TLS).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "keys.h"
#include "message.h"

struct keys_conn {
	int fd;
	WOLFSSL *ssl;
	long long deadline_ms;		/* CLOCK_MONOTONIC */
	bool timed_out;
	char peer[80];			/* "ADDR:PORT", for messages */
};

/*
 * keys_tls_client_ctx(pin, crt, crtlen, key, keylen):
 * A TLS 1.3 client context that accepts only a server whose certificate's
 * public key has ${pin}; with ${crt} and ${key} (PEM) it also
 * authenticates as that node. NULL on failure (printed).
 */
WOLFSSL_CTX *keys_tls_client_ctx(const char *pin, const uint8_t *crt,
    size_t crtlen, const uint8_t *key, size_t keylen);

/* keys_tls_server_pin(): the pin the server presented in the last failed
 * client handshake ("" if none was seen). */
const char *keys_tls_server_pin(void);

/* keys_tls_accept_pin(pin): also accept a server with this CA pin (after
 * keys_tls_client_ctx; a node's bundle during a CA rollover). 0 or -1. */
int keys_tls_accept_pin(const char *pin);

/* keys_tls_pin_accepted(pin): is ${pin} one of the accepted pins?
 * (compared in constant time) */
bool keys_tls_pin_accepted(const char *pin);

/* keys_tls_server_ctx(ca): the server context: presents the CA
 * certificate, verifies client certificates when sent. */
WOLFSSL_CTX *keys_tls_server_ctx(const struct keys_ca *ca);

/*
 * keys_tls_connect(ctx, hostport, timeout_s, c, why, whylen):
 * Connect to "HOST:PORT" (or "[V6]:PORT") and run the TLS handshake.
 * Returns KEYS_OK, KEYS_NETWORK, or KEYS_PIN; why says what went wrong.
 */
int keys_tls_connect(WOLFSSL_CTX *ctx, const char *hostport, int timeout_s,
    struct keys_conn *c, char *why, size_t whylen);

/* keys_tls_accept(ctx, fd, timeout_s, c, why, whylen): the server side of
 * the handshake on accepted socket ${fd} (owned by ${c} from now on).
 * 0 or -1. */
int keys_tls_accept(WOLFSSL_CTX *ctx, int fd, int timeout_s,
    struct keys_conn *c, char *why, size_t whylen);

/* keys_tls_binding(c, out): SHA-256 of the exporter value "EXPORTER-tlshim
 * enroll" of this channel, what a request's proof signs. 0 or -1. */
int keys_tls_binding(struct keys_conn *c, uint8_t out[32]);

/* keys_tls_send(c, m): one framed message. 0 or -1. */
int keys_tls_send(struct keys_conn *c, const struct keys_message *m);

/* keys_tls_recv(c, m, why, whylen): one framed, parsed message. 0 or -1. */
int keys_tls_recv(struct keys_conn *c, struct keys_message *m, char *why,
    size_t whylen);

/* keys_tls_close(c): close notify, free and close; safe to repeat. */
void keys_tls_close(struct keys_conn *c);

#endif
