/* Policy rules: parsing, matching, and the default decision. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "../../shim/config.h"
#include "../../shim/decide.h"
#include "../../shim/policy.h"
#include "run_suite.h"

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
	    "198.18.0.1:70000", "198.18.0.1:20-10", "[2001:2::/48", "ba nana!",
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

/* Names are kept for resolution with their ports; what they resolve to
 * then matches like an address given by number. */
START_TEST(names_resolved_later)
{
	struct policy_rules rules;
	struct sockaddr_storage a = addr("198.18.0.7", 29500);
	struct sockaddr_storage other_port = addr("198.18.0.7", 80);
	char err[160];

	ck_assert_int_eq(policy_parse("node7:29500,198.18.0.0/24:22,store.local",
	    &rules, err, sizeof(err)), 0);
	ck_assert_int_eq(rules.name_count, 2);
	ck_assert_str_eq(rules.names[0].name, "node7");
	ck_assert_int_eq(rules.names[0].port_lo, 29500);
	ck_assert_int_eq(rules.names[0].port_hi, 29500);
	ck_assert_str_eq(rules.names[1].name, "store.local");
	ck_assert_int_eq(rules.names[1].port_hi, 65535);
	ck_assert(!policy_match(&rules, (struct sockaddr *)&a));
	ck_assert_int_eq(policy_add_host(&rules, (struct sockaddr *)&a,
	    rules.names[0].port_lo, rules.names[0].port_hi), 0);
	ck_assert(policy_match(&rules, (struct sockaddr *)&a));
	ck_assert(!policy_match(&rules, (struct sockaddr *)&other_port));
	policy_rules_free(&rules);
	ck_assert_int_eq(policy_parse("1.2.3", &rules, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(policy_parse("-node", &rules, err, sizeof(err)), -EINVAL);
}
END_TEST

/* The environment the decisions below are made under. */
static const char *env_peers, *env_include, *env_exclude, *env_loopback;

static const char *
test_getenv(const char *name)
{
	if (strcmp(name, "TLSHIM") == 0)
		return "1";
	if (strcmp(name, "TLSHIM_PEERS") == 0)
		return env_peers;
	if (strcmp(name, "TLSHIM_INCLUDE") == 0)
		return env_include;
	if (strcmp(name, "TLSHIM_EXCLUDE") == 0)
		return env_exclude;
	if (strcmp(name, "TLSHIM_LOOPBACK") == 0)
		return env_loopback;
	return NULL;
}

/* Names known to this test, as /etc/hosts would give them; any other
 * name does not resolve (and no lookup leaves the machine). */
static int
table_lookup(const char *name, const char *service,
    const struct addrinfo *hints, struct addrinfo **res)
{
	static const char *const table[][2] = { { "nodea", "198.18.0.1" },
	    { "nodeb", "198.18.0.2" } };
	struct addrinfo *ai;
	struct sockaddr_in *sin;
	size_t i;

	(void)service;
	(void)hints;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(name, table[i][0]) != 0)
			continue;
		ai = calloc(1, sizeof(*ai) + sizeof(*sin));
		sin = (struct sockaddr_in *)(ai + 1);
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, table[i][1], &sin->sin_addr);
		ai->ai_family = AF_INET;
		ai->ai_addr = (struct sockaddr *)sin;
		ai->ai_addrlen = sizeof(*sin);
		*res = ai;
		return 0;
	}
	return EAI_NONAME;
}

static void
table_lookup_free(struct addrinfo *res)
{
	free(res);
}

static void
configure(const char *peers, const char *include, const char *exclude,
    const char *loopback)
{
	env_peers = peers;
	env_include = include;
	env_exclude = exclude;
	env_loopback = loopback;
	config_free(&config);
	config_load(&config, test_getenv);
	decide_forget();
	decide_lookup = table_lookup;
	decide_lookup_free = table_lookup_free;
	ck_assert_msg(config.error[0] == '\0', "%s", config.error);
}

static bool
client(const char *ip, int port)
{
	struct sockaddr_storage ss = addr(ip, port);

	return decide_connect((struct sockaddr *)&ss);
}

static bool
server(const char *ip, int port)
{
	struct sockaddr_storage ss = addr(ip, port);

	return decide_accept((struct sockaddr *)&ss);
}

