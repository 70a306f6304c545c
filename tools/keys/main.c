/*
 * tlshim-keys: the credentials of a tlshim cluster. Subcommands are
 * dispatched from a table, one file each.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "keys.h"

static const struct {
	const char *name;
	int (*main)(int, char **);
	const char *summary;
} subcommands[] = {
	{ "init", keys_init_main, "create a cluster CA" },
	{ "issue", keys_issue_main, "issue a node's key and certificate" },
	{ "pin", keys_pin_main, "print the CA's public key pin" },
	{ "show", keys_show_main, "describe the credentials in a directory" },
	{ "token", keys_token_main, "make an enrollment token" },
	{ "serve", keys_serve_main, "run the enrollment server" },
	{ "join", keys_join_main, "enroll this node with the server" },
	{ "renew", keys_renew_main, "renew this node's certificate" },
	{ "revoke", keys_revoke_main, "revoke a node and write the CRL" },
	{ "crl", keys_crl_main, "fetch the current CRLs and CA bundle into a "
	    "node's directory" },
	{ "trust", keys_trust_main, "list, add or remove the other CAs a CA's "
	    "nodes trust (rollover)" },
};

static void
usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: tlshim-keys COMMAND [OPTIONS]\n\ncommands:\n");
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(out, "  %-8s %s\n", subcommands[i].name,
		    subcommands[i].summary);
	fprintf(out, "\n'tlshim-keys COMMAND --help' describes each.\n"
	    "\nexit codes:\n"
	    "  0  success\n"
	    "  1  bad arguments\n"
	    "  2  a file is missing, unreadable, corrupt or unsafe\n"
	    "  3  refusing to overwrite an existing key or certificate\n"
	    "  4  key or certificate generation failed\n"
	    "  5  the enrollment server refused the request\n"
	    "  6  network or protocol error (server unreachable, timed out)\n"
	    "  7  the server's CA does not match the pin\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	if (sodium_init() < 0)
		return keys_fail(KEYS_CRYPTO, "libsodium failed to initialise");
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? KEYS_USAGE : KEYS_OK;
	}
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "tlshim-keys: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return KEYS_USAGE;
}
