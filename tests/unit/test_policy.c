/* Policy rules: parsing, matching, and the default decision. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../shim/policy.h"

static struct sockaddr_storage
addr(const char *ip, int port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (void *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (void *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		ck_assert_int_eq(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

static bool
match(const char *rules_text, const char *ip, int port)
{
	struct policy_rules rules;
	struct sockaddr_storage ss = addr(ip, port);
	char err[160];
	bool yes;

	ck_assert_int_eq(policy_parse(rules_text, &rules, err, sizeof(err)), 0);
	yes = policy_match(&rules, (struct sockaddr *)&ss);
	policy_rules_free(&rules);
	return yes;
}

START_TEST(cidr_and_ports)
{
	ck_assert(match("198.18.0.0/15", "198.19.255.1", 80));
	ck_assert(!match("198.18.0.0/15", "198.20.0.1", 80));
	ck_assert(match("198.18.0.1", "198.18.0.1", 1));
	ck_assert(!match("198.18.0.1", "198.18.0.2", 1));
	ck_assert(match("198.18.0.0/16:29500", "198.18.3.4", 29500));
	ck_assert(!match("198.18.0.0/16:29500", "198.18.3.4", 29501));
	ck_assert(match("198.18.0.0/16:1000-2000", "198.18.3.4", 2000));
	ck_assert(!match("198.18.0.0/16:1000-2000", "198.18.3.4", 2001));
	ck_assert(match("0.0.0.0/0", "8.8.8.8", 53));
	ck_assert(match("10.0.0.0/8, 198.18.0.0/15", "198.18.0.9", 5));
	ck_assert(match("198.16.0.0/13", "198.23.1.1", 5));	/* odd prefix */
	ck_assert(!match("198.16.0.0/13", "198.24.1.1", 5));
	/* One host on two port ranges, beside others. */
	ck_assert(match("198.18.0.9:80,198.18.0.1,198.18.0.9:443", "198.18.0.9",
	    443));
	ck_assert(!match("198.18.0.9:80,198.18.0.1,198.18.0.9:443", "198.18.0.9",
	    22));
}
END_TEST

START_TEST(ipv6_and_mapped)
{
	ck_assert(match("2001:2::/48", "2001:2:0:ffff::1", 9));
	ck_assert(!match("2001:2::/48", "2001:3::1", 9));
	ck_assert(match("[2001:2::/48]:7000-7010", "2001:2::5", 7005));
	ck_assert(!match("[2001:2::/48]:7000-7010", "2001:2::5", 7011));
	/* An IPv4 rule covers the same peer reached over a v6 socket. */
	ck_assert(match("198.18.0.0/15", "::ffff:198.18.0.7", 9));
	ck_assert(!match("2001:2::/48", "198.18.0.1", 9));
}
END_TEST

START_TEST(bad_rules_are_errors)
{
	static const char *bad[] = { "198.18.0.0/33", "198.18.0.0/", "300.1.1.1",
	    "198.18.0.1:70000", "198.18.0.1:20-10", "[2001:2::/48", "banana",
	    "198.18.0.1:", "2001:2::/129", "[2001:2::]x" };
	struct policy_rules rules;
	char err[160];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(policy_parse(bad[i], &rules, err, sizeof(err)) ==
		    -EINVAL, "accepted %s", bad[i]);
		ck_assert_msg(strstr(err, "bad rule") != NULL, "%s", err);
		ck_assert_int_eq(rules.count, 0);
	}
}
END_TEST

/* "198.18.0.3/24" meant one host or the network; either guess fails
 * someone open, so it is an error that says so. */
START_TEST(host_bits_are_errors)
{
	static const char *bad[] = { "198.18.0.3/24", "198.18.0.1/31",
	    "[2001:2::5/48]:80", "10.0.0.1/0" };
	struct policy_rules rules;
	char err[200];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(policy_parse(bad[i], &rules, err, sizeof(err)) ==
		    -EINVAL, "accepted %s", bad[i]);
		ck_assert_msg(strstr(err, "bits set past the prefix") != NULL,
		    "%s", err);
		ck_assert_int_eq(rules.count, 0);
	}
	ck_assert(match("198.18.0.3/32", "198.18.0.3", 1));
	ck_assert(match("198.18.0.0/24", "198.18.0.3", 1));
}
END_TEST

