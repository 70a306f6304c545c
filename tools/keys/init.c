/* tlshim-keys init: create the cluster's certificate authority. */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "keys.h"

static void
init_usage(FILE *out)
{
	fprintf(out,
	    "usage: tlshim-keys init --dir CA_DIR [--name CLUSTER] [--days N] "
	    "[--force]\n\n"
	    "Creates a cluster CA (ECDSA P-256): CA_DIR/ca.crt and CA_DIR/ca.key "
	    "(mode 0600).\n"
	    "  --dir CA_DIR    where to write (created 0700 if missing)\n"
	    "  --name CLUSTER  cluster name in every identity (default: tlshim)\n"
	    "  --days N        CA validity (default: %d)\n"
	    "  --force         replace an existing CA (every node must be "
	    "re-issued)\n"
	    "Exit codes: 0 ok, 1 bad arguments, 2 file problem, 3 CA exists, "
	    "4 crypto failure.\n", KEYS_DEFAULT_CA_DAYS);
}

/* A SAN holding one URI, as GeneralNames DER. */
static int
ca_san(const char *uri, uint8_t *out, int cap)
{
	int len = (int)strlen(uri);

	if (len > 120 || len + 4 > cap)
		return -1;
	out[0] = 0x30;
	out[1] = (uint8_t)(len + 2);
	out[2] = 0x86;
	out[3] = (uint8_t)len;
	memcpy(out + 4, uri, (size_t)len);
	return len + 4;
}

int
keys_init_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "days", required_argument, NULL, 'D' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *name = "tlshim";
	int days = KEYS_DEFAULT_CA_DAYS, ch, rc = KEYS_CRYPTO, n;
	bool force = false;
	uint8_t der[4096], crt_pem[8192], key_der[512], key_pem[1024];
	size_t crt_len = sizeof(crt_pem), key_len = sizeof(key_pem);
	char uri[160], key_id[17];
	uint8_t spki[256], hash[crypto_hash_sha256_BYTES];
	int spki_len;
	WC_RNG rng;
	ecc_key key;
	Cert cert;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'd': dir = optarg; break;
		case 'n': name = optarg; break;
		case 'D':
			if (keys_parse_days(optarg, &days))
				return keys_fail(KEYS_USAGE, "--days must be 1 to "
				    "36500, not '%s'", optarg);
			break;
		case 'f': force = true; break;
		case 'h': init_usage(stdout); return KEYS_OK;
		default: init_usage(stderr); return KEYS_USAGE;
		}
	}
	if (optind != argc || dir == NULL) {
		init_usage(stderr);
		return KEYS_USAGE;
	}
	if (!keys_name_ok(name))
		return keys_fail(KEYS_USAGE, "cluster name '%s' must be 1-63 of "
		    "[A-Za-z0-9._-]", name);
	if ((rc = keys_mkdir(dir)) != KEYS_OK)
		return rc;
	rc = KEYS_CRYPTO;

	if (wc_InitRng(&rng) != 0)
		return keys_fail(KEYS_CRYPTO, "cannot start the random generator");
	if (keys_ecc_new(&rng, &key) != 0) {
		keys_fail(KEYS_CRYPTO, "cannot generate the CA key");
		goto err0;
	}
	wc_InitCert(&cert);
	cert.sigType = CTC_SHA256wECDSA;
	cert.isCA = 1;
	/* A name of its own: during a rollover two CAs of one cluster sit in
	 * every node's bundle, and wolfSSL finds a CRL's or certificate's
	 * issuer by name; the key's fingerprint tells them apart. */
	if ((spki_len = wc_EccPublicKeyToDer(&key, spki, sizeof(spki), 1)) <= 0) {
		keys_fail(KEYS_CRYPTO, "cannot encode the CA key");
		goto err1;
	}
	crypto_hash_sha256(hash, spki, (unsigned long long)spki_len);
	sodium_bin2hex(key_id, sizeof(key_id), hash, 8);
	snprintf(cert.subject.commonName, CTC_NAME_SIZE, "tlshim CA %s",
	    key_id);
	snprintf(cert.subject.org, CTC_NAME_SIZE, "%s", name);
	snprintf(uri, sizeof(uri), "spiffe://%s/ca", name);
	if ((n = ca_san(uri, cert.altNames, sizeof(cert.altNames))) < 0 ||
	    keys_set_validity(&cert, days * 86400L) ||
	    keys_set_serial(&cert, &rng) ||
	    wc_SetKeyUsage(&cert, "keyCertSign,cRLSign") != 0 ||
	    wc_SetSubjectKeyIdFromPublicKey_ex(&cert, ECC_TYPE, &key) != 0) {
		keys_fail(KEYS_CRYPTO, "cannot prepare the CA certificate");
		goto err1;
	}
	cert.altNamesSz = n;
	if (wc_MakeCert_ex(&cert, der, sizeof(der), ECC_TYPE, &key, &rng) < 0 ||
	    (n = wc_SignCert_ex(cert.bodySz, cert.sigType, der, sizeof(der),
	    ECC_TYPE, &key, &rng)) < 0 ||
	    keys_pem(der, (size_t)n, CERT_TYPE, crt_pem, &crt_len)) {
		keys_fail(KEYS_CRYPTO, "cannot sign the CA certificate");
		goto err1;
	}
	if ((n = wc_EccKeyToDer(&key, key_der, sizeof(key_der))) <= 0 ||
	    keys_pem(key_der, (size_t)n, ECC_PRIVATEKEY_TYPE, key_pem, &key_len)) {
		keys_fail(KEYS_CRYPTO, "cannot encode the CA key");
		goto err1;
	}
	{
		const char *names[] = { "ca.crt", "ca.key" };
		const uint8_t *data[] = { crt_pem, key_pem };
		size_t lens[] = { crt_len, key_len };
		int modes[] = { 0644, 0600 };

		rc = keys_write_files(dir, names, data, lens, modes, 2, force);
	}
	if (rc == KEYS_OK)
		printf("created CA for cluster '%s' in %s (valid %d days)\n", name,
		    dir, days);
err1:
	sodium_memzero(key_der, sizeof(key_der));
	sodium_memzero(key_pem, sizeof(key_pem));
	wc_ecc_free(&key);
err0:
	wc_FreeRng(&rng);
	return rc;
}
