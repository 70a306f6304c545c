#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

struct config config;

static bool
env_true(const char *v)
{
	return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "yes") == 0 ||
	    strcmp(v, "true") == 0 || strcmp(v, "on") == 0);
}

/* Parse a positive decimal; returns 0 or -1. */
static int
parse_positive(const char *v, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long n;

	if (v[0] < '0' || v[0] > '9')
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno != 0 || *end != '\0' || n == 0 || n > max)
		return -1;
	*out = n;
	return 0;
}

static void
config_fail(struct config *cfg, const char *fmt, const char *name,
    const char *detail)
{
	/* Keep the first problem: it is the one the user must fix first. */
	if (cfg->error[0] == '\0')
		snprintf(cfg->error, sizeof(cfg->error), fmt, name, detail);
}

/* A peer file line's host: the first word, without MPICH's ":COUNT". */
static void
peer_file_word(char *line, char **word)
{
	struct in6_addr ignored;
	char *colon;

	line[strcspn(line, "#\r\n")] = '\0';
	*word = line + strspn(line, " \t");
	(*word)[strcspn(*word, " \t")] = '\0';
	if (inet_pton(AF_INET6, *word, &ignored) != 1 &&
	    (colon = strchr(*word, ':')) != NULL)
		*colon = '\0';
}

/*
 * TLSHIM_PEERS: "node1,node2,198.18.0.0/24", or a path ("/...", "./...")
 * to a file with one host per line (an MPI hostfile, or what `scontrol
 * show hostnames` prints): the first word of each line; "#" comments,
 * "slots=" and the like are ignored.
 */
