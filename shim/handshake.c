#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/x509v3.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <sodium.h>

#include "config.h"
#include "decide.h"
#include "log.h"
#include "handshake.h"
#include "identity.h"
#include "policy.h"
#include "real.h"

#define ALPN_AES "tlshim/1-aesgcm"
#define ALPN_CHACHA "tlshim/1-chacha"
#define CRED_FILE_MAX (64 * 1024)
#define TLS_HEADER_SIZE 5
/* TLS 1.3 caps a record's body at 2^14 + 256 bytes. */
#define TLS_MAX_BODY (16384 + 256)
/* A handshake flight with certificates is a few kilobytes. */
#define HANDSHAKE_UNSENT_MAX (256 * 1024)

/* Credentials loaded from the configured directory, shared by every
 * handshake of the process, with what identified the files when loaded
 * (renewed files are picked up by the next handshake). */
#define CRED_FILES 4
#define CRED_REQUIRED 3	/* crl.pem is optional */
static const char *const cred_names[CRED_FILES] = { "ca.crt", "node.crt",
    "node.key", "crl.pem" };
/* Renewal replaces files one by one: a load that saw them change
 * underneath is repeated, a few times, before the connection fails. */
#define CRED_LOAD_TRIES 5
#define CRED_LOAD_PAUSE_NS (20 * 1000 * 1000)

/* TLS 1.3 suites that encrypt: TLS13-SHA256-SHA256 and the CCM_8 suites
 * (integrity only, or a short tag) are never offered nor accepted. */
#define AEAD_SUITES "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:" \
	"TLS13-CHACHA20-POLY1305-SHA256"

struct creds {
	WOLFSSL_CTX *client;
	WOLFSSL_CTX *server;
	char cluster[128];
	char job[128];		/* the job our own certificate names, or "" */
	char dir[PATH_MAX];
	struct stat files[CRED_FILES];
};

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
	char cluster_prefix[160];	/* "spiffe://CLUSTER/" */
	char job[128];			/* required of the peer, or "" */
	struct sockaddr_storage peer_addr;	/* must be in the peer's SANs */
	char peer[256];
	char error[512];
};

static pthread_mutex_t creds_lock = PTHREAD_MUTEX_INITIALIZER;
static struct creds *creds_loaded;

/* Why ${path} could not be opened, in words a user acts on. */
static void
cred_open_error(const char *path, int errnum, char *err, size_t errlen)
{
	if (errnum == EACCES)
		snprintf(err, errlen, "cannot read %s: permission denied for "
		    "uid %u (the process's user must be able to read the "
		    "credentials)", path, (unsigned)geteuid());
	else if (errnum == ENOENT)
		snprintf(err, errlen, "%s is missing", path);
	else
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errnum));
}

/* Read a small file; ${private_key} also refuses group/other access. */
static int
read_cred_file(const char *dir, const char *name, bool private_key,
    uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	size_t have = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		cred_open_error(path, errno, err, errlen);
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		goto err1;
	}
	if (private_key && (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s is readable by others (mode %03o); "
		    "run: chmod 600 %s", path, (unsigned)(st.st_mode & 0777), path);
		goto err1;
	}
	if (st.st_size <= 0 || st.st_size > CRED_FILE_MAX) {
		snprintf(err, errlen, "%s is empty or too large", path);
		goto err1;
	}
	if ((buf = sodium_malloc((size_t)st.st_size)) == NULL) {
		snprintf(err, errlen, "out of memory reading %s", path);
		goto err1;
	}
	while (have < (size_t)st.st_size) {
		n = real.read(fd, buf + have, (size_t)st.st_size - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "cannot read %s", path);
			sodium_free(buf);
			goto err1;
		}
		have += (size_t)n;
	}
	real.close(fd);
	*out = buf;
	*outlen = have;
	return 0;

err1:
	real.close(fd);
	return -1;
}

