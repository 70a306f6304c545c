/*
 * tlshim-keys join, renew and crl: a node's side of enrollment. join and
 * renew get the node's certificate from 'serve'; crl gets the current CRL.
 *
 * The node's private key is made here and never leaves the node. Until
 * the certificate arrives it waits in NODE_DIR/.pending.key (0600), so a
 * retried join (the answer was lost, the disk was full) asks again for the
 * same key, which the server treats as the same enrollment: a failed first
 * attempt does not burn a single-use token.
 */
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

#include "../shim/handshake.h"
#include "keys_tls.h"

#define DEFAULT_TIMEOUT 10
#define DEFAULT_RETRIES 3
#define PENDING_KEY ".pending.key"

struct enroll {
	const char *server;
	const char *dir;
	const char *pin;
	int timeout;
	int retries;
	/* renew: the node's current credentials, for mutual TLS, and the
	 * other CAs of its bundle (a rollover's new CA answers too) */
	char (*more_pins)[KEYS_PIN_SIZE];
	int more_count;
	const uint8_t *crt;
	size_t crt_len;
	const uint8_t *key;
	size_t key_len;
	ecc_key new_key;
	uint8_t key_pem[1024];
	size_t key_pem_len;
	struct keys_message *req;
	struct keys_message *resp;
	bool sent;		/* a request reached the server */
};

static int
parse_count(const char *s, int min, int max, int *out)
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

static bool
pin_ok(const char *pin)
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
static int
bundle_first_pin(const struct keys_message *resp, char pin[KEYS_PIN_SIZE])
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
	if (bundle_first_pin(e->resp, ca_pin) != 0 ||
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
	    handshake_uri_of_pem(crt_pem, *crt_len, uri, urilen) != 0)
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
enroll_run(struct enroll *e, WOLFSSL_CTX *ctx, WC_RNG *rng)
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
static int
enroll(struct enroll *e, const uint8_t *key, size_t key_len)
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
		rc = enroll_run(e, ctx, &rng);
		wolfSSL_CTX_free(ctx);
	}
	wc_ecc_free(&e->new_key);
out:
	wc_FreeRng(&rng);
	return rc;
}

/* --timeout and --retries, common to join and renew. */
static int
parse_attempts(int ch, const char *arg, struct enroll *e)
{
	if (parse_count(arg, ch == 't' ? 1 : 0, 3600, ch == 't' ? &e->timeout :
	    &e->retries) == 0)
		return 0;
	return keys_fail(KEYS_USAGE, "--%s takes a number", ch == 't' ?
	    "timeout" : "retries");
}

static void
join_usage(FILE *out)
{
	fprintf(out,
	    "usage: tlshim-keys join --server HOST:PORT --token TOKEN --pin PIN\n"
	    "                        --node NAME --out NODE_DIR [--ip ADDR,...]\n"
	    "                        [--force] [--timeout S] [--retries N]\n\n"
	    "Enrolls this node with 'tlshim-keys serve': makes the private key "
	    "here (it\nnever leaves the node), checks the server against PIN "
	    "before sending the\ntoken, and writes NODE_DIR/ca.crt, node.crt, "
	    "node.key (0600) and crl.pem.\n"
	    "  --token TOKEN   from 'tlshim-keys token' (or --token-file FILE, "
	    "- for\n                  standard input, or $TLSHIM_TOKEN)\n"
	    "  --pin PIN       from 'tlshim-keys pin': sha256:<hex> of the CA key\n"
	    "  --node NAME     the name to enroll as; the CA decides if it may\n"
	    "  --ip LIST       IP addresses to put in the certificate; peers "
	    "accept this\n                  node only at them (default: the "
	    "address it reaches\n                  the server from)\n"
	    "  --force         replace credentials already in NODE_DIR\n"
	    "  --timeout S     per attempt (default: %d); --retries N on network "
	    "errors (default: %d)\n"
	    "Exit codes: 0 ok, 1 bad arguments, 2 file problem, 3 credentials "
	    "exist,\n4 crypto failure, 5 refused by the server, 6 network or "
	    "protocol error,\n7 the server's CA does not match the pin.\n",
	    DEFAULT_TIMEOUT, DEFAULT_RETRIES);
}

