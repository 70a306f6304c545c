#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>

#include <sodium.h>

#include "config.h"
#include "creds.h"
#include "decide.h"
#include "handshake.h"
#include "identity.h"
#include "log.h"
#include "policy.h"
#include "real.h"

#define ALPN_AES "tlshim/1-aesgcm"
#define ALPN_CHACHA "tlshim/1-chacha"
#define TLS_HEADER_SIZE 5
/* TLS 1.3 caps a record's body at 2^14 + 256 bytes. */
#define TLS_MAX_BODY (16384 + 256)
/* A handshake flight with certificates is a few kilobytes. */
#define HANDSHAKE_UNSENT_MAX (256 * 1024)

struct handshake {
	WOLFSSL *ssl;
	int fd;
	bool is_client;
	bool done;
	short wants;
	/* Handshake bytes the kernel has not taken yet. wolfSSL is told
	 * they were sent: wolfSSL 5.5.4 loses WANT_WRITE after a partial
	 * send in non-blocking TLS 1.3 (fixed upstream in PR #7001), so it
	 * must never see one. */
	uint8_t *unsent;
	size_t unsent_len;
	/* The receive guard: where we are in the peer's TLS record stream,
	 * so that wolfSSL never reads past the handshake's last record into
	 * the data channel. */
	uint8_t tls_header[TLS_HEADER_SIZE];
	size_t tls_header_have;
	size_t tls_body_left;
	char cluster[IDENTITY_NAME_MAX + 1];	/* ours: the peer's too */
	char job[128];			/* required of the peer, or "" */
	struct sockaddr_storage peer_addr;	/* must be in the peer's SANs */
	char peer[256];
	char error[512];
};

static int
handshake_io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct handshake *hs = ctx;
	size_t want;
	ssize_t n;

	(void)ssl;
	if (hs->tls_body_left == 0)
		want = TLS_HEADER_SIZE - hs->tls_header_have;
	else
		want = hs->tls_body_left;
	if (want > (size_t)sz)
		want = (size_t)sz;
	do {
		n = real.recv(hs->fd, buf, want, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n == 0)
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			hs->wants = POLLIN;
			return WOLFSSL_CBIO_ERR_WANT_READ;
		}
		return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST :
		    WOLFSSL_CBIO_ERR_GENERAL;
	}
	if (hs->tls_body_left == 0) {
		memcpy(hs->tls_header + hs->tls_header_have, buf, (size_t)n);
		hs->tls_header_have += (size_t)n;
		if (hs->tls_header_have == TLS_HEADER_SIZE) {
			hs->tls_body_left = ((size_t)hs->tls_header[3] << 8) |
			    hs->tls_header[4];
					hs->tls_header_have = 0;
			/* A zero or oversized length is wolfSSL's to reject;
			 * the guard only must not loop on it. */
			if (hs->tls_body_left == 0 ||
			    hs->tls_body_left > TLS_MAX_BODY)
				return WOLFSSL_CBIO_ERR_GENERAL;
		}
	} else {
		hs->tls_body_left -= (size_t)n;
	}
	return (int)n;
}

/* Write what is buffered; 0 when all is out, -EAGAIN, or -errno. */
static int
handshake_flush(struct handshake *hs)
{
	while (hs->unsent_len > 0) {
		ssize_t n = real.send(hs->fd, hs->unsent, hs->unsent_len,
		    MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EWOULDBLOCK ? -EAGAIN : -errno;
		memmove(hs->unsent, hs->unsent + n, hs->unsent_len - (size_t)n);
		hs->unsent_len -= (size_t)n;
	}
	return 0;
}

static int
handshake_io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct handshake *hs = ctx;
	uint8_t *grown;
	int rc;

	(void)ssl;
	if (hs->unsent_len + (size_t)sz > HANDSHAKE_UNSENT_MAX)
		return WOLFSSL_CBIO_ERR_GENERAL;
	if ((grown = realloc(hs->unsent, hs->unsent_len + (size_t)sz)) == NULL)
		return WOLFSSL_CBIO_ERR_GENERAL;
	hs->unsent = grown;
	memcpy(hs->unsent + hs->unsent_len, buf, (size_t)sz);
	hs->unsent_len += (size_t)sz;
	rc = handshake_flush(hs);
	if (rc != 0 && rc != -EAGAIN)
		return rc == -ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST :
		    WOLFSSL_CBIO_ERR_CONN_CLOSE;
	return sz;
}

