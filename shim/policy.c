#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

/* Parse a decimal port; returns 0 or -1. */
static int
parse_port(const char *s, uint16_t *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int
parse_port_range(char *s, struct policy_rule *r)
{
	char *dash = strchr(s, '-');

	if (dash != NULL) {
		*dash = '\0';
		if (parse_port(s, &r->port_lo) || parse_port(dash + 1, &r->port_hi))
			return -1;
		if (r->port_lo > r->port_hi)
			return -1;
		return 0;
	}
	if (parse_port(s, &r->port_lo))
		return -1;
	r->port_hi = r->port_lo;
	return 0;
}

/* Does ${r}'s address have bits set beyond its prefix? */
static bool
host_bits_set(const struct policy_rule *r)
{
	int bits = r->family == AF_INET ? 32 : 128, i;

	for (i = r->prefix; i < bits; i++)
		if (r->addr[i / 8] & (0x80 >> (i % 8)))
			return true;
	return false;
}

/* Parse "ADDR[/PREFIX]" into ${r}: 0, -1 (syntax) or -2 (host bits). */
static int
parse_cidr(char *s, struct policy_rule *r)
{
	char *slash = strchr(s, '/');
	int maxbits;

	if (slash != NULL)
		*slash = '\0';
	if (inet_pton(AF_INET, s, r->addr) == 1) {
		r->family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, s, r->addr) == 1) {
		r->family = AF_INET6;
		maxbits = 128;
	} else {
		return -1;
	}
	r->prefix = maxbits;
	if (slash != NULL) {
		char *end;
		long v;

		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		v = strtol(slash + 1, &end, 10);
		if (*end != '\0' || v < 0 || v > maxbits)
			return -1;
		r->prefix = (int)v;
	}
	return host_bits_set(r) ? -2 : 0;
}

static int
parse_rule(char *item, struct policy_rule *r)
{
	char *port = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	r->port_lo = 0;
	r->port_hi = 65535;
	if (item[0] == '[') {
		char *close = strchr(item, ']');

		if (close == NULL)
			return -1;
		*close = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return -1;
		item++;
	} else if (strchr(item, ':') == strrchr(item, ':')) {
		/* At most one colon: IPv4 with an optional port. */
		port = strchr(item, ':');
		if (port != NULL)
			*port++ = '\0';
	}
	if ((rc = parse_cidr(item, r)) != 0)
		return rc;
	if (port != NULL && parse_port_range(port, r))
		return -1;
	return 0;
}

static bool
rule_is_host(const struct policy_rule *r)
{
	return r->prefix == (r->family == AF_INET ? 32 : 128);
}

/* Order of host rules: family, then address bytes. */
static int
host_compare(int family, const uint8_t *addr, const struct policy_rule *r)
{
	if (family != r->family)
		return family < r->family ? -1 : 1;
	return memcmp(addr, r->addr, family == AF_INET ? 4 : 16);
}

static int
host_rule_compare(const void *a, const void *b)
{
	const struct policy_rule *x = a, *y = b;

	if (rule_is_host(x) != rule_is_host(y))
		return rule_is_host(x) ? -1 : 1;
	if (!rule_is_host(x))
		return 0;
	return host_compare(x->family, x->addr, y);
}

/* Host rules to the front, sorted; network rules keep their order. */
static void
rules_index(struct policy_rules *rules)
{
	int i;

	/* qsort is not stable, but network rules compare equal and their
	 * order does not change a yes-or-no match. */
	qsort(rules->rule, (size_t)rules->count, sizeof(rules->rule[0]),
	    host_rule_compare);
	for (i = 0; i < rules->count && rule_is_host(&rules->rule[i]); i++)
		;
	rules->hosts = i;
}

void
policy_rules_free(struct policy_rules *rules)
{
	int i;

	for (i = 0; i < rules->name_count; i++)
		free(rules->names[i].name);
	free(rules->names);
	free(rules->rule);
	memset(rules, 0, sizeof(*rules));
}

static int addr_unpack(const struct sockaddr *addr, int *family,
    uint8_t bytes[16], uint16_t *port);

/* Room for one more rule. */
static int
rules_grow(struct policy_rules *rules)
{
	struct policy_rule *grown;
	int cap;

	if (rules->count < rules->cap)
		return 0;
	cap = rules->cap == 0 ? 16 : rules->cap * 2;
	if ((grown = realloc(rules->rule, (size_t)cap * sizeof(*grown))) == NULL)
		return -ENOMEM;
	rules->rule = grown;
	rules->cap = cap;
	return 0;
}

/* "node7" or "node7:5000-5100": a name that is no address. 0 or -1. */
static int
parse_name(char *item, struct policy_rules *rules)
{
	struct policy_name *grown, *n;
	struct policy_rule ports;
	char *colon = strchr(item, ':');
	bool letter = false;
	size_t i, len;

	memset(&ports, 0, sizeof(ports));
	ports.port_hi = 65535;
	if (colon != NULL) {
		*colon = '\0';
		if (parse_port_range(colon + 1, &ports))
			return -1;
	}
	len = strlen(item);
	if (len == 0 || len > 253 || item[0] == '-' || item[0] == '.')
		return -1;
	for (i = 0; i < len; i++) {
		char ch = item[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    ch == '-' || ch == '_')
			letter = true;
		else if (!(ch >= '0' && ch <= '9') && ch != '.')
			return -1;
	}
	/* Digits and dots alone are a mistyped address, not a name. */
	if (!letter)
		return -1;
	grown = realloc(rules->names, (size_t)(rules->name_count + 1) *
	    sizeof(*grown));
	if (grown == NULL)
		return -1;
	rules->names = grown;
	n = &rules->names[rules->name_count];
	if ((n->name = strdup(item)) == NULL)
		return -1;
	n->port_lo = ports.port_lo;
	n->port_hi = ports.port_hi;
	n->resolved = false;
	rules->name_count++;
	return 0;
}