/* A token from a file, or from standard input for "-" (so that it need
 * not appear on a command line, e.g. through ssh). */
static int
read_token_file(const char *path, char *token, size_t len)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int rc;

	if (strcmp(path, "-") == 0) {
		if ((buf = malloc(len + 1)) == NULL)
			return keys_fail(KEYS_FILE, "out of memory");
		n = fread(buf, 1, len, stdin);
		rc = KEYS_OK;
	} else if ((rc = keys_read_file(path, false, &buf, &n)) != KEYS_OK) {
		return rc;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
	    buf[n - 1] == ' '))
		n--;
	if (n == 0 || n >= len)
		rc = keys_fail(KEYS_USAGE, "%s does not hold a token", path);
	else
		memcpy(token, buf, n), token[n] = '\0';
	keys_free_secret(buf, n);
	return rc;
}

static int
enroll_alloc(struct enroll *e)
{
	e->req = calloc(1, sizeof(*e->req));
	e->resp = calloc(1, sizeof(*e->resp));
	return e->req && e->resp ? 0 : -1;
}

static void
enroll_free(struct enroll *e)
{
	keys_message_wipe(e->req);
	free(e->req);
	free(e->resp);
	sodium_memzero(e->key_pem, sizeof(e->key_pem));
}

static int
add_ips(struct keys_message *req, const char *list)
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

int
keys_join_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "token", required_argument, NULL, 'T' },
		{ "token-file", required_argument, NULL, 'F' },
		{ "pin", required_argument, NULL, 'p' },
		{ "node", required_argument, NULL, 'n' },
		{ "out", required_argument, NULL, 'o' },
		{ "ip", required_argument, NULL, 'i' },
		{ "force", no_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "retries", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct enroll e = { .timeout = DEFAULT_TIMEOUT,
	    .retries = DEFAULT_RETRIES };
	const char *node = NULL, *ips = NULL, *token_file = NULL;
	char token[KEYS_MESSAGE_TOKEN_MAX + 1] = "", path[4200];
	bool force = false, made_dir = false;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': e.server = optarg; break;
		case 'T':
			snprintf(token, sizeof(token), "%s", optarg);
			break;
		case 'F': token_file = optarg; break;
		case 'p': e.pin = optarg; break;
		case 'n': node = optarg; break;
		case 'o': e.dir = optarg; break;
		case 'i': ips = optarg; break;
		case 'f': force = true; break;
		case 't': case 'r':
			if (parse_attempts(ch, optarg, &e))
				return KEYS_USAGE;
			break;
		case 'h': join_usage(stdout); return KEYS_OK;
		default: join_usage(stderr); return KEYS_USAGE;
		}
	}
	if (token_file != NULL &&
	    (rc = read_token_file(token_file, token, sizeof(token))) != KEYS_OK)
		return rc;
	if (token[0] == '\0' && getenv("TLSHIM_TOKEN") != NULL)
		snprintf(token, sizeof(token), "%s", getenv("TLSHIM_TOKEN"));
	if (optind != argc || e.server == NULL || e.pin == NULL ||
	    node == NULL || e.dir == NULL || token[0] == '\0') {
		join_usage(stderr);
		return KEYS_USAGE;
	}
	if (!pin_ok(e.pin))
		return keys_fail(KEYS_USAGE, "--pin must be sha256: and 64 hex "
		    "digits, as printed by 'tlshim-keys pin'");
	if (!keys_name_ok(node))
		return keys_fail(KEYS_USAGE, "node name '%s' must be 1-63 of "
		    "[A-Za-z0-9._-]", node);
	if (enroll_alloc(&e) != 0 || add_ips(e.req, ips) != 0) {
		enroll_free(&e);
		return KEYS_USAGE;
	}
	e.req->verb = KEYS_VERB_JOIN;
	snprintf(e.req->token, sizeof(e.req->token), "%s", token);
	sodium_memzero(token, sizeof(token));
	snprintf(e.req->node, sizeof(e.req->node), "%s", node);

	made_dir = access(e.dir, F_OK) != 0;
	if ((rc = keys_mkdir(e.dir)) != KEYS_OK)
		goto out0;
	snprintf(path, sizeof(path), "%s/node.key", e.dir);
	if (!force && access(path, F_OK) == 0) {
		rc = keys_fail(KEYS_EXISTS, "%s exists; this node has joined "
		    "already (use --force to enroll again)", path);
		goto out0;
	}
	rc = enroll(&e, NULL, 0);
