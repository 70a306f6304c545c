/*
 * tlshim-keys show DIR: what a credential directory holds (identity, SANs,
 * issuer, validity, whether the key matches, whether the certificate
 * verifies against ca.crt), and tlshim-keys pin: the CA's public key pin
 * that nodes will check before enrolling.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/x509v3.h>

#include "../../shim/identity.h"
#include "keys.h"

/* "sha256:<hex>" of the certificate's SubjectPublicKeyInfo (DER). */
static int
spki_pin(WOLFSSL_X509 *x509, char *out, size_t outlen)
{
	unsigned char der[1024], hash[crypto_hash_sha256_BYTES];
	int len = sizeof(der);

	if (wolfSSL_X509_get_pubkey_buffer(x509, der, &len) != WOLFSSL_SUCCESS ||
	    outlen < 7 + 2 * sizeof(hash) + 1)
		return -1;
	crypto_hash_sha256(hash, der, (unsigned long long)len);
	memcpy(out, "sha256:", 7);
	sodium_bin2hex(out + 7, outlen - 7, hash, sizeof(hash));
	return 0;
}

static WOLFSSL_X509 *
load_cert(const char *dir, const char *name, uint8_t **pem, size_t *len,
    int *rc)
{
	char path[4096];
	WOLFSSL_X509 *x509;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((*rc = keys_read_file(path, false, pem, len)) != KEYS_OK)
		return NULL;
	x509 = wolfSSL_X509_load_certificate_buffer(*pem, (int)*len,
	    WOLFSSL_FILETYPE_PEM);
	if (x509 == NULL)
		*rc = keys_fail(KEYS_FILE, "%s is not a PEM certificate", path);
	return x509;
}

static void
print_time(const char *label, const WOLFSSL_ASN1_TIME *t)
{
	struct tm tm;
	char text[64] = "?";

	if (wolfSSL_ASN1_TIME_to_tm(t, &tm) == WOLFSSL_SUCCESS)
		strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S UTC", &tm);
	printf("%-12s %s\n", label, text);
}

static void
print_sans(WOLFSSL_X509 *x509)
{
	WOLFSSL_STACK *names = wolfSSL_X509_get_ext_d2i(x509, NID_subject_alt_name,
	    NULL, NULL);
	int i, n = names ? wolfSSL_sk_GENERAL_NAME_num(names) : 0;

	for (i = 0; i < n; i++) {
		WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(names, i);
		const unsigned char *d;
		int len;

		if (gn == NULL)
			continue;
		if (gn->type == GEN_URI || gn->type == GEN_DNS) {
			WOLFSSL_ASN1_STRING *s = gn->type == GEN_URI ?
			    gn->d.uniformResourceIdentifier : gn->d.dNSName;

			d = wolfSSL_ASN1_STRING_get0_data(s);
			len = wolfSSL_ASN1_STRING_length(s);
			printf("%-12s %.*s\n", gn->type == GEN_URI ? "identity" :
			    "dns", len, d);
		} else if (gn->type == GEN_IPADD) {
			char ip[64] = "?";

			d = wolfSSL_ASN1_STRING_get0_data(gn->d.iPAddress);
			len = wolfSSL_ASN1_STRING_length(gn->d.iPAddress);
			if (len == 4 || len == 16)
				inet_ntop(len == 4 ? AF_INET : AF_INET6, d, ip,
				    sizeof(ip));
			printf("%-12s %s\n", "ip", ip);
		}
	}
	if (names != NULL)
		wolfSSL_GENERAL_NAMES_free(names);
}