START_TEST(default_decision)
{
	struct sockaddr_storage unixish;

	configure(NULL, NULL, NULL, NULL);
	ck_assert(client("198.18.0.2", 80) && server("198.18.0.2", 80));
	ck_assert(!client("127.0.0.1", 80) && !client("::1", 80));
	ck_assert(!server("127.0.0.1", 80));
	memset(&unixish, 0, sizeof(unixish));
	unixish.ss_family = AF_UNIX;
	ck_assert(!decide_connect((struct sockaddr *)&unixish));
	configure(NULL, NULL, NULL, "1");
	ck_assert(client("127.0.0.1", 80) && client("::1", 80));
	configure(NULL, NULL, "198.19.0.0/16:22", NULL);
	ck_assert(!client("198.19.0.2", 22) && !server("198.19.0.2", 22));
	ck_assert(client("198.18.0.2", 80));
	configure(NULL, "198.18.0.0/16", NULL, NULL);
	ck_assert(client("198.18.0.2", 80) && !client("198.19.0.2", 22));
	/* Exclusion wins over inclusion. */
	configure(NULL, "198.18.0.0/16", "198.18.0.0/16", NULL);
	ck_assert(!client("198.18.0.2", 80));
}
END_TEST

/* With the job's peers listed, only connections to them are protected;
 * incoming connections stay protected on every port but excluded ones. */
START_TEST(peers_decision)
{
	configure("198.18.0.1,198.18.0.2,2001:2::2", NULL,
	    "198.18.0.0/24:9100", NULL);
	ck_assert(client("198.18.0.2", 29500));
	ck_assert(client("::ffff:198.18.0.1", 5000));
	ck_assert(client("2001:2::2", 5000));
	ck_assert(!client("198.18.0.9", 443));		/* the object store */
	ck_assert(!client("198.18.0.2", 9100));		/* excluded */
	ck_assert(server("198.18.0.1", 8080));		/* any port ... */
	ck_assert(!server("198.18.0.1", 9100));		/* ... but excluded */
	ck_assert(!server("127.0.0.1", 8080));
}
END_TEST

/* A hostfile: first words, comments and MPICH's host:count. */
START_TEST(peers_from_a_hostfile)
{
	char path[] = "/tmp/tlshim-test-hostfile-XXXXXX";
	int fd = mkstemp(path);
	FILE *f;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fprintf(f, "# the job\n198.18.0.1 slots=4 max_slots=8\n\n"
	    "  198.18.0.2:2   # mpich style\n2001:2::5\n");
	fclose(f);
	configure(path, NULL, NULL, NULL);
	unlink(path);
	ck_assert_int_eq(config.peers.count, 3);
	ck_assert(client("198.18.0.1", 1) && client("198.18.0.2", 1));
	ck_assert(client("2001:2::5", 1) && !client("198.18.0.3", 1));
}
END_TEST

/* A peer name that does not resolve yet (a pod not started) fails
 * closed: a connection to an address that is no known peer is protected
 * while it is pending; a known peer's address and loopback are as ever. A
 * name in TLSHIM_EXCLUDE that does not resolve is a configuration error. */
START_TEST(unresolved_peer_fails_closed)
{
	configure("nodea,nodec", NULL, NULL, NULL);
	ck_assert(client("198.18.0.1", 80));
	ck_assert(client("198.18.0.9", 443));
	ck_assert(!client("127.0.0.1", 80));
	ck_assert_str_eq(config.error, "");
}
END_TEST

START_TEST(unresolvable_exclusion_is_an_error)
{
	configure(NULL, NULL, "nodeb,nodec", NULL);
	ck_assert(client("198.18.0.9", 443));
	ck_assert_msg(strstr(config.error, "TLSHIM_EXCLUDE: cannot resolve "
	    "'nodec'") != NULL, "%s", config.error);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("policy");

	tcase_add_test(tc, cidr_and_ports);
	tcase_add_test(tc, ipv6_and_mapped);
	tcase_add_test(tc, bad_rules_are_errors);
	tcase_add_test(tc, host_bits_are_errors);
	tcase_add_test(tc, many_host_rules);
	tcase_add_test(tc, names_resolved_later);
	tcase_add_test(tc, default_decision);
	tcase_add_test(tc, peers_decision);
	tcase_add_test(tc, peers_from_a_hostfile);
	tcase_add_test(tc, unresolved_peer_fails_closed);
	tcase_add_test(tc, unresolvable_exclusion_is_an_error);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
