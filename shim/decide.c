#define _GNU_SOURCE
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "decide.h"
#include "log.h"
#include "monotime.h"
#include "policy.h"
#include "real.h"

/* Names of TLSHIM_PEERS that do not resolve yet (a pod not started yet)
 * are looked up again, at most this often, when a connection goes to an
 * address that is not a known peer. */
#define PEERS_RETRY_MS 1000

int (*decide_lookup)(const char *, const char *, const struct addrinfo *,
    struct addrinfo **) = getaddrinfo;
void (*decide_lookup_free)(struct addrinfo *) = freeaddrinfo;

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool names_done;
/* config.peers grows while the process runs: readers and the resolver. */
static pthread_rwlock_t peers_lock = PTHREAD_RWLOCK_INITIALIZER;
static int peers_pending;		/* under peers_lock */
static int64_t peers_retry_at_ms;	/* under peers_lock */

/* Resolve the names of one setting not resolved yet; returns how many
 * still are not, with the first failure in ${why}. A lookup's own
 * sockets go straight to libc meanwhile. */
static int
resolve_setting(struct policy_rules *rules, const char *setting, char *why,
    size_t whylen)
{
	struct addrinfo hints, *res, *ai;
	int i, rc, added, unresolved = 0;
	int was_internal = shim_internal_thread;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	shim_internal_thread = 1;
	for (i = 0; i < rules->name_count; i++) {
		struct policy_name *n = &rules->names[i];

		if (n->resolved)
			continue;
		if ((rc = decide_lookup(n->name, NULL, &hints, &res)) != 0) {
			if (unresolved++ == 0)
				snprintf(why, whylen, "%s: cannot resolve '%.80s' "
				    "(%s)", setting, n->name, gai_strerror(rc));
			continue;
		}
		for (added = 0, ai = res; ai != NULL; ai = ai->ai_next)
			if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
			    policy_add_host(rules, ai->ai_addr, n->port_lo,
			    n->port_hi) == 0)
				added++;
		decide_lookup_free(res);
		n->resolved = true;
		log_msg(LOG_LEVEL_DEBUG, "%s: %s is %d address%s", setting, n->name,
		    added, added == 1 ? "" : "es");
	}
	shim_internal_thread = was_internal;
	return unresolved;
}

/* The policy in words, once, for TLSHIM_LOG=info. */
static void
describe(void)
{
	char excluded[64] = "";

	if (config.exclude.count > 0)
		snprintf(excluded, sizeof(excluded), " except %d TLSHIM_EXCLUDE "
		    "rule%s", config.exclude.count,
		    config.exclude.count == 1 ? "" : "s");
	if (config.peers_set)
		log_msg(LOG_LEVEL_INFO, "policy: connections to the %d address%s of "
		    "TLSHIM_PEERS are protected%s; connections to anything else "
		    "are left as the program makes them; incoming connections "
		    "are protected on %s%s; loopback is %s",
		    config.peers.count, config.peers.count == 1 ? "" : "es",
		    excluded, config.include.count ? "the TLSHIM_INCLUDE "
		    "addresses" : "every port", excluded,
		    config.loopback ? "protected" : "left alone");
	else if (config.include.count > 0)
		log_msg(LOG_LEVEL_INFO, "policy: connections whose server matches one "
		    "of %d TLSHIM_INCLUDE rule%s are protected%s; the rest are "
		    "left alone", config.include.count,
		    config.include.count == 1 ? "" : "s", excluded);
	else
		log_msg(LOG_LEVEL_INFO, "policy: every TCP connection%s is protected%s; "
		    "a service without tlshim cannot be reached (TLSHIM_PEERS "
		    "limits protection to the job's nodes)", config.loopback ?
		    "" : " but loopback", excluded);
}

/* Before the first decision: resolve every setting's names. A name in
 * TLSHIM_INCLUDE, TLSHIM_EXCLUDE or TLSHIM_TRUST_NAT that does not
 * resolve is a configuration error; one in TLSHIM_PEERS is tried again
 * later (see decide_connect). */
