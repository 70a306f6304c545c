/*
 * tlshim-keys serve: the enrollment server on the head node. Each client
 * gets its own thread and a deadline; issuance is serialised (one mutex
 * in the process, an flock on the CA directory across processes).
 *
 * join:  a token holder with a fresh key gets a certificate for the node
 *        name it asks for, when the token allows it: a token made for
 *        named nodes (--node) enrolls those names; any other token only a
 *        name no other key holds a live certificate for.
 * renew: a node authenticated by its current certificate gets a new one
 *        with the same identity for a new key.
 * crl:   a node authenticated the same way gets the current CRL.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "../../shim/identity.h"
#include "tls.h"

#define DEFAULT_TIMEOUT 10
#define DEFAULT_CLIENTS 64
/* An address with this many failures within RATE_WINDOW seconds is
 * refused until the window ends. */
#define RATE_FAILURES 10
#define RATE_WINDOW 60
#define RATE_SLOTS 256
/* Token files are deleted a day after they expire and records of expired
 * certificates at once (one token and N certificates per SLURM job add
 * up), at start and every hour. */
#define PRUNE_GRACE (24 * 3600)
#define PRUNE_INTERVAL 3600

struct server {
	struct keys_ca ca;
	struct keys_trusted trusted;	/* other CAs, during a rollover */
	WOLFSSL_CTX *ctx;
	long validity;
	int timeout;
	int max_clients;
	long count;		/* stop after this many certificates; 0: never */
	pthread_mutex_t lock;	/* issuance, counters, rate table */
	pthread_cond_t idle;
	int active;
	long issued;
	struct {
		char addr[INET6_ADDRSTRLEN];
		time_t since;
		int failures;
	} rate[RATE_SLOTS];
};

struct client {
	struct server *srv;
	int fd;
	char addr[INET6_ADDRSTRLEN];
	char peer[INET6_ADDRSTRLEN + 8];
};

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
serve_usage(FILE *out)
{
	fprintf(out,
	    "usage: tlshim-keys serve --ca CA_DIR --listen ADDR:PORT\n"
	    "                         [--validity DURATION] [--once | --count N]\n"
	    "                         [--timeout SECONDS] [--max-clients N]\n\n"
	    "Runs the enrollment server until stopped (SIGINT/SIGTERM). Nodes "
	    "enroll\nwith 'tlshim-keys join' (token) and renew with 'tlshim-keys "
	    "renew' (their\ncurrent certificate). Clients check this server "
	    "against the CA pin.\n"
	    "  --listen ADDR:PORT    address to listen on ([V6]:PORT for IPv6)\n"
	    "  --validity DURATION   certificate lifetime (default: %dd)\n"
	    "  --once, --count N     exit after issuing 1 or N certificates\n"
	    "  --timeout SECONDS     per-client deadline (default: %d)\n"
	    "  --max-clients N       clients served at once (default: %d)\n"
	    "An address with %d failed attempts in %d s is refused until the "
	    "minute ends\n(twice that many: closed without a handshake). "
	    "Requests and failures are\nlogged on stderr, a flood's up to the "
	    "limit; tokens and keys never are.\n"
	    "Exit codes: 0 ok, 1 bad arguments, 2 file problem, 4 crypto "
	    "failure,\n6 cannot listen.\n", KEYS_DEFAULT_NODE_DAYS,
	    DEFAULT_TIMEOUT, DEFAULT_CLIENTS, RATE_FAILURES, RATE_WINDOW);
}

