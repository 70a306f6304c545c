/* tlshim-keys join: enroll this node with a token. */
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
			if (enroll_parse_attempts(ch, optarg, &e))
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
	if (!enroll_pin_ok(e.pin))
		return keys_fail(KEYS_USAGE, "--pin must be sha256: and 64 hex "
		    "digits, as printed by 'tlshim-keys pin'");
	if (!keys_name_ok(node))
		return keys_fail(KEYS_USAGE, "node name '%s' must be 1-63 of "
		    "[A-Za-z0-9._-]", node);
	if (enroll_alloc(&e) != 0 || enroll_add_ips(e.req, ips) != 0) {
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
	rc = enroll_request(&e, NULL, 0);
out0:
	if (rc != KEYS_OK && made_dir)
		(void)rmdir(e.dir);	/* only if empty */
	enroll_free(&e);
	return rc;
}
