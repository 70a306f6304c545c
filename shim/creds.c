/*
 * The node's credentials (TLSHIM_DIR): read, checked and turned into
 * wolfSSL contexts once, and again when the files change; each handshake
 * takes its session from them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "config.h"
#include "creds.h"
#include "identity.h"
#include "log.h"
#include "real.h"

#define CRED_FILE_MAX (64 * 1024)
/* The files, with what identified them when loaded: renewed files are
 * picked up by the next handshake. */
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

/* Shared by every handshake of the process. */
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
		log_msg(LOG_LEVEL_DEBUG, "%s: %zu CRL(s) of CAs not in ca.crt left aside", path,
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
	if (!identity_key_matches(crt, crtlen, key, keylen)) {
		snprintf(err, errlen, "%s/node.key does not match %s/node.crt",
		    config.dir, config.dir);
		goto err1;
	}
	if (identity_uri_of_pem(crt, crtlen, uri, sizeof(uri)) != 0 ||
	    identity_uri_cluster(uri, c->cluster, sizeof(c->cluster)) != 0) {
		snprintf(err, errlen, "%s/node.crt has no spiffe:// URI naming "
		    "its cluster (issue it with tlshim-keys)", config.dir);
		goto err1;
	}
	identity_uri_job(uri, c->job, sizeof(c->job));
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

WOLFSSL *
creds_session_new(bool is_client, char *cluster, size_t clusterlen,
    char *job, size_t joblen, char *err, size_t errlen)
{
	struct stat st[CRED_FILES];
	struct creds *c;
	WOLFSSL *ssl = NULL;

	pthread_mutex_lock(&creds_lock);
	if (creds_stat(config.dir, st, err, errlen) != 0) {
		/* Removed files fail new connections; live ones go on. */
		creds_free(creds_loaded);
		creds_loaded = NULL;
		pthread_mutex_unlock(&creds_lock);
		return NULL;
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
				log_msg(LOG_LEVEL_INFO, "credentials in %s changed: new "
				    "connections use them", config.dir);
		}
	}
	if ((c = creds_loaded) != NULL) {
		if ((ssl = wolfSSL_new(is_client ? c->client : c->server)) == NULL)
			snprintf(err, errlen, "wolfSSL could not start a session");
		snprintf(cluster, clusterlen, "%s", c->cluster);
		snprintf(job, joblen, "%s", c->job);
	}
	pthread_mutex_unlock(&creds_lock);
	return ssl;
}