int
keys_pin_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ca = NULL;
	uint8_t *pem = NULL;
	size_t len = 0;
	char pin[80];
	WOLFSSL_X509 *x509;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'c') {
			ca = optarg;
		} else {
			fprintf(ch == 'h' ? stdout : stderr, "usage: tlshim-keys pin "
			    "--ca CA_DIR\nPrints sha256:<hex> of the CA's public key "
			    "(SubjectPublicKeyInfo, DER).\nExit codes: 0 ok, 1 bad "
			    "arguments, 2 file problem.\n");
			return ch == 'h' ? KEYS_OK : KEYS_USAGE;
		}
	}
	if (ca == NULL || optind != argc)
		return keys_fail(KEYS_USAGE, "usage: tlshim-keys pin --ca CA_DIR");
	if ((x509 = load_cert(ca, "ca.crt", &pem, &len, &rc)) == NULL) {
		free(pem);
		return rc;
	}
	rc = spki_pin(x509, pin, sizeof(pin)) == 0 ? KEYS_OK :
	    keys_fail(KEYS_FILE, "%s/ca.crt: cannot read its public key", ca);
	if (rc == KEYS_OK)
		printf("%s\n", pin);
	wolfSSL_X509_free(x509);
	free(pem);
	return rc;
}

/*
 * crl.pem, when present, as the shim will read it: every CRL signed by a
 * CA of ca.crt (see the shim's creds.c), not past its next update, and
 * not listing this node. Prints one line; KEYS_OK or KEYS_FILE.
 */
static int
crl_state(const char *dir, WOLFSSL_CERT_MANAGER *cm, const uint8_t *crt,
    size_t crt_len)
{
	static const char end[] = "-----END X509 CRL-----";
	char path[4200];
	uint8_t *pem = NULL;
	size_t len = 0;
	const uint8_t *at, *stop;
	int rc = KEYS_OK, count = 0, v;

	snprintf(path, sizeof(path), "%s/crl.pem", dir);
	if (access(path, F_OK) != 0) {
		printf("%-12s none (%s/crl.pem absent)\n", "crl", dir);
		return KEYS_OK;
	}
	if (keys_read_file(path, false, &pem, &len) != KEYS_OK)
		return KEYS_FILE;
	if (wolfSSL_CertManagerEnableCRL(cm, WOLFSSL_CRL_CHECK) !=
	    WOLFSSL_SUCCESS) {
		free(pem);
		return keys_fail(KEYS_FILE, "wolfSSL cannot check CRLs");
	}
	for (at = pem; (stop = memmem(at, len - (size_t)(at - pem), end,
	    sizeof(end) - 1)) != NULL; at = stop) {
		stop += sizeof(end) - 1;
		v = wolfSSL_CertManagerLoadCRLBuffer(cm, at, (long)(stop - at),
		    WOLFSSL_FILETYPE_PEM);
		if (v == ASN_CRL_NO_SIGNER_E)
			continue;	/* a CA no longer trusted: set aside */
		if (v != WOLFSSL_SUCCESS) {
			free(pem);
			return keys_fail(KEYS_FILE, "%s: a CRL that is not signed by "
			    "a CA of ca.crt", path);
		}
		count++;
	}
	free(pem);
	if (count == 0) {
		printf("%-12s no CRL of a trusted CA in %s\n", "crl", path);
		return KEYS_OK;
	}
	v = wolfSSL_CertManagerVerifyBuffer(cm, crt, (long)crt_len,
	    WOLFSSL_FILETYPE_PEM);
	if (v == CRL_CERT_DATE_ERR)
		rc = keys_fail(KEYS_FILE, "%s is past its next update: the shim "
		    "refuses every peer (tlshim-keys crl fetches a new one)", path);
	else if (v == CRL_CERT_REVOKED)
		rc = keys_fail(KEYS_FILE, "this node's certificate is revoked "
		    "(%s)", path);
	else if (v != WOLFSSL_SUCCESS)
		rc = keys_fail(KEYS_FILE, "%s cannot be checked (%d)", path, v);
	printf("%-12s %s, %d CRL%s\n", "crl", rc == KEYS_OK ? "current" :
	    "NOT usable", count, count == 1 ? "" : "s");
	return rc;
}