/* A hostfile's worth of host rules: every listed address matches, its
 * neighbours do not, and the 64-rule cap of old is gone. */
START_TEST(many_host_rules)
{
	struct policy_rules rules;
	size_t cap = 20000 * 20, used = 0;
	char *text = malloc(cap), err[160];
	int i;

	ck_assert_ptr_nonnull(text);
	for (i = 0; i < 20000; i++)
		used += (size_t)snprintf(text + used, cap - used, "%s198.%d.%d.%d",
		    i ? "," : "", 18 + (i * 2) / 65536, ((i * 2) / 256) % 256,
		    (i * 2) % 256);
	ck_assert_int_eq(policy_parse(text, &rules, err, sizeof(err)), 0);
	ck_assert_int_eq(rules.count, 20000);
	ck_assert_int_eq(rules.hosts, 20000);
	for (i = 0; i < 20000; i += 97) {
		char ip[32];
		struct sockaddr_storage yes, no;

		snprintf(ip, sizeof(ip), "198.%d.%d.%d", 18 + (i * 2) / 65536,
		    ((i * 2) / 256) % 256, (i * 2) % 256);
		yes = addr(ip, 7);
		snprintf(ip, sizeof(ip), "198.%d.%d.%d", 18 + (i * 2) / 65536,
		    ((i * 2) / 256) % 256, (i * 2) % 256 + 1);
		no = addr(ip, 7);
		ck_assert(policy_match(&rules, (struct sockaddr *)&yes));
		ck_assert(!policy_match(&rules, (struct sockaddr *)&no));
	}
	policy_rules_free(&rules);
	free(text);
}
END_TEST

START_TEST(default_decision)
{
	struct policy_rules none = { 0 }, incl, excl;
	struct sockaddr_storage lo = addr("127.0.0.1", 80), lo6 = addr("::1", 80);
	struct sockaddr_storage net = addr("198.18.0.2", 80);
	struct sockaddr_storage other = addr("198.19.0.2", 22);
	struct sockaddr_storage unixish;
	char err[160];

	memset(&unixish, 0, sizeof(unixish));
	unixish.ss_family = AF_UNIX;
	ck_assert(policy_decide(&none, &none, false, (void *)&net));
	ck_assert(!policy_decide(&none, &none, false, (void *)&lo));
	ck_assert(!policy_decide(&none, &none, false, (void *)&lo6));
	ck_assert(policy_decide(&none, &none, true, (void *)&lo));
	ck_assert(policy_decide(&none, &none, true, (void *)&lo6));
	ck_assert(!policy_decide(&none, &none, true, (void *)&unixish));

	ck_assert_int_eq(policy_parse("198.19.0.0/16:22", &excl, err,
	    sizeof(err)), 0);
	ck_assert(!policy_decide(&none, &excl, false, (void *)&other));
	ck_assert(policy_decide(&none, &excl, false, (void *)&net));

	ck_assert_int_eq(policy_parse("198.18.0.0/16", &incl, err,
	    sizeof(err)), 0);
	ck_assert(policy_decide(&incl, &none, false, (void *)&net));
	ck_assert(!policy_decide(&incl, &none, false, (void *)&other));
	/* Exclusion wins over inclusion. */
	ck_assert(!policy_decide(&incl, &incl, false, (void *)&net));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, cidr_and_ports);
	tcase_add_test(tc, ipv6_and_mapped);
	tcase_add_test(tc, bad_rules_are_errors);
	tcase_add_test(tc, host_bits_are_errors);
	tcase_add_test(tc, many_host_rules);
	tcase_add_test(tc, default_decision);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
