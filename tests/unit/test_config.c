/* Configuration from the environment: defaults, and every bad value
 * becoming an error that fails protected connections closed. */
#define _GNU_SOURCE
#include <check.h>
#include <string.h>

#include "../../shim/config.h"
#include "run_suite.h"

static const char *const *env_table;

static const char *
table_getenv(const char *name)
{
	size_t len = strlen(name);
	int i;

	for (i = 0; env_table[i] != NULL; i++)
		if (strncmp(env_table[i], name, len) == 0 &&
		    env_table[i][len] == '=')
			return env_table[i] + len + 1;
	return NULL;
}

static struct config
load(const char *const *env)
{
	struct config cfg;

	env_table = env;
	config_load(&cfg, table_getenv);
	return cfg;
}

START_TEST(defaults)
{
	static const char *env[] = { NULL };
	struct config cfg = load(env);

	ck_assert(!cfg.enabled);
	ck_assert_str_eq(cfg.dir, CONFIG_DEFAULT_DIR);
	ck_assert(!cfg.loopback);
	ck_assert_int_eq(cfg.include.count, 0);
	ck_assert_int_eq(cfg.handshake_timeout_ms,
	    CONFIG_DEFAULT_HANDSHAKE_TIMEOUT_MS);
	ck_assert_str_eq(cfg.error, "");
	config_free(&cfg);
}
END_TEST

START_TEST(full_configuration)
{
	static const char *env[] = { "TLSHIM=1", "TLSHIM_DIR=/run/creds",
	    "TLSHIM_LOOPBACK=1", "TLSHIM_INCLUDE=198.18.0.0/15,[2001:2::/48]:80",
	    "TLSHIM_EXCLUDE=198.18.0.9", "TLSHIM_JOB=job-42",
	    "TLSHIM_HANDSHAKE_TIMEOUT=3", NULL };
	struct config cfg = load(env);

	ck_assert(cfg.enabled);
	ck_assert_str_eq(cfg.dir, "/run/creds");
	ck_assert(cfg.loopback);
	ck_assert_int_eq(cfg.include.count, 2);
	ck_assert_int_eq(cfg.exclude.count, 1);
	ck_assert_str_eq(cfg.job, "job-42");
	ck_assert_int_eq(cfg.handshake_timeout_ms, 3000);
	ck_assert_str_eq(cfg.error, "");
	config_free(&cfg);
}
END_TEST

START_TEST(zero_is_off)
{
	static const char *env[] = { "TLSHIM=0", "TLSHIM_INCLUDE=bad", NULL };
	struct config cfg = load(env);

	ck_assert(!cfg.enabled);
	config_free(&cfg);
}
END_TEST

START_TEST(bad_values_are_errors)
{
	static const char *cases[][2] = {
		{ "TLSHIM=maybe", "TLSHIM must be 0 or 1" },
		{ "TLSHIM_INCLUDE=198.18.0.0/99", "TLSHIM_INCLUDE: bad rule" },
		{ "TLSHIM_EXCLUDE=non sense!", "TLSHIM_EXCLUDE: bad rule" },
		{ "TLSHIM_EXCLUDE=198.18.0.3/24", "bits set past the prefix" },
		{ "TLSHIM_PEERS=/nonexistent/hostfile", "TLSHIM_PEERS: cannot read" },
		{ "TLSHIM_HANDSHAKE_TIMEOUT=0", "TLSHIM_HANDSHAKE_TIMEOUT" },
		{ "TLSHIM_HANDSHAKE_TIMEOUT=5s", "TLSHIM_HANDSHAKE_TIMEOUT" },
		{ "TLSHIM_JOB=a/b", "TLSHIM_JOB" },
		{ "TLSHIM_REKEY_RECORDS=1", "TLSHIM_REKEY_RECORDS" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *env[] = { "TLSHIM=1", cases[i][0], NULL };
		struct config cfg;

		if (strncmp(cases[i][0], "TLSHIM=", 7) == 0)
			env[0] = "TLSHIM_LOOPBACK=0";
		cfg = load(env);
		ck_assert_msg(strstr(cfg.error, cases[i][1]) != NULL,
		    "%s gave \"%s\"", cases[i][0], cfg.error);
		config_free(&cfg);
	}
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, defaults);
	tcase_add_test(tc, full_configuration);
	tcase_add_test(tc, zero_is_off);
	tcase_add_test(tc, bad_values_are_errors);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
