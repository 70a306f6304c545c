#ifndef TLSHIM_HANDSHAKE_H
#define TLSHIM_HANDSHAKE_H

/*
 * The mutual TLS 1.3 handshake (wolfSSL) that authenticates both nodes and
 * yields the data channel's secrets. Like the record layer it never blocks:
 * handshake_step() does what the socket allows and says what it waits for,
 * so the progress thread can drive many handshakes at once.
 *
 * Rules: TLS 1.3 only, no session tickets, the peer's certificate must chain
 * to ca.crt, be within validity, not be a CA, and carry a URI SAN
 * spiffe://CLUSTER/[job/JOB/]node/NAME with our own CLUSTER, and JOB when
 * TLSHIM_JOB is set or, by default, when our own certificate names a job.
 * The peer's certificate must also carry, as an IP SAN, the address the
 * connection has at our end (see handshake_new): a node holding a valid
 * certificate cannot stand in for another at that one's address. Only
 * AEAD cipher suites are offered. ALPN picks the data channel cipher: "tlshim/1-aesgcm"
 * when both CPUs have AES-NI, else "tlshim/1-chacha". Secrets per direction
 * come from the exporter with labels "EXPORTER-tlshim client write" and
 * "EXPORTER-tlshim server write", context "tlshim/1 <alpn> TLSv1.3".
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "record.h"

struct handshake;

/*
 * handshake_new(fd, is_client, peer_addr, err, errlen):
 * Start a handshake on connected socket ${fd} (non-blocking at the kernel),
 * as TLS client when ${is_client}. ${peer_addr} is the peer's address (for
 * a client, the address it connected to; for a server, where the client
 * came from): the peer's certificate must carry it as an IP SAN, unless it
 * is loopback, not an IP address, or matched by TLSHIM_TRUST_NAT. Loads
 * the credentials from the configured directory on first use. Returns NULL
 * with a reason in ${err}.
 */
struct handshake *handshake_new(int fd, bool is_client,
    const struct sockaddr *peer_addr, char *err, size_t errlen);

/* handshake_set_fd(hs, fd): continue on another descriptor of the same
 * socket (after the application closed its own). */
void handshake_set_fd(struct handshake *hs, int fd);

/*
 * handshake_step(hs):
 * Advance as far as the socket allows. Returns 0 when authenticated,
 * -EAGAIN when waiting (see handshake_wants), or a negative errno on
 * failure with the reason in handshake_error().
 */
int handshake_step(struct handshake *hs) __attribute__((warn_unused_result));

/* handshake_wants(hs): POLLIN or POLLOUT, what -EAGAIN waits for. */
short handshake_wants(const struct handshake *hs);

/*
 * handshake_export(hs, cipher, tx_secret, rx_secret):
 * After success: the negotiated data cipher and the two directions'
 * secrets (ours to send, ours to receive). Returns 0 or -EPROTO.
 */
int handshake_export(struct handshake *hs, enum rec_cipher *cipher,
    uint8_t tx_secret[REC_SECRET_SIZE], uint8_t rx_secret[REC_SECRET_SIZE])
    __attribute__((warn_unused_result));

/*
 * handshake_unsent(hs), handshake_take_unsent(hs, out, cap):
 * Handshake bytes still to be written when the handshake completes (the
 * last flight, if the kernel was full). They must go out before any data
 * record; take moves up to ${cap} of them into ${out}.
 */
size_t handshake_unsent(const struct handshake *hs);
size_t handshake_take_unsent(struct handshake *hs, uint8_t *out, size_t cap);

/* handshake_peer(hs): the peer's identity URI ("" before success). */
const char *handshake_peer(const struct handshake *hs);

/* handshake_error(hs): why the handshake failed. */
const char *handshake_error(const struct handshake *hs);

/* handshake_suite(hs): the TLS cipher suite, for the log. */
const char *handshake_suite(struct handshake *hs);

/* handshake_free(hs): release wolfSSL's state; NULL is a no-op. */
void handshake_free(struct handshake *hs);

#endif
