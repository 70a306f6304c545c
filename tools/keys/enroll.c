/* The enrollment exchange shared by join, renew and crl (enroll.h). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "../../shim/identity.h"
#include "enroll.h"

#define PENDING_KEY ".pending.key"

static int
enroll_parse_count(const char *s, int min, int max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

bool
enroll_pin_ok(const char *pin)
{
	return strlen(pin) == KEYS_PIN_SIZE - 1 &&
	    strncmp(pin, "sha256:", 7) == 0 &&
	    strspn(pin + 7, "0123456789abcdef") == KEYS_PIN_SIZE - 8;
}

/* The key of an earlier attempt, or a new one saved before it is used. */
static int
pending_key(struct enroll *e, WC_RNG *rng)
{
	char path[4200];
	uint8_t *pem = NULL, der[512];
	size_t len = 0;
	int n, rc;

	snprintf(path, sizeof(path), "%s/%s", e->dir, PENDING_KEY);
	if (access(path, F_OK) == 0) {
		if ((rc = keys_read_file(path, true, &pem, &len)) != KEYS_OK)
			return rc;
		rc = keys_ecc_from_pem(pem, len, &e->new_key) == 0 &&
		    len < sizeof(e->key_pem) ? KEYS_OK : keys_fail(KEYS_FILE,
		    "%s is not a key; remove it", path);
		if (rc == KEYS_OK) {
			memcpy(e->key_pem, pem, len);
			e->key_pem_len = len;
			fprintf(stderr, "tlshim-keys: using the key of an earlier "
			    "attempt (%s)\n", path);
		}
		keys_free_secret(pem, len);
		return rc;
	}
	if (keys_ecc_new(rng, &e->new_key) != 0)
		return keys_fail(KEYS_CRYPTO, "cannot generate a key");
	e->key_pem_len = sizeof(e->key_pem);
	if ((n = wc_EccKeyToDer(&e->new_key, der, sizeof(der))) <= 0 ||
	    keys_pem(der, (size_t)n, ECC_PRIVATEKEY_TYPE, e->key_pem,
	    &e->key_pem_len)) {
		sodium_memzero(der, sizeof(der));
		return keys_fail(KEYS_CRYPTO, "cannot encode the key");
	}
	sodium_memzero(der, sizeof(der));
	{
		const char *names[1] = { PENDING_KEY };
		const uint8_t *data[1] = { e->key_pem };
		int modes[1] = { 0600 };

		return keys_write_files(e->dir, names, data, &e->key_pem_len,
		    modes, 1, false);
	}
}

/*
 * Without --ip, the certificate names the address this node reaches the
 * server from: peers check that a node's certificate carries the address
 * it connects from and is reached at, and on a flat cluster network that
 * is the one. A multi-homed node lists its addresses with --ip.
 */
