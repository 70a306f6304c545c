#ifndef TLSHIM_DECIDE_H
#define TLSHIM_DECIDE_H

/*
 * Which connections are protected, from the process's configuration:
 * TLSHIM_PEERS (the job's nodes), TLSHIM_INCLUDE, TLSHIM_EXCLUDE,
 * TLSHIM_LOOPBACK, and who may be behind NAT (TLSHIM_TRUST_NAT). Host
 * names in those settings are resolved once, at the first decision of the
 * process (not in the library's constructor: a name lookup may itself
 * open sockets), and a name that does not resolve is a configuration
 * error, so that nothing meant for a peer leaves in clear.
 *
 *   connect: to a peer when TLSHIM_PEERS is set (else to any address but
 *            loopback, or what TLSHIM_INCLUDE names);
 *   accept:  on every port but loopback (or what TLSHIM_INCLUDE names);
 *   TLSHIM_EXCLUDE wins over both.
 */

#include <stdbool.h>
#include <sys/socket.h>

/* decide_connect(server): is a connection this process opens to
 * ${server} protected? */
bool decide_connect(const struct sockaddr *server);

/* decide_accept(local): is a connection accepted at ${local} protected? */
bool decide_accept(const struct sockaddr *local);

/* decide_either(local, peer): would a connection between these addresses
 * be protected with this process as either end (for a socket whose role
 * is unknown)? */
bool decide_either(const struct sockaddr *local, const struct sockaddr *peer);

/* decide_nat_trusted(peer): does TLSHIM_TRUST_NAT name ${peer}? */
bool decide_nat_trusted(const struct sockaddr *peer);

/* The name lookup: getaddrinfo and freeaddrinfo; unit tests put a table
 * in their place (no lookup leaves the machine). */
struct addrinfo;
extern int (*decide_lookup)(const char *name, const char *service,
    const struct addrinfo *hints, struct addrinfo **res);
extern void (*decide_lookup_free)(struct addrinfo *res);

/* decide_forget(void): the configuration was loaded again (tests): its
 * names are resolved afresh at the next decision. */
void decide_forget(void);

#endif