static void
serve_log(const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
serve_log(const char *peer, const char *fmt, ...)
{
	char when[32], text[512];
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;

	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* One write per line keeps lines whole across threads. */
	fprintf(stderr, "%s tlshim-keys serve: %s: %s\n", when, peer, text);
}

/* The rate table entry of ${addr}; the caller holds the lock. */
static int
rate_slot(struct server *srv, const char *addr)
{
	time_t now = time(NULL);
	int i, oldest = 0;

	for (i = 0; i < RATE_SLOTS; i++) {
		if (strcmp(srv->rate[i].addr, addr) == 0) {
			if (now - srv->rate[i].since >= RATE_WINDOW) {
				srv->rate[i].since = now;
				srv->rate[i].failures = 0;
			}
			return i;
		}
		if (srv->rate[i].since < srv->rate[oldest].since)
			oldest = i;
	}
	snprintf(srv->rate[oldest].addr, sizeof(srv->rate[oldest].addr), "%s",
	    addr);
	srv->rate[oldest].since = now;
	srv->rate[oldest].failures = 0;
	return oldest;
}

/* Failures of ${addr} in the current window. */
static int
rate_failures(struct server *srv, const char *addr)
{
	int failures;

	pthread_mutex_lock(&srv->lock);
	failures = srv->rate[rate_slot(srv, addr)].failures;
	pthread_mutex_unlock(&srv->lock);
	return failures;
}

/* Count one more failure; returns the count. */
static int
rate_fail(struct server *srv, const char *addr)
{
	int failures;

	pthread_mutex_lock(&srv->lock);
	failures = ++srv->rate[rate_slot(srv, addr)].failures;
	pthread_mutex_unlock(&srv->lock);
	return failures;
}

/* Refuse a request: tell the client why, log it, count the failure. */
static void
refuse(struct client *cl, struct keys_conn *c, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
refuse(struct client *cl, struct keys_conn *c, const char *code,
    const char *fmt, ...)
{
	struct keys_message *m = calloc(1, sizeof(*m));
	va_list ap;
	int n;

	if (m == NULL)
		return;
	m->verb = KEYS_VERB_ERROR;
	snprintf(m->code, sizeof(m->code), "%s", code);
	va_start(ap, fmt);
	vsnprintf(m->message, sizeof(m->message), fmt, ap);
	va_end(ap);
	if (c != NULL)
		(void)keys_tls_send(c, m);
	/* A flood from one address is logged up to the limit, then once. */
	n = rate_fail(cl->srv, cl->addr);
	if (n <= RATE_FAILURES)
		serve_log(cl->peer, "refused (%s): %s%s", code, m->message,
		    n == RATE_FAILURES ? "; further refusals of this address "
		    "are not logged until the minute ends" : "");
	free(m);
}

/* The proof: the new key's signature over this channel's binding. */
static int
check_proof(struct keys_conn *c, const struct keys_message *req, ecc_key *key,
    char pin[KEYS_PIN_SIZE])
{
	uint8_t binding[32], spki[256], hash[crypto_hash_sha256_BYTES];
	word32 idx = 0;
	int ok = 0, n;

	if (wc_ecc_init(key) != 0)
		return -1;
	if (wc_EccPublicKeyDecode(req->key, &idx, key, (word32)req->key_len) ||
	    wc_ecc_get_curve_id(key->idx) != ECC_SECP256R1 ||
	    wc_ecc_check_key(key) != 0 || keys_tls_binding(c, binding) != 0 ||
	    wc_ecc_verify_hash(req->proof, (word32)req->proof_len, binding,
	    sizeof(binding), &ok, key) != 0 || ok != 1)
		goto err;
	/* The pin of the key as certificates will carry it. */
	if ((n = wc_EccPublicKeyToDer(key, spki, sizeof(spki), 1)) <= 0)
		goto err;
	crypto_hash_sha256(hash, spki, (unsigned long long)n);
	memcpy(pin, "sha256:", 7);
	sodium_bin2hex(pin + 7, KEYS_PIN_SIZE - 7, hash, sizeof(hash));
	return 0;
err:
	wc_ecc_free(key);
	return -1;
}

struct name_check {
	const char *ca_dir;
	const char *uri;
	const char *key_pin;
	char holder[129];
};

static int
name_held_by_other(const struct keys_issued *item, void *arg)
{
	struct name_check *nc = arg;

	if (item->expired || strcmp(item->uri, nc->uri) != 0 ||
	    strcmp(item->key_pin, nc->key_pin) == 0 ||
	    keys_revoked_has(nc->ca_dir, item->serial_hex))
		return 0;
	snprintf(nc->holder, sizeof(nc->holder), "%s", item->serial_hex);
	return 1;
}

/* Revoked by this CA or by a trusted one (a node of the old CA during a
 * rollover). */
static bool
revoked_anywhere(const struct server *srv, const char *serial_hex)
{
	int i;

	if (keys_revoked_has(srv->ca.dir, serial_hex))
		return true;
	for (i = 0; i < srv->trusted.count; i++)
		if (keys_revoked_has(srv->trusted.ca[i].dir, serial_hex))
			return true;
	return false;
}

/* Who a renewing (or CRL-fetching) node is, from its verified
 * certificate; a revoked one is refused. */
static int
node_identity(struct client *cl, struct keys_conn *c, char *job,
    char *node)
{
	WOLFSSL_X509 *x509 = wolfSSL_get_peer_certificate(c->ssl);
	uint8_t serial[64];
	char hex[129], uri[256];
	const uint8_t *der;
	int serial_len = sizeof(serial), der_len = 0, rc = -1;

	if (x509 == NULL) {
		refuse(cl, c, "no-certificate", "renew and crl need the node's "
		    "current certificate (use join with a token instead)");
		return -1;
	}
	if ((der = wolfSSL_X509_get_der(x509, &der_len)) == NULL ||
	    identity_uri_of_der(der, (size_t)der_len, uri, sizeof(uri)) ||
	    wolfSSL_X509_get_isCA(x509) ||
	    identity_node_split(uri, cl->srv->ca.cluster, job, node)) {
		refuse(cl, c, "bad-certificate", "the certificate is not a "
		    "node certificate of cluster %s", cl->srv->ca.cluster);
	} else if (wolfSSL_X509_get_serial_number(x509, serial, &serial_len) !=
	    WOLFSSL_SUCCESS) {
		refuse(cl, c, "bad-certificate", "the certificate has no serial");
	} else {
		sodium_bin2hex(hex, sizeof(hex), serial, (size_t)serial_len);
		if (revoked_anywhere(cl->srv, hex))
			refuse(cl, c, "revoked", "certificate %s of %s is "
			    "revoked", hex, uri);
		else
			rc = 0;
	}
	wolfSSL_X509_free(x509);
	return rc;
}

/* Every positive answer: the CA bundle (this CA first) and the current
 * CRLs (nodes install both). */
static void
answer_ca_and_crl(struct server *srv, struct keys_message *resp)
{
	resp->verb = KEYS_VERB_OK;
	if (keys_bundle_answer(&srv->ca, &srv->trusted, resp->ca,
	    sizeof(resp->ca), &resp->ca_len, resp->crl, sizeof(resp->crl),
	    &resp->crl_len) != 0) {
		/* Without the others, at least this CA and its CRL. */
		memcpy(resp->ca, srv->ca.der, (size_t)srv->ca.der_len);
		resp->ca_len = (size_t)srv->ca.der_len;
		resp->crl_len = 0;
	}
}

/* Sign the certificate and fill the answer; the caller holds the
 * issuance lock. */
static int
issue_and_answer(struct client *cl, ecc_key *key,
    const struct keys_message *req, const char *job, const char *node,
    struct keys_message *resp, char *uri, size_t urilen)
{
	struct server *srv = cl->srv;
	char ips[KEYS_MESSAGE_IPS * 48] = "";
	struct keys_request kr;
	WC_RNG rng;
	int i, rc;

	for (i = 0; i < req->ip_count; i++) {
		if (i > 0)
			strcat(ips, ",");
		strcat(ips, req->ips[i]);
	}
	kr = (struct keys_request){ .node = node, .job = job[0] ? job : NULL,
	    .ips = ips[0] ? ips : NULL, .seconds = srv->validity };
	(void)identity_node_uri(srv->ca.cluster, kr.job, node, uri, urilen);
	memset(resp, 0, sizeof(*resp));
	resp->cert_len = sizeof(resp->cert);
	if (wc_InitRng(&rng) != 0)
		return -1;
	rc = keys_cert_make(&srv->ca, key, &kr, &rng, resp->cert,
	    &resp->cert_len);
	wc_FreeRng(&rng);
	if (rc != 0)
		return -1;
	answer_ca_and_crl(srv, resp);
	return 0;
}

/* The current CA certificate and CRL, for an authenticated node. */
static void
answer_crl(struct client *cl, struct keys_conn *c, struct keys_message *resp)
{
	struct server *srv = cl->srv;
	char job[64], node[64], uri[512];

	if (node_identity(cl, c, job, node) != 0)
		return;
	memset(resp, 0, sizeof(*resp));
	answer_ca_and_crl(srv, resp);
	(void)identity_node_uri(srv->ca.cluster, job, node, uri, sizeof(uri));
	if (keys_tls_send(c, resp) == 0)
		serve_log(cl->peer, "sent %s to %s", resp->crl_len ? "the CRL" :
		    "the CA (no CRL yet)", uri);
}

/* Serialise issuance: threads of this process, then other processes. */
static int
issuance_lock(struct server *srv)
{
	char path[4200];
	int fd;

	pthread_mutex_lock(&srv->lock);
	snprintf(path, sizeof(path), "%s/.lock", srv->ca.dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		(void)flock(fd, LOCK_EX);
	return fd;
}

static void
issuance_unlock(struct server *srv, int fd)
{
	if (fd >= 0)
		close(fd);	/* releases the flock */
	pthread_mutex_unlock(&srv->lock);
}

static void
handle(struct client *cl)
{
	struct server *srv = cl->srv;
	struct keys_message *req = calloc(1, sizeof(*req));
	struct keys_message *resp = calloc(1, sizeof(*resp));
	struct keys_token_claim claim;
	struct keys_conn c = { .fd = -1 };
	char why[256], key_pin[KEYS_PIN_SIZE], job[64], node[64], uri[512];
	char code[32];
	ecc_key key;
	int lock_fd;

	if (req == NULL || resp == NULL) {
		serve_log(cl->peer, "out of memory");
		close(cl->fd);
		goto out;
	}
	if (keys_tls_accept(srv->ctx, cl->fd, srv->timeout, &c, why,
	    sizeof(why)) != 0) {
		refuse(cl, NULL, "tls", "%s", why);
		goto out;
	}
	if (rate_failures(srv, cl->addr) >= RATE_FAILURES) {
		refuse(cl, &c, "rate-limited", "too many failed attempts from "
		    "%s; wait a minute", cl->addr);
		goto out;
	}
	if (keys_tls_recv(&c, req, why, sizeof(why)) != 0) {
		refuse(cl, &c, "bad-request", "%s", why);
		goto out;
	}
	if (req->verb == KEYS_VERB_CRL) {
		answer_crl(cl, &c, resp);
		goto out;
	}
	if (req->verb != KEYS_VERB_JOIN && req->verb != KEYS_VERB_RENEW) {
		refuse(cl, &c, "bad-request", "expected join, renew or crl");
		goto out;
	}
	if (check_proof(&c, req, &key, key_pin) != 0) {
		refuse(cl, &c, "bad-proof", "the request's key is not P-256 or "
		    "its proof of possession does not verify");
		goto out;
	}
	if (req->verb == KEYS_VERB_RENEW &&
	    node_identity(cl, &c, job, node) != 0)
		goto out_key;

	lock_fd = issuance_lock(srv);
	if (req->verb == KEYS_VERB_JOIN) {
		snprintf(node, sizeof(node), "%s", req->node);
		if (keys_token_check(srv->ca.dir, req->token, node, key_pin,
		    &claim, code, why, sizeof(why)) != 0) {
			issuance_unlock(srv, lock_fd);
			refuse(cl, &c, code, "%s", why);
			goto out_key;
		}
		snprintf(job, sizeof(job), "%s", claim.job);
		(void)identity_node_uri(srv->ca.cluster, job, node, uri, sizeof(uri));
		/* A token that lists its node names is the CA's choice of
		 * identities (a replaced pod may enroll its name again);
		 * otherwise a live name belongs to the key that holds it. */
		if (!claim.names_listed) {
			struct name_check nc = { .ca_dir = srv->ca.dir,
			    .uri = uri, .key_pin = key_pin };

			if (keys_issued_each(srv->ca.dir, name_held_by_other,
			    &nc) == 1) {
				issuance_unlock(srv, lock_fd);
				refuse(cl, &c, "name-taken", "%s is enrolled with "
				    "another key (certificate %.16s...); revoke "
				    "it first", uri, nc.holder);
				goto out_key;
			}
		}
	}
	if (issue_and_answer(cl, &key, req, job, node, resp, uri,
	    sizeof(uri)) != 0 ||
	    (req->verb == KEYS_VERB_JOIN &&
	    keys_token_spend(srv->ca.dir, &claim, node, key_pin) != 0)) {
		issuance_unlock(srv, lock_fd);
		refuse(cl, &c, "internal", "the CA could not issue or record the "
		    "certificate (see the server's log)");
		goto out_key;
	}
	issuance_unlock(srv, lock_fd);
	if (keys_tls_send(&c, resp) != 0) {
		serve_log(cl->peer, "issued %s but could not send it (a retry "
		    "with the same key is free)", uri);
		goto out_key;
	}
	pthread_mutex_lock(&srv->lock);
	srv->issued++;
	pthread_mutex_unlock(&srv->lock);
	if (req->verb == KEYS_VERB_JOIN)
		serve_log(cl->peer, "joined %s (token %s%s, key %.23s...)", uri,
		    claim.id, claim.repeat ? ", repeat" : "", key_pin);
	else
		serve_log(cl->peer, "renewed %s (key %.23s...)", uri, key_pin);
out_key:
	wc_ecc_free(&key);
out:
	keys_tls_close(&c);
	keys_message_wipe(req);
	free(req);
	free(resp);
	pthread_mutex_lock(&srv->lock);
	srv->active--;
	pthread_cond_signal(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
	free(cl);
}

static void *
client_thread(void *arg)
{
	handle(arg);
	return NULL;
}

static int
listen_on(const char *hostport)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char host[128], *colon;
	const char *h = hostport;
	int fd, one = 1;
	size_t len;

	if (hostport[0] == '[') {
		h++;
		colon = strstr(h, "]:");
		len = colon ? (size_t)(colon - h) : 0;
		if (colon)
			colon++;
	} else {
		colon = strrchr(hostport, ':');
		len = colon ? (size_t)(colon - h) : 0;
	}
	if (colon == NULL || len == 0 || len >= sizeof(host))
		return -2;
	memcpy(host, h, len);
	host[len] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
		return -2;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128)) {
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* Keep the CA directory from growing with every job: tokens a day past
 * their expiry, records of expired certificates. */
static void
prune_ca_dir(struct server *srv)
{
	int tokens, certs, recovered;

	pthread_mutex_lock(&srv->lock);
	recovered = keys_issued_recover(srv->ca.dir);
	tokens = keys_token_prune(srv->ca.dir, PRUNE_GRACE);
	certs = keys_issued_prune(srv->ca.dir);
	pthread_mutex_unlock(&srv->lock);
	if (recovered > 0)
		fprintf(stderr, "tlshim-keys serve: completed the records of %d "
		    "certificate%s a stopped process had issued\n", recovered,
		    recovered == 1 ? "" : "s");
	if (tokens > 0)
		fprintf(stderr, "tlshim-keys serve: deleted %d token%s expired "
		    "for over a day\n", tokens, tokens == 1 ? "" : "s");
	if (certs > 0)
		fprintf(stderr, "tlshim-keys serve: deleted the records of %d "
		    "expired certificate%s\n", certs, certs == 1 ? "" : "s");
}

static bool
done_issuing(struct server *srv)
{
	bool done;

	pthread_mutex_lock(&srv->lock);
	done = srv->count > 0 && srv->issued >= srv->count;
	pthread_mutex_unlock(&srv->lock);
	return done;
}

static void
accept_one(struct server *srv, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct client *cl;
	pthread_attr_t attr;
	pthread_t tid;
	char port[8] = "";
	int fd;

	if ((fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC)) < 0)
		return;
	if ((cl = calloc(1, sizeof(*cl))) == NULL) {
		close(fd);
		return;
	}
	cl->srv = srv;
	cl->fd = fd;
	(void)getnameinfo((struct sockaddr *)&ss, sl, cl->addr, sizeof(cl->addr),
	    port, sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(cl->peer, sizeof(cl->peer), "%s:%s", cl->addr, port);
	/* Far past the limit, an address gets no TLS handshake (and no
	 * thread) until its minute ends. */
	if (rate_failures(srv, cl->addr) >= 2 * RATE_FAILURES) {
		(void)rate_fail(srv, cl->addr);
		close(fd);
		free(cl);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	if (srv->active >= srv->max_clients) {
		pthread_mutex_unlock(&srv->lock);
		serve_log(cl->peer, "refused: %d clients already being served",
		    srv->max_clients);
		close(fd);
		free(cl);
		return;
	}
	srv->active++;
	pthread_mutex_unlock(&srv->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, client_thread, cl) != 0) {
		serve_log(cl->peer, "cannot start a thread");
		close(fd);
		free(cl);
		pthread_mutex_lock(&srv->lock);
		srv->active--;
		pthread_mutex_unlock(&srv->lock);
	}
	pthread_attr_destroy(&attr);
}

int
keys_serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "validity", required_argument, NULL, 'v' },
		{ "once", no_argument, NULL, '1' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "max-clients", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ca_dir = NULL, *listen_addr = NULL;
	struct server *srv;
	struct sigaction sa;
	time_t next_prune = 0;
	long v;
	char *end;
	int ch, rc, lfd, i;

	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return keys_fail(KEYS_FILE, "out of memory");
	srv->validity = KEYS_DEFAULT_NODE_DAYS * 86400L;
	srv->timeout = DEFAULT_TIMEOUT;
	srv->max_clients = DEFAULT_CLIENTS;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': ca_dir = optarg; break;
		case 'l': listen_addr = optarg; break;
		case 'v':
			if (keys_parse_duration(optarg, &srv->validity))
				return keys_fail(KEYS_USAGE, "--validity '%s' is "
				    "not a duration like 12h or 7d", optarg);
			break;
		case '1': srv->count = 1; break;
		case 'n': case 't': case 'm':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || v < 1 || v > 1000000)
				return keys_fail(KEYS_USAGE, "--%s takes a "
				    "positive number", ch == 'n' ? "count" :
				    ch == 't' ? "timeout" : "max-clients");
			if (ch == 'n')
				srv->count = v;
			else if (ch == 't')
				srv->timeout = (int)v;
			else
				srv->max_clients = (int)v;
			break;
		case 'h': serve_usage(stdout); return KEYS_OK;
		default: serve_usage(stderr); return KEYS_USAGE;
		}
	}
	if (optind != argc || ca_dir == NULL || listen_addr == NULL) {
		serve_usage(stderr);
		return KEYS_USAGE;
	}
	if ((rc = keys_ca_load(ca_dir, &srv->ca)) != KEYS_OK)
		return rc;
	if ((rc = keys_trusted_load(ca_dir, srv->ca.cluster, &srv->trusted)) !=
	    KEYS_OK)
		goto out;
	if ((srv->ctx = keys_tls_server_ctx(&srv->ca)) == NULL) {
		rc = KEYS_CRYPTO;
		goto out;
	}
	/* Nodes of a trusted CA renew here (the rollover's second step). */
	for (i = 0; i < srv->trusted.count; i++)
		if (wolfSSL_CTX_load_verify_buffer(srv->ctx, srv->trusted.ca[i].der,
		    (long)srv->trusted.ca[i].der_len, WOLFSSL_FILETYPE_ASN1) !=
		    WOLFSSL_SUCCESS) {
			rc = keys_fail(KEYS_CRYPTO, "wolfSSL refused the CA of %s",
			    srv->trusted.ca[i].dir);
			goto out;
		}
	if (srv->trusted.count > 0)
		fprintf(stderr, "tlshim-keys serve: nodes also trust %d other "
		    "CA%s (CA_DIR/trusted); their nodes may renew here\n",
		    srv->trusted.count, srv->trusted.count == 1 ? "" : "s");
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->idle, NULL);
	/* Before listening: once clients can connect, the store is tidy. */
	prune_ca_dir(srv);
	next_prune = time(NULL) + PRUNE_INTERVAL;
	if ((lfd = listen_on(listen_addr)) < 0) {
		rc = lfd == -2 ? keys_fail(KEYS_USAGE, "--listen '%s' is not "
		    "ADDR:PORT with a numeric address", listen_addr) :
		    keys_fail(KEYS_NETWORK, "cannot listen on %s: %s",
		    listen_addr, strerror(errno));
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "tlshim-keys serve: cluster %s on %s, CA pin %s\n",
	    srv->ca.cluster, listen_addr, srv->ca.pin);
	while (!stopping && !done_issuing(srv)) {
		struct pollfd pfd = { .fd = lfd, .events = POLLIN };

		if (time(NULL) >= next_prune) {
			prune_ca_dir(srv);
			next_prune = time(NULL) + PRUNE_INTERVAL;
		}
		if (poll(&pfd, 1, 200) > 0)
			accept_one(srv, lfd);
	}
	close(lfd);
	pthread_mutex_lock(&srv->lock);
	while (srv->active > 0)
		pthread_cond_wait(&srv->idle, &srv->lock);
	fprintf(stderr, "tlshim-keys serve: stopped after issuing %ld "
	    "certificate%s\n", srv->issued, srv->issued == 1 ? "" : "s");
	pthread_mutex_unlock(&srv->lock);
	rc = KEYS_OK;
out:
	if (srv->ctx != NULL)
		wolfSSL_CTX_free(srv->ctx);
	keys_ca_free(&srv->ca);
	free(srv);
	return rc;
}