static void
add_own_address(struct keys_message *req, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char text[INET6_ADDRSTRLEN];
	const void *bytes;
	int family;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		family = AF_INET;
		bytes = &((struct sockaddr_in *)&ss)->sin_addr;
	} else if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(
	    &((struct sockaddr_in6 *)&ss)->sin6_addr)) {
		family = AF_INET;
		bytes = &((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr[12];
	} else if (ss.ss_family == AF_INET6) {
		family = AF_INET6;
		bytes = &((struct sockaddr_in6 *)&ss)->sin6_addr;
	} else {
		return;
	}
	if (inet_ntop(family, bytes, text, sizeof(text)) != NULL)
		snprintf(req->ips[req->ip_count++], sizeof(req->ips[0]), "%s",
		    text);
}

/* One attempt: connect, prove the key, ask, read the answer. */
static int
exchange(struct enroll *e, WOLFSSL_CTX *ctx, WC_RNG *rng, char *why,
    size_t whylen)
{
	struct keys_conn c = { .fd = -1 };
	uint8_t binding[32];
	word32 sig_len = sizeof(e->req->proof);
	int rc;

	rc = keys_tls_connect(ctx, e->server, e->timeout, &c, why, whylen);
	if (rc != KEYS_OK)
		return rc;
	rc = KEYS_NETWORK;
	if (e->req->ip_count == 0)
		add_own_address(e->req, c.fd);
	if (keys_tls_binding(&c, binding) != 0 ||
	    wc_ecc_sign_hash(binding, sizeof(binding), e->req->proof, &sig_len,
	    rng, &e->new_key) != 0) {
		snprintf(why, whylen, "cannot sign the request");
		rc = KEYS_CRYPTO;
		goto out;
	}
	e->req->proof_len = sig_len;
	e->sent = true;		/* from here an answer may be lost */
	if (keys_tls_send(&c, e->req) != 0) {
		snprintf(why, whylen, "%s closed the connection", e->server);
		goto out;
	}
	if (keys_tls_recv(&c, e->resp, why, whylen) != 0)
		goto out;
	if (e->resp->verb == KEYS_VERB_ERROR) {
		snprintf(why, whylen, "%s refused: %s: %s", e->server,
		    e->resp->code, e->resp->message);
		rc = KEYS_DENIED;
	} else if (e->resp->verb != KEYS_VERB_OK || e->resp->cert_len == 0) {
		snprintf(why, whylen, "%s sent an unexpected answer", e->server);
	} else {
		rc = KEYS_OK;
	}
out:
	keys_tls_close(&c);
	return rc;
}

/* The pin of the first CA certificate of an answer's bundle. */
int
enroll_first_pin(const struct keys_message *resp, char pin[KEYS_PIN_SIZE])
{
	const uint8_t *starts[KEYS_TRUST_MAX + 1];
	size_t lens[KEYS_TRUST_MAX + 1];

	if (keys_der_split(resp->ca, resp->ca_len, starts, lens,
	    KEYS_TRUST_MAX + 1) <= 0)
		return -1;
	return keys_pin_of_der(starts[0], lens[0], pin);
}

/* What came back must be ours: the pinned CA, our key, a valid chain. */
static int
check_answer(struct enroll *e, uint8_t *ca_pem, size_t *ca_len,
    uint8_t *crt_pem, size_t *crt_len, char *uri, size_t urilen)
{
	char ca_pin[KEYS_PIN_SIZE];
	uint8_t spki[256];
	WOLFSSL_CERT_MANAGER *cm;
	WOLFSSL_X509 *x509;
	int n, rc = KEYS_NETWORK, spki_len = sizeof(spki);

	/* The bundle's first CA is the server's own: a pinned one. */
	if (enroll_first_pin(e->resp, ca_pin) != 0 ||
	    !keys_tls_pin_accepted(ca_pin))
		return keys_fail(KEYS_PIN, "the server sent a CA that does not "
		    "match the pin");
	if (keys_bundle_pem(e->resp->ca, e->resp->ca_len, CERT_TYPE, ca_pem,
	    ca_len) ||
	    keys_pem(e->resp->cert, e->resp->cert_len, CERT_TYPE, crt_pem,
	    crt_len))
		return keys_fail(rc, "the server sent malformed certificates");
	n = wc_EccPublicKeyToDer(&e->new_key, spki, sizeof(spki), 1);
	x509 = wolfSSL_X509_load_certificate_buffer(e->resp->cert,
	    (int)e->resp->cert_len, WOLFSSL_FILETYPE_ASN1);
	if (x509 == NULL || n <= 0)
		return keys_fail(rc, "the server sent a malformed certificate");
	{
		uint8_t got[256];
		int got_len = sizeof(got);

		if (wolfSSL_X509_get_pubkey_buffer(x509, got, &got_len) !=
		    WOLFSSL_SUCCESS || got_len != n ||
		    memcmp(got, spki, (size_t)n) != 0) {
			wolfSSL_X509_free(x509);
			return keys_fail(rc, "the certificate is not for our key");
		}
	}
	wolfSSL_X509_free(x509);
	(void)spki_len;
	cm = wolfSSL_CertManagerNew();
	if (cm == NULL || wolfSSL_CertManagerLoadCABuffer(cm, ca_pem,
	    (long)*ca_len, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
	    wolfSSL_CertManagerVerifyBuffer(cm, crt_pem, (long)*crt_len,
	    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
	    identity_uri_of_pem(crt_pem, *crt_len, uri, urilen) != 0)
		rc = keys_fail(rc, "the certificate does not verify against the "
		    "pinned CA");
	else
		rc = KEYS_OK;
	if (cm != NULL)
		wolfSSL_CertManagerFree(cm);
	return rc;
}

/* Ask (with retries for network trouble), check, write the files. */
static int
enroll_exchange_all(struct enroll *e, WOLFSSL_CTX *ctx, WC_RNG *rng)
{
	static uint8_t ca_pem[8192], crt_pem[8192], crl_pem[160 * 1024];
	size_t ca_len = sizeof(ca_pem), crt_len = sizeof(crt_pem);
	size_t crl_len = sizeof(crl_pem);
	char why[512], uri[256], path[4200];
	int attempt, rc = KEYS_NETWORK, count = 3;
	uint8_t spki[256];
	int n;

	if ((n = wc_EccPublicKeyToDer(&e->new_key, spki, sizeof(spki), 1)) <= 0)
		return keys_fail(KEYS_CRYPTO, "cannot encode the public key");
	memcpy(e->req->key, spki, (size_t)n);
	e->req->key_len = (size_t)n;
	for (attempt = 0; attempt <= e->retries; attempt++) {
		if (attempt > 0) {
			fprintf(stderr, "tlshim-keys: %s; retrying in %d s\n", why,
			    1 << (attempt - 1));
			sleep(1u << (attempt - 1));
		}
		rc = exchange(e, ctx, rng, why, sizeof(why));
		if (rc != KEYS_NETWORK)
			break;
	}
	if (rc != KEYS_OK) {
		keys_fail(rc, "%s", why);
		goto refused;
	}
	if ((rc = check_answer(e, ca_pem, &ca_len, crt_pem, &crt_len, uri,
	    sizeof(uri))) != KEYS_OK)
		goto refused;
	if (e->resp->crl_len == 0 || keys_bundle_pem(e->resp->crl,
	    e->resp->crl_len, CRL_TYPE, crl_pem, &crl_len) != 0)
		count = 3;
	else
		count = 4;
	{
		/* The key first: a reader that sees the new certificate
		 * finds its key already in place. */
		const char *names[] = { "node.key", "node.crt", "ca.crt",
		    "crl.pem" };
		const uint8_t *data[] = { e->key_pem, crt_pem, ca_pem, crl_pem };
		size_t lens[] = { e->key_pem_len, crt_len, ca_len, crl_len };
		int modes[] = { 0600, 0644, 0644, 0644 };

		if ((rc = keys_write_files(e->dir, names, data, lens, modes,
		    count, true)) != KEYS_OK) {
			fprintf(stderr, "tlshim-keys: the key is kept in %s/%s: "
			    "run the same command again to retry with it\n",
			    e->dir, PENDING_KEY);
			return rc;
		}
	}
	snprintf(path, sizeof(path), "%s/%s", e->dir, PENDING_KEY);
	(void)unlink(path);
	printf("%s %s; credentials in %s\n", e->req->verb == KEYS_VERB_JOIN ?
	    "joined as" : "renewed", uri, e->dir);
	return KEYS_OK;

refused:
	/* Nothing was issued for the key (or the answer is unusable): a
	 * refused request leaves no files. When a request was sent and the
	 * answer lost, the server may have issued: the key stays for the
	 * retry. */
	snprintf(path, sizeof(path), "%s/%s", e->dir, PENDING_KEY);
	if (rc == KEYS_NETWORK && e->sent)
		fprintf(stderr, "tlshim-keys: the key is kept in %s: run the "
		    "same command again to retry with it\n", path);
	else
		(void)unlink(path);
	return rc;
}

/* Key, channel, request, files: what join and renew share once their
 * request is ready. ${key} authenticates the channel for renew. */
int
enroll_request(struct enroll *e, const uint8_t *key, size_t key_len)
{
	WOLFSSL_CTX *ctx;
	WC_RNG rng;
	int rc, i;

	if (wc_InitRng(&rng) != 0)
		return keys_fail(KEYS_CRYPTO, "cannot start the random generator");
	if ((rc = pending_key(e, &rng)) != KEYS_OK)
		goto out;
	if ((ctx = keys_tls_client_ctx(e->pin, e->crt, e->crt_len, key,
	    key_len)) == NULL) {
		rc = e->crt != NULL ? KEYS_FILE : KEYS_CRYPTO;
	} else {
		for (i = 0; i < e->more_count; i++)
			(void)keys_tls_accept_pin(e->more_pins[i]);
		rc = enroll_exchange_all(e, ctx, &rng);
		wolfSSL_CTX_free(ctx);
	}
	wc_ecc_free(&e->new_key);
out:
	wc_FreeRng(&rng);
	return rc;
}

/* --timeout and --retries, common to join and renew. */
int
enroll_parse_attempts(int ch, const char *arg, struct enroll *e)
{
	if (enroll_parse_count(arg, ch == 't' ? 1 : 0, 3600, ch == 't' ? &e->timeout :
	    &e->retries) == 0)
		return 0;
	return keys_fail(KEYS_USAGE, "--%s takes a number", ch == 't' ?
	    "timeout" : "retries");
}

int
enroll_alloc(struct enroll *e)
{
	e->req = calloc(1, sizeof(*e->req));
	e->resp = calloc(1, sizeof(*e->resp));
	return e->req && e->resp ? 0 : -1;
}

void
enroll_free(struct enroll *e)
{
	keys_message_wipe(e->req);
	free(e->req);
	free(e->resp);
	sodium_memzero(e->key_pem, sizeof(e->key_pem));
}

int
enroll_add_ips(struct keys_message *req, const char *list)
{
	char *copy, *item, *save = NULL;

	if (list == NULL || list[0] == '\0')
		return 0;
	if (keys_check_list(list, true, KEYS_MESSAGE_IPS) ||
	    (copy = strdup(list)) == NULL)
		return -1;
	for (item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save))
		snprintf(req->ips[req->ip_count++], sizeof(req->ips[0]), "%s",
		    item);
	free(copy);
	return 0;
}

/* Seconds until ${pem} expires (negative when it has). */
static int
enroll_seconds_left(const uint8_t *pem, size_t len, long *left)
{
	WOLFSSL_X509 *x509;
	int days = 0, secs = 0, rc = -1;

	x509 = wolfSSL_X509_load_certificate_buffer(pem, (int)len,
	    WOLFSSL_FILETYPE_PEM);
	if (x509 == NULL)
		return -1;
	if (wolfSSL_ASN1_TIME_diff(&days, &secs, NULL,
	    wolfSSL_X509_get_notAfter(x509)) == WOLFSSL_SUCCESS) {
		*left = days * 86400L + secs;
		rc = 0;
	}
	wolfSSL_X509_free(x509);
	return rc;
}

void
enroll_node_files_free(struct node_files *nf)
{
	free(nf->ca);
	free(nf->crt);
	keys_free_secret(nf->key, nf->key_len);
	memset(nf, 0, sizeof(*nf));
}

int
enroll_node_files_load(const char *dir, struct node_files *nf)
{
	char path[4200];
	int rc;

	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	if ((rc = keys_read_file(path, false, &nf->ca, &nf->ca_len)) != KEYS_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/node.crt", dir);
	if ((rc = keys_read_file(path, false, &nf->crt, &nf->crt_len)) !=
	    KEYS_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/node.key", dir);
	if ((rc = keys_read_file(path, true, &nf->key, &nf->key_len)) !=
	    KEYS_OK)
		return rc;
	if ((nf->pin_count = keys_bundle_pins(nf->ca, nf->ca_len, nf->pins,
	    KEYS_TRUST_MAX + 1)) <= 0)
		return keys_fail(KEYS_FILE, "%s/ca.crt is not a PEM certificate "
		    "bundle", dir);
	if (enroll_seconds_left(nf->crt, nf->crt_len, &nf->left) != 0)
		return keys_fail(KEYS_FILE, "%s/node.crt is not a PEM "
		    "certificate", dir);
	if (nf->left <= 0)
		return keys_fail(KEYS_FILE, "%s/node.crt expired %ld s ago; "
		    "renewal needs a valid certificate: join again with a token",
		    dir, -nf->left);
	if (!identity_key_matches(nf->crt, nf->crt_len, nf->key, nf->key_len))
		return keys_fail(KEYS_FILE, "%s/node.key does not match "
		    "%s/node.crt", dir, dir);
	return KEYS_OK;
}
