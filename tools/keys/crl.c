/* tlshim-keys crl: refresh a running node's CRLs and CA bundle. */
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
			if (enroll_parse_attempts(ch, optarg, &e))
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
	if ((rc = enroll_node_files_load(e.dir, &nf)) != KEYS_OK)
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
	if (e.resp->verb != KEYS_VERB_OK || enroll_first_pin(e.resp, ca_pin) ||
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
	enroll_node_files_free(&nf);
	return rc;
}