/* The single URI SAN of a certificate. */
static int
x509_uri(WOLFSSL_X509 *x509, char *uri, size_t urilen)
{
	WOLFSSL_STACK *names;
	int i, n, found = 0;

	names = wolfSSL_X509_get_ext_d2i(x509, NID_subject_alt_name, NULL, NULL);
	if (names == NULL)
		return -ENOENT;
	n = wolfSSL_sk_GENERAL_NAME_num(names);
	for (i = 0; i < n; i++) {
		WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(names, i);
		const unsigned char *data;
		int len;

		if (gn == NULL || gn->type != GEN_URI)
			continue;
		data = wolfSSL_ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		len = wolfSSL_ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (data == NULL || len <= 0 || (size_t)len >= urilen ||
		    memchr(data, '\0', (size_t)len) != NULL) {
			found = -1;
			break;
		}
		if (found++ == 0) {
			memcpy(uri, data, (size_t)len);
			uri[len] = '\0';
		}
	}
	wolfSSL_GENERAL_NAMES_free(names);
	return found == 1 ? 0 : -ENOENT;
}

bool
handshake_key_matches(const uint8_t *crt, size_t crtlen, const uint8_t *key,
    size_t keylen)
{
	unsigned char a[1024], b[1024], *der;
	int alen = sizeof(a), blen = -1, dlen;
	WOLFSSL_X509 *x509;
	word32 idx = 0;
	ecc_key ecc;

	if ((der = sodium_malloc(keylen)) == NULL)
		return false;
	dlen = wc_KeyPemToDer(key, (int)keylen, der, (int)keylen, NULL);
	if (dlen > 0 && wc_ecc_init(&ecc) == 0) {
		if (wc_EccPrivateKeyDecode(der, &idx, &ecc, (word32)dlen) == 0 &&
		    (ecc.type != ECC_PRIVATEKEY_ONLY ||
		    wc_ecc_make_pub(&ecc, NULL) == 0))
			blen = wc_EccPublicKeyToDer(&ecc, b, sizeof(b), 1);
		wc_ecc_free(&ecc);
	}
	sodium_free(der);
	if (blen <= 0)
		return false;
	x509 = wolfSSL_X509_load_certificate_buffer(crt, (int)crtlen,
	    WOLFSSL_FILETYPE_PEM);
	if (x509 == NULL)
		return false;
	if (wolfSSL_X509_get_pubkey_buffer(x509, a, &alen) != WOLFSSL_SUCCESS)
		alen = -1;
	wolfSSL_X509_free(x509);
	return alen == blen && sodium_memcmp(a, b, (size_t)alen) == 0;
}

static int
uri_of_buffer(const uint8_t *buf, size_t len, int format, char *uri,
    size_t urilen)
{
	WOLFSSL_X509 *x509;
	int rc;

	x509 = wolfSSL_X509_load_certificate_buffer(buf, (int)len, format);
	if (x509 == NULL)
		return -EINVAL;
	rc = x509_uri(x509, uri, urilen);
	wolfSSL_X509_free(x509);
	return rc;
}

int
handshake_uri_of_pem(const uint8_t *pem, size_t len, char *uri, size_t urilen)
{
	return uri_of_buffer(pem, len, WOLFSSL_FILETYPE_PEM, uri, urilen);
}

int
handshake_uri_of_der(const uint8_t *der, size_t len, char *uri, size_t urilen)
{
	return uri_of_buffer(der, len, WOLFSSL_FILETYPE_ASN1, uri, urilen);
}

/* Split "spiffe://CLUSTER/..." at CLUSTER. */
static int
uri_cluster(const char *uri, char *cluster, size_t len)
{
	const char *start, *slash;

	if (strncmp(uri, "spiffe://", 9) != 0)
		return -1;
	start = uri + 9;
	slash = strchr(start, '/');
	if (slash == NULL || slash == start || (size_t)(slash - start) >= len)
		return -1;
	memcpy(cluster, start, (size_t)(slash - start));
	cluster[slash - start] = '\0';
	return 0;
}

/* The JOB of "spiffe://CLUSTER/job/JOB/node/NAME", or "" without one. */
static void
uri_job(const char *uri, char *job, size_t len)
{
	const char *start = strstr(uri + 9, "/job/"), *end;

	job[0] = '\0';
	if (start == NULL)
		return;
	start += 5;
	if ((end = strchr(start, '/')) != NULL && (size_t)(end - start) < len) {
		memcpy(job, start, (size_t)(end - start));
		job[end - start] = '\0';
	}
}