out0:
	if (rc != KEYS_OK && made_dir)
		(void)rmdir(e.dir);	/* only if empty */
	enroll_free(&e);
	return rc;
}

/* Seconds until ${pem} expires (negative when it has). */
static int
seconds_left(const uint8_t *pem, size_t len, long *left)
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

/* A node's current credentials, checked to be usable for mutual TLS. */
struct node_files {
	uint8_t *ca, *crt, *key;
	size_t ca_len, crt_len, key_len;
	/* of each CA in ca.crt: the server must have one */
	char pins[KEYS_TRUST_MAX + 1][KEYS_PIN_SIZE];
	int pin_count;
	long left;			/* seconds until node.crt expires */
};

static void
node_files_free(struct node_files *nf)
{
	free(nf->ca);
	free(nf->crt);
	keys_free_secret(nf->key, nf->key_len);
	memset(nf, 0, sizeof(*nf));
}

static int
node_files_load(const char *dir, struct node_files *nf)
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
	if (seconds_left(nf->crt, nf->crt_len, &nf->left) != 0)
		return keys_fail(KEYS_FILE, "%s/node.crt is not a PEM "
		    "certificate", dir);
	if (nf->left <= 0)
		return keys_fail(KEYS_FILE, "%s/node.crt expired %ld s ago; "
		    "renewal needs a valid certificate: join again with a token",
		    dir, -nf->left);
	if (!handshake_key_matches(nf->crt, nf->crt_len, nf->key, nf->key_len))
		return keys_fail(KEYS_FILE, "%s/node.key does not match "
		    "%s/node.crt", dir, dir);
	return KEYS_OK;
}

static void
renew_usage(FILE *out)
{
	fprintf(out,
	    "usage: tlshim-keys renew --server HOST:PORT --dir NODE_DIR\n"
	    "                         [--within DURATION] [--ip ADDR,...]\n"
	    "                         [--timeout S] [--retries N]\n\n"
	    "Gets a new certificate for a new key, authenticated by the node's "
	    "current\ncertificate (mutual TLS), and replaces NODE_DIR/node.key "
	    "and node.crt.\nRunning tlshim processes use the new files for their "
	    "next connections;\nopen connections continue.\n"
	    "  --within DURATION  only renew when less than this is left "
	    "(e.g. 12h)\n"
	    "  --ip LIST          IP SANs (default: those of the current "
	    "certificate)\n"
	    "Exit codes as for join; 2 also when node.crt has expired (join "
	    "again).\n");
}

int
keys_renew_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },
		{ "within", required_argument, NULL, 'w' },
		{ "ip", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 't' },
		{ "retries", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct enroll e = { .timeout = DEFAULT_TIMEOUT,
	    .retries = DEFAULT_RETRIES };
	const char *ips = NULL;
	struct node_files nf = { 0 };
	char cert_ips[512];
	long within = 0;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': e.server = optarg; break;
		case 'd': e.dir = optarg; break;
		case 'i': ips = optarg; break;
		case 'w':
			if (keys_parse_duration(optarg, &within))
				return keys_fail(KEYS_USAGE, "--within '%s' is not "
				    "a duration like 12h", optarg);
			break;
		case 't': case 'r':
			if (parse_attempts(ch, optarg, &e))
				return KEYS_USAGE;
			break;
		case 'h': renew_usage(stdout); return KEYS_OK;
		default: renew_usage(stderr); return KEYS_USAGE;
		}
	}
	if (optind != argc || e.server == NULL || e.dir == NULL) {
		renew_usage(stderr);
		return KEYS_USAGE;
	}
	if ((rc = node_files_load(e.dir, &nf)) != KEYS_OK)
		goto out0;
	if (within > 0 && nf.left > within) {
		printf("%s/node.crt is valid for another %ld h; not renewing\n",
		    e.dir, nf.left / 3600);
		rc = KEYS_OK;
		goto out0;
	}
	if (ips == NULL && keys_cert_ips(nf.crt, nf.crt_len, cert_ips,
	    sizeof(cert_ips)) == 0 && cert_ips[0] != '\0')
		ips = cert_ips;
	if (enroll_alloc(&e) != 0 || add_ips(e.req, ips) != 0) {
		rc = KEYS_USAGE;
		goto out1;
	}
	e.req->verb = KEYS_VERB_RENEW;
	e.pin = nf.pins[0];
	e.more_pins = nf.pins + 1;
	e.more_count = nf.pin_count - 1;
	e.crt = nf.crt;
	e.crt_len = nf.crt_len;
	rc = enroll(&e, nf.key, nf.key_len);