int
policy_add_host(struct policy_rules *rules, const struct sockaddr *addr,
    uint16_t port_lo, uint16_t port_hi)
{
	struct policy_rule *r;
	uint16_t ignored;
	int family;

	if (rules_grow(rules) != 0)
		return -ENOMEM;
	r = &rules->rule[rules->count];
	memset(r, 0, sizeof(*r));
	if (addr_unpack(addr, &family, r->addr, &ignored) != 0)
		return -EINVAL;
	r->family = family;
	r->prefix = family == AF_INET ? 32 : 128;
	r->port_lo = port_lo;
	r->port_hi = port_hi;
	rules->count++;
	rules_index(rules);
	return 0;
}

int
policy_parse(const char *text, struct policy_rules *rules, char *err,
    size_t errlen)
{
	char *copy, *item, *save = NULL;
	int rc = -EINVAL;

	memset(rules, 0, sizeof(*rules));
	if (text == NULL || *text == '\0')
		return 0;
	if ((copy = strdup(text)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (item = strtok_r(copy, ", ", &save); item != NULL;
	    item = strtok_r(NULL, ", ", &save)) {
		char shown[80], whole[300];
		int bad;

		snprintf(shown, sizeof(shown), "%s", item);
		/* parse_rule cuts the item up; a name needs it whole. */
		snprintf(whole, sizeof(whole), "%s", item);
		if (rules->count == POLICY_MAX_RULES) {
			snprintf(err, errlen, "more than %d rules", POLICY_MAX_RULES);
			goto err0;
		}
		if (rules_grow(rules) != 0) {
			snprintf(err, errlen, "out of memory");
			rc = -ENOMEM;
			goto err0;
		}
		if ((bad = parse_rule(item, &rules->rule[rules->count])) == -2) {
			snprintf(err, errlen, "bad rule \"%s\": the address has "
			    "bits set past the prefix length (write one host "
			    "without a prefix, or the network address)", shown);
			goto err0;
		}
		if (bad != 0 && strlen(item) < sizeof(whole) &&
		    parse_name(whole, rules) == 0)
			continue;
		if (bad != 0) {
			snprintf(err, errlen,
			    "bad rule \"%s\" (want CIDR[:port[-port]], IPv6 as "
			    "[CIDR]:port, or a host name)", shown);
			goto err0;
		}
		rules->count++;
	}
	free(copy);
	rules_index(rules);
	return 0;

err0:
	free(copy);
	policy_rules_free(rules);
	return rc;
}

/* Reduce ${addr} to family, 4 or 16 address bytes and port; v4-mapped
 * IPv6 becomes IPv4 so one rule covers both socket kinds. */
static int
addr_unpack(const struct sockaddr *addr, int *family, uint8_t bytes[16],
    uint16_t *port)
{
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)addr;

		*family = AF_INET;
		memcpy(bytes, &sin->sin_addr, 4);
		*port = ntohs(sin->sin_port);
		return 0;
	}
	if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)addr;

		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			*family = AF_INET;
			memcpy(bytes, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			*family = AF_INET6;
			memcpy(bytes, &sin6->sin6_addr, 16);
		}
		return 0;
	}
	return -1;
}

static bool
prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
	int whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

/* The first host rule for this address (binary search), or -1. */
static int
hosts_first(const struct policy_rules *rules, int family, const uint8_t *addr)
{
	int lo = 0, hi = rules->hosts;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (host_compare(family, addr, &rules->rule[mid]) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < rules->hosts && host_compare(family, addr,
	    &rules->rule[lo]) == 0 ? lo : -1;
}

bool
policy_match(const struct policy_rules *rules, const struct sockaddr *addr)
{
	uint8_t bytes[16];
	uint16_t port;
	int family, i;

	if (addr_unpack(addr, &family, bytes, &port))
		return false;
	if ((i = hosts_first(rules, family, bytes)) >= 0)
		for (; i < rules->hosts &&
		    host_compare(family, bytes, &rules->rule[i]) == 0; i++)
			if (port >= rules->rule[i].port_lo &&
			    port <= rules->rule[i].port_hi)
				return true;
	for (i = rules->hosts; i < rules->count; i++) {
		const struct policy_rule *r = &rules->rule[i];

		if (r->family == family && port >= r->port_lo &&
		    port <= r->port_hi && prefix_equal(bytes, r->addr, r->prefix))
			return true;
	}
	return false;
}

bool
policy_is_loopback(const struct sockaddr *addr)
{
	uint8_t bytes[16];
	uint16_t port;
	int family;

	if (addr_unpack(addr, &family, bytes, &port))
		return false;
	if (family == AF_INET)
		return bytes[0] == 127;
	return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)bytes);
}