static WOLFSSL_CTX *
creds_ctx(bool client, const uint8_t *ca, size_t calen, const uint8_t *crt,
    size_t crtlen, const uint8_t *key, size_t keylen, char *err, size_t errlen)
{
	int groups[2] = { WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1 };
	WOLFSSL_CTX *ctx;

	ctx = wolfSSL_CTX_new(client ? wolfTLSv1_3_client_method() :
	    wolfTLSv1_3_server_method());
	if (ctx == NULL) {
		snprintf(err, errlen, "wolfSSL could not create a TLS 1.3 context");
		return NULL;
	}
	if (wolfSSL_CTX_load_verify_buffer(ctx, ca, (long)calen,
	    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "ca.crt is not a valid PEM certificate");
		goto err0;
	}
	if (wolfSSL_CTX_use_certificate_chain_buffer(ctx, crt, (long)crtlen) !=
	    WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "node.crt is not a valid PEM certificate");
		goto err0;
	}
	if (wolfSSL_CTX_use_PrivateKey_buffer(ctx, key, (long)keylen,
	    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "node.key is not a valid PEM private key");
		goto err0;
	}
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER |
	    WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	wolfSSL_CTX_no_ticket_TLSv13(ctx);
	if (wolfSSL_CTX_set_cipher_list(ctx, AEAD_SUITES) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "wolfSSL refused the cipher suites");
		goto err0;
	}
	/* X25519 first: in Debian's wolfSSL it runs on dedicated field code,
	 * P-256 on generic big numbers (connection setup across veth, median:
	 * 1.64 ms with P-256, 1.05-1.17 ms with X25519). P-256 stays as the
	 * fallback. */
	if (wolfSSL_CTX_set_groups(ctx, groups, 2) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "wolfSSL refused the key exchange groups");
		goto err0;
	}
	return ctx;

err0:
	wolfSSL_CTX_free(ctx);
	return NULL;
}

/* Identify the credential files as they are now; -1 when one is missing
 * or cannot be reached, with why in ${err} when given. */
static int
creds_stat(const char *dir, struct stat st[CRED_FILES], char *err,
    size_t errlen)
{
	char path[PATH_MAX + 32];
	int i;

	for (i = 0; i < CRED_FILES; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, cred_names[i]);
		if (stat(path, &st[i]) != 0) {
			if (i < CRED_REQUIRED || errno != ENOENT) {
				if (err != NULL)
					cred_open_error(path, errno, err, errlen);
				return -1;
			}
			memset(&st[i], 0, sizeof(st[i]));	/* absent */
		}
	}
	return 0;
}

/* Two snapshots of the credential files name the same contents. */
static bool
creds_same_files(const struct stat a[CRED_FILES],
    const struct stat b[CRED_FILES])
{
	int i;

	for (i = 0; i < CRED_FILES; i++)
		if (a[i].st_ino != b[i].st_ino || a[i].st_dev != b[i].st_dev ||
		    a[i].st_size != b[i].st_size ||
		    a[i].st_mtim.tv_sec != b[i].st_mtim.tv_sec ||
		    a[i].st_mtim.tv_nsec != b[i].st_mtim.tv_nsec)
			return false;
	return true;
}

static bool
creds_current(const struct creds *c, const struct stat st[CRED_FILES])
{
	return strcmp(c->dir, config.dir) == 0 && creds_same_files(c->files, st);
}

/* Whether the files changed since ${st} was taken; takes the new state. */
static bool
creds_changed(struct stat st[CRED_FILES])
{
	struct stat now[CRED_FILES];

	if (creds_stat(config.dir, now, NULL, 0) != 0 ||
	    creds_same_files(st, now))
		return false;
	memcpy(st, now, sizeof(now));
	return true;
}

/* Sessions hold their own references to a context: live connections
 * keep working after their credentials are replaced. */
static void
creds_free(struct creds *c)
{
	if (c == NULL)
		return;
	wolfSSL_CTX_free(c->client);
	wolfSSL_CTX_free(c->server);
	free(c);
}

/* Load one PEM CRL into both contexts: 0, 1 when its CA is not in ca.crt
 * (nothing it lists can be accepted anyway: skipped), or -1. */
