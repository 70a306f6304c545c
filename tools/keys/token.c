/*
 * tlshim-keys token: enrollment tokens, and their store in CA_DIR/tokens.
 *
 * A token is ID.SECRET: ID (16 hex digits) names the file, SECRET (32
 * random bytes, base64url) is known only to whoever holds the token; the
 * file keeps its SHA-256. Each file:
 *
 *	hash=HEX  expires=UNIX  uses=N  job=ID|-  nodes=NAME,...|-
 *	used=NODE KEYPIN	(one line per enrolled node and key)
 *
 * A node that enrolls again with the same token and the same key (a retry
 * after a lost answer) is a repeat and costs no use.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "keys.h"

#define TOKEN_ID_HEX 16
#define TOKEN_SECRET_BYTES 32
#define TOKEN_SECRET_B64 43
#define TOKEN_LEN (TOKEN_ID_HEX + 1 + TOKEN_SECRET_B64)
#define DEFAULT_TTL (30 * 60)

struct token_file {
	char hash[2 * crypto_hash_sha256_BYTES + 1];
	long long expires;
	long uses;
	char job[64];
	char nodes[1024];
	char *used;		/* "NODE KEYPIN\n" lines */
	long used_count;
};

static void
token_usage(FILE *out)
{
	fprintf(out,
	    "usage: tlshim-keys token --ca CA_DIR [--ttl DURATION] [--uses N]\n"
	    "                         [--job ID] [--node NAME,...]\n\n"
	    "Prints a new enrollment token for 'tlshim-keys join'. Only its "
	    "hash is kept,\nin CA_DIR/tokens/. Treat the token as a secret "
	    "until it expires.\n"
	    "  --ttl DURATION  lifetime, e.g. 90s, 30m, 12h, 2d (default: 30m)\n"
	    "  --uses N        how many nodes may enroll with it (default: 1)\n"
	    "  --job ID        nodes enrolled with it get job-bound identities\n"
	    "                  spiffe://CLUSTER/job/ID/node/NAME (TLSHIM_JOB)\n"
	    "  --node LIST     only these node names may use it; they may enroll "
	    "again\n                  (a replaced pod) while uses remain\n"
	    "Exit codes: 0 ok, 1 bad arguments, 2 file problem.\n");
}

static int
token_path(const char *ca_dir, const char *id, char *path, size_t len)
{
	int n = snprintf(path, len, "%s/tokens/%s", ca_dir, id);

	return n > 0 && (size_t)n < len ? 0 : -1;
}

static int
token_save(const char *ca_dir, const char *id, const struct token_file *t)
{
	char dir[4200], *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	int rc;

	if (mem == NULL)
		return KEYS_FILE;
	fprintf(mem, "hash=%s\nexpires=%lld\nuses=%ld\njob=%s\nnodes=%s\n",
	    t->hash, t->expires, t->uses, t->job[0] ? t->job : "-",
	    t->nodes[0] ? t->nodes : "-");
	if (t->used != NULL)
		fputs(t->used, mem);
	if (fclose(mem) != 0)
		return KEYS_FILE;
	snprintf(dir, sizeof(dir), "%s/tokens", ca_dir);
	{
		const char *names[1] = { id };
		const uint8_t *data[1] = { (const uint8_t *)text };
		int modes[1] = { 0600 };

		rc = keys_mkdir(dir);
		if (rc == KEYS_OK)
			rc = keys_write_files(dir, names, data, &len, modes, 1,
			    true);
	}
	free(text);
	return rc;
}

static void
token_file_free(struct token_file *t)
{
	free(t->used);
	memset(t, 0, sizeof(*t));
}

/* Read and check a token file; -1 when missing or malformed. */
static int
token_load(const char *ca_dir, const char *id, struct token_file *t)
{
	char path[4200], *line, *save = NULL;
	uint8_t *text;
	size_t len;
	int fields = 0;
	FILE *used;
	size_t used_len = 0;

	memset(t, 0, sizeof(*t));
	if (token_path(ca_dir, id, path, sizeof(path)) ||
	    keys_read_file(path, true, &text, &len) != KEYS_OK)
		return -1;
	if ((used = open_memstream(&t->used, &used_len)) == NULL) {
		free(text);
		return -1;
	}
	for (line = strtok_r((char *)text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "hash=%64[0-9a-f]", t->hash) == 1)
			fields |= 1;
		else if (sscanf(line, "expires=%lld", &t->expires) == 1)
			fields |= 2;
		else if (sscanf(line, "uses=%ld", &t->uses) == 1)
			fields |= 4;
		else if (sscanf(line, "job=%63s", t->job) == 1)
			fields |= 8;
		else if (sscanf(line, "nodes=%1023s", t->nodes) == 1)
			fields |= 16;
		else if (strncmp(line, "used=", 5) == 0) {
			fprintf(used, "%s\n", line);
			t->used_count++;
		}
	}
	fclose(used);
	free(text);
	if (strcmp(t->job, "-") == 0)
		t->job[0] = '\0';
	if (strcmp(t->nodes, "-") == 0)
		t->nodes[0] = '\0';
	if (fields != 31 || strlen(t->hash) != 64) {
		token_file_free(t);
		return -1;
	}
	return 0;
}