struct handshake *
handshake_new(int fd, bool is_client, const struct sockaddr *peer_addr,
    char *err, size_t errlen)
{
	char alpn[64], own_job[128];
	struct handshake *hs;

	if ((hs = calloc(1, sizeof(*hs))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	hs->fd = fd;
	hs->is_client = is_client;
	hs->wants = is_client ? POLLOUT : POLLIN;
	hs->peer_addr.ss_family = AF_UNSPEC;
	if (peer_addr != NULL && (peer_addr->sa_family == AF_INET ||
	    peer_addr->sa_family == AF_INET6))
		memcpy(&hs->peer_addr, peer_addr, peer_addr->sa_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));

	hs->ssl = creds_session_new(is_client, hs->cluster, sizeof(hs->cluster),
	    own_job, sizeof(own_job), err, errlen);
	if (hs->ssl == NULL)
		goto err0;
	/* TLSHIM_JOB overrides; by default a job-scoped node talks only to
	 * nodes of its own job. */
	snprintf(hs->job, sizeof(hs->job), "%s", config.job[0] ? config.job :
	    own_job);
	wolfSSL_SSLSetIORecv(hs->ssl, handshake_io_recv);
	wolfSSL_SSLSetIOSend(hs->ssl, handshake_io_send);
	wolfSSL_SetIOReadCtx(hs->ssl, hs);
	wolfSSL_SetIOWriteCtx(hs->ssl, hs);
	wolfSSL_no_ticket_TLSv13(hs->ssl);
	snprintf(alpn, sizeof(alpn), "%s%s",
	    rec_cipher_best() == REC_AES256GCM ? ALPN_AES "," : "", ALPN_CHACHA);
	if (wolfSSL_UseALPN(hs->ssl, alpn, (unsigned)strlen(alpn),
	    WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "wolfSSL could not set ALPN");
		goto err1;
	}
	return hs;

err1:
	wolfSSL_free(hs->ssl);
err0:
	free(hs);
	return NULL;
}

void
handshake_set_fd(struct handshake *hs, int fd)
{
	hs->fd = fd;
}

/*
 * The peer's certificate must name the address the connection has at our
 * end: otherwise any enrolled node could answer for another (a hostile
 * route, ARP spoofing, a DNAT rule) or use a stolen key from anywhere.
 * Loopback and non-IP transports are on this host: nothing to bind.
 */
static int
handshake_check_address(struct handshake *hs, WOLFSSL_X509 *x509,
    const char *uri)
{
	const struct sockaddr *addr = (const struct sockaddr *)&hs->peer_addr;
	struct identity_sans sans;
	const unsigned char *der;
	char where[64], ips[200];
	int derlen = 0;

	if (addr->sa_family == AF_UNSPEC || policy_is_loopback(addr))
		return 0;
	identity_format_address(addr, where, sizeof(where));
	if ((der = wolfSSL_X509_get_der(x509, &derlen)) == NULL || derlen <= 0 ||
	    identity_sans_of_der(der, (size_t)derlen, &sans) != 0) {
		snprintf(hs->error, sizeof(hs->error), "peer certificate's "
		    "subject alternative names are malformed");
		return -EACCES;
	}
	if (identity_has_address(&sans, addr))
		return 0;
	identity_format_ips(&sans, ips, sizeof(ips));
	if (decide_nat_trusted(addr)) {
		log_msg(LOG_LEVEL_INFO, "peer %s at %s: its certificate's addresses "
		    "(%s) do not include it; accepted (TLSHIM_TRUST_NAT)", uri,
		    where, ips);
		return 0;
	}
	snprintf(hs->error, sizeof(hs->error), "peer %.100s %s %s, but its "
	    "certificate's addresses are: %.60s (a node answering for another? "
	    "behind NAT, set TLSHIM_TRUST_NAT)", uri,
	    hs->is_client ? "answered at" : "connected from", where, ips);
	return -EACCES;
}

/* Check the authenticated peer certificate against our identity rules. */
static int
handshake_check_peer(struct handshake *hs)
{
	char uri[256], job[IDENTITY_NAME_MAX + 1], node[IDENTITY_NAME_MAX + 1];
	WOLFSSL_X509 *x509;
	int rc = -EACCES;

	if ((x509 = wolfSSL_get_peer_certificate(hs->ssl)) == NULL) {
		snprintf(hs->error, sizeof(hs->error), "peer sent no certificate");
		return -EACCES;
	}
	if (wolfSSL_X509_get_isCA(x509)) {
		snprintf(hs->error, sizeof(hs->error),
		    "peer presented a CA certificate, not a node certificate");
		goto out;
	}
	if (identity_uri_of_x509(x509, uri, sizeof(uri)) != 0) {
		snprintf(hs->error, sizeof(hs->error),
		    "peer certificate has no single URI identity");
		goto out;
	}
	if (identity_node_split(uri, hs->cluster, job, node) != 0) {
		snprintf(hs->error, sizeof(hs->error), "peer identity %.120s is "
		    "not in cluster %.100s (a node of it is spiffe://%.100s/"
		    "[job/JOB/]node/NAME)", uri, hs->cluster, hs->cluster);
		goto out;
	}
	if (hs->job[0] != '\0' && strcmp(job, hs->job) != 0) {
		snprintf(hs->error, sizeof(hs->error),
		    "peer identity %.120s is not in job %.100s%s", uri, hs->job,
		    config.job[0] ? "" : " (the job of this node's certificate; "
		    "TLSHIM_JOB overrides)");
		goto out;
	}
	if ((rc = handshake_check_address(hs, x509, uri)) != 0)
		goto out;
	snprintf(hs->peer, sizeof(hs->peer), "%s", uri);
	rc = 0;
out:
	wolfSSL_X509_free(x509);
	return rc;
}

/* What wolfSSL reports when the other end is no TLS 1.3 peer at all: it
 * closed (a peer without the shim reads our ClientHello as garbage),
 * sent bytes that are no TLS record, or nothing it could parse. */
static bool
peer_speaks_no_tls(int err)
{
	return err == SOCKET_ERROR_E || err == DECRYPT_ERROR || err == WANT_READ;
}

int
handshake_step(struct handshake *hs)
{
	int rc, err;
	char detail[120];

	if (hs->done)
		return 0;
	if ((rc = handshake_flush(hs)) == -EAGAIN) {
		hs->wants = POLLOUT;
		return -EAGAIN;
	}
	if (rc != 0) {
		snprintf(hs->error, sizeof(hs->error), "TLS handshake failed: %s",
		    strerror(-rc));
		return rc;
	}
	rc = hs->is_client ? wolfSSL_connect(hs->ssl) : wolfSSL_accept(hs->ssl);
	if (rc != WOLFSSL_SUCCESS) {
		err = wolfSSL_get_error(hs->ssl, rc);
		if (err == WOLFSSL_ERROR_WANT_READ) {
			hs->wants = POLLIN;
			return -EAGAIN;
		}
		if (err == WOLFSSL_ERROR_WANT_WRITE) {
			hs->wants = POLLOUT;
			return -EAGAIN;
		}

			wolfSSL_ERR_error_string_n((unsigned long)err, detail,
		    sizeof(detail));
		snprintf(hs->error, sizeof(hs->error), "TLS handshake failed: %s "
		    "(%d)%s", detail, err, peer_speaks_no_tls(err) ?
		    "; is the peer running tlshim?" :
		    err == CRL_CERT_REVOKED ? "; the peer's certificate is "
		    "revoked (crl.pem)" : err == CRL_CERT_DATE_ERR ? "; crl.pem "
		    "is out of date: write a new one (tlshim-keys revoke)" :
		    err == ASN_BEFORE_DATE_E ? "; a certificate is not valid "
		    "yet by this node's clock: compare the nodes' clocks "
		    "(timedatectl) with the validity in tlshim-keys show" :
		    err == ASN_AFTER_DATE_E ? "; a certificate has expired by "
		    "this node's clock: renew it (tlshim-keys renew), or check "
		    "the clock (timedatectl)" : "");
		return -EPROTO;
	}
	/* Guard: the handshake must end on a record boundary with nothing
	 * buffered, or data-channel bytes would be lost or misread. */
	if (wolfSSL_pending(hs->ssl) != 0 || hs->tls_body_left != 0 ||
	    hs->tls_header_have != 0) {
		snprintf(hs->error, sizeof(hs->error),
		    "TLS handshake ended inside a record");
		return -EPROTO;
	}
	if ((rc = handshake_check_peer(hs)) != 0)
		return rc;
	hs->done = true;
	return 0;
}

short
handshake_wants(const struct handshake *hs)
{
	return hs->unsent_len > 0 ? (short)(hs->wants | POLLOUT) : hs->wants;
}

size_t
handshake_take_unsent(struct handshake *hs, uint8_t *out, size_t cap)
{
	size_t n = hs->unsent_len < cap ? hs->unsent_len : cap;

	memcpy(out, hs->unsent, n);
	memmove(hs->unsent, hs->unsent + n, hs->unsent_len - n);
	hs->unsent_len -= n;
	return n;
}

size_t
handshake_unsent(const struct handshake *hs)
{
	return hs->unsent_len;
}

int
handshake_export(struct handshake *hs, enum rec_cipher *cipher,
    uint8_t tx_secret[REC_SECRET_SIZE], uint8_t rx_secret[REC_SECRET_SIZE])
{
	static const char client_label[] = "EXPORTER-tlshim client write";
	static const char server_label[] = "EXPORTER-tlshim server write";
	char *proto = NULL;
	unsigned short protolen = 0;
	char context[64];
	int clen;

	if (wolfSSL_ALPN_GetProtocol(hs->ssl, &proto, &protolen) !=
	    WOLFSSL_SUCCESS || proto == NULL) {
		snprintf(hs->error, sizeof(hs->error), "no ALPN protocol agreed");
		return -EPROTO;
	}
	/* Public protocol names: an ordinary compare. */
	if (protolen == strlen(ALPN_AES) && memcmp(proto, ALPN_AES, protolen) == 0)
		*cipher = REC_AES256GCM;
	else if (protolen == strlen(ALPN_CHACHA) &&
	    memcmp(proto, ALPN_CHACHA, protolen) == 0)
		*cipher = REC_CHACHA20POLY1305;
	else {
		snprintf(hs->error, sizeof(hs->error), "unknown ALPN protocol");
		return -EPROTO;
	}
	clen = snprintf(context, sizeof(context), "tlshim/1 %.*s TLSv1.3",
	    (int)protolen, proto);
	if (wolfSSL_export_keying_material(hs->ssl,
	    hs->is_client ? tx_secret : rx_secret, REC_SECRET_SIZE,
	    client_label, sizeof(client_label) - 1, (unsigned char *)context,
	    (size_t)clen, 1) != WOLFSSL_SUCCESS ||
	    wolfSSL_export_keying_material(hs->ssl,
	    hs->is_client ? rx_secret : tx_secret, REC_SECRET_SIZE,
	    server_label, sizeof(server_label) - 1, (unsigned char *)context,
	    (size_t)clen, 1) != WOLFSSL_SUCCESS) {
		sodium_memzero(tx_secret, REC_SECRET_SIZE);
		sodium_memzero(rx_secret, REC_SECRET_SIZE);
		snprintf(hs->error, sizeof(hs->error), "TLS exporter failed");
		return -EPROTO;
	}
	return 0;
}

const char *
handshake_peer(const struct handshake *hs)
{
	return hs->done ? hs->peer : "";
}

const char *
handshake_error(const struct handshake *hs)
{
	return hs->error[0] ? hs->error : "unknown handshake error";
}

const char *
handshake_suite(struct handshake *hs)
{
	const char *name = wolfSSL_get_cipher_name(hs->ssl);

	return name != NULL ? name : "?";
}

void
handshake_free(struct handshake *hs)
{
	if (hs == NULL)
		return;
	/* wolfSSL_free wipes the session's key schedule. */
	wolfSSL_free(hs->ssl);
	free(hs->unsent);
	free(hs);
}