static int
creds_load_one_crl(struct creds *c, const uint8_t *pem, size_t len)
{
	int rc = wolfSSL_CTX_LoadCRLBuffer(c->client, pem, (long)len,
	    WOLFSSL_FILETYPE_PEM);

	if (rc == ASN_CRL_NO_SIGNER_E)
		return 1;
	if (rc != WOLFSSL_SUCCESS || wolfSSL_CTX_LoadCRLBuffer(c->server, pem,
	    (long)len, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
		return -1;
	return 0;
}

/*
 * With crl.pem present, both contexts refuse peers it lists. It may hold
 * one CRL per CA (a CA rollover trusts two): each is loaded, so that the
 * revocations of every trusted CA hold. A CRL that does not load
 * (corrupt, bad signature) fails closed.
 */
static int
creds_load_crl(struct creds *c, char *err, size_t errlen)
{
	static const char begin[] = "-----BEGIN X509 CRL-----";
	static const char end[] = "-----END X509 CRL-----";
	char path[PATH_MAX + 32];
	uint8_t *crl = NULL;
	size_t len = 0, loaded = 0, skipped = 0;
	const char *at, *stop;
	int rc = 0, one;

	snprintf(path, sizeof(path), "%s/crl.pem", config.dir);
	if (access(path, F_OK) != 0)
		return 0;
	if (read_cred_file(config.dir, "crl.pem", false, &crl, &len, err,
	    errlen) != 0)
		return -1;
	if (wolfSSL_CTX_EnableCRL(c->client, WOLFSSL_CRL_CHECK) !=
	    WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_EnableCRL(c->server, WOLFSSL_CRL_CHECK) !=
	    WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "wolfSSL could not enable CRL checks");
		rc = -1;
		goto out;
	}
	at = memmem(crl, len, begin, sizeof(begin) - 1);
	while (at != NULL) {
		size_t left = len - (size_t)(at - (const char *)crl);

		if ((stop = memmem(at, left, end, sizeof(end) - 1)) == NULL)
			break;
		stop += sizeof(end) - 1;
		if ((one = creds_load_one_crl(c, (const uint8_t *)at,
		    (size_t)(stop - at))) < 0) {
			snprintf(err, errlen, "CRL number %zu in %s is not a CRL of "
			    "a CA in ca.crt that wolfSSL accepts",
			    loaded + skipped + 1, path);
			rc = -1;
			goto out;
		}
		if (one == 0)
			loaded++;
		else
			skipped++;
		at = memmem(stop, len - (size_t)(stop - (const char *)crl),
		    begin, sizeof(begin) - 1);
	}
	if (loaded + skipped == 0) {
		snprintf(err, errlen, "%s holds no PEM CRL", path);
		rc = -1;
	} else if (loaded == 0) {
		/* Only CRLs of CAs no longer trusted: nothing to check. */
		wolfSSL_CTX_DisableCRL(c->client);
		wolfSSL_CTX_DisableCRL(c->server);
	}
	if (skipped > 0)
		log_msg(LOG_DEBUG, "%s: %zu CRL(s) of CAs not in ca.crt left aside", path,
		    skipped);
out:
	sodium_free(crl);
	return rc;
}

static struct creds *
creds_load(char *err, size_t errlen)
{
	uint8_t *ca = NULL, *crt = NULL, *key = NULL;
	size_t calen, crtlen, keylen;
	struct creds *c;
	char uri[256];

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (read_cred_file(config.dir, "ca.crt", false, &ca, &calen, err, errlen) ||
	    read_cred_file(config.dir, "node.crt", false, &crt, &crtlen, err,
	    errlen) ||
	    read_cred_file(config.dir, "node.key", true, &key, &keylen, err,
	    errlen))
		goto err1;
	if (!handshake_key_matches(crt, crtlen, key, keylen)) {
		snprintf(err, errlen, "%s/node.key does not match %s/node.crt",
		    config.dir, config.dir);
		goto err1;
	}
	if (handshake_uri_of_pem(crt, crtlen, uri, sizeof(uri)) != 0 ||
	    uri_cluster(uri, c->cluster, sizeof(c->cluster)) != 0) {
		snprintf(err, errlen, "%s/node.crt has no spiffe:// URI naming "
		    "its cluster (issue it with tlshim-keys)", config.dir);
		goto err1;
	}
	uri_job(uri, c->job, sizeof(c->job));
	if ((c->client = creds_ctx(true, ca, calen, crt, crtlen, key, keylen,
	    err, errlen)) == NULL)
		goto err1;
	if ((c->server = creds_ctx(false, ca, calen, crt, crtlen, key, keylen,
	    err, errlen)) == NULL)
		goto err1;
	if (creds_load_crl(c, err, errlen) != 0)
		goto err1;
	snprintf(c->dir, sizeof(c->dir), "%s", config.dir);
	sodium_free(ca);
	sodium_free(crt);
	sodium_free(key);	/* wipes the private key */
	return c;

err1:
	if (c->client != NULL)
		wolfSSL_CTX_free(c->client);
	if (c->server != NULL)
		wolfSSL_CTX_free(c->server);
	sodium_free(ca);
	sodium_free(crt);
	sodium_free(key);
	free(c);
	return NULL;
}

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
	struct stat st[CRED_FILES];
	struct handshake *hs;
	struct creds *c;
	char alpn[64];

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

	pthread_mutex_lock(&creds_lock);
	if (creds_stat(config.dir, st, err, errlen) != 0) {
		/* Removed files fail new connections; live ones go on. */
		creds_free(creds_loaded);
		creds_loaded = NULL;
		pthread_mutex_unlock(&creds_lock);
		goto err0;
	}
	if (creds_loaded == NULL || !creds_current(creds_loaded, st)) {
		bool reload = creds_loaded != NULL;
		int tries = 0;

		wolfSSL_Init();
		creds_free(creds_loaded);
		while ((creds_loaded = creds_load(err, errlen)) == NULL &&
		    ++tries < CRED_LOAD_TRIES && creds_changed(st)) {
			struct timespec pause = { 0, CRED_LOAD_PAUSE_NS };

			nanosleep(&pause, NULL);
		}
		if (creds_loaded != NULL) {
			memcpy(creds_loaded->files, st, sizeof(st));
			if (reload)
				log_msg(LOG_INFO, "credentials in %s changed: new "
				    "connections use them", config.dir);
		}
	}
	c = creds_loaded;
	hs->ssl = c != NULL ? wolfSSL_new(is_client ? c->client : c->server) :
	    NULL;
	if (c != NULL) {
		snprintf(hs->cluster_prefix, sizeof(hs->cluster_prefix),
		    "spiffe://%s/", c->cluster);
		/* TLSHIM_JOB overrides; by default a job-scoped node talks
		 * only to nodes of its own job. */
		snprintf(hs->job, sizeof(hs->job), "%s", config.job[0] ?
		    config.job : c->job);
	}
	pthread_mutex_unlock(&creds_lock);
	if (c == NULL)
		goto err0;
	if (hs->ssl == NULL) {
		snprintf(err, errlen, "wolfSSL could not start a session");
		goto err0;
	}
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
		log_msg(LOG_INFO, "peer %s at %s: its certificate's addresses "
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
	WOLFSSL_X509 *x509;
	const char *prefix = hs->cluster_prefix;
	char uri[256], expect_job[160];
	const char *rest;
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
	if (x509_uri(x509, uri, sizeof(uri)) != 0) {
		snprintf(hs->error, sizeof(hs->error),
		    "peer certificate has no single URI identity");
		goto out;
	}
	if (strncmp(uri, prefix, strlen(prefix)) != 0) {
		snprintf(hs->error, sizeof(hs->error),
		    "peer identity %.120s is not in cluster %.100s", uri, prefix);
		goto out;
	}
	rest = uri + strlen(prefix);
	if (hs->job[0] != '\0') {
		snprintf(expect_job, sizeof(expect_job), "job/%s/node/", hs->job);
		if (strncmp(rest, expect_job, strlen(expect_job)) != 0) {
			snprintf(hs->error, sizeof(hs->error),
			    "peer identity %.120s is not in job %.100s%s", uri,
			    hs->job, config.job[0] ? "" : " (the job of this "
			    "node's certificate; TLSHIM_JOB overrides)");
			goto out;
		}
	}
	if ((rc = handshake_check_address(hs, x509, uri)) != 0)
		goto out;
	snprintf(hs->peer, sizeof(hs->peer), "%s", uri);
	rc = 0;
out:
	wolfSSL_X509_free(x509);
	return rc;
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
		    "(%d)%s", detail, err, err == -308 || err == -312 ||
		    err == -323 ? "; is the peer running tlshim?" :
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
