#ifndef TLSHIM_POLICY_H
#define TLSHIM_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Which TCP connections are protected. Rules match the server's address
 * and port (a client's destination, a server's local address), so both ends
 * of a job that share one environment reach the same decision.
 */

/* A hostfile of many thousands of nodes fits; more is surely a mistake. */
#define POLICY_MAX_RULES 100000

struct policy_rule {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network, in network byte order */
	int prefix;		/* prefix length in bits */
	uint16_t port_lo, port_hi;	/* inclusive; 0-65535 when none given */
};

/* A host name in a rule list, resolved later (policy_add_host). */
struct policy_name {
	char *name;
	uint16_t port_lo, port_hi;
	bool resolved;		/* its addresses are among the rules */
};

/* Host rules (a whole address) come first, sorted by address, so that a
 * hostfile's thousands of them are found by binary search; network rules
 * follow in the order given. */
struct policy_rules {
	int count;
	int hosts;		/* rule[0..hosts) are host rules, sorted */
	int cap;
	struct policy_rule *rule;
	int name_count;		/* names not resolved yet */
	struct policy_name *names;
};

/*
 * policy_parse(text, rules, err, errlen):
 * Parse a comma-separated list of "CIDR[:port[-port]]" (IPv6 with a port in
 * brackets: "[2001:2::/48]:5000-5100"; a bare address is a host route; a
 * host name, "node7" or "node7:5000", is kept in ${rules->names} for
 * policy_add_host once resolved) into ${rules}. A CIDR with host bits set ("198.18.0.3/24") is an error: the
 * user meant either one host or the network, and guessing fails open.
 * Returns 0, or -EINVAL (-ENOMEM) with a message in ${err}; release the
 * rules with policy_rules_free either way.
 */
int policy_parse(const char *text, struct policy_rules *rules, char *err,
    size_t errlen) __attribute__((warn_unused_result));

/*
 * policy_add_host(rules, addr, port_lo, port_hi):
 * Add a host rule for the IPv4 or IPv6 socket address ${addr} (what a
 * name resolved to) and keep the rules sorted. 0 or -ENOMEM.
 */
int policy_add_host(struct policy_rules *rules, const struct sockaddr *addr,
    uint16_t port_lo, uint16_t port_hi) __attribute__((warn_unused_result));

/* policy_rules_free(rules): release parsed rules; leaves none. */
void policy_rules_free(struct policy_rules *rules);

/*
 * policy_match(rules, addr):
 * Does the socket address ${addr} (IPv4, IPv6 or v4-mapped IPv6) match any
 * rule in ${rules}?
 */
bool policy_match(const struct policy_rules *rules, const struct sockaddr *addr);

/* policy_is_loopback(addr): 127.0.0.0/8, ::1 or v4-mapped loopback. */
bool policy_is_loopback(const struct sockaddr *addr);

#endif