static void
config_load_peers(struct config *cfg, const char *v)
{
	char err[160], line[1024], *list = NULL, *word;
	size_t used = 0, cap = 0;
	FILE *f;

	if (v == NULL || *v == '\0')
		return;
	cfg->peers_set = true;
	if (v[0] != '/' && strncmp(v, "./", 2) != 0 && strncmp(v, "../", 3) != 0) {
		if (policy_parse(v, &cfg->peers, err, sizeof(err)))
			config_fail(cfg, "%s: %s", "TLSHIM_PEERS", err);
		return;
	}
	if ((f = fopen(v, "re")) == NULL) {
		config_fail(cfg, "TLSHIM_PEERS: cannot read %s: %s", v,
		    strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t len;

		peer_file_word(line, &word);
		if ((len = strlen(word)) == 0)
			continue;
		if (used + len + 2 > cap) {
			char *grown = realloc(list, cap = (cap + len + 2) * 2);

			if (grown == NULL) {
				config_fail(cfg, "%s: out of memory%s",
				    "TLSHIM_PEERS", "");
				goto out;
			}
			list = grown;
		}
		used += (size_t)sprintf(list + used, "%s%s", used ? "," : "", word);
	}
	if (list == NULL)
		config_fail(cfg, "TLSHIM_PEERS: %s names no host%s", v, "");
	else if (policy_parse(list, &cfg->peers, err, sizeof(err)))
		config_fail(cfg, "TLSHIM_PEERS: %s: %s", v, err);
out:
	free(list);
	fclose(f);
}

void
config_load(struct config *cfg, const char *(*getenv_fn)(const char *))
{
	const char *v;
	char err[160];
	unsigned long long n;

	memset(cfg, 0, sizeof(*cfg));
	cfg->handshake_timeout_ms = CONFIG_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	cfg->rekey_records = CONFIG_DEFAULT_REKEY_RECORDS;

	v = getenv_fn("TLSHIM");
	cfg->enabled = env_true(v);
	if (v != NULL && !cfg->enabled && strcmp(v, "0") != 0 && *v != '\0')
		config_fail(cfg, "%s must be 0 or 1, not \"%s\"", "TLSHIM", v);

	v = getenv_fn("TLSHIM_DIR");
	if (v != NULL && *v != '\0') {
		if (strlen(v) >= sizeof(cfg->dir) - 16)
			config_fail(cfg, "%s is too long%s", "TLSHIM_DIR", "");
		else
			snprintf(cfg->dir, sizeof(cfg->dir), "%s", v);
	} else {
		snprintf(cfg->dir, sizeof(cfg->dir), "%s", CONFIG_DEFAULT_DIR);
	}

	cfg->loopback = env_true(getenv_fn("TLSHIM_LOOPBACK"));

	if (policy_parse(getenv_fn("TLSHIM_INCLUDE"), &cfg->include, err,
	    sizeof(err)))
		config_fail(cfg, "%s: %s", "TLSHIM_INCLUDE", err);
	if (policy_parse(getenv_fn("TLSHIM_EXCLUDE"), &cfg->exclude, err,
	    sizeof(err)))
		config_fail(cfg, "%s: %s", "TLSHIM_EXCLUDE", err);
	if (policy_parse(getenv_fn("TLSHIM_TRUST_NAT"), &cfg->trust_nat, err,
	    sizeof(err)))
		config_fail(cfg, "%s: %s", "TLSHIM_TRUST_NAT", err);
	cfg->strict = env_true(getenv_fn("TLSHIM_STRICT"));
	config_load_peers(cfg, getenv_fn("TLSHIM_PEERS"));

	v = getenv_fn("TLSHIM_JOB");
	if (v != NULL && *v != '\0') {
		size_t i, len = strlen(v);

		if (len >= sizeof(cfg->job))
			config_fail(cfg, "%s is too long%s", "TLSHIM_JOB", "");
		for (i = 0; i < len; i++)
			if (v[i] == '/' || v[i] <= ' ' || v[i] > '~')
				break;
		if (i < len)
			config_fail(cfg, "%s has a character not allowed in an "
			    "identity: \"%s\"", "TLSHIM_JOB", v);
		else if (len < sizeof(cfg->job))
			memcpy(cfg->job, v, len + 1);
	}

	v = getenv_fn("TLSHIM_HANDSHAKE_TIMEOUT");
	if (v != NULL && *v != '\0') {
		if (parse_positive(v, 3600, &n))
			config_fail(cfg, "%s must be whole seconds from 1 to 3600, "
			    "not \"%s\"", "TLSHIM_HANDSHAKE_TIMEOUT", v);
		else
			cfg->handshake_timeout_ms = (int)n * 1000;
	}

	v = getenv_fn("TLSHIM_REKEY_RECORDS");
	if (v != NULL && *v != '\0') {
		if (parse_positive(v, CONFIG_DEFAULT_REKEY_RECORDS, &n) || n < 2)
			config_fail(cfg, "%s must be from 2 to 1048576, not \"%s\"",
			    "TLSHIM_REKEY_RECORDS", v);
		else
			cfg->rekey_records = n;
	}
}

void
config_free(struct config *cfg)
{
	policy_rules_free(&cfg->include);
	policy_rules_free(&cfg->exclude);
	policy_rules_free(&cfg->trust_nat);
	policy_rules_free(&cfg->peers);
}

static const char *
process_getenv(const char *name)
{
	return getenv(name);
}

void
config_init(void)
{
	const char *level = getenv("TLSHIM_LOG"), *format;
	enum log_level threshold = LOG_LEVEL_WARN;

	if (level != NULL) {
		if (strcmp(level, "error") == 0)
			threshold = LOG_LEVEL_ERROR;
		else if (strcmp(level, "info") == 0)
			threshold = LOG_LEVEL_INFO;
		else if (strcmp(level, "debug") == 0)
			threshold = LOG_LEVEL_DEBUG;
	}
	config_load(&config, process_getenv);
	if (!config.enabled)
		return;
	format = getenv("TLSHIM_LOG_FORMAT");
	log_open(threshold, format != NULL && strcmp(format, "json") == 0 ?
	    LOG_FORMAT_JSON : LOG_FORMAT_TEXT, getenv("TLSHIM_LOG_FILE"));
	if (format != NULL && strcmp(format, "json") != 0 &&
	    strcmp(format, "text") != 0)
		log_msg(LOG_LEVEL_WARN, "TLSHIM_LOG_FORMAT=\"%s\" is not text or "
		    "json; using text", format);
	if (level != NULL && strcmp(level, "error") && strcmp(level, "warn") &&
	    strcmp(level, "info") && strcmp(level, "debug"))
		log_msg(LOG_LEVEL_WARN, "TLSHIM_LOG=\"%s\" is not error, warn, info or "
		    "debug; using warn", level);
	if (config.error[0] != '\0')
		log_msg(LOG_LEVEL_ERROR, "invalid configuration: %s; every connection "
		    "that would be protected will fail", config.error);
	else if (config.trust_nat.count > 0)
		log_msg(LOG_LEVEL_WARN, "TLSHIM_TRUST_NAT=%s: peers at these addresses "
		    "are accepted without their address in their certificate",
		    getenv("TLSHIM_TRUST_NAT"));
}
