/*
 * tlshim-keys trust: the other CAs whose certificates a CA directory's
 * answers carry, so that nodes trust both during a CA rollover.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "keys.h"

static void
trust_usage(FILE *out)
{
	fprintf(out,
	    "usage: tlshim-keys trust --ca CA_DIR [--add OTHER_CA_DIR | "
	    "--remove OTHER_CA_DIR]\n\n"
	    "Lists, adds or removes the other CAs of the same cluster that the "
	    "nodes of\nCA_DIR trust. 'serve --ca CA_DIR' sends their "
	    "certificates and CRLs with every\nanswer (join, renew, crl) and "
	    "lets their nodes renew. A CA rollover:\n"
	    "  tlshim-keys init --dir NEW --name CLUSTER\n"
	    "  tlshim-keys trust --ca OLD --add NEW; tlshim-keys trust --ca NEW "
	    "--add OLD\n"
	    "  (restart serve) every node: tlshim-keys crl --server OLD_SERVER "
	    "--dir D\n"
	    "  then every node: tlshim-keys renew --server NEW_SERVER --dir D\n"
	    "  tlshim-keys trust --ca NEW --remove OLD; every node: tlshim-keys "
	    "crl ...\n"
	    "Exit codes: 0 ok, 1 bad arguments, 2 file problem.\n");
}

int
keys_trust_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "add", required_argument, NULL, 'a' },
		{ "remove", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ca_dir = NULL, *add = NULL, *remove = NULL;
	char other[PATH_MAX], self[PATH_MAX];
	struct keys_trusted *t;
	struct keys_ca ca;
	int ch, rc, i;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': ca_dir = optarg; break;
		case 'a': add = optarg; break;
		case 'r': remove = optarg; break;
		case 'h': trust_usage(stdout); return KEYS_OK;
		default: trust_usage(stderr); return KEYS_USAGE;
		}
	}
	if (optind != argc || ca_dir == NULL || (add != NULL && remove != NULL)) {
		trust_usage(stderr);
		return KEYS_USAGE;
	}
	if ((rc = keys_ca_load(ca_dir, &ca)) != KEYS_OK)
		return rc;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		rc = keys_fail(KEYS_FILE, "out of memory");
		goto out;
	}
	if ((rc = keys_trusted_load(ca_dir, ca.cluster, t)) != KEYS_OK)
		goto out;
	if (add != NULL || remove != NULL) {
		/* Stored absolute: serve may run from another directory. */
		if (realpath(add != NULL ? add : remove, other) == NULL) {
			rc = keys_fail(KEYS_FILE, "%s: no such CA directory",
			    add != NULL ? add : remove);
			goto out;
		}
		if (realpath(ca_dir, self) == NULL)
			snprintf(self, sizeof(self), "%s", ca_dir);
		if (add != NULL && strcmp(other, self) == 0) {
			rc = keys_fail(KEYS_USAGE, "a CA trusts itself already");
			goto out;
		}
		if (add != NULL &&
		    (rc = keys_trusted_add(t, other, ca.cluster)) != KEYS_OK)
			goto out;
		for (i = 0; remove != NULL && i < t->count; i++)
			if (strcmp(t->ca[i].dir, other) == 0) {
				t->ca[i] = t->ca[--t->count];
				break;
			}
		if ((rc = keys_trusted_save(ca_dir, t)) != KEYS_OK)
			goto out;
	}
	for (i = 0; i < t->count; i++)
		printf("%s\n", t->ca[i].dir);
	if (add != NULL || remove != NULL)
		fprintf(stderr, "tlshim-keys: restart 'serve --ca %s' to use "
		    "this list\n", ca_dir);
out:
	free(t);
	keys_ca_free(&ca);
	return rc;
}