out1:
	enroll_free(&e);
out0:
	node_files_free(&nf);
	return rc;
}

static void
crl_usage(FILE *out)
{
	fprintf(out,
	    "usage: tlshim-keys crl --server HOST:PORT --dir NODE_DIR "
	    "[--timeout S]\n\n"
	    "Fetches the CA's current CRLs and CA bundle, authenticated by the "
	    "node's\ncertificate (mutual TLS, server checked against ca.crt), "
	    "checks them and\nwrites NODE_DIR/crl.pem and ca.crt together. "
	    "Running tlshim processes refuse\nthe peers listed from their next "
	    "handshake, and trust the CAs of a rollover.\nRun it from a timer "
	    "to spread revocations.\n"
	    "Exit codes as for join.\n");
}

/*
 * What a refresh installs must hold together: every CRL signed by a CA of
 * the new bundle, and this node's certificate still verifying against it
 * (a bundle without the node's CA would cut the node off: renew first).
 */
static int
refresh_check(const struct node_files *nf, const uint8_t *ca_pem,
    size_t ca_len, const uint8_t *crl, size_t crl_len, const char **why)
{
	const uint8_t *starts[KEYS_TRUST_MAX + 1];
	size_t lens[KEYS_TRUST_MAX + 1];
	WOLFSSL_CERT_MANAGER *cm = wolfSSL_CertManagerNew();
	int n, i, rc = -1;

	*why = "the CA bundle is malformed";
	if (cm == NULL || wolfSSL_CertManagerLoadCABuffer(cm, ca_pem,
	    (long)ca_len, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
		goto out;
	*why = "the server's CAs do not include the one that issued this "
	    "node's certificate: renew it first (tlshim-keys renew)";
	if (wolfSSL_CertManagerVerifyBuffer(cm, nf->crt, (long)nf->crt_len,
	    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
		goto out;
	*why = "a CRL is not signed by a CA of the bundle";
	n = crl_len > 0 ? keys_der_split(crl, crl_len, starts, lens,
	    KEYS_TRUST_MAX + 1) : 0;
	if (n < 0 || wolfSSL_CertManagerEnableCRL(cm, WOLFSSL_CRL_CHECK) !=
	    WOLFSSL_SUCCESS)
		goto out;
	for (i = 0; i < n; i++)
		if (wolfSSL_CertManagerLoadCRLBuffer(cm, starts[i], (long)lens[i],
		    WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)
			goto out;
	rc = 0;
out:
	if (cm != NULL)
		wolfSSL_CertManagerFree(cm);
	return rc;
}

int
keys_crl_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct enroll e = { .timeout = DEFAULT_TIMEOUT };
	struct node_files nf = { 0 };
	struct keys_conn c = { .fd = -1 };
	WOLFSSL_CTX *ctx = NULL;
	char why[512], ca_pin[KEYS_PIN_SIZE];
	static uint8_t pem[160 * 1024], ca_pem[16 * 1024];
	size_t pem_len = sizeof(pem), ca_len = sizeof(ca_pem);
	const char *problem = "";
	int ch, rc, i;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': e.server = optarg; break;
		case 'd': e.dir = optarg; break;
		case 't':
			if (parse_attempts(ch, optarg, &e))
				return KEYS_USAGE;
			break;
		case 'h': crl_usage(stdout); return KEYS_OK;
		default: crl_usage(stderr); return KEYS_USAGE;
		}
	}
	if (optind != argc || e.server == NULL || e.dir == NULL) {
		crl_usage(stderr);
		return KEYS_USAGE;
	}
	if ((rc = node_files_load(e.dir, &nf)) != KEYS_OK)
		goto out;
	if (enroll_alloc(&e) != 0 || (ctx = keys_tls_client_ctx(nf.pins[0],
	    nf.crt, nf.crt_len, nf.key, nf.key_len)) == NULL) {
		rc = KEYS_FILE;
		goto out;
	}
	for (i = 1; i < nf.pin_count; i++)
		(void)keys_tls_accept_pin(nf.pins[i]);
	e.req->verb = KEYS_VERB_CRL;
	if ((rc = keys_tls_connect(ctx, e.server, e.timeout, &c, why,
	    sizeof(why))) != KEYS_OK) {
		keys_fail(rc, "%s", why);
		goto out;
	}
	rc = KEYS_NETWORK;
	if (keys_tls_send(&c, e.req) != 0 ||
	    keys_tls_recv(&c, e.resp, why, sizeof(why)) != 0) {
		keys_fail(rc, "%s: %s (does the server still trust this node's "
		    "certificate? revoked, or of a CA it no longer trusts: join "
		    "again)", e.server, why);
		goto out;
	}
	if (e.resp->verb == KEYS_VERB_ERROR) {
		rc = keys_fail(KEYS_DENIED, "%s refused: %s: %s", e.server,
		    e.resp->code, e.resp->message);
		goto out;
	}
	if (e.resp->verb != KEYS_VERB_OK || bundle_first_pin(e.resp, ca_pin) ||
	    !keys_tls_pin_accepted(ca_pin)) {
		rc = keys_fail(KEYS_PIN, "the server's CA is not one of %s/ca.crt",
		    e.dir);
		goto out;
	}
	if (keys_bundle_pem(e.resp->ca, e.resp->ca_len, CERT_TYPE, ca_pem,
	    &ca_len) != 0 || (e.resp->crl_len > 0 && keys_bundle_pem(e.resp->crl,
	    e.resp->crl_len, CRL_TYPE, pem, &pem_len) != 0)) {
		rc = keys_fail(KEYS_NETWORK, "%s sent a malformed answer", e.server);
		goto out;
	}
	if (refresh_check(&nf, ca_pem, ca_len, e.resp->crl, e.resp->crl_len,
	    &problem) != 0) {
		rc = keys_fail(KEYS_NETWORK, "%s: nothing written: %s", e.server,
		    problem);
		goto out;
	}
	{
		/* ca.crt and crl.pem together: a CA leaves the bundle with
		 * its CRL. */
		const char *names[2] = { "ca.crt", "crl.pem" };
		const uint8_t *data[2] = { ca_pem, pem };
		size_t lens[2] = { ca_len, pem_len };
		int modes[2] = { 0644, 0644 };

		rc = keys_write_files(e.dir, names, data, lens, modes,
		    e.resp->crl_len > 0 ? 2 : 1, true);
	}
	if (rc == KEYS_OK) {
		char pins[KEYS_TRUST_MAX + 1][KEYS_PIN_SIZE];
		int cas = keys_bundle_pins(ca_pem, ca_len, pins,
		    KEYS_TRUST_MAX + 1);

		printf("wrote %s/ca.crt (%d CA%s) and %s\n", e.dir, cas,
		    cas == 1 ? "" : "s", e.resp->crl_len > 0 ? "crl.pem" :
		    "no crl.pem (no CRL is published yet)");
	}
out:
	keys_tls_close(&c);
	if (ctx != NULL)
		wolfSSL_CTX_free(ctx);
	enroll_free(&e);
	node_files_free(&nf);
	return rc;
}
