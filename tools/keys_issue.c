/* tlshim-keys issue: a node's private key and certificate, signed by the
 * cluster CA, offline (the network flow is tlshim-keys join). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../shim/handshake.h"
#include "keys.h"

static void
issue_usage(FILE *out)
{
	fprintf(out,
	    "usage: tlshim-keys issue --ca CA_DIR --node NAME --out NODE_DIR\n"
	    "                         [--ip ADDR,...] [--dns NAME,...] [--job ID]\n"
	    "                         [--days N] [--force]\n\n"
	    "Writes NODE_DIR/ca.crt, NODE_DIR/node.crt and NODE_DIR/node.key "
	    "(mode 0600).\n"
	    "The identity is the URI spiffe://CLUSTER/node/NAME, or\n"
	    "spiffe://CLUSTER/job/ID/node/NAME with --job.\n"
	    "  --ca CA_DIR   the CA made by 'tlshim-keys init'\n"
	    "  --node NAME   node name, [A-Za-z0-9._-]\n"
	    "  --ip LIST     IP addresses to add as SANs (informational)\n"
	    "  --dns LIST    DNS names to add as SANs (informational)\n"
	    "  --job ID      bind the certificate to one job (TLSHIM_JOB)\n"
	    "  --days N      validity (default: %d)\n"
	    "  --force       replace existing files in NODE_DIR\n"
	    "Exit codes: 0 ok, 1 bad arguments, 2 file problem, 3 files exist, "
	    "4 crypto failure.\n", KEYS_DEFAULT_NODE_DAYS);
}

struct san {
	uint8_t der[2048];
	size_t len;
};

static int
san_add(struct san *s, uint8_t tag, const void *data, size_t len)
{
	if (len > 250 || s->len + 2 + len > sizeof(s->der))
		return -1;
	s->der[s->len++] = tag;
	s->der[s->len++] = (uint8_t)len;
	memcpy(s->der + s->len, data, len);
	s->len += len;
	return 0;
}

static int
san_add_list(struct san *s, const char *list, bool ip)
{
	char *copy, *item, *save = NULL;
	int rc = 0;

	if (list == NULL)
		return 0;
	if ((copy = strdup(list)) == NULL)
		return -1;
	for (item = strtok_r(copy, ",", &save); item && rc == 0;
	    item = strtok_r(NULL, ",", &save)) {
		uint8_t addr[16];

		if (!ip) {
			rc = keys_name_ok(item) ? san_add(s, 0x82, item,
			    strlen(item)) : -1;
			if (rc)
				keys_fail(KEYS_USAGE, "bad DNS name '%s'", item);
		} else if (inet_pton(AF_INET, item, addr) == 1) {
			rc = san_add(s, 0x87, addr, 4);
		} else if (inet_pton(AF_INET6, item, addr) == 1) {
			rc = san_add(s, 0x87, addr, 16);
		} else {
			rc = keys_fail(KEYS_USAGE, "bad IP address '%s'", item);
		}
	}
	free(copy);
	return rc;
}

/* GeneralNames: SEQUENCE of the entries, with a DER length. */
static int
san_finish(const struct san *s, uint8_t *out, int cap)
{
	int hdr = s->len < 128 ? 2 : s->len < 256 ? 3 : 4;

	if ((int)s->len + hdr > cap)
		return -1;
	out[0] = 0x30;
	if (hdr == 2) {
		out[1] = (uint8_t)s->len;
	} else if (hdr == 3) {
		out[1] = 0x81;
		out[2] = (uint8_t)s->len;
	} else {
		out[1] = 0x82;
		out[2] = (uint8_t)(s->len >> 8);
		out[3] = (uint8_t)s->len;
	}
	memcpy(out + hdr, s->der, s->len);
	return (int)s->len + hdr;
}

