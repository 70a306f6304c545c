/*
 * libFuzzer: the environment as hostile input ("NAME=VALUE" lines).
 * Loading never fails: it either configures or records an error, and
 * what it keeps stays within its bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "../../shim/config.h"

static char env[4096];
static char values[32][512];
static int nvalues;

static const char *
fuzz_getenv(const char *name)
{
	size_t len = strlen(name);
	char *line = env;

	/* A value ends at the newline that starts the next variable. */
	while (line != NULL && *line != '\0') {
		if (strncmp(line, name, len) == 0 && line[len] == '=' &&
		    nvalues < 32) {
			const char *v = line + len + 1, *end = strchr(v, '\n');
			size_t vlen = end != NULL ? (size_t)(end - v) : strlen(v);
			char *copy = values[nvalues++];

			if (vlen >= sizeof(values[0]))
				vlen = sizeof(values[0]) - 1;
			memcpy(copy, v, vlen);
			copy[vlen] = '\0';
			return copy;
		}
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;

	if (size >= sizeof(env))
		size = sizeof(env) - 1;
	memcpy(env, data, size);
	env[size] = '\0';
	nvalues = 0;
	config_load(&cfg, fuzz_getenv);
	if (strlen(cfg.dir) >= sizeof(cfg.dir) || strlen(cfg.job) >= sizeof(cfg.job) ||
	    strlen(cfg.error) >= sizeof(cfg.error) || cfg.handshake_timeout_ms <= 0 ||
	    cfg.rekey_records < 2)
		abort();
	config_free(&cfg);
	return 0;
}
