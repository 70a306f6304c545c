/* tlshim-keys renew: a new key and certificate for the same identity,
 * authenticated by the current one. */
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
			if (enroll_parse_attempts(ch, optarg, &e))
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
	if ((rc = enroll_node_files_load(e.dir, &nf)) != KEYS_OK)
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
	if (enroll_alloc(&e) != 0 || enroll_add_ips(e.req, ips) != 0) {
		rc = KEYS_USAGE;
		goto out1;
	}
	e.req->verb = KEYS_VERB_RENEW;
	e.pin = nf.pins[0];
	e.more_pins = nf.pins + 1;
	e.more_count = nf.pin_count - 1;
	e.crt = nf.crt;
	e.crt_len = nf.crt_len;
	rc = enroll_request(&e, nf.key, nf.key_len);
out1:
	enroll_free(&e);
out0:
	enroll_node_files_free(&nf);
	return rc;
}