int
keys_issue_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'n' },
		{ "ip", required_argument, NULL, 'i' },
		{ "dns", required_argument, NULL, 'N' },
		{ "job", required_argument, NULL, 'j' },
		{ "days", required_argument, NULL, 'D' },
		{ "out", required_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ca_dir = NULL, *node = NULL, *ips = NULL, *dns = NULL;
	const char *job = NULL, *out_dir = NULL;
	int days = KEYS_DEFAULT_NODE_DAYS, ch, rc, n;
	bool force = false;
	uint8_t *ca_crt = NULL, *ca_key = NULL;
	size_t ca_crt_len = 0, ca_key_len = 0;
	uint8_t ca_der[4096], der[4096], crt_pem[8192], key_der[512];
	uint8_t key_pem[1024];
	size_t crt_len = sizeof(crt_pem), key_len = sizeof(key_pem);
	char path[4096], ca_uri[256], cluster[128], uri[512];
	struct san san = { .len = 0 };
	ecc_key ca_ecc, node_ecc;
	WC_RNG rng;
	Cert cert;
	int ca_der_len;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': ca_dir = optarg; break;
		case 'n': node = optarg; break;
		case 'i': ips = optarg; break;
		case 'N': dns = optarg; break;
		case 'j': job = optarg; break;
		case 'o': out_dir = optarg; break;
		case 'D':
			if (keys_parse_days(optarg, &days))
				return keys_fail(KEYS_USAGE, "--days must be 1 to "
				    "36500, not '%s'", optarg);
			break;
		case 'f': force = true; break;
		case 'h': issue_usage(stdout); return KEYS_OK;
		default: issue_usage(stderr); return KEYS_USAGE;
		}
	}
	if (optind != argc || ca_dir == NULL || node == NULL || out_dir == NULL) {
		issue_usage(stderr);
		return KEYS_USAGE;
	}
	if (!keys_name_ok(node))
		return keys_fail(KEYS_USAGE, "node name '%s' must be 1-63 of "
		    "[A-Za-z0-9._-]", node);
	if (job != NULL && !keys_name_ok(job))
		return keys_fail(KEYS_USAGE, "job ID '%s' must be 1-63 of "
		    "[A-Za-z0-9._-]", job);

	snprintf(path, sizeof(path), "%s/ca.crt", ca_dir);
	if ((rc = keys_read_file(path, false, &ca_crt, &ca_crt_len)) != KEYS_OK)
		return rc;
	snprintf(path, sizeof(path), "%s/ca.key", ca_dir);
	if ((rc = keys_read_file(path, true, &ca_key, &ca_key_len)) != KEYS_OK)
		goto err0;
	rc = KEYS_FILE;
	if ((ca_der_len = wc_CertPemToDer(ca_crt, (int)ca_crt_len, ca_der,
	    sizeof(ca_der), CERT_TYPE)) <= 0) {
		keys_fail(KEYS_FILE, "%s/ca.crt is not a PEM certificate", ca_dir);
		goto err0;
	}
	if (handshake_uri_of_pem(ca_crt, ca_crt_len, ca_uri, sizeof(ca_uri)) ||
	    sscanf(ca_uri, "spiffe://%127[^/]/ca", cluster) != 1) {
		keys_fail(KEYS_FILE, "%s/ca.crt is not a tlshim CA (no "
		    "spiffe://CLUSTER/ca identity)", ca_dir);
		goto err0;
	}
	if (keys_ecc_from_pem(ca_key, ca_key_len, &ca_ecc) != 0) {
		keys_fail(KEYS_FILE, "%s/ca.key is not a PEM ECDSA private key",
		    ca_dir);
		goto err0;
	}
	if (job != NULL)
		snprintf(uri, sizeof(uri), "spiffe://%s/job/%s/node/%s", cluster,
		    job, node);
	else
		snprintf(uri, sizeof(uri), "spiffe://%s/node/%s", cluster, node);
	if (san_add(&san, 0x86, uri, strlen(uri)) || san_add_list(&san, ips, true) ||
	    san_add_list(&san, dns, false)) {
		rc = KEYS_USAGE;
		goto err1;
	}
	if ((rc = keys_mkdir(out_dir)) != KEYS_OK)
		goto err1;

	rc = KEYS_CRYPTO;
	if (wc_InitRng(&rng) != 0) {
		keys_fail(rc, "cannot start the random generator");
		goto err1;
	}
	if (keys_ecc_new(&rng, &node_ecc) != 0) {
		keys_fail(rc, "cannot generate the node key");
		goto err2;
	}
	wc_InitCert(&cert);
	cert.sigType = CTC_SHA256wECDSA;
	cert.isCA = 0;
	snprintf(cert.subject.commonName, CTC_NAME_SIZE, "%s", node);
	snprintf(cert.subject.org, CTC_NAME_SIZE, "%.63s", cluster);
	if ((n = san_finish(&san, cert.altNames, sizeof(cert.altNames))) < 0 ||
	    keys_set_validity(&cert, days) || keys_set_serial(&cert, &rng) ||
	    wc_SetIssuerBuffer(&cert, ca_der, ca_der_len) != 0 ||
	    wc_SetAuthKeyIdFromCert(&cert, ca_der, ca_der_len) != 0 ||
	    wc_SetSubjectKeyIdFromPublicKey_ex(&cert, ECC_TYPE, &node_ecc) != 0 ||
	    wc_SetKeyUsage(&cert, "digitalSignature") != 0 ||
	    wc_SetExtKeyUsage(&cert, "serverAuth,clientAuth") != 0) {
		keys_fail(rc, "cannot prepare the node certificate");
		goto err3;
	}
	cert.altNamesSz = n;
	cert.selfSigned = 0;
	if (wc_MakeCert_ex(&cert, der, sizeof(der), ECC_TYPE, &node_ecc, &rng) < 0 ||
	    (n = wc_SignCert_ex(cert.bodySz, cert.sigType, der, sizeof(der),
	    ECC_TYPE, &ca_ecc, &rng)) < 0 ||
	    keys_pem(der, (size_t)n, CERT_TYPE, crt_pem, &crt_len)) {
		keys_fail(rc, "cannot sign the node certificate");
		goto err3;
	}
	if ((n = wc_EccKeyToDer(&node_ecc, key_der, sizeof(key_der))) <= 0 ||
	    keys_pem(key_der, (size_t)n, ECC_PRIVATEKEY_TYPE, key_pem, &key_len)) {
		keys_fail(rc, "cannot encode the node key");
		goto err3;
	}
	{
		const char *names[] = { "ca.crt", "node.crt", "node.key" };
		const uint8_t *data[] = { ca_crt, crt_pem, key_pem };
		size_t lens[] = { ca_crt_len, crt_len, key_len };
		int modes[] = { 0644, 0644, 0600 };

		rc = keys_write_files(out_dir, names, data, lens, modes, 3, force);
	}
	if (rc == KEYS_OK)
		printf("issued %s to %s (valid %d days)\n", uri, out_dir, days);
err3:
	sodium_memzero(key_der, sizeof(key_der));
	sodium_memzero(key_pem, sizeof(key_pem));
	wc_ecc_free(&node_ecc);
err2:
	wc_FreeRng(&rng);
err1:
	wc_ecc_free(&ca_ecc);
err0:
	free(ca_crt);
	keys_free_secret(ca_key, ca_key_len);
	return rc;
}
