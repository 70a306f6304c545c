/* tlshim-keys issue: a node's private key and certificate, signed by the
 * cluster CA, offline (the network flow is tlshim-keys join). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../../shim/identity.h"
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
	uint8_t der[4096], crt_pem[8192], key_der[512], key_pem[1024];
	size_t der_len = sizeof(der), crt_len = sizeof(crt_pem);
	size_t key_len = sizeof(key_pem);
	char uri[512];
	struct keys_ca ca;
	struct keys_request req;
	ecc_key node_ecc;
	WC_RNG rng;

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
	if (keys_check_list(ips, true, 16) || keys_check_list(dns, false, 16))
		return KEYS_USAGE;
	if ((rc = keys_ca_load(ca_dir, &ca)) != KEYS_OK)
		return rc;
	if ((rc = keys_mkdir(out_dir)) != KEYS_OK)
		goto err0;

	rc = KEYS_CRYPTO;
	if (wc_InitRng(&rng) != 0) {
		keys_fail(rc, "cannot start the random generator");
		goto err0;
	}
	if (keys_ecc_new(&rng, &node_ecc) != 0) {
		keys_fail(rc, "cannot generate the node key");
		goto err1;
	}
	req = (struct keys_request){ .node = node, .job = job, .ips = ips,
	    .dns = dns, .seconds = days * 86400L };
	if (keys_cert_make(&ca, &node_ecc, &req, &rng, der, &der_len) != 0 ||
	    keys_pem(der, der_len, CERT_TYPE, crt_pem, &crt_len)) {
		keys_fail(rc, "cannot sign the node certificate");
		goto err2;
	}
	if ((n = wc_EccKeyToDer(&node_ecc, key_der, sizeof(key_der))) <= 0 ||
	    keys_pem(key_der, (size_t)n, ECC_PRIVATEKEY_TYPE, key_pem, &key_len)) {
		keys_fail(rc, "cannot encode the node key");
		goto err2;
	}
	{
		const char *names[] = { "ca.crt", "node.crt", "node.key" };
		const uint8_t *data[] = { ca.crt_pem, crt_pem, key_pem };
		size_t lens[] = { ca.crt_len, crt_len, key_len };
		int modes[] = { 0644, 0644, 0600 };

		rc = keys_write_files(out_dir, names, data, lens, modes, 3, force);
	}
	(void)identity_node_uri(ca.cluster, job, node, uri, sizeof(uri));
	if (rc == KEYS_OK)
		printf("issued %s to %s (valid %d days)\n", uri, out_dir, days);
err2:
	sodium_memzero(key_der, sizeof(key_der));
	sodium_memzero(key_pem, sizeof(key_pem));
	wc_ecc_free(&node_ecc);
err1:
	wc_FreeRng(&rng);
err0:
	keys_ca_free(&ca);
	return rc;
}