static void
decide_ready(void)
{
	char why[200] = "";
	int pending;

	if (atomic_load_explicit(&names_done, memory_order_acquire) ||
	    shim_internal_thread)
		return;
	pthread_mutex_lock(&names_lock);
	if (!atomic_load(&names_done)) {
		const char *settings[] = { "TLSHIM_INCLUDE", "TLSHIM_EXCLUDE",
		    "TLSHIM_TRUST_NAT" };
		struct policy_rules *lists[] = { &config.include,
		    &config.exclude, &config.trust_nat };
		int i;

		for (i = 0; i < 3; i++)
			if (resolve_setting(lists[i], settings[i], why,
			    sizeof(why)) > 0 && config.error[0] == '\0') {
				snprintf(config.error, sizeof(config.error), "%s", why);
				log_msg(LOG_LEVEL_ERROR, "invalid configuration: %s; every "
				    "connection that would be protected will fail",
				    config.error);
			}
		pthread_rwlock_wrlock(&peers_lock);
		pending = peers_pending = resolve_setting(&config.peers,
		    "TLSHIM_PEERS", why, sizeof(why));
		peers_retry_at_ms = monotime_ms() + PEERS_RETRY_MS;
		pthread_rwlock_unlock(&peers_lock);
		if (log_enabled(LOG_LEVEL_INFO))
			describe();
		if (pending > 0)
			log_msg(LOG_LEVEL_WARN, "%s%s: until %s, connections to "
			    "addresses that are no known peer are protected",
			    why, pending > 1 ? ", and more names" : "",
			    pending > 1 ? "they resolve" : "it resolves");
		atomic_store_explicit(&names_done, true, memory_order_release);
	}
	pthread_mutex_unlock(&names_lock);
}

/* Is ${server} a peer? With names still pending, look them up again
 * (rate-limited); *pending tells whether some still are. */
static bool
peers_match(const struct sockaddr *server, bool *pending)
{
	char why[200];
	bool yes;

	pthread_rwlock_rdlock(&peers_lock);
	yes = policy_match(&config.peers, server);
	*pending = peers_pending > 0;
	pthread_rwlock_unlock(&peers_lock);
	if (yes || !*pending || shim_internal_thread)
		return yes;
	pthread_rwlock_wrlock(&peers_lock);
	if (peers_pending > 0 && monotime_ms() >= peers_retry_at_ms) {
		peers_pending = resolve_setting(&config.peers, "TLSHIM_PEERS",
		    why, sizeof(why));
		peers_retry_at_ms = monotime_ms() + PEERS_RETRY_MS;
		if (peers_pending == 0)
			log_msg(LOG_LEVEL_INFO, "TLSHIM_PEERS: every name resolves now "
			    "(%d addresses)", config.peers.count);
	}
	yes = policy_match(&config.peers, server);
	*pending = peers_pending > 0;
	pthread_rwlock_unlock(&peers_lock);
	return yes;
}

static bool
protected_by_rules(const struct sockaddr *addr)
{
	if (config.include.count > 0)
		return policy_match(&config.include, addr);
	if (policy_is_loopback(addr))
		return config.loopback;
	return true;
}

bool
decide_connect(const struct sockaddr *server)
{
	bool pending;

	/* The shim's own connections, and a name lookup's while it resolves
	 * (it holds the peers lock), are never protected. */
	if (shim_internal_thread ||
	    (server->sa_family != AF_INET && server->sa_family != AF_INET6))
		return false;
	decide_ready();
	if (policy_match(&config.exclude, server))
		return false;
	/* With a broken peer list, a peer may be anywhere: fail closed. */
	if (!config.peers_set || config.error[0] != '\0')
		return protected_by_rules(server);
	if (policy_is_loopback(server) && !config.loopback)
		return false;
	/* A name not resolved yet may be this address: fail closed. */
	return peers_match(server, &pending) || pending;
}

bool
decide_accept(const struct sockaddr *local)
{
	if (shim_internal_thread ||
	    (local->sa_family != AF_INET && local->sa_family != AF_INET6))
		return false;
	decide_ready();
	if (policy_match(&config.exclude, local))
		return false;
	return protected_by_rules(local);
}

bool
decide_either(const struct sockaddr *local, const struct sockaddr *peer)
{
	return decide_connect(peer) || decide_accept(local);
}

bool
decide_nat_trusted(const struct sockaddr *peer)
{
	decide_ready();
	return policy_match(&config.trust_nat, peer);
}

void
decide_forget(void)
{
	pthread_mutex_lock(&names_lock);
	atomic_store(&names_done, false);
	peers_pending = 0;
	pthread_mutex_unlock(&names_lock);
}
