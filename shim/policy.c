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

/* Parse "ADDR[/PREFIX]" into ${r}. */
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
	return 0;
}

static int
parse_rule(char *item, struct policy_rule *r)
{
	char *port = NULL;

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
	if (parse_cidr(item, r))
		return -1;
	if (port != NULL && parse_port_range(port, r))
		return -1;
	return 0;
}

int
policy_parse(const char *text, struct policy_rules *rules, char *err,
    size_t errlen)
{
	char *copy, *item, *save = NULL;

	rules->count = 0;
	if (text == NULL || *text == '\0')
		return 0;
	if ((copy = strdup(text)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (item = strtok_r(copy, ", ", &save); item != NULL;
	    item = strtok_r(NULL, ", ", &save)) {
		char shown[80];

		snprintf(shown, sizeof(shown), "%s", item);
		if (rules->count == POLICY_MAX_RULES) {
			snprintf(err, errlen, "more than %d rules", POLICY_MAX_RULES);
			goto err0;
		}
		if (parse_rule(item, &rules->rule[rules->count])) {
			snprintf(err, errlen,
			    "bad rule \"%s\" (want CIDR[:port[-port]], IPv6 as "
			    "[CIDR]:port)", shown);
			goto err0;
		}
		rules->count++;
	}
	free(copy);
	return 0;

err0:
	free(copy);
	rules->count = 0;
	return -EINVAL;
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

bool
policy_match(const struct policy_rules *rules, const struct sockaddr *addr)
{
	uint8_t bytes[16];
	uint16_t port;
	int family, i;

	if (addr_unpack(addr, &family, bytes, &port))
		return false;
	for (i = 0; i < rules->count; i++) {
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

bool
policy_decide(const struct policy_rules *include,
    const struct policy_rules *exclude, bool loopback,
    const struct sockaddr *addr)
{
	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
		return false;
	if (policy_match(exclude, addr))
		return false;
	if (include->count > 0)
		return policy_match(include, addr);
	if (policy_is_loopback(addr))
		return loopback;
	return true;
}