/* Whether ${name} is in the comma-separated ${list}. */
static bool
list_has(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

int
keys_token_check(const char *ca_dir, const char *token, const char *node,
    const char *key_pin, struct keys_token_claim *claim, char *code,
    char *why, size_t whylen)
{
	uint8_t secret[TOKEN_SECRET_BYTES], hash[crypto_hash_sha256_BYTES];
	uint8_t stored[crypto_hash_sha256_BYTES];
	struct token_file t;
	char used_line[256];
	size_t secret_len = 0;
	int rc = -1;

	memset(claim, 0, sizeof(*claim));
	snprintf(code, 32, "token-invalid");
	snprintf(why, whylen, "unknown or wrong token");
	if (strlen(token) != TOKEN_LEN || token[TOKEN_ID_HEX] != '.' ||
	    strspn(token, "0123456789abcdef") != TOKEN_ID_HEX)
		return -1;
	memcpy(claim->id, token, TOKEN_ID_HEX);
	claim->id[TOKEN_ID_HEX] = '\0';
	if (sodium_base642bin(secret, sizeof(secret), token + TOKEN_ID_HEX + 1,
	    TOKEN_SECRET_B64, NULL, &secret_len, NULL,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    secret_len != sizeof(secret))
		return -1;
	crypto_hash_sha256(hash, secret, sizeof(secret));
	sodium_memzero(secret, sizeof(secret));
	if (token_load(ca_dir, claim->id, &t) != 0)
		return -1;
	if (sodium_hex2bin(stored, sizeof(stored), t.hash, 64, NULL, NULL,
	    NULL) != 0 || sodium_memcmp(stored, hash, sizeof(hash)) != 0)
		goto out;
	if ((long long)time(NULL) >= t.expires) {
		snprintf(code, 32, "token-expired");
		snprintf(why, whylen, "token %s expired %lld s ago", claim->id,
		    (long long)time(NULL) - t.expires);
		goto out;
	}
	if (t.nodes[0] != '\0' && !list_has(t.nodes, node)) {
		snprintf(code, 32, "name-not-allowed");
		snprintf(why, whylen, "token %s is not for node '%s'", claim->id,
		    node);
		goto out;
	}
	snprintf(used_line, sizeof(used_line), "used=%s %s\n", node, key_pin);
	claim->repeat = t.used != NULL && strstr(t.used, used_line) != NULL;
	if (!claim->repeat && t.used_count >= t.uses) {
		snprintf(code, 32, "token-used");
		snprintf(why, whylen, "token %s has been used %ld time%s, all it "
		    "allows", claim->id, t.used_count, t.uses == 1 ? "" : "s");
		goto out;
	}
	snprintf(claim->job, sizeof(claim->job), "%s", t.job);
	claim->names_listed = t.nodes[0] != '\0';
	code[0] = '\0';
	why[0] = '\0';
	rc = 0;
out:
	token_file_free(&t);
	return rc;
}

int
keys_token_prune(const char *ca_dir, long grace)
{
	char dir[4200], path[4500];
	struct dirent *entry;
	struct token_file t;
	long long now = (long long)time(NULL);
	int pruned = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/tokens", ca_dir);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((entry = readdir(d)) != NULL) {
		if (strlen(entry->d_name) != TOKEN_ID_HEX ||
		    strspn(entry->d_name, "0123456789abcdef") != TOKEN_ID_HEX ||
		    token_load(ca_dir, entry->d_name, &t) != 0)
			continue;
		if (now - t.expires > grace) {
			snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
			if (unlink(path) == 0)
				pruned++;
		}
		token_file_free(&t);
	}
	closedir(d);
	return pruned;
}

int
keys_token_spend(const char *ca_dir, const struct keys_token_claim *claim,
    const char *node, const char *key_pin)
{
	struct token_file t;
	char *more = NULL;
	int rc;

	if (claim->repeat)
		return 0;
	if (token_load(ca_dir, claim->id, &t) != 0)
		return -1;
	if (asprintf(&more, "%sused=%s %s\n", t.used ? t.used : "", node,
	    key_pin) < 0) {
		token_file_free(&t);
		return -1;
	}
	free(t.used);
	t.used = more;
	rc = token_save(ca_dir, claim->id, &t);
	token_file_free(&t);
	return rc == KEYS_OK ? 0 : -1;
}

int
keys_token_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ca", required_argument, NULL, 'c' },
		{ "ttl", required_argument, NULL, 't' },
		{ "uses", required_argument, NULL, 'u' },
		{ "job", required_argument, NULL, 'j' },
		{ "node", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ca_dir = NULL, *job = NULL, *nodes = NULL;
	long ttl = DEFAULT_TTL, uses = 1;
	uint8_t id[TOKEN_ID_HEX / 2], secret[TOKEN_SECRET_BYTES];
	uint8_t hash[crypto_hash_sha256_BYTES];
	char token[TOKEN_LEN + 1], when[64], *end;
	struct token_file t;
	struct keys_ca ca;
	time_t expires;
	struct tm tm;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': ca_dir = optarg; break;
		case 'j': job = optarg; break;
		case 'n': nodes = optarg; break;
		case 't':
			if (keys_parse_duration(optarg, &ttl))
				return keys_fail(KEYS_USAGE, "--ttl '%s' is not a "
				    "duration like 30m, 12h or 2d", optarg);
			break;
		case 'u':
			errno = 0;
			uses = strtol(optarg, &end, 10);
			if (errno || *end || uses < 1 ||
			    uses > KEYS_TOKEN_USES_MAX)
				return keys_fail(KEYS_USAGE, "--uses must be 1 to "
				    "%d", KEYS_TOKEN_USES_MAX);
			break;
		case 'h': token_usage(stdout); return KEYS_OK;
		default: token_usage(stderr); return KEYS_USAGE;
		}
	}
	if (optind != argc || ca_dir == NULL) {
		token_usage(stderr);
		return KEYS_USAGE;
	}
	if (job != NULL && !keys_name_ok(job))
		return keys_fail(KEYS_USAGE, "job ID '%s' must be 1-63 of "
		    "[A-Za-z0-9._-]", job);
	if (nodes != NULL && (strlen(nodes) >= sizeof(t.nodes) ||
	    keys_check_list(nodes, false, 256)))
		return keys_fail(KEYS_USAGE, "--node takes node names "
		    "separated by commas");
	/* Only the CA's owner makes tokens: the CA must load. */
	if ((rc = keys_ca_load(ca_dir, &ca)) != KEYS_OK)
		return rc;
	keys_ca_free(&ca);

	randombytes_buf(id, sizeof(id));
	randombytes_buf(secret, sizeof(secret));
	sodium_bin2hex(token, sizeof(token), id, sizeof(id));
	token[TOKEN_ID_HEX] = '.';
	sodium_bin2base64(token + TOKEN_ID_HEX + 1, TOKEN_SECRET_B64 + 1, secret,
	    sizeof(secret), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	crypto_hash_sha256(hash, secret, sizeof(secret));
	sodium_memzero(secret, sizeof(secret));

	memset(&t, 0, sizeof(t));
	sodium_bin2hex(t.hash, sizeof(t.hash), hash, sizeof(hash));
	expires = time(NULL) + ttl;
	t.expires = (long long)expires;
	t.uses = uses;
	snprintf(t.job, sizeof(t.job), "%s", job ? job : "");
	snprintf(t.nodes, sizeof(t.nodes), "%s", nodes ? nodes : "");
	token[TOKEN_ID_HEX] = '\0';
	rc = token_save(ca_dir, token, &t);
	token[TOKEN_ID_HEX] = '.';
	if (rc == KEYS_OK) {
		gmtime_r(&expires, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		printf("%s\n", token);
		fprintf(stderr, "tlshim-keys: token %.16s: %ld use%s, expires %s"
		    "%s%s\n", token, uses, uses == 1 ? "" : "s", when,
		    job ? ", job " : "", job ? job : "");
	}
	sodium_memzero(token, sizeof(token));
	return rc;
}