int
keys_show_main(int argc, char **argv)
{
	const char *dir = argc == 2 ? argv[1] : NULL;
	uint8_t *ca_pem = NULL, *crt_pem = NULL, *key_pem = NULL;
	size_t ca_len = 0, crt_len = 0, key_len = 0;
	WOLFSSL_X509 *crt = NULL;
	const char *name;
	char pin[80], *text, path[4096];
	int rc = KEYS_OK, days = 0, secs = 0, node;

	if (dir == NULL || strcmp(dir, "--help") == 0) {
		fprintf(dir ? stdout : stderr, "usage: tlshim-keys show DIR\n"
		    "Describes the credentials in DIR (a node's, or a CA's).\n"
		    "Exit codes: 0 usable, 1 bad arguments, 2 a file is missing, "
		    "corrupt, unsafe, expired or not verifiable.\n");
		return dir ? KEYS_OK : KEYS_USAGE;
	}
	snprintf(path, sizeof(path), "%s/node.crt", dir);
	node = access(path, F_OK) == 0;
	name = node ? "node.crt" : "ca.crt";
	if ((crt = load_cert(dir, name, &crt_pem, &crt_len, &rc)) == NULL)
		goto out;
	printf("%-12s %s/%s\n", "certificate", dir, name);
	text = wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_subject_name(crt),
	    NULL, 0);
	printf("%-12s %s\n", "subject", text ? text : "?");
	XFREE(text, NULL, DYNAMIC_TYPE_OPENSSL);
	text = wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_issuer_name(crt),
	    NULL, 0);
	printf("%-12s %s\n", "issuer", text ? text : "?");
	XFREE(text, NULL, DYNAMIC_TYPE_OPENSSL);
	print_sans(crt);
	printf("%-12s %s\n", "is a CA", wolfSSL_X509_get_isCA(crt) ? "yes" : "no");
	print_time("not before", wolfSSL_X509_get_notBefore(crt));
	print_time("not after", wolfSSL_X509_get_notAfter(crt));
	if (wolfSSL_ASN1_TIME_diff(&days, &secs, NULL,
	    wolfSSL_X509_get_notAfter(crt)) == WOLFSSL_SUCCESS) {
		printf("%-12s %.1f\n", "days left", days + secs / 86400.0);
		if (days < 0 || (days == 0 && secs < 0))
			rc = keys_fail(KEYS_FILE, "%s/%s has expired", dir, name);
	}
	if (spki_pin(crt, pin, sizeof(pin)) == 0 && !node)
		printf("%-12s %s\n", "pin", pin);
	if (node) {
		WOLFSSL_CERT_MANAGER *cm = wolfSSL_CertManagerNew();
		int got;

		snprintf(path, sizeof(path), "%s/ca.crt", dir);
		got = keys_read_file(path, false, &ca_pem, &ca_len);
		if (got != KEYS_OK || cm == NULL ||
		    wolfSSL_CertManagerLoadCABuffer(cm, ca_pem, (long)ca_len,
		    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
		    wolfSSL_CertManagerVerifyBuffer(cm, crt_pem, (long)crt_len,
		    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
			printf("%-12s no\n", "verifies");
			rc = keys_fail(KEYS_FILE, "%s/node.crt does not verify "
			    "against %s/ca.crt (other CA, expired or not yet "
			    "valid)", dir, dir);
		} else {
			printf("%-12s yes, against %s/ca.crt\n", "verifies", dir);
		}
		snprintf(path, sizeof(path), "%s/node.key", dir);
		got = keys_read_file(path, true, &key_pem, &key_len);
		if (got != KEYS_OK || !identity_key_matches(crt_pem, crt_len,
		    key_pem, key_len)) {
			printf("%-12s no\n", "key matches");
			if (got == KEYS_OK)
				rc = keys_fail(KEYS_FILE, "%s/node.key does not "
				    "match %s/node.crt", dir, dir);
			else
				rc = got;
		} else {
			printf("%-12s yes (%s/node.key, mode 0600)\n",
			    "key matches", dir);
		}
		if (cm != NULL) {
			int crl_rc = crl_state(dir, cm, crt_pem, crt_len);

			if (crl_rc != KEYS_OK)
				rc = crl_rc;
			wolfSSL_CertManagerFree(cm);
		}
	}
out:
	if (crt != NULL)
		wolfSSL_X509_free(crt);
	free(ca_pem);
	free(crt_pem);
	keys_free_secret(key_pem, key_len);
	return rc;
}
